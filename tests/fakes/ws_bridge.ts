/**
 * For the fakes of providers whose SSH goes through a WebSocket proxy:
 * relay a server-side WebSocket (binary frames) to a real TCP address (a
 * `local` box's sshd), both ways, until either side closes. The TCP side has
 * `TCP_NODELAY`: a relay passes each message on as it arrives and does not
 * hold small writes for an ACK.
 *
 * @module
 */

/** A TCP address to bridge to. */
export interface TcpAddress {
  /** Host (127.0.0.0/8 in tests). */
  hostname: string;
  /** Port. */
  port: number;
}

/**
 * Connect to `addr` and relay `socket` ⇄ TCP. Binary messages only; a text
 * message after the bridge is up closes it with 1003 (unsupported data).
 * Messages that arrive while the TCP connect is under way are queued and
 * written first, in order (a proxy loses no byte the client sent early).
 * `onConnect(true)` runs once the TCP side is up, before any byte is relayed;
 * `onConnect(false)` when the connect failed (default: close with 1011).
 * Resolves once both directions are done.
 */
export async function bridgeToTcp(
  socket: WebSocket,
  addr: TcpAddress,
  onConnect: (ok: boolean) => void = (ok) => {
    if (!ok) socket.close(1011, "upstream connect failed");
  },
): Promise<void> {
  socket.binaryType = "arraybuffer";
  const early: Uint8Array[] = [];
  const tcp: { writer?: WritableStreamDefaultWriter<Uint8Array> } = {}; // set once connected
  let conn: Deno.TcpConn | undefined;
  let closed = false;
  const closeBoth = () => {
    if (closed) return;
    closed = true;
    tcp.writer?.close().catch(() => {});
    if (socket.readyState === WebSocket.OPEN) socket.close(1000);
  };
  socket.onmessage = (e) => {
    if (typeof e.data === "string") {
      socket.close(1003, "text frame in a byte stream");
      return;
    }
    const bytes = new Uint8Array(e.data as ArrayBuffer);
    if (tcp.writer) tcp.writer.write(bytes).catch(closeBoth);
    else early.push(bytes);
  };
  socket.onclose = () => {
    closed = true;
    try {
      conn?.close();
    } catch { /* already closed */ }
  };
  try {
    conn = await Deno.connect({ hostname: addr.hostname, port: addr.port });
  } catch {
    onConnect(false);
    return;
  }
  if (closed) {
    conn.close();
    return;
  }
  // A proxy relays each message as soon as it arrives: with Nagle's algorithm
  // on, a small write would wait for the box's delayed ACK (~40 ms).
  conn.setNoDelay(true);
  const writer = conn.writable.getWriter();
  for (const bytes of early.splice(0)) writer.write(bytes).catch(closeBoth);
  tcp.writer = writer;
  onConnect(true);
  try {
    for await (const chunk of conn.readable) {
      if (socket.readyState !== WebSocket.OPEN) break;
      socket.send(chunk);
    }
  } catch { /* reset */ }
  closeBoth();
}
