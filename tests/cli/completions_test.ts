import assert from "node:assert/strict";
import { buildProgram } from "../../cli/program.ts";
import { bashCompletion, completionEntries } from "../../cli/completions.ts";

Deno.test("completion entries come from the real command tree", () => {
  const entries = completionEntries(buildProgram());
  const at = (path: string) => entries.find((e) => e.path.join(" ") === path)?.words ?? [];
  assert.ok(at("").includes("warmup") && at("").includes("crew") && at("").includes("doctor"));
  assert.deepEqual(at("crew").filter((w) => !w.startsWith("-")), [
    "connect",
    "disconnect",
    "peers",
    "release",
    "up",
    "down",
  ]);
  assert.ok(at("crew connect").includes("--export"));
  assert.ok(at("warmup").includes("--expose"));
  assert.ok(!at("warmup").includes("--user-data"), "hidden alias not offered");
});

Deno.test("the bash script completes subcommands and flags in a real bash", async () => {
  const script = bashCompletion(buildProgram());
  const probe = (words: string[]) =>
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; ` +
    `_crabbox; echo "\${COMPREPLY[*]}"`;
  const cmd = [
    script,
    probe(["crabbox", "crew", "d"]),
    probe(["crabbox", "crew", "connect", "x", "--j"]),
  ]
    .join("\n");
  const out = await new Deno.Command("bash", { args: ["-c", cmd], stdout: "piped" }).output();
  assert.equal(new TextDecoder().decode(out.stdout), "disconnect down\n--json\n");
});
