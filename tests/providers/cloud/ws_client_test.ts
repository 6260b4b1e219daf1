import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import {
  acceptKey,
  checkHandshake,
  clientFrame,
  dialWebSocket,
  handshakeRequest,
  openWebSocket,
  type TcpConnector,
  type WsData,
} from "../../../providers/cloud/ws_client.ts";
import { WsConnection } from "../../../providers/cloud/ws_tunnel.ts";
import { rawWsServer, serverClose, serverFrame } from "../../fakes/ws_raw.ts";

const enc = new TextEncoder();

/** A connector that records what crabbox does with the socket it opened. */
function spyConnector() {
  const log: string[] = [];
  const connect: TcpConnector = async (options) => {
    const conn = await Deno.connect(options as Deno.ConnectOptions);
    const setNoDelay = conn.setNoDelay.bind(conn);
    const write = conn.write.bind(conn);
    conn.setNoDelay = (on?: boolean) => (log.push(`nodelay ${on}`), setNoDelay(on));
    conn.write = (b: Uint8Array) => (log.push(`write ${b.length}`), write(b));
    return conn;
  };
  return { log, connect };
}

/** Deno's own WebSocket server: records what it got, echoes every message. */
function echoServer(onHeaders: (h: Headers) => void = () => {}) {
  const got: WsData[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (req.headers.get("authorization") !== "Bearer t0k") {
      return new Response("no", { status: 401, statusText: "Unauthorized" });
    }
    onHeaders(req.headers);
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      const m = typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer);
      got.push(m);
      socket.send(m);
    };
    return response;
  });
  const url = new URL(`ws://127.0.0.1:${server.addr.port}/v1/x?a=1`);
  return { got, url, close: () => server.shutdown() };
}

/** Messages and the close of one client, awaitable. */
function recorder() {
  const messages: WsData[] = [];
  let closed: { code: number; reason: string } | undefined;
  let wake = () => {};
  const changed = () => new Promise<void>((r) => (wake = r));
  return {
    messages,
    get closed() {
      return closed;
    },
    events: {
      onMessage: (m: WsData) => (messages.push(m), wake()),
      onClose: (code: number, reason: string) => {
        assert.equal(closed, undefined, "onClose is called once");
        closed = { code, reason };
        wake();
      },
    },
    /** Wait until `ok()`; fails after `ms` (a liveness bound, not a timing). */
    async until(ok: () => boolean, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!ok()) {
        const t = setTimeout(() => wake(), 50);
        await changed();
        clearTimeout(t);
        assert.ok(Date.now() < deadline, "timed out waiting");
      }
    },
  };
}

Deno.test("ws_client: the socket crabbox opens has TCP_NODELAY before the first byte, and each send is one write", async () => {
  const srv = echoServer();
  const spy = spyConnector();
  try {
    const conn = await WsConnection.open("test", srv.url, { authorization: "Bearer t0k" }, {
      connect: spy.connect,
    });
    assert.equal(spy.log[0], "nodelay true", `first: ${spy.log.join(", ")}`);
    assert.equal(spy.log.filter((l) => l.startsWith("write")).length, 1, "the handshake");
    const tunnel = conn.tunnel();
    const w = tunnel.writable.getWriter();
    const chunks = [enc.encode("SSH-2.0-x\r\n"), new Uint8Array(36), new Uint8Array(70_000)];
    for (const c of chunks) await w.write(c);
    const writes = spy.log.filter((l) => l.startsWith("write")).slice(1);
    // one frame per chunk, each in one write: header (2/4/10) + mask (4) + payload
    assert.deepEqual(writes, ["write 17", "write 42", "write 70014"]);
    const r = tunnel.readable.getReader();
    let back = 0;
    while (back < 11 + 36 + 70_000) back += (await r.read()).value!.length;
    assert.deepEqual(srv.got.map((m) => (m as Uint8Array).length), [11, 36, 70_000]);
    await w.close();
    assert.equal((await r.read()).done, true, "the close handshake ends the readable side");
    assert.equal(conn.closeInfo?.code, 1000);
  } finally {
    await srv.close();
  }
});

