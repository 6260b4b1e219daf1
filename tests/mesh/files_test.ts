import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import {
  daemonForwards,
  type DaemonState,
  envPeerName,
  envRecord,
  envVarName,
  exportLines,
  type MeshForward,
  parseDaemonState,
  parseHostsFile,
  renderDaemonState,
  renderEnvFile,
  renderHostsFile,
} from "../../lib/mesh/files.ts";
import { meshPaths } from "../../lib/core/home.ts";

const FW: MeshForward[] = [
  { peer: "api", leaseId: "cbx-000000000001", remotePort: 8080, localPort: 51820 },
  { peer: "web", leaseId: "cbx-000000000002", remotePort: 8080, localPort: 51821 },
  { peer: "web", leaseId: "cbx-000000000002", remotePort: 9090, localPort: 51822 },
];

Deno.test("envPeerName vectors, including names that start with a digit", () => {
  const cases: [string, string][] = [
    ["web", "WEB"],
    ["client-foo", "CLIENT_FOO"],
    ["a.b/c", "A_B_C"],
    ["  ", "_"],
    ["---", "_"],
    ["123-name", "_123_NAME"],
    ["9", "_9"],
    ["crew/peer-1", "CREW_PEER_1"],
  ];
  for (const [name, want] of cases) assert.equal(envPeerName(name), want, name);
  assert.equal(envVarName("api", 8080), "CRABBOX_CREW_API_8080");
  assert.equal(envVarName("1st", 80), "CRABBOX_CREW__1ST_80");
  for (const [name] of cases) assert.match(envPeerName(name), /^[A-Z_][A-Z0-9_]*$/);
});

Deno.test("hosts file: exact text, never 127.0.0.1:<port> as an address", () => {
  const text = renderHostsFile("pr-42", FW);
  assert.equal(
    text,
    `# crabbox crew "pr-42" SSH-mesh operator-side aliases
# A hosts file cannot hold a port: use CRABBOX_CREW_<PEER>_<PORT> (see env) for host:port.
127.0.0.1  api.cbx api-8080.cbx  # local=127.0.0.1:51820 remote=:8080
127.0.0.1  web.cbx web-8080.cbx  # local=127.0.0.1:51821 remote=:8080
127.0.0.1  web.cbx web-9090.cbx  # local=127.0.0.1:51822 remote=:9090
`,
  );
  for (const line of text.split("\n")) assert.ok(!line.startsWith("127.0.0.1:"), line);
  assert.deepEqual(
    parseHostsFile(text),
    FW.map(({ peer, remotePort, localPort }) => ({ peer, remotePort, localPort })),
  );
  assert.deepEqual(parseHostsFile("# only a comment\n127.0.0.1 junk\n"), []);
  // The alias port and remote= must agree, or the line is not ours: ignored.
  assert.deepEqual(
    parseHostsFile("127.0.0.1  api.cbx api-8080.cbx  # local=127.0.0.1:51820 remote=:9090\n"),
    [],
  );
});

Deno.test("env file: exact text, export lines and record", () => {
  assert.equal(
    renderEnvFile("pr-42", FW),
    `# crabbox crew "pr-42" SSH-mesh \u2014 eval "$(crabbox crew connect pr-42 --export)"
export CRABBOX_CREW_API_8080=127.0.0.1:51820
export CRABBOX_CREW_WEB_8080=127.0.0.1:51821
export CRABBOX_CREW_WEB_9090=127.0.0.1:51822
`,
  );
  assert.deepEqual(exportLines(FW.slice(0, 1)), ["export CRABBOX_CREW_API_8080=127.0.0.1:51820"]);
  assert.deepEqual(envRecord(FW), {
    CRABBOX_CREW_API_8080: "127.0.0.1:51820",
    CRABBOX_CREW_WEB_8080: "127.0.0.1:51821",
    CRABBOX_CREW_WEB_9090: "127.0.0.1:51822",
  });
  assert.deepEqual(renderEnvFile("x", []).split("\n").length, 2);
});

