/**
 * `CRABBOX_TIMING=1`: one stderr line saying where a foreground
 * `crabbox crew connect` spent its time until ready — the CLI's own steps,
 * then `connectCrew`'s phases (see `ConnectTiming`). `bench/mesh.ts` prints
 * it as the CLI's breakdown. Off by default; then nothing is recorded.
 *
 * @module
 */

/** Records steps of one command; every method is a no-op when off. */
export interface CliTiming {
  /** Whether `CRABBOX_TIMING=1` was set. */
  readonly on: boolean;
  /** Record `step` as the time since the previous step (the first: since the runtime started). */
  lap(step: string): void;
  /** Record `step` as `ms` measured elsewhere; a step seen again keeps its largest value. */
  add(step: string, ms: number): void;
  /** The line: `timing: boot 19.1 | cli 5.0 | … | ready at 262.3 ms`. */
  line(): string;
}

/**
 * A {@link CliTiming}, on when `env("CRABBOX_TIMING")` is `"1"`.
 *
 * @example
 * ```ts
 * import { cliTiming } from "./timing.ts";
 * const t = cliTiming(() => "1");
 * t.lap("boot");
 * t.add("sockets", 170);
 * t.line(); // "timing: boot 20.3 | sockets 170.0 | ready at 20.4 ms"
 * ```
 */
export function cliTiming(env: (key: string) => string | undefined): CliTiming {
  const on = env("CRABBOX_TIMING") === "1";
  const steps = new Map<string, number>();
  let last = 0; // performance.now() counts from the runtime's start
  return {
    on,
    lap(step) {
      if (!on) return;
      const now = performance.now();
      steps.set(step, now - last);
      last = now;
    },
    add(step, ms) {
      if (on) steps.set(step, Math.max(ms, steps.get(step) ?? 0));
    },
    line: () =>
      `timing: ${[...steps].map(([s, ms]) => `${s} ${ms.toFixed(1)}`).join(" | ")} | ready at ${
        performance.now().toFixed(1)
      } ms`,
  };
}