Deno.test("ws_client: text and binary of every length class round-trip through Deno's WebSocket server", async () => {
  let extra: string | null = null;
  const srv = echoServer((h) => (extra = h.get("x-extra")));
  const rec = recorder();
  try {
    const ws = await openWebSocket(
      srv.url,
      { authorization: "Bearer t0k", "x-extra": "1" },
      rec.events,
    );
    assert.equal(extra, "1");
    const sent: WsData[] = ["hello", "", "é✓"];
    for (const n of [0, 1, 125, 126, 127, 65_535, 65_536, 300_001]) {
      sent.push(Uint8Array.from({ length: n }, (_, i) => (i * 7919 + n) & 0xff));
    }
    for (const m of sent) await ws.send(m);
    await rec.until(() => rec.messages.length === sent.length);
    assert.deepEqual(srv.got, sent, "the server unmasked exactly what was sent");
    assert.deepEqual(rec.messages, sent, "and the echo came back whole");
    ws.close();
    await rec.until(() => rec.closed !== undefined);
    assert.equal(rec.closed?.code, 1000);
    await assert.rejects(ws.send("late"), /closed/);
  } finally {
    await srv.close();
  }
});

Deno.test("ws_client: a refused handshake, a refused port and a bad header are clear errors", async () => {
  const srv = echoServer();
  try {
    await assert.rejects(
      WsConnection.open("Sprites proxy to a", srv.url, { authorization: "Bearer nope" }),
      (e: unknown) => {
        assert.ok(e instanceof CrabboxError);
        assert.equal(e.code, "ws_failed");
        assert.equal(e.message, "Sprites proxy to a: the server answered 401 Unauthorized");
        return true;
      },
    );
  } finally {
    await srv.close();
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  await assert.rejects(
    WsConnection.open("x", new URL(`ws://127.0.0.1:${port}/`), {}),
    /x: connection refused/,
  );
  await assert.rejects(
    openWebSocket(new URL("ws://127.0.0.1:1/"), { a: "b\r\nx-injected: 1" }, recorder().events),
    /header "a" cannot be sent/,
  );
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    openWebSocket(new URL("ws://127.0.0.1:1/"), {}, recorder().events, { signal: ac.signal }),
    /aborted/,
  );
});

Deno.test("ws_client: handshake request and answer checks", async () => {
  // RFC 6455 §1.3's example key
  assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const req = handshakeRequest(new URL("wss://h.example:8443/p?q=1#frag"), "k", { "x-a": "v" });
  assert.equal(
    req,
    "GET /p?q=1 HTTP/1.1\r\nHost: h.example:8443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\nx-a: v\r\n\r\n",
  );
  assert.throws(
    () => handshakeRequest(new URL("ws://h/"), "k", { "bad name": "v" }),
    /cannot be sent/,
  );
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  assert.equal(await checkHandshake(ok, key), undefined);
  assert.equal(await checkHandshake(ok, "other"), "wrong Sec-WebSocket-Accept");
  assert.equal(
    await checkHandshake(ok.replace("Upgrade: websocket", "Upgrade: h2c"), key),
    "no Upgrade: websocket",
  );
  assert.equal(
    await checkHandshake(ok + "\r\nSec-WebSocket-Extensions: permessage-deflate", key),
    "an extension was not asked for",
  );
  assert.equal(
    await checkHandshake("HTTP/1.1 502 Bad Gateway\r\nx: y", key),
    "the server answered 502 Bad Gateway",
  );
  assert.match((await checkHandshake("SSH-2.0-OpenSSH", key))!, /not an HTTP\/1\.1 answer/);
});

Deno.test("ws_client: clientFrame masks like the byte-by-byte definition, at every length and alignment", () => {
  const mask = Uint8Array.of(0x12, 0x34, 0x56, 0x78);
  for (const n of [0, 1, 2, 3, 4, 5, 7, 8, 9, 125, 126, 127, 130, 65_535, 65_536, 65_541]) {
    const payload = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);
    const f = clientFrame(2, payload, mask);
    assert.equal(f[0], 0x82);
    assert.equal(f[1] & 0x80, 0x80, "client frames are masked");
    const hl = n < 126 ? 6 : n < 65536 ? 8 : 14;
    assert.equal(f.length, hl + n);
    const len = n < 126
      ? f[1] & 0x7f
      : n < 65536
      ? (f[2] << 8) | f[3]
      : Number(new DataView(f.buffer).getBigUint64(2));
    assert.equal(len, n);
    assert.deepEqual(f.subarray(hl - 4, hl), mask);
    for (let i = 0; i < n; i++) {
      if ((f[hl + i] ^ mask[i % 4]) !== payload[i]) assert.fail(`byte ${i} of ${n} masked wrong`);
    }
  }
});

