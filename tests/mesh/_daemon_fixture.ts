/**
 * A home with one leased member (`api`, exposing 8080, on an in-memory
 * provider) in crew `crew`, and a `daemon.json` from `state` — for the
 * checks that read a recorded `crew connect --export`.
 */
import { type DaemonState, renderDaemonState } from "../../lib/mesh/files.ts";
import { leaseBox } from "../../lib/lease/create.ts";
import type { Lease } from "../../lib/lease/leases.ts";
import { parseConfig } from "../../lib/core/config.ts";
import { type MeshPaths, meshPaths } from "../../lib/core/home.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

/** What {@link daemonFixture} made; dispose it to remove the home. */
export interface DaemonFixture extends AsyncDisposable {
  home: string;
  options: {
    home: string;
    env: (k: string) => string | undefined;
    config: Awaited<ReturnType<typeof parseConfig>>;
    providers: Record<string, ReturnType<typeof memoryProvider>>;
    log: () => void;
  };
  paths: MeshPaths;
  lease: Lease;
}

export async function daemonFixture(
  crew: string,
  state: (paths: MeshPaths, lease: Lease) => DaemonState,
): Promise<DaemonFixture> {
  const home = await Deno.makeTempDir({ prefix: "cbx-daemon-" });
  await Deno.chmod(home, 0o700);
  const vars: Record<string, string> = { CRABBOX_OWNER: "alice@example.com", HOME: home };
  const options = {
    home,
    env: (k: string) => vars[k],
    config: await parseConfig("", `${home}/config.yaml`, () => undefined, {}),
    providers: { cloudy: memoryProvider("cloudy") },
    log: () => {},
  };
  const lease = await leaseBox({ slug: "api", provider: "cloudy", expose: [8080] }, {
    ...options,
    crew,
  });
  const paths = meshPaths(home, crew);
  await Deno.mkdir(paths.dir, { recursive: true });
  await Deno.writeTextFile(paths.daemon, renderDaemonState(state(paths, lease)));
  return {
    home,
    options,
    paths,
    lease,
    [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }),
  };
}
