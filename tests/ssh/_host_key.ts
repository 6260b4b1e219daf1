/**
 * Well-formed host key lines for tests: `TYPE BASE64` where the blob embeds
 * `embedded` (default: the same type) followed by random key bytes.
 *
 * @module
 */

/** A host key line of `type` whose blob declares `embedded`. */
export function fakeHostKey(type = "ssh-ed25519", embedded = type): string {
  const name = new TextEncoder().encode(embedded);
  const key = crypto.getRandomValues(new Uint8Array(32));
  const blob = new Uint8Array(4 + name.length + 4 + key.length);
  const view = new DataView(blob.buffer);
  view.setUint32(0, name.length);
  blob.set(name, 4);
  view.setUint32(4 + name.length, key.length);
  blob.set(key, 8 + name.length);
  return `${type} ${btoa(String.fromCharCode(...blob))}`;
}
