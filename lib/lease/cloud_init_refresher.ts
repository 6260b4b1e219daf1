/**
 * The text of `crabbox-crew-hosts`, the POSIX sh script cloud-init installs on
 * a box that joins a crew's tailnet. A systemd timer runs it every 30 s.
 *
 * @module
 */

/** First line of the managed block in the system hosts file. */
export const HOSTS_BLOCK_BEGIN = "# crabbox crew hosts begin";

/** Last line of the managed block in the system hosts file. */
export const HOSTS_BLOCK_END = "# crabbox crew hosts end";

/**
 * The jq program that turns `tailscale status --json` into hosts lines.
 * Reads `$tag`. Keeps `Self` and every `Peer` whose `Tags` hold exactly
 * `$tag`; takes the first well-formed IPv4 of `TailscaleIPs`; slug = the
 * lowercased `HostName` without `$prefix` and `$suffix` (the text around `*`
 * in NAME_PATTERN, default `crabbox-*`), every run outside
 * `[a-z0-9]` turned into one `-`, `-` trimmed (like `normalizeName`); empty or
 * longer than 63 (not a DNS label, never a crabbox slug) → skipped. Role = the
 * slug without a trailing `-<digits>`. One line per address (first by slug
 * wins), sorted by slug and then address. Output holds only `[0-9a-z.- ]`.
 * Contains no single quote, so it can sit inside `'…'` in sh.
 */
const JQ_PROGRAM = String.raw`
def octet: "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
def ipv4: select(type == "string" and test("^(" + octet + "[.]){3}" + octet + "$"));
def slug: ascii_downcase | ltrimstr($prefix) | rtrimstr($suffix) | gsub("[^a-z0-9]+"; "-")
  | ltrimstr("-") | rtrimstr("-");
def tagged: [.Tags[]? | select(. == $tag)] | length > 0;
[ (.Self, .Peer[]?)
  | select(type == "object" and (.HostName | type) == "string" and tagged)
  | { ip: first(.TailscaleIPs[]? | ipv4), slug: (.HostName | slug) }
  | select(.slug != "" and (.slug | length) <= 63)
  | .role = (.slug | sub("-[0-9]+$"; ""))
  | .key = [.slug, (.ip | split(".") | map(tonumber))]
]
| sort_by(.key) | unique_by(.ip) | sort_by(.key)
| .[]
| "\(.ip) \(.slug).cbx" + (if .role != .slug then " \(.role).cbx" else "" end)
`.trim();

/**
 * POSIX sh function `install_file TMP DEST`: rename TMP over DEST (mode 0644)
 * unless the bytes are the same; a DEST that cannot be renamed over (a
 * bind-mounted `/etc/hosts`) is rewritten in place. Shared by the tailnet
 * refresher and the ssh-peer box script.
 */
export const INSTALL_FILE_SH: string = String
  .raw`# install TMP DEST: rename TMP over DEST unless the bytes are the same. A DEST
# that cannot be renamed over (a bind-mounted /etc/hosts) is rewritten.
install_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    rm -f "$1"
    return 0
  fi
  chmod 644 "$1" || return 1
  if ! mv -f "$1" "$2" 2>/dev/null; then
    cat "$1" >"$2" || return 1
    rm -f "$1"
  fi
}`;

/**
 * The awk program that replaces a managed block in a hosts file, reading
 * `ENVIRON`: `CBX_BEGIN`/`CBX_END` (the marker lines), `CBX_LINES` (the
 * block's body) and `CBX_DROP` (`1`: drop every block, write none). The
 * first complete block is replaced in place, later blocks and unpaired
 * marker lines are dropped, every other line is kept; without a block one is
 * appended. Contains no single quote (it sits inside `'…'` in sh).
 */
export const HOSTS_BLOCK_AWK: string = String.raw`  { line[++n] = $0 }
  END {
    b = ENVIRON["CBX_BEGIN"]; e = ENVIRON["CBX_END"]; done = 0; i = 1
    while (i <= n) {
      if (line[i] == b) {
        j = i + 1
        while (j <= n && line[j] != e && line[j] != b) j++
        if (j <= n && line[j] == e) {
          if (!done) block()
          i = j + 1
        } else {
          i++
        }
      } else {
        if (line[i] != e) print line[i]
        i++
      }
    }
    if (!done) block()
  }
  function block() {
    done = 1
    if (ENVIRON["CBX_DROP"] == "1") return
    print ENVIRON["CBX_BEGIN"]
    if (ENVIRON["CBX_LINES"] != "") print ENVIRON["CBX_LINES"]
    print ENVIRON["CBX_END"]
  }
`;

