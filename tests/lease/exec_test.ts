import assert from "node:assert/strict";
import { runOnLease } from "../../lib/lease/exec.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import { fakeProcess } from "../fakes/process.ts";

const lease: Lease = {
  id: "cbx-0000000000aa",
  provider: "memory",
  providerId: "srv-1",
  crew: "q",
  slug: "a",
  role: "a",
  owner: "tester",
  labels: {},
  expose: [],
  ssh: { host: "127.0.0.1", port: 2222, user: "root" },
  tailscale: false,
  createdAt: new Date(0).toISOString(),
  state: "active",
};

/** ssh that runs the command string it gets with `sh -c`, as sshd does. */
const shellSsh = fakeProcess({
  ssh: async (call) => {
    const rest = call.args.slice(call.args.indexOf("--") + 2);
    const out = await new Deno.Command("sh", {
      args: ["-c", rest.join(" ")],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  },
});

Deno.test("runOnLease passes each argv word intact and returns the remote status", async () => {
  const home = await Deno.makeTempDir();
  try {
    const words = ["a b", "it's", "$HOME", "x;id", "", "l1\nl2", "ö ✓"];
    const r = await runOnLease(lease, ["printf", "[%s]", ...words], { home, process: shellSsh });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, words.map((w) => `[${w}]`).join(""));
    const seven = await runOnLease(lease, ["sh", "-c", "exit 7"], { home, process: shellSsh });
    assert.equal(seven.code, 7);
    const shell = await runOnLease(lease, { shell: "echo a; exit 4" }, { home, process: shellSsh });
    assert.deepEqual([shell.code, shell.stdout], [4, "a\n"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
