import assert from "node:assert/strict";
import { decodeBase64, encodeBase64 } from "../../lib/core/base64.ts";

const viaAtob = (s: string): number[] | undefined => {
  try {
    return Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
};

Deno.test("decodeBase64: the bytes atob gives, for every length 0..96, padded and not", () => {
  for (let n = 0; n <= 96; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    const padded = encodeBase64(bytes);
    assert.deepEqual(Array.from(decodeBase64(padded)!), Array.from(bytes), padded);
    const bare = padded.replace(/=+$/, "");
    assert.deepEqual(Array.from(decodeBase64(bare)!), Array.from(bytes), bare);
  }
});

Deno.test("decodeBase64: undefined exactly where atob throws (no whitespace: ours refuses it)", () => {
  const cases = [
    "",
    "A",
    "AB",
    "ABC",
    "ABCD",
    "ABCDE",
    "AB==",
    "ABC=",
    "A===",
    "AB=C",
    "=ABC",
    "AB*D",
    "AB-_",
    "ABCD==",
    "ABC==",
    "AAAAC3NzaC1lZDI1NTE5AAAAIFn1B57tPue0du4ZBTOPzZQRUcPtn6YtPZKvvQI6+ooq",
    "ÄBCD",
  ];
  for (const c of cases) {
    const ours = decodeBase64(c);
    assert.deepEqual(ours === undefined ? undefined : Array.from(ours), viaAtob(c), c);
  }
  assert.equal(decodeBase64("AB CD"), undefined);
  assert.equal(decodeBase64("ABCD\n"), undefined);
});
