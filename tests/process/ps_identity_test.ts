import assert from "node:assert/strict";
import { parsePsLine, processIdentity, sameProcess } from "../../lib/process/identity.ts";

// Recorded on macOS 14: `ps -o lstart=,command= -p 4242` for a detached mesh ssh.
const RECORDED =
  "Sun Nov  9 15:52:41 2026     /usr/bin/ssh -F none -p 22 -N -o ExitOnForwardFailure=yes -L 127.0.0.1:51820:127.0.0.1:8080 -- root@203.0.113.7\n";

Deno.test("parsePsLine reads ps's fixed-width lstart and the command line", () => {
  assert.deepEqual(parsePsLine(RECORDED), {
    startTime: "Sun Nov  9 15:52:41 2026",
    argv: [
      "/usr/bin/ssh",
      "-F",
      "none",
      "-p",
      "22",
      "-N",
      "-o",
      "ExitOnForwardFailure=yes",
      "-L",
      "127.0.0.1:51820:127.0.0.1:8080",
      "--",
      "root@203.0.113.7",
    ],
  });
  assert.equal(parsePsLine(""), undefined);
  assert.equal(parsePsLine("  PID TTY  TIME CMD\n"), undefined);
});

Deno.test("without /proc, processIdentity asks ps (pid + lstart + command) and identities compare", async () => {
  const noProc = () => Promise.resolve(undefined);
  const asked: number[] = [];
  const ps = (pid: number) => {
    asked.push(pid);
    return Promise.resolve(pid === 4242 ? RECORDED : undefined);
  };
  const id = await processIdentity(4242, noProc, ps);
  assert.deepEqual(asked, [4242]);
  assert.equal(id?.pid, 4242);
  assert.equal(id?.startTime, "Sun Nov  9 15:52:41 2026");
  assert.ok(id && sameProcess(id, { ...id }));
  assert.ok(id && !sameProcess(id, { ...id, startTime: "Sun Nov  9 15:52:42 2026" }));
  assert.equal(await processIdentity(4243, noProc, ps), undefined, "a gone pid has no identity");
});

Deno.test("with /proc, ps is never asked", async () => {
  const ps = () => Promise.reject(new Error("ps must not run where /proc exists"));
  const me = await processIdentity(Deno.pid, undefined, ps);
  assert.equal(me?.pid, Deno.pid);
});
