/**
 * Bounded parallelism: run async work over items, at most `limit` at a time.
 *
 * @module
 */

/**
 * Run `fn` over `items` with at most `limit` in flight; never rejects, the
 * results keep the input order.
 *
 * @example
 * ```ts
 * import { runBounded } from "./bounded.ts";
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
