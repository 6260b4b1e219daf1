/**
 * Base64 encoding of bytes or UTF-8 text (user data, key material, the
 * WebSocket handshake), in one place.
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
