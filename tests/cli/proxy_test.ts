import assert from "node:assert/strict";
import { cliArgv, cliEnv, crabbox } from "../e2e/_cli.ts";
import { startFakeSprites } from "../fakes/sprites.ts";
import { type FrameReader, rawWsServer, serverClose, serverFrame } from "../fakes/ws_raw.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SPRITE = "crabbox-a-0123456789ab";
const LEASE = "cbx-0123456789ab";

/**
 * How long a test waits for the proxy to exit before it kills it and fails:
 * a liveness bound far above the close handshake's 2 s, so a regression
 * fails instead of hanging CI (not a performance timing).
 */
const LIVENESS_MS = 20_000;

/** Start `crabbox proxy` for the sprite against the Sprites API at `url`. */
function startProxy(home: string, url: string, token: string): Deno.ChildProcess {
  const args = cliArgv(["proxy", "--provider", "sprites", "--box", SPRITE, LEASE]);
  assert.ok(!args.join(" ").includes(token));
  return new Deno.Command(Deno.execPath(), {
    args,
    env: cliEnv(home, { SPRITES_TOKEN: token, CRABBOX_SPRITES_API_URL: url }),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** The child's exit and stderr; kills it and fails when it still runs after {@link LIVENESS_MS}. */
async function exited(
  child: Deno.ChildProcess,
  after: string,
): Promise<{ code: number; signal: Deno.Signal | null; stderr: string }> {
  const stderr = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), LIVENESS_MS)));
  const status = await Promise.race([child.status, late]);
  clearTimeout(timer);
  if (!status) {
    child.kill("SIGKILL");
    await child.status;
    assert.fail(`crabbox proxy still ran ${LIVENESS_MS / 1000} s after ${after}: ${await stderr}`);
  }
  return { code: status.code, signal: status.signal, stderr: await stderr };
}

/** Everything left on a stream, as text (it must end). */
async function rest(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  for await (const chunk of stream) out += dec.decode(chunk);
  return out;
}

/**
 * The Sprites proxy endpoint (`GET /v1/sprites/{name}/proxy`, bearer token,
 * a `{host, port}` hello answered with `connected`) on the hand-written
 * WebSocket server, which then runs `then` — for the server behaviours
 * Deno's own WebSocket server cannot show (a close it never answers, a
 * socket it stops reading).
 */
function rawSpritesProxy(then: (conn: Deno.Conn, read: FrameReader) => Promise<void>) {
  const token = "raw-token-" + crypto.randomUUID();
  const connected = Promise.withResolvers<void>();
  const srv = rawWsServer(async (conn, read) => {
    const hello = await read();
    assert.equal(hello.opcode, 1, "the hello is a text frame");
    assert.deepEqual(JSON.parse(dec.decode(hello.payload)), { host: "localhost", port: 22 });
    await conn.write(
      serverFrame(
        0x81,
        enc.encode(JSON.stringify({ status: "connected", target: "localhost:22" })),
      ),
    );
    connected.resolve();
    await then(conn, read);
  }, {
    check: (head) => {
      if (!head.startsWith(`GET /v1/sprites/${SPRITE}/proxy HTTP/1.1\r\n`)) return "404 Not Found";
      if (!head.toLowerCase().includes(`\r\nauthorization: bearer ${token.toLowerCase()}`)) {
        return "401 Unauthorized";
      }
      return undefined;
    },
  });
  return {
    url: `http://127.0.0.1:${srv.port}`,
    token,
    connected: connected.promise,
    done: srv.done,
  };
}

/** A TCP listener on 127.0.0.1 whose every connection runs `serve`. */
function tcpTarget(serve: (c: Deno.Conn) => Promise<void>) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) serve(c).catch(() => {});
  })();
  return { addr: { hostname: "127.0.0.1", port: l.addr.port }, close: () => l.close() };
}

