/**
 * "Did you mean …?" for a mistyped command or option (pure).
 *
 * @module
 */

/** Edit distance (insert, delete, replace, swap of neighbours) between two words. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The candidate closest to `word`, when it is close enough to be a typo (at
 * most a third of the word's letters off, at least one); `undefined` else.
 * Ties go to the first candidate.
 *
 * @example
 * ```ts
 * import { suggest } from "./suggest.ts";
 * suggest("lsit", ["list", "status"]); // "list"
 * suggest("--jsno", ["--json", "--crew"]); // "--json"
 * suggest("zzz", ["list"]); // undefined
 * ```
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const bare = (w: string) => w.replace(/^-+/, "");
  const limit = Math.max(1, Math.floor(bare(word).length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(bare(word), bare(c));
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
