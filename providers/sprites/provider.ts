/**
 * The `sprites` provider: Fly.io Sprites over the Sprites REST API
 * (`https://api.sprites.dev`, `Authorization: Bearer <token>`) and its two
 * WebSockets: exec (to install sshd and authorize the crew key) and the TCP
 * proxy (ssh reaches sshd through `crabbox proxy`, its `ProxyCommand`).
 * A sprite has no IP address at all.
 *
 * Hibernation: an idle sprite is suspended (processes stop, the filesystem
 * stays). sshd is registered as a sprite service, so the next proxy
 * connection wakes the sprite and finds sshd running again; a `crew connect`
 * tunnel that was cut by a hibernation reconnects through its supervisor.
 *
 * Config (`sprites:`): `sshUser` (default `sprite`). Env: the token in
 * `CRABBOX_SPRITES_TOKEN`, `SPRITES_TOKEN`, `SPRITE_TOKEN` or
 * `SETUP_SPRITE_TOKEN` (first set wins); `CRABBOX_SPRITES_API_URL`.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import { proxyArgv } from "../../lib/ssh/proxy_command.ts";
import {
  assertSelectorValue,
  backoffMs,
  type CloudProviderOptions,
  cloudRuntime,
  finishCreate,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { fetchWithRetry, parseJsonAnswer } from "../cloud/http.ts";
import { WsConnection } from "../cloud/ws_tunnel.ts";
import type {
  ByteTunnel,
  CreateSpec,
  Provider,
  ProviderContext,
  ProviderLease,
  SshTarget,
} from "../types.ts";
import {
  checkProxyReply,
  createSpriteBody,
  execUrl,
  isConcurrencyLimit,
  isSpriteName,
  listPath,
  parseSprite,
  parseSpritePage,
  parseSpritesError,
  proxyHello,
  proxyUrl,
  rateLimitWaitMs,
  type Sprite,
  spritesError,
  spritesSettings,
  spritesToken,
  spriteToLease,
} from "./api.ts";
import { collectFrame, type ExecResult } from "./frames.ts";
import { PUBLIC_KEY_ENV, sshdInstallScript } from "./install.ts";

const MAX_PAGES = 1000;

/** Knobs besides {@link CloudProviderOptions}. */
export interface SpritesOptions extends CloudProviderOptions {
  /** How long the sshd install may take (default 10 minutes). */
  execTimeoutMs?: number;
}

/**
 * Build the Sprites provider.
 *
 * @example
 * ```ts
 * import { createSpritesProvider } from "./provider.ts";
 * const p = createSpritesProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false },
 * );
 * p.features.has("tailscale"); // false
 * ```
 */