/** The Sprites fake with one sprite, its proxy bridged to `target`. */
async function spritesFake(target: { hostname: string; port: number }) {
  const fake = startFakeSprites({ bridge: () => target });
  const made = await fetch(`${fake.url}/v1/sprites`, {
    method: "POST",
    headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: SPRITE, labels: [] }),
  });
  assert.equal(made.status, 201);
  await made.body?.cancel();
  return fake;
}

/**
 * Run `body` with an echo box behind the Sprites fake; its `start` starts a
 * proxy to the box, carries one line through it both ways and returns the
 * proxy and the writer of its stdin.
 */
async function withEchoBox(
  body: (
    start: () => Promise<{ child: Deno.ChildProcess; w: WritableStreamDefaultWriter<Uint8Array> }>,
  ) => Promise<void>,
) {
  const echo = tcpTarget((c) => c.readable.pipeTo(c.writable));
  await using fake = await spritesFake(echo.addr);
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    await body(() => echoedProxy(home, fake));
  } finally {
    echo.close();
    await Deno.remove(home, { recursive: true });
  }
}

async function echoedProxy(home: string, fake: { url: string; token: string }) {
  const child = startProxy(home, fake.url, fake.token);
  const w = child.stdin.getWriter();
  await w.write(enc.encode("ping\n"));
  const reader = child.stdout.getReader();
  let got = "";
  while (!got.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    got += dec.decode(value);
  }
  reader.releaseLock();
  assert.equal(got, "ping\n");
  return { child, w };
}

