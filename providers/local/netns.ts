/**
 * A box's network namespace: create it, tell whether it exists, list its
 * processes.
 *
 * @module
 */

import { run } from "./procs.ts";
import { output } from "../../lib/process/run.ts";

/** Whether the network namespace `ns` exists. */
export function netnsExists(ns: string): boolean {
  try {
    Deno.statSync(`/run/netns/${ns}`);
    return true;
  } catch {
    return false;
  }
}

/** Pids of every process in the box's network namespace. */
export async function netnsPids(ns: string): Promise<number[]> {
  if (!netnsExists(ns)) return [];
  const out = await output("ip", {
    args: ["netns", "pids", ns],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  });
  return new TextDecoder().decode(out.stdout).split(/\s+/).filter((s) => /^\d+$/.test(s)).map(
    Number,
  );
}

/** Create the network namespace `ns` with its loopback up. */
export async function createNetns(ns: string): Promise<void> {
  await run("ip", ["netns", "add", ns], "creating network namespace");
  await run("ip", ["-n", ns, "link", "set", "lo", "up"], "bringing up loopback");
}
