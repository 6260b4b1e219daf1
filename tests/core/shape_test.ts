import assert from "node:assert/strict";
import { readShape, shapeLabels, type ShapeRules, validateShape } from "../../lib/core/shape.ts";
import { isValidLabelKey, isValidLabelValue } from "../../lib/core/labels.ts";
import { providerRegistry } from "../../providers/registry.ts";

const HETZNER = providerRegistry.hetzner.shape!;

Deno.test("validateShape: documented values pass, empty fields drop", () => {
  assert.deepEqual(
    validateShape(
      { type: "cax21", location: "hel1", image: "debian-12", arch: "arm" },
      HETZNER,
      "hetzner",
    ),
    { type: "cax21", location: "hel1", image: "debian-12", arch: "arm" },
  );
  assert.deepEqual(validateShape({ type: " cpx32 ", image: "" }, HETZNER, "hetzner"), {
    type: "cpx32",
  });
  assert.deepEqual(validateShape({}, undefined, "local"), {});
});

Deno.test("validateShape: each problem names the flag, the value and the provider", () => {
  const cases: [Parameters<typeof validateShape>, RegExp][] = [
    [
      [{ type: "m5.large" }, HETZNER, "hetzner"],
      /^--type "m5\.large" is not a hetzner type \(e\.g\. cpx22\)$/,
    ],
    [
      [{ location: "mars1" }, HETZNER, "hetzner"],
      /^--location "mars1" is not a hetzner location \(known: fsn1, nbg1, hel1, ash, hil, sin\)$/,
    ],
    [[{ arch: "riscv" }, HETZNER, "hetzner"], /^--arch "riscv" is not a hetzner arch/],
    [
      [{ image: "ubuntu 24.04" }, HETZNER, "hetzner"],
      /^--image "ubuntu 24\.04" is not a hetzner image/,
    ],
    [
      [{ type: "cpx22", arch: "arm" }, HETZNER, "hetzner"],
      /^provider hetzner: --type cpx22 is x86, not --arch arm$/,
    ],
    [
      [{ type: "big" }, undefined, "local"],
      /^--type is not supported by provider local \(it takes no shape flags\)$/,
    ],
    [
      [{ arch: "arm" }, { flags: { type: { example: "t" } } } as ShapeRules, "x"],
      /^--arch is not supported by provider x \(it takes --type\)$/,
    ],
  ];
  for (const [args, re] of cases) {
    assert.throws(() => validateShape(...args), (e: Error & { exitStatus?: number }) => {
      assert.equal(e.exitStatus, 2);
      assert.match(e.message, re);
      return true;
    });
  }
});

Deno.test("shape labels are valid everywhere and read back", () => {
  const labels = shapeLabels({
    type: "Standard_B2s",
    location: "eastus",
    image: "ubuntu-24.04",
    arch: "arm",
  });
  assert.deepEqual(labels, {
    "crabbox-type": "standard-b2s",
    "crabbox-location": "eastus",
    "crabbox-image": "ubuntu-24-04",
    "crabbox-arch": "arm",
  });
  for (const [k, v] of Object.entries(labels)) {
    assert.ok(isValidLabelKey(k) && isValidLabelValue(v), `${k}=${v}`);
  }
  assert.ok(isValidLabelValue(shapeLabels({ image: "x".repeat(80) + "-" })["crabbox-image"]));
  assert.deepEqual(readShape(labels), {
    type: "standard-b2s",
    location: "eastus",
    image: "ubuntu-24-04",
    arch: "arm",
  });
});
