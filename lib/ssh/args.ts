/**
 * ssh argv building (pure) and running the system `ssh` (started through
 * `lib/process`, so tests can inject a runner).
 * Every argument is an argv element — never a shell string — and every
 * user-influenced value is validated before it can reach ssh.
 *
 * @module
 */

import { sleep } from "../core/async.ts";
import { CrabboxError, usageError } from "../core/errors.ts";
import { type EnvReader, processEnv } from "../core/fs.ts";
import { shellQuote } from "../process/identity.ts";
import { output, type ProcessRunner, spawn } from "../process/run.ts";
import { validateHostKey } from "./host_key.ts";

/**
 * Where the SSH identity of a target comes from:
 * - `crew`: the crew's generated key (`keyPath`), offered alone (`IdentitiesOnly`);
 * - `lease-key`: a private key the provider handed out, stored 0600 under the
 *   lease (`keyPath`), offered alone;
 * - `user`: the user's own identity — `keyPath` when given (a configured
 *   identity file), else whatever ssh's agent and default identities offer.
 */
export type SshIdentity = "crew" | "lease-key" | "user";

/**
 * How the box's host key is checked: `pinned` (the target carries `hostKey`;
 * anything else is refused) or `accept-new` (trust on first use in the
 * crew's known_hosts file; a changed key is refused).
 */
export type HostKeyPolicy = "pinned" | "accept-new";

/** How to reach a box over SSH. */
export interface SshTarget {
  /** Host name or IP address. */
  host: string;
  /** TCP port of sshd. */
  port: number;
  /** Login user; empty when {@link SshTarget.userFile} holds it. */
  user: string;
  /** Identity source (default: `crew` when `keyPath` is set, else `user`). */
  identity?: SshIdentity;
  /** Private key path (passed with `-i` and `IdentitiesOnly=yes`). */
  keyPath?: string;
  /**
   * An ssh_config fragment (0600) holding `User <name>`, for providers whose
   * login user is a credential (a gateway access token): it reaches ssh
   * through `-F`, never argv, logs or claims; `user` is then empty.
   */
  userFile?: string;
  /** Pinned host key line (`ssh-ed25519 AAAA…`), when the provider knows it. */
  hostKey?: string;
  /**
   * argv of a command that joins its stdin/stdout to the box's sshd (ssh's
   * `ProxyCommand`), for boxes reachable only through a provider's proxy.
   * Never holds a secret: the command reads credentials itself.
   */
  proxyCommand?: string[];
  /** Host-key policy (default: `pinned` when `hostKey` is set, else `accept-new`). */
  hostKeyPolicy?: HostKeyPolicy;
  /** When a credential of this target expires (ISO 8601); the provider refreshes it before. */
  expiresAt?: string;
}

/** The identity source of a target, defaults applied. */
export function sshIdentityOf(target: SshTarget): SshIdentity {
  return target.identity ?? (target.keyPath ? "crew" : "user");
}

/** The host-key policy of a target, defaults applied. */
export function hostKeyPolicyOf(target: SshTarget): HostKeyPolicy {
  return target.hostKeyPolicy ?? (target.hostKey ? "pinned" : "accept-new");
}

/** Longest ControlPath we use (sockaddr_un is 104 bytes on some systems; ssh adds a temp suffix). */
export const MAX_CONTROL_PATH = 104 - 18;

// deno-lint-ignore no-control-regex
const UNSAFE = /[\s\x00-\x1f\x7f]/;

/**
 * Reject a value that could become an ssh option or shell code: empty,
 * leading `-`, whitespace or control characters.
 *
 * @example
 * ```ts
 * import { assertSafeArg } from "./args.ts";
 * assertSafeArg("host", "box.example"); // ok
 * // assertSafeArg("host", "-oProxyCommand=x") throws a usage error
 * ```
 */
export function assertSafeArg(what: string, value: string): string {
  if (value === "" || value.startsWith("-") || UNSAFE.test(value)) {
    throw usageError(
      `unsafe_${what.replace(/\W+/g, "_")}`,
      `${what} ${
        JSON.stringify(value)
      } is not allowed (empty, leading "-", whitespace or control characters)`,
    );
  }
  return value;
}