Deno.test("crabbox proxy: bad lease id exits 2, unknown lease exits 3, a direct provider exits 2", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const bad = await crabbox(home, ["proxy", "not-a-lease"]);
    assert.equal(bad.code, 2, bad.stderr);
    const missing = await crabbox(home, ["proxy", "cbx-0123456789ab"]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal(missing.stderr.trim().split("\n").length, 1);
    const direct = await crabbox(home, [
      "proxy",
      "--provider",
      "local",
      "--box",
      "x",
      "cbx-0123456789ab",
    ]);
    assert.equal(direct.code, 2, direct.stderr);
    assert.match(direct.stderr, /has no proxy/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: joins stdin/stdout to the box through the provider's proxy; no token in argv", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of echo) c.readable.pipeTo(c.writable).catch(() => {});
  })();
  await using fake = startFakeSprites({
    bridge: () => ({ hostname: "127.0.0.1", port: (echo.addr as Deno.NetAddr).port }),
  });
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const made = await fetch(`${fake.url}/v1/sprites`, {
      method: "POST",
      headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "crabbox-a-0123456789ab", labels: [] }),
    });
    assert.equal(made.status, 201);
    await made.body?.cancel();
    const args = cliArgv([
      "proxy",
      "--provider",
      "sprites",
      "--box",
      "crabbox-a-0123456789ab",
      "cbx-0123456789ab",
    ]);
    assert.ok(!args.join(" ").includes(fake.token));
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env: cliEnv(home, { SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url }),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("round trip\n"));
    const reader = child.stdout.getReader();
    let got = "";
    while (!got.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    assert.equal(got, "round trip\n");
    assert.deepEqual(fake.proxyHellos, [{ host: "localhost", port: 22 }]);
    await w.close();
    reader.releaseLock();
    const out = rest(child.stdout); // ends when the proxy closes stdout (or is killed)
    const end = await exited(child, "its stdin closed");
    assert.equal(await out, "", "stdout ends after the close");
    assert.equal(end.code, 0, end.stderr);
  } finally {
    echo.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: stdin EOF ends it even when the server never answers the close (exit 0)", async () => {
  let ours: { opcode: number; payload: Uint8Array } | undefined;
  const release = Promise.withResolvers<void>();
  const srv = rawSpritesProxy(async (_conn, read) => {
    ours = await read();
    await release.promise; // never answers the close; the socket stays open
  });
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const child = startProxy(home, srv.url, srv.token);
    await srv.connected;
    await child.stdin.close();
    const out = rest(child.stdout); // ends when the proxy closes stdout (or is killed)
    const end = await exited(child, "its stdin closed (the server ignores the close)");
    assert.equal(await out, "");
    assert.equal(end.code, 0, end.stderr);
    assert.equal(end.stderr, "");
    assert.deepEqual(
      ours,
      { opcode: 8, payload: Uint8Array.of(0x03, 0xe8) },
      "it sent a 1000 close",
    );
  } finally {
    release.resolve();
    await srv.done;
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: the box closing ends it — stdout closes and it exits 0 while stdin stays open", async () => {
  const target = tcpTarget(async (c) => {
    await c.write(enc.encode("bye\n"));
    c.close();
  });
  await using fake = await spritesFake(target.addr);
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const child = startProxy(home, fake.url, fake.token);
    const out = rest(child.stdout); // ends when the proxy closes stdout (or is killed)
    const end = await exited(child, "the box closed (stdin still open)");
    assert.equal(await out, "bye\n", "stdout ends after the box's bytes");
    assert.equal(end.code, 0, end.stderr);
    await child.stdin.close().catch(() => {});
  } finally {
    target.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: the server closing while a frame is stuck unsent (it stopped reading) still ends it", async () => {
  const release = Promise.withResolvers<void>();
  const srv = rawSpritesProxy(async (conn, read) => {
    // read 1 MiB of the stream, then stop reading: the proxy's next writes
    // fill the socket buffers and stay stuck; then close
    for (let got = 0; got < 1 << 20;) got += (await read()).payload.length;
    await new Promise((r) => setTimeout(r, 500));
    await conn.write(serverClose(1000, "bye"));
    await release.promise;
  });
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const child = startProxy(home, srv.url, srv.token);
    const w = child.stdin.getWriter();
    w.write(new Uint8Array(64 << 20)).catch(() => {}); // more than any socket buffer holds
    const out = rest(child.stdout); // ends when the proxy closes stdout (or is killed)
    const end = await exited(child, "the server's close (a write stuck)");
    assert.equal(await out, "");
    assert.equal(end.code, 0, end.stderr);
    await w.close().catch(() => {});
  } finally {
    release.resolve();
    await srv.done;
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: a server close with an error code exits 4 with one line", async () => {
  const srv = rawSpritesProxy(async (conn, read) => {
    await conn.write(serverClose(1011, "upstream gone"));
    assert.equal((await read()).opcode, 8, "the proxy answers the close");
  });
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const child = startProxy(home, srv.url, srv.token);
    const out = rest(child.stdout); // ends when the proxy closes stdout (or is killed)
    const end = await exited(child, "the server's error close");
    assert.equal(await out, "");
    assert.equal(end.code, 4, end.stderr);
    assert.equal(
      end.stderr,
      `crabbox: Sprites proxy to ${SPRITE}: the server closed the tunnel with 1011 upstream gone\n`,
    );
    await child.stdin.close().catch(() => {});
  } finally {
    await srv.done;
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: bytes for a closed stdout end it quietly (exit 0, nothing on stderr)", async () => {
  await withEchoBox(async (start) => {
    const { child, w } = await start();
    await child.stdout.cancel(); // ssh went away: its end of the pipe is closed
    await w.write(enc.encode("two\n")); // the echo now meets the closed stdout
    const end = await exited(child, "its stdout closed");
    assert.equal(end.code, 0, end.stderr);
    assert.equal(end.stderr, "");
    await w.close().catch(() => {});
  });
});

Deno.test("crabbox proxy: SIGHUP (what ssh sends its ProxyCommand on exit) and SIGTERM end it", async () => {
  await withEchoBox(async (start) => {
    for (const signal of ["SIGHUP", "SIGTERM"] as const) {
      const { child, w } = await start();
      child.kill(signal);
      const end = await exited(child, signal);
      assert.equal(end.signal, signal, end.stderr);
      await child.stdout.cancel();
      await w.close().catch(() => {});
    }
  });
});