// ---------------------------------------------------------------------------
// a hand-written server (tests/fakes/ws_raw.ts), for the frames Deno's server does not send on demand

Deno.test("ws_client: ping → pong, fragmented messages joined, the server's close echoed", async () => {
  const rec = recorder();
  const srv = rawWsServer(async (conn, read) => {
    // a ping, then a text message in two fragments with a ping between them, in one write
    await conn.write(Uint8Array.of(
      ...serverFrame(0x89, enc.encode("p1")),
      ...serverFrame(0x01, enc.encode("hel")),
      ...serverFrame(0x89, enc.encode("p2")),
      ...serverFrame(0x80, enc.encode("lo")),
      ...serverFrame(0x82, Uint8Array.of(1, 2, 3)),
    ));
    assert.deepEqual(await read(), { opcode: 10, payload: enc.encode("p1") });
    assert.deepEqual(await read(), { opcode: 10, payload: enc.encode("p2") });
    await conn.write(serverFrame(0x88, Uint8Array.of(0x03, 0xe8, ...enc.encode("bye"))));
    assert.deepEqual(await read(), { opcode: 8, payload: Uint8Array.of(0x03, 0xe8) });
  });
  await openWebSocket(srv.url, {}, rec.events);
  await srv.done;
  await rec.until(() => rec.closed !== undefined);
  assert.deepEqual(rec.messages, ["hello", Uint8Array.of(1, 2, 3)]);
  assert.deepEqual(rec.closed, { code: 1000, reason: "bye" });
});

Deno.test("ws_client: a frame a server must not send closes with a protocol error (1002/1007)", async () => {
  for (
    const [bad, code] of [
      [Uint8Array.of(0x82, 0x81, 1, 2, 3, 4, 9), 1002], // masked
      [serverFrame(0x83, new Uint8Array()), 1002], // unknown opcode
      [serverFrame(0x80, enc.encode("x")), 1002], // continuation of nothing
      [serverFrame(0x81, Uint8Array.of(0xff)), 1007], // text that is not UTF-8
    ] as const
  ) {
    const rec = recorder();
    const srv = rawWsServer(async (conn, read) => {
      await conn.write(bad);
      const close = await read();
      assert.equal(close.opcode, 8);
      assert.equal((close.payload[0] << 8) | close.payload[1], code);
    });
    await openWebSocket(srv.url, {}, rec.events);
    await srv.done;
    await rec.until(() => rec.closed !== undefined);
    assert.equal(rec.closed?.code, code);
    assert.deepEqual(rec.messages, []);
  }
});

Deno.test("ws_client: a socket that ends without a close frame reports 1006", async () => {
  const rec = recorder();
  const srv = rawWsServer(async () => {});
  await openWebSocket(srv.url, {}, rec.events);
  await srv.done;
  await rec.until(() => rec.closed !== undefined);
  assert.equal(rec.closed?.code, 1006);
});

// A liveness bound for the close tests: far above CLOSE_WAIT_MS (2 s), so that a
// regression fails here instead of hanging; not a performance timing.
const LIVENESS_MS = 20_000;

Deno.test("ws_client: a close the server never answers still ends the socket (1006)", async () => {
  const rec = recorder();
  const release = Promise.withResolvers<void>();
  let ours: { opcode: number; payload: Uint8Array } | undefined;
  const srv = rawWsServer(async (_conn, read) => {
    ours = await read();
    await release.promise; // no answer, and the socket stays open
  });
  const ws = await openWebSocket(srv.url, {}, rec.events);
  ws.close();
  await rec.until(() => rec.closed !== undefined, LIVENESS_MS);
  assert.equal(rec.closed?.code, 1006);
  assert.deepEqual(
    ours,
    { opcode: 8, payload: Uint8Array.of(0x03, 0xe8) },
    "a 1000 close was sent",
  );
  release.resolve();
  await srv.done;
});

