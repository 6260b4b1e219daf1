import assert from "node:assert/strict";
import { formatDuration, parseDuration, parseSeconds } from "../../lib/core/duration.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

Deno.test("parseDuration: units, combinations, 0 = none", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["90", 90],
    ["45s", 45],
    ["90m", 5400],
    ["2h", 7200],
    ["1h30m", 5400],
    ["1d2h3m4s", 86400 + 7200 + 180 + 4],
    [" 30M ", 1800],
    ["0m", 0],
    ["365d", 365 * 86400],
  ];
  for (const [text, seconds] of cases) assert.equal(parseSeconds(text, "--ttl"), seconds, text);
});

Deno.test("parseDuration: bad input is a usage error naming the flag and the value", () => {
  const bad: [string, RegExp][] = [
    ["", /not a duration/],
    ["-5m", /not a duration/],
    ["1.5h", /not a duration/],
    ["5w", /not a duration/],
    ["m", /not a duration/],
    ["30m1h", /out of order/],
    ["1h1h", /out of order/],
    ["366d", /out of range \(0 = none, at most 365d\)/],
    ["99999999s", /not a duration/],
    ["1h 30m", /not a duration/],
  ];
  for (const [text, why] of bad) {
    assert.throws(() => parseSeconds(text, "--idle-timeout"), (e) => {
      assert.ok(e instanceof CrabboxError, text);
      assert.equal(e.exitStatus, 2);
      assert.equal(e.code, "bad_duration");
      assert.match(e.message, /^--idle-timeout /);
      assert.match(e.message, why, text);
      return true;
    });
  }
});

Deno.test("parseDuration: the same grammar for command-line waits, in ms, 1s to 24h", () => {
  assert.equal(parseDuration("1h30m", "--wait-timeout"), 5_400_000);
  assert.equal(parseDuration("90", "--wait-timeout"), 90_000);
  assert.throws(() => parseDuration("0", "--wait-timeout"), /out of range \(at least 1s/);
  assert.throws(() => parseDuration("1d1s", "--wait-timeout"), /at most 1d/);
});

Deno.test("formatDuration: short and readable", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [59, "59s"],
    [60, "1m"],
    [2520, "42m"],
    [3600, "1h"],
    [3900, "1h05m"],
    [86400, "1d"],
    [86400 + 3 * 3600 + 59, "1d3h"],
    [-180, "3m"],
  ];
  for (const [s, text] of cases) assert.equal(formatDuration(s), text, String(s));
});
