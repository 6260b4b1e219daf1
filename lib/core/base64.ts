/**
 * Base64 encoding of bytes or UTF-8 text (user data, key material, the
 * WebSocket handshake) and decoding (host keys, PEM, fingerprints), in one
 * place. Decoding does not use `atob`: its first call loads a part of the
 * runtime (~1 ms measured), and a crew connect decodes host keys before its
 * first ssh starts.
 *
 * @module
 */

/**
 * Standard base64 (with padding) of `data`; a string is encoded as its
 * UTF-8 bytes. Works for any size (no argument-count limit).
 *
 * @example
 * ```ts
 * import { encodeBase64 } from "./base64.ts";
 * encodeBase64("crabbox ✓"); // "Y3JhYmJveCDinJM="
 * encodeBase64(new Uint8Array([0, 255])); // "AP8="
 * ```
 */
export function encodeBase64(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;

/**
 * The bytes of standard base64 `text` (padding optional, as `atob` accepts
 * it), or `undefined` when it is not base64: a character outside the
 * alphabet, whitespace included, or a length that no encoding has.
 *
 * @example
 * ```ts
 * import { decodeBase64 } from "./base64.ts";
 * decodeBase64("AP8="); // Uint8Array [0, 255]
 * decodeBase64("AP8"); // Uint8Array [0, 255]
 * decodeBase64("A"); // undefined
 * ```
 */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  let end = text.length;
  if (end % 4 === 0 && text[end - 1] === "=") end -= text[end - 2] === "=" ? 2 : 1;
  if (end % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0, bits = 0, j = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const v = code < 128 ? VALUES[code] : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
