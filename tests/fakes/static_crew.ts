/**
 * A crabbox home holding a crew of one claimed member on the `ssh` provider
 * (a static host in config.yaml, its claim and its host record), so
 * `crew connect --json` plans a real crew and touches no box. Used by the
 * start-up test and `bench/startup.ts`.
 *
 * @module
 */

import { encodeLabels } from "../../lib/core/labels.ts";
import { ownerFor } from "../../lib/core/names.ts";
import { saveClaim } from "../../lib/lease/claims.ts";

/**
 * Fill `home` (existing, 0700) with crew `crew`: member `api` exposing 8080
 * on static host `rack1` (127.0.0.1:`port`), owned by `ownerEnv` (the
 * `CRABBOX_OWNER` the commands will run with).
 */
export async function writeStaticCrewHome(
  home: string,
  crew: string,
  ownerEnv: string,
  port = 22,
): Promise<void> {
  const id = "cbx-000000000001";
  const owner = await ownerFor({ env: (k) => (k === "CRABBOX_OWNER" ? ownerEnv : undefined) });
  const labels = encodeLabels({ leaseId: id, crew, slug: "api", expose: [8080], owner });
  const createdAt = new Date(0).toISOString();
  await Deno.writeTextFile(
    `${home}/config.yaml`,
    `ssh:\n  hosts:\n    - { name: rack1, host: 127.0.0.1, port: ${port} }\n`,
  );
  await Deno.mkdir(`${home}/ssh-hosts`, { mode: 0o700, recursive: true });
  await Deno.writeTextFile(
    `${home}/ssh-hosts/rack1.json`,
    JSON.stringify({ host: "rack1", leaseId: id, labels, createdAt }),
  );
  await saveClaim(home, {
    id,
    provider: "ssh",
    providerId: "rack1",
    crew,
    slug: "api",
    role: "api",
    owner,
    labels,
    expose: [8080],
    ssh: { host: "127.0.0.1", port, user: "root" },
    tailscale: false,
    createdAt,
    state: "active",
  });
}
