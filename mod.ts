/**
 * crabbox — lease machines into crews and make them reach each other.
 *
 * @module
 */

export * from "./lib/errors.ts";
