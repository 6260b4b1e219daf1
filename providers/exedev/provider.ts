/**
 * The `exe-dev` provider: exe.dev VMs over exe.dev's HTTPS API — the command
 * language (`new`, `ls`, `rm`) posted to `/exec` with a Bearer token. This is
 * the only transport crabbox implements: the `ssh exe.dev <command>` lobby is
 * not used, so a missing token is a credentials error (exit 9) that says how
 * to make one.
 *
 * VMs are found by their flat tags (`crabbox`, `crabbox-lease-<id>`,
 * `crabbox-crew-<crew>`, …; `ls` has no server-side filter). SSH goes to the
 * VM's `ssh_dest` through exe.dev's SSH router with the user's own key that is
 * registered with exe.dev (`exe-dev.identityFile`, default
 * `~/.ssh/id_ed25519`), not the crew key: exe.dev has no per-VM key injection.
 *
 * Config (`exe-dev:`): `image`, `cpu`, `memory`, `disk`, `sshUser`, `sshPort`,
 * `identityFile`. Env: `EXE_TOKEN` (or `CRABBOX_EXEDEV_TOKEN`),
 * `CRABBOX_EXEDEV_API_URL`.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
import {
  assertSelectorValue,
  backoffMs,
  type CloudProviderOptions,
  cloudRuntime,
  timeoutError,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { fetchWithRetry } from "../cloud/http.ts";
import { capMessage, requestFragments, scrubRequestData } from "../cloud/request_data.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";
import {
  answerError,
  EXEDEV_MAX_BODY,
  exedevError,
  exedevSettings,
  exedevToken,
  type ExedevVm,
  isExedevVmName,
  lsCommand,
  newCommand,
  parseVm,
  parseVmList,
  rmCommand,
  vmSshEndpoint,
  vmToLease,
} from "./api.ts";

/**
 * Build the exe.dev provider.
 *
 * @example
 * ```ts
 * import { createExedevProvider } from "./provider.ts";
 * const p = createExedevProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false },
 * );
 * p.features.has("tailscale"); // false
 * ```
 */