/**
 * `crabbox-crew-hosts TAG OUT SYSTEM_HOSTS [NAME_PATTERN]`: the POSIX sh
 * refresher (NAME_PATTERN: the tailnet host name with `*` for the slug,
 * default `crabbox-*`; runs
 * under dash and bash). Reads `tailscale status --json` (needs `jq`, `awk`,
 * `mktemp`), keeps `Self` and the peers tagged `TAG`, and writes:
 *
 * - `OUT` (normally `/etc/hosts.cbx`): a header line, then
 *   `<ip> <slug>.cbx [<role>.cbx]` per member, sorted, one line per address
 *   (the role alias is left out when it equals the slug);
 * - the block between {@link HOSTS_BLOCK_BEGIN} and {@link HOSTS_BLOCK_END}
 *   in `SYSTEM_HOSTS` (normally `/etc/hosts`): the first complete block is
 *   replaced in place, later blocks and unpaired marker lines are dropped,
 *   every other line is kept; without a block one is appended.
 *
 * Both files are written to a temp file in the same directory and renamed
 * over the target (mode 0644), and only when the bytes change. When
 * `tailscale status` fails or the backend is not `Running` it changes nothing
 * and exits 0 (normal before the box has joined). Peer names are data for jq,
 * never shell text: nothing from the tailnet is evaluated.
 *
 * @example
 * ```ts
 * import { refresherScript } from "./cloud_init_refresher.ts";
 * await Deno.writeTextFile("/tmp/crabbox-crew-hosts", refresherScript);
 * // sh /tmp/crabbox-crew-hosts tag:cbx-crew-alice-pr-42 /tmp/hosts.cbx /tmp/hosts
 * ```
 */
export const refresherScript: string = String.raw`#!/bin/sh
# crabbox-crew-hosts TAG OUT SYSTEM_HOSTS [NAME_PATTERN]
# Installed by crabbox cloud-init; run by crabbox-crew-hosts.timer every 30 s.
# Turns the tailnet members tagged TAG into "<ip> <slug>.cbx <role>.cbx" lines
# in OUT and in a managed block of SYSTEM_HOSTS. Changes nothing when
# tailscale is not up.
set -u
umask 022

me=crabbox-crew-hosts
begin='${HOSTS_BLOCK_BEGIN}'
end='${HOSTS_BLOCK_END}'

if [ "$#" -ne 3 ] && [ "$#" -ne 4 ]; then
  echo "usage: $me TAG OUT SYSTEM_HOSTS [NAME_PATTERN]" >&2
  exit 2
fi
tag=$1
out=$2
sys=$3
if [ "$#" -eq 4 ]; then pattern=$4; else pattern='crabbox-*'; fi
case $pattern in
  *[!a-z0-9*-]* | *\**\**) pattern_ok=no ;;
  *\**) pattern_ok=yes ;;
  *) pattern_ok=no ;;
esac
if [ "$pattern_ok" != yes ]; then
  echo "$me: NAME_PATTERN must be [a-z0-9-] around one * (the slug)" >&2
  exit 2
fi
prefix=$(printf '%s' "$pattern" | sed 's/[*].*//')
suffix=$(printf '%s' "$pattern" | sed 's/^[^*]*[*]//')
case $tag in
  *[!A-Za-z0-9:-]* | tag:*:*) tag_ok=no ;;
  tag:[A-Za-z]*) tag_ok=yes ;;
  *) tag_ok=no ;;
esac
if [ "$tag_ok" != yes ]; then
  echo "$me: TAG must look like tag:name" >&2
  exit 2
fi
if ! command -v jq >/dev/null 2>&1; then
  echo "$me: jq is not installed" >&2
  exit 1
fi

if ! status=$(tailscale status --json 2>/dev/null); then
  echo "$me: tailscale status failed; nothing changed" >&2
  exit 0
fi
state=$(printf '%s\n' "$status" | jq -r '.BackendState? // "unknown"' 2>/dev/null)
if [ "$state" != Running ]; then
  echo "$me: tailscale is not running; nothing changed" >&2
  exit 0
fi
if ! lines=$(printf '%s\n' "$status" | jq -r --arg tag "$tag" --arg prefix "$prefix" --arg suffix "$suffix" '${JQ_PROGRAM}'); then
  echo "$me: cannot read tailscale status; nothing changed" >&2
  exit 1
fi

tmp_out=
tmp_sys=
cleanup() {
  if [ -n "$tmp_out" ]; then rm -f "$tmp_out"; fi
  if [ -n "$tmp_sys" ]; then rm -f "$tmp_sys"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

${INSTALL_FILE_SH}
tmp_out=$(mktemp "$out.XXXXXX") || exit 1
{
  echo "# crabbox crew hosts for $tag; written by $me, do not edit"
  if [ -n "$lines" ]; then printf '%s\n' "$lines"; fi
} >"$tmp_out" || exit 1
install_file "$tmp_out" "$out" || exit 1
tmp_out=

src=/dev/null
if [ -f "$sys" ]; then src=$sys; fi
tmp_sys=$(mktemp "$sys.XXXXXX") || exit 1
CBX_LINES=$lines CBX_BEGIN=$begin CBX_END=$end awk '
${HOSTS_BLOCK_AWK}' "$src" >"$tmp_sys" || exit 1
install_file "$tmp_sys" "$sys" || exit 1
tmp_sys=
exit 0
`;
