/**
 * The Sprites exec framing (non-TTY mode): every WebSocket message is binary;
 * its first byte is the stream id — 0 stdin, 1 stdout, 2 stderr, 3 exit (one
 * byte, the exit code, follows), 4 stdin EOF — and the payload follows it.
 * Pure encode/decode plus a collector that folds frames into an exec result.
 *
 * @module
 */

/** Stream ids of the exec framing. */
export const StreamId = { stdin: 0, stdout: 1, stderr: 2, exit: 3, stdinEof: 4 } as const;

/** One of the {@link StreamId} values. */
export type StreamIdValue = typeof StreamId[keyof typeof StreamId];

/** A decoded frame. */
export interface Frame {
  /** Stream id. */
  stream: StreamIdValue;
  /** Bytes after the id. */
  payload: Uint8Array;
}

/**
 * Encode one frame.
 *
 * @example
 * ```ts
 * import { encodeFrame, StreamId } from "./frames.ts";
 * encodeFrame(StreamId.stdout, new TextEncoder().encode("hi")); // Uint8Array [1, 104, 105]
 * ```
 */
export function encodeFrame(
  stream: StreamIdValue,
  payload: Uint8Array = new Uint8Array(),
): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = stream;
  out.set(payload, 1);
  return out;
}

/** The exit frame for a code (0..255). */
export function exitFrame(code: number): Uint8Array {
  return encodeFrame(StreamId.exit, Uint8Array.of(code & 0xff));
}

/**
 * Decode one frame; `undefined` for an empty message or an unknown stream id.
 *
 * @example
 * ```ts
 * import { decodeFrame } from "./frames.ts";
 * decodeFrame(Uint8Array.of(3, 0)); // { stream: 3, payload: Uint8Array [0] }
 * ```
 */
export function decodeFrame(bytes: Uint8Array): Frame | undefined {
  if (bytes.length === 0 || bytes[0] > StreamId.stdinEof) return undefined;
  return { stream: bytes[0] as StreamIdValue, payload: bytes.subarray(1) };
}

/** What an exec produced. */
export interface ExecResult {
  /** Exit code (`undefined` until the exit frame arrived). */
  code?: number;
  /** stdout text. */
  stdout: string;
  /** stderr text. */
  stderr: string;
}

/** Longest output kept per stream (the tail is kept). */
const MAX_KEPT = 64 * 1024;

/**
 * Fold server frames into an {@link ExecResult}; returns true once the exit
 * frame arrived. An exit frame without a code byte counts as 0; frames a
 * server should not send (stdin, stdin EOF, unknown) are ignored.
 *
 * @example
 * ```ts
 * import { collectFrame, type ExecResult } from "./frames.ts";
 * const r: ExecResult = { stdout: "", stderr: "" };
 * collectFrame(r, Uint8Array.of(1, 104, 105)); // false
 * collectFrame(r, Uint8Array.of(3, 0)); // true; r → { code: 0, stdout: "hi", stderr: "" }
 * ```
 */
export function collectFrame(result: ExecResult, bytes: Uint8Array): boolean {
  const frame = decodeFrame(bytes);
  if (!frame) return false;
  const text = () => new TextDecoder().decode(frame.payload);
  if (frame.stream === StreamId.stdout) result.stdout = (result.stdout + text()).slice(-MAX_KEPT);
  else if (frame.stream === StreamId.stderr) {
    result.stderr = (result.stderr + text()).slice(-MAX_KEPT);
  } else if (frame.stream === StreamId.exit) {
    result.code = frame.payload.length > 0 ? frame.payload[0] : 0;
    return true;
  }
  return false;
}
