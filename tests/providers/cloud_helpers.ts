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
