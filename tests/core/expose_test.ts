import assert from "node:assert/strict";
import { exposeLabelValue, parseExposedPorts, parseExposeLabel } from "../../lib/core/expose.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

Deno.test("parseExposedPorts sorts, dedups and splits comma lists", () => {
  assert.deepEqual(parseExposedPorts(["8080", "9090", "9090", "80,443"]), [80, 443, 8080, 9090]);
  assert.deepEqual(parseExposedPorts([" 22 , 65535 "]), [22, 65535]);
  assert.deepEqual(parseExposedPorts([]), []);
});

Deno.test("parseExposedPorts rejects bad values and names them", () => {
  for (const bad of ["abc", "0", "70000", "-1", "+80", "0080", "8080x", "1e3", "80.0"]) {
    assert.throws(() => parseExposedPorts([bad]), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 2);
      assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
      return true;
    }, bad);
  }
  for (const empty of ["", ",", " , "]) {
    assert.throws(() => parseExposedPorts([empty]), /must not be empty/);
  }
  const eleven = Array.from({ length: 11 }, (_, i) => String(8000 + i));
  assert.throws(() => parseExposedPorts(eleven), /at most 10 distinct ports/);
  assert.equal(parseExposedPorts([...eleven.slice(0, 10), "8000"]).length, 10);
});

Deno.test("expose label round-trips and ignores junk", () => {
  assert.equal(exposeLabelValue([8080, 5432, 8080]), "5432-8080");
  assert.deepEqual(parseExposeLabel("5432-8080"), [5432, 8080]);
  assert.deepEqual(parseExposeLabel("8080-xyz-9090-bad-80"), [80, 8080, 9090]);
  assert.deepEqual(parseExposeLabel("  "), []);
  assert.deepEqual(parseExposeLabel("99999999"), []);
  assert.deepEqual(parseExposeLabel("65536-80-65535-0"), [80, 65535], "ports above 65535 are junk");
  assert.deepEqual(parseExposeLabel(undefined), []);
  const ten = Array.from({ length: 10 }, (_, i) => 65526 + i);
  assert.ok(exposeLabelValue(ten).length <= 63);
});
