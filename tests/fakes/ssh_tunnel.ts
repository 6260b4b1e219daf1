/**
 * A stand-in for a crew member's `ssh -N -L …` (the tunnel that is also its
 * ControlMaster), for unit tests of the SSH mesh that reach no box. Run it
 * as `CRABBOX_SSH` through a wrapper script. With `-N` it binds every
 * `-L 127.0.0.1:<local>:…` as a TCP listener that answers `hi` and hangs
 * up, then the `ControlPath=` as a unix socket (real ssh creates its control
 * socket after its listeners), and runs until SIGTERM/SIGKILL. A control
 * command (`-O …`) answers like ssh with no master there (exit 255). Anything
 * else — a session — exits 2: tests answer sessions with their own fake
 * runner. It does not model authentication, channels or the mux protocol.
 *
 * @module
 */

const args = Deno.args;
if (args.includes("-O")) {
  console.error("Control socket connect: No such file or directory");
  Deno.exit(255);
}
if (!args.includes("-N")) Deno.exit(2);
const controlPath = args.find((a) => a.startsWith("ControlPath="))?.slice("ControlPath=".length);
if (!controlPath) Deno.exit(2);
const ports = args.flatMap((a, i) => (args[i - 1] === "-L" ? [Number(a.split(":")[1])] : []));
const hi = new TextEncoder().encode("hi\n");
for (const port of ports) {
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  (async () => {
    for await (const c of l) {
      await c.write(hi).catch(() => {});
      c.close();
    }
  })();
}
const control = Deno.listen({ transport: "unix", path: controlPath });
(async () => {
  for await (const c of control) c.close();
})();
Deno.addSignalListener("SIGTERM", () => {
  try {
    Deno.removeSync(controlPath);
  } catch { /* gone */ }
  Deno.exit(0);
});