/**
 * Validate an SSH target: safe host and user, port 1..65535, safe key path
 * and a strictly valid host key ({@link validateHostKey}).
 */
export function validateSshTarget(target: SshTarget): SshTarget {
  assertSafeArg("host", target.host);
  if (target.userFile !== undefined) {
    assertSafeArg("user file", target.userFile);
    if (target.user !== "") {
      throw usageError("unsafe_user", "an SSH target with a user file must not also name a user");
    }
  } else {
    assertSafeArg("user", target.user);
  }
  if (/[@:]/.test(target.user)) {
    throw usageError("unsafe_user", `user ${JSON.stringify(target.user)} may not contain @ or :`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw usageError("bad_port", `ssh port ${target.port} must be 1..65535`);
  }
  if (target.keyPath !== undefined) assertSafeArg("identity file", target.keyPath);
  const identity = sshIdentityOf(target);
  if ((identity === "crew" || identity === "lease-key") && !target.keyPath) {
    throw usageError(
      "no_identity_file",
      `an SSH target with identity ${identity} needs a key file`,
    );
  }
  if (target.hostKey !== undefined) validateHostKey(target.hostKey);
  if (target.proxyCommand !== undefined) proxyCommandOption(target.proxyCommand);
  if (hostKeyPolicyOf(target) === "pinned" && !target.hostKey) {
    throw usageError("bad_host_key", "host-key policy pinned needs a host key");
  }
  return target;
}

/**
 * The `ProxyCommand=` option for an argv. ssh hands the value to a shell and
 * expands `%` tokens first, so every word is single-quoted and every `%`
 * doubled; words may not be empty or hold control characters.
 *
 * @example
 * ```ts
 * import { proxyCommandOption } from "./args.ts";
 * proxyCommandOption(["/usr/bin/crabbox", "proxy", "cbx-0123456789ab"]);
 * // "ProxyCommand='/usr/bin/crabbox' 'proxy' 'cbx-0123456789ab'"
 * ```
 */
export function proxyCommandOption(argv: readonly string[]): string {
  // deno-lint-ignore no-control-regex
  if (argv.length === 0 || argv.some((w) => w === "" || /[\x00-\x1f\x7f]/.test(w))) {
    throw usageError(
      "bad_proxy_command",
      "the ssh proxy command must be non-empty words without control characters",
    );
  }
  return `ProxyCommand=${argv.map((w) => shellQuote(w.replaceAll("%", "%%"))).join(" ")}`;
}

/** How to use the ControlMaster socket. */
export type ControlMode =
  | { master: "yes"; path: string }
  | { master: "no"; path: string }
  | { master: "none" };

/** Options shared by every crabbox ssh invocation. */
export interface SshOptions {
  /** The known_hosts file crabbox manages for this lease or crew. */
  knownHostsFile: string;
  /** ControlMaster handling (default: none). */
  control?: ControlMode;
  /** Seconds before a connection attempt gives up (default 10). */
  connectTimeout?: number;
  /** ServerAliveInterval seconds (default 5). */
  aliveInterval?: number;
  /** ServerAliveCountMax (default 3). */
  aliveCountMax?: number;
  /** BatchMode (default true: never prompt). */
  batch?: boolean;
  /** Allocate a tty (`-t`) for interactive use. */
  tty?: boolean;
  /**
   * ssh LogLevel (default `ERROR`). The SSH-mesh uses `INFO`: ssh reports a
   * failed forward ("channel N: open failed") only at that level.
   */
  logLevel?: "QUIET" | "FATAL" | "ERROR" | "INFO" | "VERBOSE";
}

/**
 * The options part of an ssh argv (everything before `--`).
 *
 * @example
 * ```ts
 * import { sshOptionArgs } from "./args.ts";
 * sshOptionArgs({ host: "10.0.0.5", port: 22, user: "root" }, { knownHostsFile: "/tmp/kh" });
 * ```
 */
export function sshOptionArgs(target: SshTarget, options: SshOptions): string[] {
  validateSshTarget(target);
  assertSafeArg("known_hosts path", options.knownHostsFile);
  const args = [
    "-F",
    target.userFile ?? "none",
    "-p",
    String(target.port),
    "-o",
    `BatchMode=${options.batch === false ? "no" : "yes"}`,
    "-o",
    `ConnectTimeout=${options.connectTimeout ?? 10}`,
    "-o",
    `ServerAliveInterval=${options.aliveInterval ?? 5}`,
    "-o",
    `ServerAliveCountMax=${options.aliveCountMax ?? 3}`,
    "-o",
    `StrictHostKeyChecking=${hostKeyPolicyOf(target) === "pinned" ? "yes" : "accept-new"}`,
    "-o",
    `UserKnownHostsFile=${options.knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "ForwardAgent=no",
    "-o",
    `LogLevel=${options.logLevel ?? "ERROR"}`,
  ];
  if (target.keyPath) args.push("-o", "IdentitiesOnly=yes", "-i", target.keyPath);
  if (target.proxyCommand) args.push("-o", proxyCommandOption(target.proxyCommand));
  const control = options.control ?? { master: "none" };
  if (control.master === "none") {
    args.push("-o", "ControlMaster=no", "-o", "ControlPath=none");
  } else {
    assertSafeArg("control path", control.path);
    args.push("-o", `ControlMaster=${control.master}`, "-o", `ControlPath=${control.path}`);
    if (control.master === "yes") args.push("-o", "ControlPersist=no");
  }
  if (options.tty) args.push("-t");
  return args;
}

/** `user@host` for the argv, after validation; just `host` when the user comes from the user file. */
export function sshDestination(target: SshTarget): string {
  validateSshTarget(target);
  return target.userFile !== undefined ? target.host : `${target.user}@${target.host}`;
}

/**
 * What to run on a box: argv words (each reaches the remote program intact)
 * or, explicitly, one shell string (`{ shell: "make && make test" }`). An
 * empty argv means an interactive shell.
 */
export type RemoteCommand = readonly string[] | { readonly shell: string };

/**
 * The single string ssh sends to the box for `command`: every argv word
 * POSIX single-quoted and joined by spaces, so spaces, quotes, `$`, `;`,
 * empty words, newlines and non-ASCII reach the remote program as given (raw
 * `ssh` would join them and let the remote shell split and expand them). A
 * `{ shell }` command is sent as written. `undefined` for an empty argv.
 *
 * @example
 * ```ts
 * import { remoteCommandLine } from "./args.ts";
 * remoteCommandLine(["echo", "it's $HOME"]); // "'echo' 'it'\\''s $HOME'"
 * remoteCommandLine({ shell: "cd /srv && make" }); // "cd /srv && make"
 * ```
 */
export function remoteCommandLine(command: RemoteCommand): string | undefined {
  if ("shell" in command) {
    if (command.shell.trim() === "" || command.shell.includes("\0")) {
      throw usageError("bad_shell", "--shell needs a non-empty command without NUL bytes");
    }
    return command.shell;
  }
  const words = command as readonly string[];
  if (words.length === 0) return undefined;
  if (words.some((w) => w.includes("\0"))) {
    throw usageError("bad_command", "a command argument contains a NUL byte");
  }
  return words.map(shellQuote).join(" ");
}

/**
 * argv (without the program) that runs `command` on the box: argv words are
 * quoted so each reaches the remote program intact (see
 * {@link remoteCommandLine}). An empty command opens an interactive shell.
 *
 * @example
 * ```ts
 * import { sshCommandArgs } from "./args.ts";
 * sshCommandArgs({ host: "h", port: 22, user: "root" }, ["hostname"], { knownHostsFile: "/tmp/kh" });
 * ```
 */
export function sshCommandArgs(
  target: SshTarget,
  command: RemoteCommand,
  options: SshOptions,
): string[] {
  const line = remoteCommandLine(command);
  return [
    ...sshOptionArgs(target, options),
    "--",
    sshDestination(target),
    ...(line === undefined ? [] : [line]),
  ];
}

/** One `-L` forward. */
export interface Forward {
  /** Local port on 127.0.0.1. */
  localPort: number;
  /** Port on the box's 127.0.0.1. */
  remotePort: number;
}

/**
 * argv (without the program) for one member's forwarding process: `-N`,
 * `ExitOnForwardFailure=yes`, one `-L 127.0.0.1:<local>:127.0.0.1:<remote>`
 * per forward, optionally `-E <log>`.
 *
 * @example
 * ```ts
 * import { sshForwardArgs } from "./args.ts";
 * sshForwardArgs({ host: "h", port: 22, user: "root" }, [{ localPort: 51820, remotePort: 8080 }], {
 *   knownHostsFile: "/tmp/kh",
 * });
 * ```
 */
export function sshForwardArgs(
  target: SshTarget,
  forwards: readonly Forward[],
  options: SshOptions & { logFile?: string },
): string[] {
  const args = [...sshOptionArgs(target, options), "-N", "-o", "ExitOnForwardFailure=yes"];
  if (options.logFile) args.push("-E", assertSafeArg("log file", options.logFile));
  for (const f of forwards) {
    for (const p of [f.localPort, f.remotePort]) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        throw usageError("bad_port", `forward port ${p} must be 1..65535`);
      }
    }
    args.push("-L", `127.0.0.1:${f.localPort}:127.0.0.1:${f.remotePort}`);
  }
  return [...args, "--", sshDestination(target)];
}

/** Path of the `ssh` program: `CRABBOX_SSH`, else `ssh` on PATH. */
export function sshProgram(env: EnvReader = processEnv): string {
  return env("CRABBOX_SSH")?.trim() || "ssh";
}

/** Result of a finished ssh process. */
export interface SshResult {
  /** Exit code (255 = ssh itself failed). */
  code: number;
  /** Captured stdout. */
  stdout: string;
  /** Captured stderr. */
  stderr: string;
}

/**
 * Run ssh to completion and capture its output.
 *
 * @example
 * ```ts
 * import { runSsh, sshCommandArgs } from "./args.ts";
 * const r = await runSsh(sshCommandArgs({ host: "h", port: 22, user: "root" }, ["true"], {
 *   knownHostsFile: "/tmp/kh",
 * }));
 * ```
 */
export async function runSsh(
  args: string[],
  options: { env?: EnvReader; signal?: AbortSignal; stdin?: string; process?: ProcessRunner } = {},
): Promise<SshResult> {
  const child = spawn(sshProgram(options.env), {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  }, options.process);
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Run ssh with the terminal attached (inherited stdio); resolves to the exit
 * code, which is the remote command's (255 when ssh itself failed).
 */
export async function runSshInteractive(
  args: string[],
  options: { env?: EnvReader; process?: ProcessRunner } = {},
): Promise<number> {
  const out = await output(sshProgram(options.env), {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }, options.process);
  return out.code;
}

/**
 * Wait until sshd on the target accepts our key and runs `true`, retrying
 * until `timeoutMs`. Throws an ssh error with ssh's last message.
 */
export async function waitForSsh(
  target: SshTarget,
  knownHostsFile: string,
  timeoutMs: number,
  options: { env?: EnvReader; signal?: AbortSignal; process?: ProcessRunner } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let delay = 50;
  while (true) {
    options.signal?.throwIfAborted();
    const r = await runSsh(
      sshCommandArgs(target, ["true"], { knownHostsFile, connectTimeout: 5 }),
      options,
    );
    if (r.code === 0) return;
    last = r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`;
    if (Date.now() + delay > deadline) break;
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
  }
  throw new CrabboxError(
    "ssh",
    "ssh_unreachable",
    `ssh to ${target.user}@${target.host}:${target.port} did not succeed within ${
      Math.round(timeoutMs / 1000)
    }s: ${last}`,
  );
}