export function createSpritesProvider(
  ctx: ProviderContext,
  options: SpritesOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  const settings = () => spritesSettings(ctx.env, ctx.config);

  async function call(
    method: string,
    path: string,
    opts: { body?: unknown; signal?: AbortSignal; notFoundOk?: boolean } = {},
  ): Promise<unknown> {
    const { token, variable } = spritesToken(ctx.env);
    const { baseUrl } = settings();
    const what = `${method} ${path.split("?")[0]}`;
    const answer = await fetchWithRetry({
      provider: "sprites",
      api: "the Sprites API",
      host: new URL(baseUrl).host,
      what,
      rt,
      log: ctx.log,
      signal: opts.signal,
      secrets: () => [token],
      request: [
        opts.body === undefined ? undefined : JSON.stringify(opts.body),
        path.split("?")[1],
      ],
      send: () =>
        ctx.fetch(`${baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: opts.signal,
        }),
      retryDelayMs: (a, attempt) => {
        if (a.status === 429) {
          const err = parseSpritesError(a.status, a.text);
          return isConcurrencyLimit(err)
            ? undefined
            : rateLimitWaitMs(a.headers, err.retryAfterSeconds, rt.maxBackoffMs, rt.now());
        }
        return a.status >= 500 && method !== "POST"
          ? backoffMs(attempt, 500, rt.maxBackoffMs)
          : undefined;
      },
    });
    if (answer.ok) return parseJsonAnswer("sprites", "Sprites", answer.text, what);
    if (answer.status === 404 && opts.notFoundOk) return undefined;
    throw spritesError(
      answer.status,
      parseSpritesError(answer.status, answer.text),
      what,
      variable,
    );
  }

  async function getSprite(name: string, signal?: AbortSignal): Promise<Sprite | undefined> {
    if (!isSpriteName(name)) return undefined;
    const json = await call("GET", `/v1/sprites/${name}`, { signal, notFoundOk: true });
    return json === undefined ? undefined : parseSprite(json);
  }

  async function listAll(signal?: AbortSignal): Promise<Sprite[]> {
    const out: Sprite[] = [];
    let token: string | undefined;
    for (let n = 0;; n++) {
      if (n >= MAX_PAGES) {
        throw new CrabboxError("provider", "sprites_pagination", "Sprites list did not end");
      }
      const page = parseSpritePage(await call("GET", listPath(token), { signal }));
      out.push(...page.sprites);
      if (page.next === undefined || page.next === token) return out;
      token = page.next;
    }
  }

  /** Run argv in the sprite over the exec WebSocket and collect its output. */
  async function exec(
    name: string,
    argv: string[],
    env: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    const { token } = spritesToken(ctx.env);
    const conn = await WsConnection.open(
      `Sprites exec in ${name}`,
      execUrl(settings().baseUrl, name, argv, env),
      { authorization: `Bearer ${token}` },
      { signal },
    );
    const result: ExecResult = { stdout: "", stderr: "" };
    const timeoutMs = options.execTimeoutMs ?? 600_000;
    const timer = setTimeout(() => conn.close(), timeoutMs);
    try {
      while (true) {
        const m = await conn.next();
        if (m === undefined) break;
        if (typeof m !== "string" && collectFrame(result, m)) break;
      }
    } finally {
      clearTimeout(timer);
      conn.close();
    }
    if (result.code === undefined) {
      throw new CrabboxError(
        "provider",
        "sprites_exec_failed",
        `Sprites exec in ${name} ended without an exit code (${
          conn.closeInfo?.reason || "closed"
        })`,
      );
    }
    return result;
  }

  function target(
    lease: { providerId: string; leaseId: string; labels: Record<string, string> },
    keyPath?: string,
  ): SshTarget {
    return {
      host: lease.providerId,
      port: 22,
      user: settings().sshUser,
      keyPath: keyPath ??
        clientKeyPath(ctx.home, { crew: lease.labels.crew, leaseId: lease.leaseId }),
      proxyCommand: proxyArgv({
        home: ctx.home,
        provider: "sprites",
        providerId: lease.providerId,
        leaseId: lease.leaseId,
        port: 22,
      }),
    };
  }

  function toLease(sprite: Sprite, keyPath?: string): ProviderLease | undefined {
    const lease = spriteToLease(sprite);
    return lease ? { ...lease, ssh: target(lease, keyPath) } : undefined;
  }

  async function deleteSprite(name: string, signal?: AbortSignal) {
    await call("DELETE", `/v1/sprites/${name}`, { signal, notFoundOk: true });
  }

  return {
    name: "sprites",
    features: new Set(["ssh"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      if (spec.tailscale) {
        throw new CrabboxError(
          "usage",
          "sprites_no_tailscale",
          "--tailscale is not supported on sprites (no kernel networking; SSH goes through the Sprites proxy)",
        );
      }
      const body = createSpriteBody(spec);
      ctx.log(`sprites: creating ${body.name}`);
      const created = parseSprite(await call("POST", "/v1/sprites", { body, signal }));
      return await finishCreate({
        provider: "sprites",
        what: `sprite ${created.name}`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          ctx.log(`sprites: installing sshd in ${created.name}`);
          const r = await exec(
            created.name,
            ["bash", "-lc", sshdInstallScript()],
            { [PUBLIC_KEY_ENV]: spec.sshPublicKey.trim() },
            signal,
          );
          if (r.code !== 0) {
            throw new CrabboxError(
              "provider",
              "sprites_sshd_install_failed",
              `installing sshd in sprite ${created.name} exited ${r.code}: ${
                r.stderr.trim().split("\n").pop() ?? ""
              }`,
            );
          }
          const lease = toLease(
            { ...created, labels: created.labels ?? body.labels },
            spec.sshKeyPath,
          );
          if (!lease?.ssh) {
            throw new CrabboxError(
              "provider",
              "sprites_bad_response",
              `sprite ${created.name} lost its crabbox labels`,
            );
          }
          return lease;
        },
        remove: async () => {
          await deleteSprite(created.name);
        },
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const crew = selector.crew === undefined
        ? undefined
        : assertSelectorValue("crew", selector.crew);
      const out: ProviderLease[] = [];
      for (const listed of await listAll(signal)) {
        // List items may come without labels: read the sprite itself then.
        const sprite = listed.labels ? listed : await getSprite(listed.name, signal);
        const lease = sprite && toLease(sprite);
        if (lease && (crew === undefined || lease.labels.crew === crew)) out.push(lease);
      }
      return out;
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      const sprite = await getSprite(providerId, signal);
      return sprite ? toLease(sprite) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!isSpriteName(lease.providerId)) {
        throw badProviderIdError("sprites", lease.providerId, "a crabbox sprite name");
      }
      const sprite = await getSprite(lease.providerId, signal);
      if (!sprite) return;
      const owner = spriteToLease(sprite)?.leaseId;
      if (owner !== lease.leaseId) {
        throw notOursError("sprites", `sprite ${sprite.name}`, lease.leaseId, "deleting");
      }
      await deleteSprite(sprite.name, signal);
      ctx.log(`sprites: deleted ${sprite.name}`);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh ?? target(lease);
    },

    async openTunnel(
      lease: ProviderLease,
      port: number,
      signal?: AbortSignal,
    ): Promise<ByteTunnel> {
      if (!isSpriteName(lease.providerId)) {
        throw badProviderIdError("sprites", lease.providerId, "a sprite name");
      }
      const conn = await WsConnection.open(
        `Sprites proxy to ${lease.providerId}`,
        proxyUrl(settings().baseUrl, lease.providerId),
        { authorization: `Bearer ${spritesToken(ctx.env).token}` },
        { signal },
      );
      const timer = setTimeout(() => conn.close(), 30_000);
      try {
        await conn.send(proxyHello(port));
        checkProxyReply(await conn.next(), lease.providerId);
      } catch (e) {
        conn.close();
        throw e;
      } finally {
        clearTimeout(timer);
      }
      return conn.tunnel();
    },
  };
}
