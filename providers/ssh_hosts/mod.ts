/**
 * The `ssh` provider: static hosts listed in config.yaml.
 *
 * @module
 */

export * from "./provider.ts";