Deno.test("env file evaluates in a real shell", async () => {
  const out = await new Deno.Command("sh", {
    args: ["-c", `${renderEnvFile("pr-42", [{ ...FW[0], peer: "1st" }])}\nenv`],
    stdout: "piped",
  }).output();
  assert.match(
    new TextDecoder().decode(out.stdout),
    /^CRABBOX_CREW__1ST_8080=127\.0\.0\.1:51820$/m,
  );
});

Deno.test("meshPaths", () => {
  assert.deepEqual(meshPaths("/h", "pr-42"), {
    dir: "/h/crew/pr-42",
    hosts: "/h/crew/pr-42/hosts",
    env: "/h/crew/pr-42/env",
    daemon: "/h/crew/pr-42/daemon.json",
    knownHosts: "/h/crew/pr-42/known_hosts",
    logDir: "/h/crew/pr-42/log",
    peers: "/h/crew/pr-42/peers.json",
  });
});

Deno.test("daemon.json: round trip, forwards, and validation", () => {
  const state: DaemonState = {
    version: 1,
    crew: "pr-42",
    startedAt: "2026-01-01T00:00:00.000Z",
    processes: [{
      leaseId: "cbx-000000000002",
      peer: "web",
      pid: 4242,
      startTime: "123456",
      argv: ["ssh", "-N", "--", "root@h"],
      controlPath: "/h/crew/pr-42/cm/cbx-000000000002",
      logFile: "/h/crew/pr-42/log/cbx-000000000002.log",
      forwards: [{ localPort: 51821, remotePort: 8080 }, { localPort: 51822, remotePort: 9090 }],
    }],
  };
  const text = renderDaemonState(state);
  assert.ok(text.endsWith("}\n"));
  assert.deepEqual(parseDaemonState(text, "d.json"), state);
  assert.deepEqual(daemonForwards(state), FW.slice(1));
  const bad = (t: string, re: RegExp) =>
    assert.throws(
      () => parseDaemonState(t, "/x/daemon.json"),
      (e) => e instanceof CrabboxError && e.kind === "state" && re.test(e.message),
    );
  bad("{", /daemon state \/x\/daemon\.json is invalid: not JSON/);
  bad('{"version":2}', /unknown version/);
  bad('{"version":1,"crew":"a","startedAt":"x"}', /missing/);
  const broken = structuredClone(state);
  (broken.processes[0] as { pid: number }).pid = -1;
  bad(JSON.stringify(broken), /process entry 0/);
  for (const port of [65536, 0, 1.5]) {
    for (const key of ["localPort", "remotePort"] as const) {
      const badPort = structuredClone(state);
      badPort.processes[0].forwards[1][key] = port;
      bad(JSON.stringify(badPort), /process entry 0/);
    }
  }
  const maxPort = structuredClone(state);
  maxPort.processes[0].forwards[1] = { localPort: 65535, remotePort: 65535 };
  assert.deepEqual(parseDaemonState(JSON.stringify(maxPort), "d.json"), maxPort);
  const noArgv = structuredClone(state);
  noArgv.processes[0].argv = [];
  bad(JSON.stringify(noArgv), /process entry 0/);
});

Deno.test("daemon.json: ssh recorded as starting (argv before spawn) round-trip; a malformed entry is refused", () => {
  const state = {
    version: 1 as const,
    crew: "a",
    startedAt: "2026-01-01T00:00:00.000Z",
    processes: [],
    starting: [{
      leaseId: "cbx-000000000001",
      peer: "api",
      argv: ["ssh", "-o", "ControlPath=/h/crew/a/cm/cbx-000000000001", "--", "root@h"],
      controlPath: "/h/crew/a/cm/cbx-000000000001",
    }],
  };
  assert.deepEqual(parseDaemonState(renderDaemonState(state), "d.json"), state);
  assert.throws(
    () => parseDaemonState(JSON.stringify({ ...state, starting: [{ leaseId: "x" }] }), "d.json"),
    /daemon state d\.json is invalid: starting entry 0 is malformed/,
  );
  assert.throws(
    () => parseDaemonState(JSON.stringify({ ...state, starting: "x" }), "d.json"),
    /starting is not a list/,
  );
});
