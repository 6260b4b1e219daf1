/**
 * Time and concurrency: the one sleep (abortable) and the one bounded pool.
 *
 * @module
 */

/** Options of {@link sleep}. */
export interface SleepOptions {
  /** Resolve (instead of rejecting) as soon as the signal aborts: "wait, but stop early". */
  resolveOnAbort?: boolean;
}

/**
 * Wait `ms` milliseconds (negative waits are 0). When `signal` aborts it
 * rejects with the signal's reason, or resolves at once with
 * `resolveOnAbort`.
 *
 * @example
 * ```ts
 * import { sleep } from "./async.ts";
 * await sleep(10);
 * const stop = new AbortController();
 * stop.abort();
 * await sleep(60_000, stop.signal, { resolveOnAbort: true }); // returns at once
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal, options: SleepOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const abort = () => options.resolveOnAbort ? resolve() : reject(signal?.reason);
    if (signal?.aborted) return abort();
    const onAbort = () => {
      clearTimeout(timer);
      abort();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Run `fn` over `items` with at most `limit` in flight; never rejects, the
 * results keep the input order.
 *
 * @example
 * ```ts
 * import { runBounded } from "./async.ts";
 * const r = await runBounded([1, 2, 3], 2, (n) => Promise.resolve(n * 2));
 * // [{ status: "fulfilled", value: 2 }, …]
 * ```
 */
export async function runBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i], i) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
