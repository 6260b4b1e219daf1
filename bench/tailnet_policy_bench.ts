/**
 * `mergeTailnetPolicy` on 64 KiB, 1 MiB and 4 MiB policies (comments, CRLF-free,
 * grants + tests sections; the crew rows are missing, so every run parses,
 * inserts two rows and re-verifies). Goal: 1 MiB ≤ 50 ms; 4 MiB ≤ 4.5× 1 MiB.
 *
 * Run: deno bench --allow-all bench/tailnet_policy_bench.ts
 *
 * @module
 */

import { mergeTailnetPolicy } from "../lib/tailnet/policy.ts";

const TAG = "tag:cbx-crew-alice-pr-42";

/** A policy of about `size` bytes shaped like a large hand-edited tailnet policy. */
function policyOfSize(size: number): string {
  const parts = [
    '// Tailnet policy (generated for the benchmark)\n{\n  "groups": {\n    "group:ops": ["alice@example.com"],\n  },\n',
    '  "tagOwners": {\n    "tag:existing": ["group:ops"], // ops\n    // crew tags go above\n  },\n  "grants": [\n',
  ];
  let n = parts[0].length + parts[1].length;
  for (let i = 0; n < size * 0.8; i++) {
    const row = `    {"src": ["group:g${i}", "tag:t${
      i % 97
    }"], "dst": ["tag:existing"], "ip": ["tcp:${i % 65535}"]}, // row ${i}\n`;
    parts.push(row);
    n += row.length;
  }
  parts.push('    // closing note\n  ],\n  "tests": [\n');
  for (let i = 0; n < size; i++) {
    const row = `    {"src": "user${i}@example.com", "accept": ["tag:existing:${i % 1000}"]},\n`;
    parts.push(row);
    n += row.length;
  }
  parts.push("  ],\n}\n");
  return parts.join("");
}

for (
  const [name, size] of [["64 KiB", 64 << 10], ["1 MiB", 1 << 20], ["4 MiB", 4 << 20]] as const
) {
  const text = policyOfSize(size);
  Deno.bench({
    name: `mergeTailnetPolicy ${name}`,
    group: "mergeTailnetPolicy",
    baseline: name === "1 MiB",
    fn() {
      const r = mergeTailnetPolicy(text, { tag: TAG });
      if (!r.changed) throw new Error("expected a change");
    },
  });
}
