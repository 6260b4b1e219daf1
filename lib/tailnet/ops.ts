/**
 * The default {@link TailnetOps}: the Tailscale API client configured from
 * the runtime's environment (`TS_API_KEY` or an OAuth client) and fetch.
 *
 * @module
 */

import type { Runtime } from "../runtime.ts";
import type { TailnetOps } from "./join.ts";

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
export async function defaultTailnetOps(rt: Runtime): Promise<TailnetOps> {
  const { tailnetCredentialsFrom } = await import("./config.ts");
  const creds = tailnetCredentialsFrom(rt.env);
  const usable = creds.auth !== "none" && creds.problem === undefined;
  let client: import("./api.ts").TailnetClient | undefined;
  const getClient = async () => {
    if (!client) {
      const { tailnetClientFromEnv } = await import("./api.ts");
      client = tailnetClientFromEnv(rt.env, { fetch: rt.fetch, signal: rt.signal });
    }
    return client;
  };
  return {
    canMint: usable,
    hasApiKey: creds.auth === "api-key",
    async ensurePolicy(tag) {
      const { ensureTailnetPolicy } = await import("./ensure.ts");
      return await ensureTailnetPolicy({ tag, client: await getClient() });
    },
    async mintKey(tags, description) {
      const { mintAuthKey } = await import("./keys.ts");
      return (await mintAuthKey({ tags, description, client: await getClient() })).key;
    },
  };
}
