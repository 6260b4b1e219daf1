/** The crabbox version (kept in step with deno.json). */
export const VERSION = "0.1.0";

/** The program's name and one-line description (the root of every command tree). */
export const PROGRAM = {
  name: "crabbox",
  description: "lease machines into crews and make them reach each other",
} as const;
