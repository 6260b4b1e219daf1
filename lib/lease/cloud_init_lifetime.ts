/**
 * Box-side lease lifetime: the POSIX sh script, its config file and the
 * systemd units cloud-init installs so a box powers itself off at its TTL and
 * when idle, even when the operator's machine is closed.
 *
 * @module
 */

/** Where the lifetime script is installed on the box. */
export const LIFETIME_SCRIPT_PATH = "/usr/local/lib/crabbox/lifetime";
/** The lifetime settings (`expires=<unix seconds>`, `idle=<seconds>`; 0 = none). */
export const LIFETIME_CONF_PATH = "/etc/crabbox/lifetime";
/** The last time an ssh connection was seen (unix seconds). */
export const LIFETIME_STAMP_PATH = "/var/lib/crabbox/last-active";
/** systemd unit name (without suffix) of the lifetime service and timer. */
export const LIFETIME_UNIT = "crabbox-lifetime";

/**
 * `crabbox-lifetime check | extend EXPIRES`, POSIX sh (dash and bash).
 *
 * `check` (the timer runs it every minute): when an established TCP
 * connection belongs to `sshd` (`ss -Htnp`; interactive sessions, `crabbox
 * run`, `crew connect` forwards and ControlMasters are all ssh connections)
 * it records now as last-active; then it powers the box off (`systemctl
 * poweroff`) when now is at or past `expires`, or when `idle` seconds passed
 * since last-active. A missing stamp starts the idle clock now. When `ss`
 * fails the idle check is skipped (never power off on a blind guess).
 * Values that are not plain digits count as 0 (none); the config file is
 * read, never sourced. `extend EXPIRES` rewrites the expiry (0 = none) and
 * marks the box active (what `crabbox touch --ttl` runs over ssh).
 *
 * Paths can be moved with `CRABBOX_LIFETIME_CONF` and
 * `CRABBOX_LIFETIME_STAMP` (tests). Files are replaced by rename.
 *
 * @example
 * ```ts
 * import { lifetimeScript } from "./cloud_init_lifetime.ts";
 * lifetimeScript.startsWith("#!/bin/sh\n"); // true
 * ```
 */
export const lifetimeScript: string = `#!/bin/sh
# crabbox-lifetime check | extend EXPIRES
# Installed by crabbox cloud-init; ${LIFETIME_UNIT}.timer runs "check" every minute.
# Powers the box off at its expiry and after "idle" seconds without an ssh
# connection (sessions, crew connect forwards and masters are ssh connections).
set -u
umask 022
me=crabbox-lifetime
conf=\${CRABBOX_LIFETIME_CONF:-${LIFETIME_CONF_PATH}}
stamp=\${CRABBOX_LIFETIME_STAMP:-${LIFETIME_STAMP_PATH}}

say() { echo "$me: $*" >&2; }

digits() {
  case $1 in
  '' | *[!0-9]*) return 1 ;;
  esac
  [ "\${#1}" -le 12 ]
}

# setting NAME: its value in the config file when it is plain digits, else 0.
setting() {
  v=$(sed -n "s/^$1=//p" "$conf" 2>/dev/null | head -n 1)
  if digits "$v"; then echo "$v"; else echo 0; fi
}

# put FILE TEXT: replace FILE by rename.
put() {
  d=$(dirname "$1")
  mkdir -p "$d" || return 1
  t=$(mktemp "$d/.$me.XXXXXX") || return 1
  if printf '%s\\n' "$2" >"$t" && chmod 0644 "$t" && mv -f "$t" "$1"; then return 0; fi
  rm -f "$t"
  return 1
}

now=$(date +%s)
digits "$now" || { say "date +%s failed"; exit 1; }

case \${1:-check} in
extend)
  if [ "$#" -ne 2 ] || ! digits "$2"; then
    say "usage: $me extend EXPIRES (unix seconds, 0 = none)"
    exit 2
  fi
  put "$conf" "expires=$2
idle=$(setting idle)" || exit 1
  put "$stamp" "$now" || exit 1
  exit 0
  ;;
check) ;;
*)
  say "usage: $me check | extend EXPIRES"
  exit 2
  ;;
esac

expires=$(setting expires)
idle=$(setting idle)

if conns=$(ss -Htnp state established 2>/dev/null); then
  case $conns in
  *'(("sshd'*) put "$stamp" "$now" ;;
  esac
else
  say "ss failed: idle check skipped"
  idle=0
fi

last=$(head -n 1 "$stamp" 2>/dev/null)
if ! digits "$last"; then
  last=$now
  put "$stamp" "$now"
fi

if [ "$expires" -gt 0 ] && [ "$now" -ge "$expires" ]; then
  say "lease expired (ttl): powering off"
  exec systemctl poweroff
fi
if [ "$idle" -gt 0 ] && [ $((now - last)) -ge "$idle" ]; then
  say "idle for $((now - last))s (timeout \${idle}s): powering off"
  exec systemctl poweroff
fi
exit 0
`;

/** The config file for `expiresAt` and `idleTimeout` (0 = none). */
export function lifetimeConf(expiresAt: number, idleTimeout: number): string {
  return `expires=${expiresAt}\nidle=${idleTimeout}\n`;
}

/** The oneshot service unit that runs `check`. */
export const LIFETIME_SERVICE = `[Unit]
Description=crabbox: power off at the lease TTL or when idle

[Service]
Type=oneshot
ExecStart=${LIFETIME_SCRIPT_PATH} check
`;

/** The timer unit: every minute, from one minute after boot. */
export const LIFETIME_TIMER = `[Unit]
Description=crabbox: check the lease lifetime every minute

[Timer]
OnBootSec=1min
OnUnitActiveSec=1min
AccuracySec=5s

[Install]
WantedBy=timers.target
`;