Deno.test("ws_client: the server's close while a frame is stuck unsent (the server stopped reading) still ends the socket", async () => {
  const rec = recorder();
  const closeNow = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const srv = rawWsServer(async (conn) => {
    await closeNow.promise;
    await conn.write(serverClose(1000, "bye"));
    await release.promise; // never reads: the client's 64 MiB frame cannot go out
  });
  const ws = await openWebSocket(srv.url, {}, rec.events);
  const stuck = ws.send(new Uint8Array(64 << 20));
  stuck.catch(() => {});
  closeNow.resolve();
  await rec.until(() => rec.closed !== undefined, LIVENESS_MS);
  assert.deepEqual(rec.closed, { code: 1000, reason: "bye" }, "the server's close is reported");
  await assert.rejects(stuck, "the frame that never went out fails with the socket");
  release.resolve();
  await srv.done;
});

Deno.test("ws_tunnel: the readable side ends on a normal close or a drop, fails on an error close", async () => {
  for (
    const [end, expect] of [
      [serverClose(1000), "done"],
      [undefined, "done"], // the TCP connection ends without a close frame (1006)
      [
        serverClose(1011, "upstream gone"),
        /t: the server closed the tunnel with 1011 upstream gone/,
      ],
    ] as const
  ) {
    const srv = rawWsServer(async (conn, read) => {
      await conn.write(serverFrame(0x82, Uint8Array.of(7)));
      if (end) {
        await conn.write(end);
        assert.equal((await read()).opcode, 8, "the client answers the close");
      }
    });
    const conn = await WsConnection.open("t", srv.url, {});
    const r = conn.tunnel().readable.getReader();
    assert.deepEqual((await r.read()).value, Uint8Array.of(7));
    if (expect === "done") assert.equal((await r.read()).done, true);
    else {
      await assert.rejects(r.read(), (e: unknown) => {
        assert.ok(e instanceof CrabboxError);
        assert.equal(e.exitStatus, 4);
        assert.match(e.message, expect);
        return true;
      });
    }
    await srv.done;
  }
});

Deno.test("ws_client: wss — TLS on the no-delay socket, checked against the CA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cbx-wss-" });
  try {
    const openssl = async (...args: string[]) => {
      const o = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" })
        .output();
      assert.ok(o.success, `openssl ${args[0]}: ${new TextDecoder().decode(o.stderr)}`);
    };
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    await openssl(
      "req",
      "-x509",
      ...ec,
      "-days",
      "1",
      "-subj",
      "/CN=crabbox test CA",
      "-keyout",
      `${dir}/ca.key`,
      "-out",
      `${dir}/ca.pem`,
    );
    await openssl(
      "req",
      ...ec,
      "-subj",
      "/CN=localhost",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/leaf.csr`,
    );
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      `${dir}/leaf.csr`,
      "-CA",
      `${dir}/ca.pem`,
      "-CAkey",
      `${dir}/ca.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${dir}/leaf.ext`,
      "-out",
      `${dir}/cert.pem`,
    );
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    const cert = await Deno.readTextFile(`${dir}/cert.pem`);
    const key = await Deno.readTextFile(`${dir}/key.pem`);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} },
      (req) => {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onmessage = (e) => socket.send(`tls:${e.data}`);
        return response;
      },
    );
    try {
      const url = new URL(`wss://localhost:${server.addr.port}/`);
      const spy = spyConnector();
      const rec = recorder();
      const ws = await openWebSocket(url, {}, rec.events, {
        connect: spy.connect,
        caCerts: [ca],
      });
      assert.equal(spy.log[0], "nodelay true");
      await ws.send("hi");
      await rec.until(() => rec.messages.length === 1);
      assert.deepEqual(rec.messages, ["tls:hi"]);
      ws.close();
      await rec.until(() => rec.closed !== undefined);
      // without the CA the certificate is refused
      await assert.rejects(openWebSocket(url, {}, recorder().events), /certificate|UnknownIssuer/i);
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ws_client: dialWebSocket refuses a scheme that is not ws/wss", async () => {
  await assert.rejects(dialWebSocket(new URL("http://127.0.0.1:1/")), /not a WebSocket URL scheme/);
});
