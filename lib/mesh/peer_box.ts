/**
 * What the `ssh-peer` plane does on a member, over the member's live
 * ControlMaster: `-R` forwards added and cancelled (`ssh -O forward|cancel`),
 * and one fixed POSIX sh script ({@link PEER_BOX_SCRIPT}) that writes or
 * removes the managed hosts block and env file, or answers whether a
 * listener is bound. The script is constant text; its data (validated hosts
 * and env lines) arrives on stdin and is checked again on the box — no name
 * ever becomes shell code or an ssh option.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import type { EnvReader } from "../core/fs.ts";
import { HOSTS_BLOCK_AWK, INSTALL_FILE_SH } from "../lease/cloud_init_refresher.ts";
import type { ProcessRunner } from "../process/run.ts";
import {
  runSsh,
  sshCommandArgs,
  sshDestination,
  sshOptionArgs,
  type SshResult,
  type SshTarget,
} from "../ssh/args.ts";
import { PEER_BLOCK_BEGIN, PEER_BLOCK_END } from "./peer_table.ts";

/** Where the member's env file goes (`. /run/crabbox/crew.env`). */
export const PEER_ENV_PATH = "/run/crabbox/crew.env";

/** The separator line between hosts lines and env lines on the script's stdin. */
const ENV_SEPARATOR = "--env--";

/**
 * `sh -c SCRIPT crabbox-peers MODE`, run as root (directly, or through
 * `sudo -n` for another login):
 *
 * - `apply`: stdin holds hosts lines, {@link ENV_SEPARATOR}, env lines. Each
 *   line is checked against a strict pattern (else exit 4, nothing written).
 *   The block between {@link PEER_BLOCK_BEGIN} and {@link PEER_BLOCK_END} in
 *   `/etc/hosts` (and in `/etc/hosts.cbx` when that file exists) is replaced;
 *   {@link PEER_ENV_PATH} is written. Files are written to a temp file in the
 *   same directory and renamed over the target (a bind-mounted `/etc/hosts`,
 *   which cannot be renamed over, is rewritten in place).
 * - `remove`: drops the block from both files and removes the env file.
 * - `listening`: stdin holds one `/proc/net/tcp` address (`0200007F:1F90`);
 *   prints `yes` when a listener is bound exactly there, else `no`.
 * - `reach`: stdin holds `<host> <port>` lines; prints `<host> <port> ok|no`
 *   per line after a TCP connect (3 s timeout, bash's `/dev/tcp` or `nc`).
 *
 * Sent as one argv word of `sh -c` (quoted by `sshCommandArgs`).
 */
export const PEER_BOX_SCRIPT: string = `set -u
umask 022
me=crabbox-peers
begin="${PEER_BLOCK_BEGIN}"
end="${PEER_BLOCK_END}"
envfile=${PEER_ENV_PATH}
awk_prog=$(cat <<\\CBXAWK
${HOSTS_BLOCK_AWK}CBXAWK
)
${INSTALL_FILE_SH}

block() {
  f=$1
  src=/dev/null
  if [ -f "$f" ]; then src=$f; fi
  tmp=$(mktemp "$f.XXXXXX") || return 1
  if ! CBX_LINES=$2 CBX_DROP=$3 CBX_BEGIN=$begin CBX_END=$end awk "$awk_prog" "$src" >"$tmp"; then
    rm -f "$tmp"
    return 1
  fi
  install_file "$tmp" "$f" || { rm -f "$tmp"; return 1; }
}

mode=\${1:-}
case $mode in
apply)
  hosts=
  envs=
  part=hosts
  nl="
"
  while IFS= read -r line; do
    if [ "$line" = "${ENV_SEPARATOR}" ]; then part=env; continue; fi
    if [ "$part" = hosts ]; then
      printf "%s\\n" "$line" | grep -Eqx "127[.]0[.]0[.][0-9]{1,3}( [a-z0-9-]{1,63}[.]cbx)+" || {
        echo "$me: refusing a malformed hosts line" >&2; exit 4; }
      hosts="$hosts\${hosts:+$nl}$line"
    else
      printf "%s\\n" "$line" | grep -Eqx "export CRABBOX_CREW_[A-Z0-9_]{1,200}=127[.]0[.]0[.][0-9]{1,3}:[0-9]{1,5}" || {
        echo "$me: refusing a malformed env line" >&2; exit 4; }
      envs="$envs\${envs:+$nl}$line"
    fi
  done
  block /etc/hosts "$hosts" 0 || exit 1
  if [ -f /etc/hosts.cbx ]; then block /etc/hosts.cbx "$hosts" 0 || exit 1; fi
  mkdir -p /run/crabbox || exit 1
  tmp=$(mktemp "$envfile.XXXXXX") || exit 1
  {
    echo "# crabbox ssh-peer plane: the peers of this member (crabbox crew connect --peers)"
    if [ -n "$envs" ]; then printf "%s\\n" "$envs"; fi
  } >"$tmp" || { rm -f "$tmp"; exit 1; }
  install_file "$tmp" "$envfile" || exit 1
  ;;
remove)
  block /etc/hosts "" 1 || exit 1
  if [ -f /etc/hosts.cbx ]; then block /etc/hosts.cbx "" 1 || exit 1; fi
  rm -f "$envfile"
  ;;
listening)
  IFS= read -r want || exit 4
  case $want in *[!0-9A-F:]* | "") exit 4 ;; esac
  if awk -v want="$want" "\\$4 == \\"0A\\" && \\$2 == want { f = 1 } END { exit !f }" /proc/net/tcp; then
    echo yes
  else
    echo no
  fi
  ;;
reach)
  while IFS=" " read -r h p; do
    case $h in "" | -* | *[!a-z0-9.-]*) exit 4 ;; esac
    case $p in "" | *[!0-9]*) exit 4 ;; esac
    if command -v bash >/dev/null 2>&1; then
      if timeout 3 bash -c "exec 3<>/dev/tcp/\\$0/\\$1" "$h" "$p" 2>/dev/null; then r=ok; else r=no; fi
    elif command -v nc >/dev/null 2>&1; then
      if nc -z -w 3 "$h" "$p" 2>/dev/null; then r=ok; else r=no; fi
    else
      echo "$me: neither bash nor nc to measure with" >&2
      exit 3
    fi
    echo "$h $p $r"
  done
  ;;
*)
  echo "$me: unknown mode" >&2
  exit 2
  ;;
esac
`;

