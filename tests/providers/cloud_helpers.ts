/**
 * Test helpers shared by the cloud provider contract tests: spec builders,
 * valid OpenSSH public keys without ssh-keygen, and recorders for logs,
 * sleeps and SSH waits.
 *
 * @module
 */

import { encodeLabels } from "../../lib/core/labels.ts";
import { newLeaseId, roleOf } from "../../lib/core/names.ts";
import type { SshWaiter } from "../../providers/cloud/common.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import type { CreateSpec, SshTarget } from "../../providers/types.ts";
import { fakeHostKey } from "../ssh/_host_key.ts";

/** A syntactically valid `ssh-ed25519` public key line with random key bytes. */
export function fakePublicKey(comment = "crabbox-test"): string {
  return `${fakeHostKey()} ${comment}`;
}

/** A create spec for `slug` in `crew` with reserved labels. */
export function specFor(
  slug: string,
  crew: string | undefined,
  publicKey: string,
  extra: Partial<CreateSpec> = {},
): CreateSpec {
  const leaseId = newLeaseId();
  const expose = extra.expose ?? [5432, 8080];
  return {
    leaseId,
    crew,
    slug,
    role: roleOf(slug),
    expose,
    labels: encodeLabels({ leaseId, crew, slug, expose, owner: "alice", tailscale: true }),
    sshPublicKey: publicKey,
    sshKeyPath: `/tmp/cbx-test/keys/${crew ?? leaseId}/id_ed25519`,
    userData: "#cloud-config\nruncmd:\n  - echo hello\n",
    ...extra,
  };
}

/** Collects log lines. */
export function logRecorder(): { lines: string[]; log: (m: string) => void } {
  const lines: string[] = [];
  return { lines, log: (m) => lines.push(m) };
}

/** A sleep that records the requested delays and waits at most 1 ms. */
export function sleepRecorder(): {
  delays: number[];
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
} {
  const delays: number[] = [];
  return {
    delays,
    sleep: (ms, signal) => {
      delays.push(ms);
      signal?.throwIfAborted();
      return new Promise((r) => setTimeout(r, 1));
    },
  };
}

/** An SSH waiter that records its targets and succeeds. */
export function sshRecorder(): {
  calls: { target: SshTarget; knownHostsFile: string }[];
  waitForSsh: SshWaiter;
} {
  const calls: { target: SshTarget; knownHostsFile: string }[] = [];
  return {
    calls,
    waitForSsh: (target, o) => {
      calls.push({ target, knownHostsFile: o.knownHostsFile });
      return Promise.resolve();
    },
  };
}

/** Env reader over a plain object. */
export function envOf(vars: Record<string, string | undefined>): (k: string) => string | undefined {
  return (k) => vars[k];
}

/**
 * An auth key no prefix list knows (Headscale's `hskey-auth-`), fresh per
 * run and never in any environment: only request-data scrubbing can keep it
 * out of an error.
 */
export const ECHO_AUTH_KEY = `hskey-auth-${crypto.randomUUID().replaceAll("-", "")}`;

/** Cloud-init user data carrying {@link ECHO_AUTH_KEY}, as a `--tailscale --init` box gets. */
export const ECHO_USER_DATA = [
  "#cloud-config",
  "write_files:",
  "  - path: /etc/crabbox/tailnet.env",
  "    permissions: '0600'",
  "    content: |",
  `      CRABBOX_TAILSCALE_AUTH_KEY=${ECHO_AUTH_KEY}`,
  "runcmd:",
  '  - [sh, -c, "tailscale up --auth-key=file:/etc/crabbox/tailnet.env --hostname=crabbox-api"]',
  "",
].join("\n");

/**
 * Fail unless `text` (an error's message, hint, details, a CLI's output)
 * holds neither the auth key nor any line of the user data, nor its base64 form.
 */
export function assertNoRequestData(text: string): void {
  if (text.includes(ECHO_AUTH_KEY)) throw new Error(`the auth key leaked: ${text}`);
  const b64 = btoa(ECHO_USER_DATA).slice(0, 24); // the base64 form AWS and Azure send
  for (const form of [b64, encodeURIComponent(b64)]) {
    if (text.includes(form)) throw new Error(`the base64 user data leaked: ${text}`);
  }
  for (const line of ECHO_USER_DATA.split("\n").map((l) => l.trim()).filter((l) => l)) {
    if (text.includes(line)) throw new Error(`a line of the user data leaked (${line}): ${text}`);
  }
}

/** Everything of a provider error that can be printed: message, hint, details (as --json shows them). */
export function printable(e: { message: string; hint?: string; details?: unknown }): string {
  return [e.message, e.hint ?? "", JSON.stringify(e.details ?? {})].join("\n");
}

/**
 * Create a box with {@link ECHO_USER_DATA} through `create` (its provider's
 * fake answers with an echo of the request) and check the provider error:
 * its code starts with `codePrefix`, it is short, and nothing printable of it
 * holds request data.
 */
export async function assertEchoedCreateIsClean(
  create: (spec: CreateSpec) => Promise<unknown>,
  codePrefix: string,
): Promise<void> {
  const spec = specFor("api", "echo", fakePublicKey(), { userData: ECHO_USER_DATA });
  const e = await create(spec).then(() => undefined, (e: unknown) => e);
  if (!(e instanceof CrabboxError)) throw new Error(`expected a CrabboxError, got ${e}`);
  if (!e.code.startsWith(codePrefix)) throw new Error(`unexpected code ${e.code}: ${e.message}`);
  if (e.message.length >= 600) throw new Error(`message too long: ${e.message}`);
  assertNoRequestData(printable(e));
}
