/**
 * Host key lines (`ssh-ed25519 AAAA…`) as crabbox pins them in known_hosts:
 * the strict check every pinned key passes before it is written, so a value
 * from a provider or a config file can never add a second known_hosts line
 * (`@cert-authority *`, a wildcard host) or a key of another type.
 *
 * @module
 */

import { decodeBase64 } from "../core/base64.ts";
import { usageError } from "../core/errors.ts";

/** The host key types crabbox pins (what OpenSSH offers as host keys). */
export const HOST_KEY_TYPES: ReadonlySet<string> = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
]);

const HOST_KEY_LINE = /^(\S+) ([A-Za-z0-9+/]+={0,2})$/;

/**
 * The key type embedded at the start of an SSH public key blob (a uint32
 * big-endian length, then that many bytes), or `undefined` when the blob is
 * too short for it or nothing follows it.
 */
function embeddedType(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const len = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (len === 0 || 4 + len >= blob.length) return undefined;
  return new TextDecoder().decode(blob.subarray(4, 4 + len));
}

/**
 * Check a host key line strictly and return it unchanged: one line of
 * exactly `TYPE BASE64` (no comment, no control characters), TYPE one of
 * {@link HOST_KEY_TYPES}, BASE64 decoding to a key blob whose embedded type
 * string equals TYPE. Anything else is a `bad_host_key` usage error that does
 * not echo the value.
 *
 * @example
 * ```ts
 * import { validateHostKey } from "./host_key.ts";
 * validateHostKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFn1B57tPue0du4ZBTOPzZQRUcPtn6YtPZKvvQI6+ooq");
 * // validateHostKey("ssh-ed25519 AAAA\n@cert-authority * ssh-ed25519 AAAA") throws
 * ```
 */
export function validateHostKey(line: string): string {
  const bad = (why: string) =>
    usageError("bad_host_key", `host key must be one line 'TYPE BASE64' (${why})`);
  const m = HOST_KEY_LINE.exec(line);
  if (!m) throw bad("not one line of a type, a space and base64");
  const [, type, b64] = m;
  if (!HOST_KEY_TYPES.has(type)) throw bad(`unknown key type ${JSON.stringify(type)}`);
  const blob = decodeBase64(b64);
  if (!blob) throw bad("the key is not base64");
  if (embeddedType(blob) !== type) throw bad(`the key data is not a ${type} key`);
  return line;
}
