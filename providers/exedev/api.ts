/**
 * exe.dev's HTTPS API, the pure half. The API is exe.dev's command language
 * sent as the body of `POST /exec` with `Authorization: Bearer <token>`: this
 * module builds those command lines (every word quoted for exe.dev's shell
 * lexer), the VM name and flat tags, and parses the JSON answers (a VM bare
 * or wrapped in `vm`, `{"vms":[…]}`, `{"error":"…"}`).
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { shellQuote } from "../../lib/process/identity.ts";
import { apiBaseUrl, configPort, configString } from "../cloud/common.ts";
import { decodeFlatTags, encodeFlatTags } from "../cloud/flat_tags.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Documented production endpoint. */
export const EXEDEV_API_URL = "https://exe.dev";
/** Token variables, first set wins. */
export const EXEDEV_TOKEN_VARS = ["CRABBOX_EXEDEV_TOKEN", "EXE_TOKEN"] as const;
/** exe.dev takes at most 64 KiB of command text. */
export const EXEDEV_MAX_BODY = 64 * 1024;

/** Resolved settings. */
export interface ExedevSettings {
  /** API base URL (no trailing slash). */
  baseUrl: string;
  /** Image (`--image`), when configured. */
  image?: string;
  /** vCPUs (`--cpu`), when configured. */
  cpu?: string;
  /** Memory (`--memory`, e.g. `4GB`), when configured. */
  memory?: string;
  /** Disk (`--disk`, e.g. `10GB`), when configured. */
  disk?: string;
  /** Login user override (default: what exe.dev reports, else `root`). */
  sshUser?: string;
  /** sshd port (exe.dev's SSH router answers on 22). */
  sshPort: number;
  /** The user's own private key registered with exe.dev. */
  identityFile: string;
}

/**
 * Settings from config (`exe-dev.image`, `cpu`, `memory`, `disk`, `sshUser`,
 * `sshPort`, `identityFile` (default `~/.ssh/id_ed25519`)) and
 * `CRABBOX_EXEDEV_API_URL`.
 *
 * @example
 * ```ts
 * import { exedevSettings } from "./api.ts";
 * exedevSettings((k) => ({ HOME: "/home/a" })[k], {}).identityFile; // "/home/a/.ssh/id_ed25519"
 * ```
 */
export function exedevSettings(env: EnvReader, config: Record<string, unknown>): ExedevSettings {
  const raw = env("CRABBOX_EXEDEV_API_URL")?.trim() || EXEDEV_API_URL;
  const sized = (key: string) => {
    const v = configString(config, "exe-dev", key);
    if (v !== undefined && !/^[0-9]+([KMGT]i?B)?$/i.test(v)) {
      throw new CrabboxError("config", "bad_config_value", `exe-dev.${key} must be like 4 or 4GB`);
    }
    return v;
  };
  return {
    baseUrl: apiBaseUrl("CRABBOX_EXEDEV_API_URL", raw).href.replace(/\/+$/, ""),
    image: configString(config, "exe-dev", "image"),
    cpu: sized("cpu"),
    memory: sized("memory"),
    disk: sized("disk"),
    sshUser: configString(config, "exe-dev", "sshUser"),
    sshPort: configPort(config, "exe-dev", "sshPort", 22),
    identityFile: configString(config, "exe-dev", "identityFile") ??
      `${env("HOME") ?? ""}/.ssh/id_ed25519`,
  };
}

/** The API token and the variable it came from; a credentials error when none is set. */
export function exedevToken(env: EnvReader): { token: string; variable: string } {
  for (const name of EXEDEV_TOKEN_VARS) {
    const v = env(name)?.trim();
    if (v) return { token: v, variable: name };
  }
  throw new CrabboxError(
    "credentials",
    "exedev_no_token",
    "EXE_TOKEN (or CRABBOX_EXEDEV_TOKEN) is not set",
    {
      hint: "create an API token with `ssh exe.dev ssh-key generate-api-key` and export EXE_TOKEN",
    },
  );
}

/**
 * One word of a command line for exe.dev's shell lexer: plain when it is only
 * safe characters, else single-quoted.
 *
 * @example
 * ```ts
 * import { commandLine } from "./api.ts";
 * commandLine(["new", "--name", "a b", "--json"]); // "new --name 'a b' --json"
 * ```
 */
export function commandLine(words: readonly string[]): string {
  return words.map((w) => /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : shellQuote(w)).join(" ");
}

/**
 * VM name: `crabbox-<slug>-<lease hex>`, with an `x` appended when it would
 * end in `-<digits>` (exe.dev refuses such names).
 *
 * @example
 * ```ts
 * import { exedevVmName } from "./api.ts";
 * exedevVmName({ slug: "api", leaseId: "cbx-0123456789ab" }); // "crabbox-api-0123456789ab"
 * exedevVmName({ slug: "api", leaseId: "cbx-012345678901" }); // "crabbox-api-012345678901x"
 * ```
 */
export function exedevVmName(spec: { slug: string; leaseId: string }): string {
  const name = `crabbox-${spec.slug}-${spec.leaseId.slice(4)}`;
  return /-[0-9]+$/.test(name) ? `${name}x` : name;
}

