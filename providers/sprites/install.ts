/**
 * The script crabbox runs in a new sprite over the exec WebSocket: install
 * openssh-server when it is missing, authorize the crew key (passed in the
 * `CRABBOX_SSH_PUBLIC_KEY` environment variable, never in the script text)
 * for the login user, and register sshd as a sprite *service* so that it is
 * started again after the sprite wakes from hibernation.
 *
 * @module
 */

/** The env variable that carries the crew public key into the script. */
export const PUBLIC_KEY_ENV = "CRABBOX_SSH_PUBLIC_KEY";

/**
 * The install script (bash). Idempotent: running it twice adds the key once
 * and keeps one service.
 *
 * @example
 * ```ts
 * import { sshdInstallScript } from "./install.ts";
 * sshdInstallScript().includes("sprite-env services create sshd"); // true
 * ```
 */
export function sshdInstallScript(): string {
  return [
    "set -eu",
    `key="\${${PUBLIC_KEY_ENV}:?missing public key}"`,
    'SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"',
    "if [ ! -x /usr/sbin/sshd ]; then",
    "  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
    "  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null",
    "fi",
    'mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"',
    'touch "$HOME/.ssh/authorized_keys" && chmod 600 "$HOME/.ssh/authorized_keys"',
    'grep -qxF "$key" "$HOME/.ssh/authorized_keys" || printf \'%s\\n\' "$key" >> "$HOME/.ssh/authorized_keys"',
    "if command -v sprite-env >/dev/null 2>&1; then",
    "  sprite-env services list 2>/dev/null | grep -qw sshd ||",
    "    sprite-env services create sshd --cmd /usr/sbin/sshd --args -D",
    "else",
    "  pgrep -x sshd >/dev/null 2>&1 || { $SUDO mkdir -p /run/sshd; $SUDO /usr/sbin/sshd; }",
    "fi",
    'echo "crabbox: sshd ready"',
  ].join("\n");
}
