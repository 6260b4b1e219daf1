/**
 * Running `crabbox` in process for contract tests: `main()` with captured
 * stdout/stderr, a private home, a fixed environment, injected providers and
 * a fake process runner. No root, no real process.
 *
 * @module
 */

import { main } from "../../cli.ts";
import type { Provider } from "../../providers/types.ts";
import {
  type FakeProcess,
  fakeProcess,
  type FakeProgram,
  fakeSshKeygen,
} from "../fakes/process.ts";

/** Output of one in-process CLI run. */
export interface CliRun {
  /** Exit status `main` returned. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** A private home, environment, providers and process runner for CLI runs. */
export interface CliWorld {
  /** The crabbox home (a fresh temp dir). */
  home: string;
  /** Environment the library sees. */
  env: Record<string, string>;
  /** Injected providers. */
  providers: Record<string, Provider>;
  /** The fake process runner (ssh-keygen and `ssh -V` answer; anything else is NotFound). */
  process: FakeProcess;
  /** Run `crabbox <args>` in process. */
  run(args: string[]): Promise<CliRun>;
  /** Remove the home. */
  close(): Promise<void>;
}

/**
 * Make a {@link CliWorld}; `ssh` answers every ssh call but `ssh -V` (default:
 * exit 255, as when no box is reachable).
 */
export async function cliWorld(
  providers: Record<string, Provider> = {},
  ssh: FakeProgram = () => ({ code: 255, stderr: "fake ssh: no boxes here\n" }),
): Promise<CliWorld> {
  const home = await Deno.makeTempDir({ prefix: "cbx-cli-" });
  const env: Record<string, string> = {
    CRABBOX_HOME: home,
    CRABBOX_OWNER: "tester@example.com",
    CRABBOX_CREW_ACL: "off",
  };
  const process = fakeProcess({
    "ssh-keygen": fakeSshKeygen,
    ssh: (call) => call.args[0] === "-V" ? { stderr: "OpenSSH_9.6p1 fake\n" } : ssh(call),
  });
  return {
    home,
    env,
    providers,
    process,
    async run(args) {
      let stdout = "";
      let stderr = "";
      const code = await main(args, {
        stdout: (t) => stdout += t,
        stderr: (t) => stderr += t,
        home,
        env: (k) => env[k],
        providers,
        process,
        fetch: () => Promise.reject(new Error("no network in CLI tests")),
      });
      return { code, stdout, stderr };
    },
    close: () => Deno.remove(home, { recursive: true }).catch(() => {}),
  };
}

/** Entries under `dir` (empty when it does not exist). */
export async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** Every path under `dir` (relative, sorted), directories included. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) out.push(...(await tree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
  }
  return out.sort();
}