/** True for a name crabbox could have made. */
export function isExedevVmName(name: string): boolean {
  return /^crabbox-[a-z0-9-]{1,80}$/.test(name) && !/-[0-9]+$/.test(name);
}

/** The `new` command line for a lease. */
export function newCommand(spec: CreateSpec, settings: ExedevSettings): string {
  const words = ["new", "--name", exedevVmName(spec), "--json", "--no-email"];
  for (const tag of encodeFlatTags(spec.labels)) words.push("--tag", tag);
  if (settings.image) words.push("--image", settings.image);
  if (settings.cpu) words.push("--cpu", settings.cpu);
  if (settings.memory) words.push("--memory", settings.memory);
  if (settings.disk) words.push("--disk", settings.disk);
  return commandLine(words);
}

/** The `ls` command line. */
export function lsCommand(): string {
  return commandLine(["ls", "--json"]);
}

/** The `rm` command line for a VM. */
export function rmCommand(name: string): string {
  return commandLine(["rm", name, "--json"]);
}

/** A VM as exe.dev reports it. */
export interface ExedevVm {
  /** Name. */
  name: string;
  /** Where ssh goes: `host` or `user@host`. */
  sshDest?: string;
  /** Host, when reported separately. */
  sshHost?: string;
  /** User, when reported (absent when any user works). */
  sshUser?: string;
  /** Status (`running`, …). */
  status: string;
  /** Flat tags. */
  tags: string[];
}

/** Parse one VM object (bare or wrapped in `vm`). */
export function parseVm(v: unknown): ExedevVm {
  const o0 = (v ?? {}) as Record<string, unknown>;
  const o = (o0.vm && typeof o0.vm === "object" ? o0.vm : o0) as Record<string, unknown>;
  if (typeof o.vm_name !== "string" || o.vm_name === "") {
    throw new CrabboxError(
      "provider",
      "exedev_bad_response",
      "exe.dev returned a VM without vm_name",
    );
  }
  const str = (k: string) => typeof o[k] === "string" && o[k] !== "" ? o[k] as string : undefined;
  return {
    name: o.vm_name,
    sshDest: str("ssh_dest"),
    sshHost: str("ssh_host"),
    sshUser: str("ssh_user"),
    status: str("status") ?? "unknown",
    tags: Array.isArray(o.tags) ? o.tags.filter((t): t is string => typeof t === "string") : [],
  };
}

/** Parse `{"vms":[…]}`. */
export function parseVmList(v: unknown): ExedevVm[] {
  const vms = ((v ?? {}) as Record<string, unknown>).vms ?? [];
  if (!Array.isArray(vms)) {
    throw new CrabboxError("provider", "exedev_bad_response", "exe.dev ls answer has no vms list");
  }
  return vms.map(parseVm);
}

/** The `{"error": "…"}` of an answer, if it is one. */
export function answerError(v: unknown): string | undefined {
  const e = (v as Record<string, unknown> | null)?.error;
  return typeof e === "string" ? e : e === undefined ? undefined : JSON.stringify(e);
}

/**
 * Map exe.dev's error words to a {@link CrabboxError}: "not found" → 3, token
 * refusals → 9, the rest (capacity, quotas, bad flags) → 4 with exe.dev's
 * words.
 */
export function exedevError(
  message: string,
  command: string,
  tokenVariable?: string,
): CrabboxError {
  const text = `exe.dev ${command} failed: ${message}`;
  if (/not found|no such vm/i.test(message)) {
    return new CrabboxError("notFound", "exedev_not_found", text);
  }
  if (tokenVariable && /unauthori[sz]ed|invalid token|expired|forbidden/i.test(message)) {
    return new CrabboxError(
      "credentials",
      "exedev_unauthorized",
      `${text}: the token in ${tokenVariable} was refused`,
    );
  }
  return new CrabboxError("provider", "exedev_error", text);
}

/** Where ssh goes for a VM: `ssh_host` + `ssh_user`, else the parts of `ssh_dest`. */
export function vmSshEndpoint(vm: ExedevVm): { host: string; user?: string } | undefined {
  const dest = vm.sshDest ?? "";
  const at = dest.lastIndexOf("@");
  const host = vm.sshHost ?? (at >= 0 ? dest.slice(at + 1) : dest);
  if (!host) return undefined;
  return { host, user: vm.sshUser ?? (at > 0 ? dest.slice(0, at) : undefined) };
}

/** The labels of a VM from its tags; `undefined` when it is not crabbox's. */
export function vmLabels(vm: ExedevVm): Labels | undefined {
  const labels = decodeFlatTags(vm.tags);
  return labels.crabbox === "true" && labels["crabbox-lease"] ? labels : undefined;
}

/** A VM as a provider lease without its SSH target; `undefined` when not crabbox's. */
export function vmToLease(vm: ExedevVm): ProviderLease | undefined {
  const labels = vmLabels(vm);
  if (!labels) return undefined;
  return {
    providerId: vm.name,
    leaseId: labels["crabbox-lease"],
    labels,
    state: vm.status === "running" ? "running" : vm.status === "stopped" ? "stopped" : "creating",
    data: { status: vm.status },
  };
}
