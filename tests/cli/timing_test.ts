import assert from "node:assert/strict";
import { cliTiming } from "../../cli/timing.ts";

Deno.test("CRABBOX_TIMING: off unless exactly 1; off records nothing", () => {
  for (const v of [undefined, "", "0", "yes", "true"]) {
    const t = cliTiming((k) => (k === "CRABBOX_TIMING" ? v : undefined));
    assert.equal(t.on, false, String(v));
    t.lap("boot");
    t.add("plan", 5);
    assert.match(t.line(), /^timing: {2}\| ready at [\d.]+ ms$/);
  }
});

Deno.test("CRABBOX_TIMING=1: laps in order, each since the previous; add keeps the largest", () => {
  const t = cliTiming((k) => (k === "CRABBOX_TIMING" ? "1" : undefined));
  assert.equal(t.on, true);
  t.lap("boot");
  const spin = performance.now() + 3;
  while (performance.now() < spin) { /* 3 ms between the laps */ }
  t.lap("cli");
  t.add("sockets", 170);
  t.add("sockets", 120); // another member: the slowest is what the wall clock sees
  t.add("files", 2.25);
  const m =
    /^timing: boot ([\d.]+) \| cli ([\d.]+) \| sockets 170\.0 \| files 2\.3 \| ready at ([\d.]+) ms$/
      .exec(t.line());
  assert.ok(m, t.line());
  assert.ok(Number(m[2]) >= 3, `cli lap ${m[2]} covers the 3 ms spin`);
  assert.ok(Number(m[3]) >= Number(m[1]) + Number(m[2]));
});
