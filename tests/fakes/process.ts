/**
 * A fake {@link ProcessRunner}: tests register programs by name and answer
 * them in process (the way dax lets a test register a command). Every call is
 * recorded; a program nobody registered fails like a missing binary
 * (`Deno.errors.NotFound`), so a test sees any process it did not expect.
 *
 * @module
 */

import type {
  ChildProcess,
  CommandOptions,
  CommandOutput,
  ProcessRunner,
} from "../../lib/process/mod.ts";

/** One recorded start of a program. */
export interface FakeCall {
  /** Program as given (`ssh`, `/usr/bin/ssh-keygen`, …). */
  program: string;
  /** Its arguments. */
  args: string[];
  /** What was written to its stdin (when piped). */
  stdin: string;
}

/** A fake program's answer. */
export interface FakeResult {
  /** Exit status (default 0). */
  code?: number;
  /** stdout text. */
  stdout?: string;
  /** stderr text. */
  stderr?: string;
}

/** A fake program: gets the call, answers (may have effects, like writing a key file). */
export type FakeProgram = (call: FakeCall) => FakeResult | Promise<FakeResult>;

/** A {@link ProcessRunner} that also exposes its calls. */
export interface FakeProcess extends ProcessRunner {
  /** Every call, in order. */
  readonly calls: FakeCall[];
}

const enc = new TextEncoder();

function outputOf(r: FakeResult): CommandOutput {
  const code = r.code ?? 0;
  return {
    code,
    success: code === 0,
    signal: null,
    stdout: enc.encode(r.stdout ?? ""),
    stderr: enc.encode(r.stderr ?? ""),
  } as CommandOutput;
}

/**
 * A runner answering the registered programs (looked up by base name).
 *
 * @example
 * ```ts
 * import { fakeProcess } from "./process.ts";
 * const proc = fakeProcess({ ssh: () => ({ stderr: "OpenSSH_9.6p1\n" }) });
 * const out = await proc.output("ssh", { args: ["-V"] });
 * out.success; // true
 * ```
 */
export function fakeProcess(programs: Record<string, FakeProgram>): FakeProcess {
  const calls: FakeCall[] = [];
  const find = (program: string): FakeProgram => {
    const fake = programs[program.split("/").pop() ?? program];
    if (!fake) throw new Deno.errors.NotFound(`fake process: no program ${program}`);
    return fake;
  };
  let nextPid = 4_000_000;
  return {
    calls,
    async output(program: string, options: CommandOptions): Promise<CommandOutput> {
      const call = { program, args: [...(options.args ?? [])].map(String), stdin: "" };
      calls.push(call);
      return outputOf(await find(program)(call));
    },
    spawn(program: string, options: CommandOptions): ChildProcess {
      const call = { program, args: [...(options.args ?? [])].map(String), stdin: "" };
      calls.push(call);
      const fake = find(program);
      const chunks: Uint8Array[] = [];
      let closed!: () => void;
      const stdinClosed = new Promise<void>((r) => closed = r);
      if (options.stdin !== "piped") closed();
      const stdin = new WritableStream<Uint8Array>({
        write: (chunk) => void chunks.push(chunk),
        close: () => closed(),
      });
      const result = stdinClosed.then(() => {
        call.stdin = new TextDecoder().decode(
          chunks.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
        );
        return fake(call);
      }).then(outputOf);
      const stream = (pick: (o: CommandOutput) => Uint8Array) =>
        new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(pick(await result));
            c.close();
          },
        });
      return {
        pid: nextPid++,
        stdin,
        get stdout() {
          return stream((o) => o.stdout);
        },
        get stderr() {
          return stream((o) => o.stderr);
        },
        status: result.then((o) => ({ success: o.success, code: o.code, signal: null })),
        output: () => result,
        kill: () => {},
        ref: () => {},
        unref: () => {},
        [Symbol.asyncDispose]: async () => {},
      } as unknown as ChildProcess;
    },
  };
}

/**
 * A fake `ssh-keygen -f <path>`: writes a private key placeholder and a
 * public key line, as the real one does, so client keys exist.
 */
export const fakeSshKeygen: FakeProgram = async (call) => {
  const path = call.args[call.args.indexOf("-f") + 1];
  const comment = call.args[call.args.indexOf("-C") + 1] ?? "";
  await Deno.writeTextFile(path, "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n", { mode: 0o600 });
  await Deno.writeTextFile(
    `${path}.pub`,
    `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnlyFakeKeyForTestsOnly00 ${comment}\n`,
  );
  return {};
};