/** How to reach one member through its live ControlMaster. */
export interface MemberLink {
  /** The member's SSH target. */
  target: SshTarget;
  /** Its ControlMaster socket (`undefined`: a fresh connection). */
  controlPath?: string;
  /** The crew's known_hosts. */
  knownHostsFile: string;
  /** Environment reader (ssh program). */
  env: EnvReader;
  /** Process runner. */
  process?: ProcessRunner;
}

function linkArgs(link: MemberLink, timeoutS = 10): string[] {
  return sshOptionArgs(link.target, {
    knownHostsFile: link.knownHostsFile,
    control: link.controlPath ? { master: "no", path: link.controlPath } : { master: "none" },
    connectTimeout: timeoutS,
  });
}

/** The box-script modes. */
export type BoxScriptMode = "apply" | "remove" | "listening" | "reach";

/**
 * Run {@link PEER_BOX_SCRIPT} in `mode` on the member with `stdin` as data
 * (as root; `sudo -n` for another login).
 */
export function runBoxScript(
  link: MemberLink,
  mode: BoxScriptMode,
  stdin: string,
  options: { timeoutS?: number; signal?: AbortSignal } = {},
): Promise<SshResult> {
  const sudo = link.target.user === "root" ? [] : ["sudo", "-n"];
  return runSsh(
    sshCommandArgs(link.target, [...sudo, "sh", "-c", PEER_BOX_SCRIPT, "crabbox-peers", mode], {
      knownHostsFile: link.knownHostsFile,
      control: link.controlPath ? { master: "no", path: link.controlPath } : { master: "none" },
      connectTimeout: options.timeoutS ?? 10,
    }),
    { env: link.env, process: link.process, stdin, signal: options.signal },
  );
}

/** The stdin of `apply`: hosts lines, the separator, env lines. */
export function applyInput(hostsLines: readonly string[], envLines: readonly string[]): string {
  return [...hostsLines, ENV_SEPARATOR, ...envLines].map((l) => l + "\n").join("");
}

/**
 * `ssh -O forward|cancel -R <spec>…` on the member's master, all specs in
 * one call. A forward resolves the ports sshd allocated for the specs that
 * ask for port 0, in spec order; a failed forward throws with ssh's message
 * (specs before the failing one may have been added: adding one again is a
 * no-op). A cancel never throws (ssh exits 0 even when nothing matched).
 */
export async function masterRemoteForward(
  link: MemberLink,
  op: "forward" | "cancel",
  specs: readonly string[],
): Promise<number[]> {
  if (!link.controlPath) {
    throw new CrabboxError("ssh", "no_master", "remote forwards need the member's ControlMaster");
  }
  if (specs.length === 0) return [];
  const r = await runSsh(
    [
      ...linkArgs(link),
      "-O",
      op,
      ...specs.flatMap((s) => ["-R", s]),
      "--",
      sshDestination(link.target),
    ],
    { env: link.env, process: link.process },
  );
  if (op === "cancel") return [];
  if (r.code !== 0) {
    throw new CrabboxError(
      "ssh",
      "remote_forward_failed",
      `-R ${specs.join(" -R ")}: ${r.stderr.trim().split("\n").at(-1) || `ssh exited ${r.code}`}`,
    );
  }
  return r.stdout.split("\n").map((l) => Number(l.trim())).filter((n) =>
    Number.isInteger(n) && n > 0 && n <= 65535
  );
}
