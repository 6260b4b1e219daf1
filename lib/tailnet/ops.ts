/**
 * The default {@link TailnetOps}: the Tailscale API client configured from
 * the runtime's environment (`TS_API_KEY` or an OAuth client) and fetch.
 *
 * @module
 */

import type { Runtime } from "../runtime.ts";
import type { TailnetOps } from "./join.ts";
import { tailnetCredentialsFrom } from "./config.ts";
import { type TailnetClient, tailnetClientFromEnv } from "./api.ts";
import { ensureTailnetPolicy } from "./ensure.ts";
import { mintAuthKey } from "./keys.ts";

/**
 * Build the Tailscale operations for a runtime. Loads the client lazily; no
 * network call happens until an operation runs.
 *
 * @example
 * ```ts
 * import { resolveRuntime } from "../runtime.ts";
 * import { defaultTailnetOps } from "./ops.ts";
 * const ops = await defaultTailnetOps(await resolveRuntime());
 * console.log(ops.canMint);
 * ```
 */
export function defaultTailnetOps(rt: Runtime): Promise<TailnetOps> {
  const creds = tailnetCredentialsFrom(rt.env);
  const usable = creds.auth !== "none" && creds.problem === undefined;
  let client: TailnetClient | undefined;
  const getClient = () => {
    if (!client) {
      client = tailnetClientFromEnv(rt.env, { fetch: rt.fetch, signal: rt.signal });
    }
    return client;
  };
  return Promise.resolve({
    canMint: usable,
    hasApiKey: creds.auth === "api-key",
    async ensurePolicy(tag) {
      return await ensureTailnetPolicy({ tag, client: getClient() });
    },
    async mintKey(tags, description) {
      return (await mintAuthKey({ tags, description, client: getClient() })).key;
    },
  });
}