export function createExedevProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  const settings = () => exedevSettings(ctx.env, ctx.config);

  /** Run one command; returns its JSON answer or throws exe.dev's error. */
  async function exec(command: string, signal?: AbortSignal): Promise<unknown> {
    const { token, variable } = exedevToken(ctx.env);
    const { baseUrl } = settings();
    const verb = command.split(" ")[0];
    if (new TextEncoder().encode(command).length > EXEDEV_MAX_BODY) {
      throw new CrabboxError(
        "usage",
        "exedev_command_too_long",
        `exe.dev ${verb}: command over 64 KiB`,
      );
    }
    const answer = await fetchWithRetry({
      provider: "exedev",
      api: "exe.dev",
      host: new URL(baseUrl).host,
      what: verb,
      rt,
      log: ctx.log,
      signal,
      secrets: () => [token],
      request: [command],
      send: () =>
        ctx.fetch(`${baseUrl}/exec`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" },
          body: command,
          signal,
        }),
      retryDelayMs: (a, attempt) => {
        if (a.status === 429) {
          return Math.min(
            rt.maxBackoffMs,
            retryAfterMs(a.headers.get("retry-after"), rt.now()) ?? 1000,
          );
        }
        // A `new` that failed with 5xx may still have made the VM: not retried.
        return a.status >= 500 && verb !== "new"
          ? backoffMs(attempt, 500, rt.maxBackoffMs)
          : undefined;
      },
    });
    let json: unknown;
    try {
      json = answer.text.trim() === "" ? {} : JSON.parse(answer.text);
    } catch {
      json = { error: answer.text.trim() || `HTTP ${answer.status}` };
    }
    // exe.dev reports errors in 2xx answers too: its words, without what was sent, capped.
    const said = (v: unknown) => {
      const e = answerError(v);
      return e === undefined
        ? undefined
        : capMessage(scrubRequestData(e, requestFragments([command])));
    };
    if (answer.status === 401 || answer.status === 403) {
      throw new CrabboxError(
        "credentials",
        "exedev_unauthorized",
        `exe.dev ${verb} failed: ${
          said(json) ?? `HTTP ${answer.status}`
        }: the token in ${variable} was refused`,
        { hint: "make a new token with `ssh exe.dev ssh-key generate-api-key`" },
      );
    }
    const error = said(json) ?? (answer.ok ? undefined : `HTTP ${answer.status}`);
    if (error !== undefined) throw exedevError(error, verb, variable);
    return json;
  }

  const listVms = async (signal?: AbortSignal) => parseVmList(await exec(lsCommand(), signal));

  function target(vm: ExedevVm): SshTarget | undefined {
    const s = settings();
    const ep = vmSshEndpoint(vm);
    if (!ep) return undefined;
    return {
      host: ep.host,
      port: s.sshPort,
      user: s.sshUser ?? ep.user ?? "root",
      keyPath: s.identityFile,
    };
  }

  function toLease(vm: ExedevVm): ProviderLease | undefined {
    const lease = vmToLease(vm);
    return lease ? { ...lease, ssh: target(vm) } : undefined;
  }

  const remove = (name: string, signal?: AbortSignal) =>
    exec(rmCommand(name), signal).catch((e) => {
      if (!(e instanceof CrabboxError && e.kind === "notFound")) throw e;
    });

  async function waitRunning(name: string, signal?: AbortSignal): Promise<ExedevVm> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const vm = (await listVms(signal)).find((v) => v.name === name);
      if (!vm) {
        throw new CrabboxError(
          "provider",
          "exedev_vm_gone",
          `exe.dev VM ${name} disappeared while starting`,
        );
      }
      if (vm.status === "running" && vmSshEndpoint(vm)) return vm;
      if (rt.now() >= deadline) {
        throw timeoutError("exe-dev", `VM ${name} running`, rt.readyTimeoutMs);
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  return {
    name: "exe-dev",
    features: new Set(["ssh"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      if (spec.tailscale) {
        throw new CrabboxError(
          "usage",
          "exedev_no_tailscale",
          "--tailscale is not supported on exe-dev (VMs are reached through exe.dev's SSH router)",
        );
      }
      const command = newCommand(spec, settings());
      const created = parseVm(await exec(command, signal));
      ctx.log(`exe-dev: created ${created.name}`);
      try {
        const vm = created.status === "running" && vmSshEndpoint(created)
          ? created
          : await waitRunning(created.name, signal);
        const lease = toLease({ ...vm, tags: vm.tags.length > 0 ? vm.tags : created.tags });
        if (!lease?.ssh) {
          throw new CrabboxError(
            "provider",
            "exedev_bad_response",
            `exe.dev VM ${vm.name} lost its crabbox tags`,
          );
        }
        if (rt.waitForSsh) {
          ctx.log(`exe-dev: ${vm.name} is running; waiting for ssh at ${lease.ssh.host}`);
          await rt.waitForSsh(lease.ssh, {
            knownHostsFile: knownHostsPath(ctx.home, spec),
            timeoutMs: rt.sshTimeoutMs,
            signal,
          });
        }
        return lease;
      } catch (e) {
        ctx.log(`exe-dev: create of ${created.name} failed; removing it`);
        await remove(created.name).catch((d) =>
          ctx.log(`exe-dev: could not remove ${created.name}: ${(d as Error).message}`)
        );
        throw e;
      }
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const crew = selector.crew === undefined
        ? undefined
        : assertSelectorValue("crew", selector.crew);
      return (await listVms(signal)).map(toLease)
        .filter((l): l is ProviderLease =>
          l !== undefined && (crew === undefined || l.labels.crew === crew)
        );
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!isExedevVmName(providerId)) return undefined;
      const vm = (await listVms(signal)).find((v) => v.name === providerId);
      return vm ? toLease(vm) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!isExedevVmName(lease.providerId)) {
        throw badProviderIdError("exedev", lease.providerId, "a crabbox VM name");
      }
      const vm = (await listVms(signal)).find((v) => v.name === lease.providerId);
      if (!vm) return;
      if (vmToLease(vm)?.leaseId !== lease.leaseId) {
        throw notOursError("exedev", `exe.dev VM ${vm.name}`, lease.leaseId, "removing");
      }
      await remove(vm.name, signal);
      ctx.log(`exe-dev: removed ${vm.name}`);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}
