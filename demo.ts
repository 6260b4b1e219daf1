/**
 * The quick-start demo: leases a crew of three `local` boxes (each serving
 * its own name on port 8080), lists them with `crabbox list --crew`, runs a
 * command on one, reaches every member through the SSH-mesh, and releases
 * them. Needs root and a few Debian packages: as root with `apt-get` it
 * installs the missing ones (printing the command), otherwise it says exactly
 * what to run and exits 6.
 *
 * ```sh
 * npx -y deno@2.9.6 task demo
 * ```
 *
 * @module
 */

import { CrabboxError, leaseCrew, listLeases } from "./mod.ts";
import { main } from "./cli.ts";
import {
  checkLocalPrerequisites,
  ensurePackages,
  LOCAL_REQUIREMENTS,
  localPrerequisiteError,
} from "./providers/local/mod.ts";

// First run: as root with apt-get, install what the local provider needs
// (printing the command); otherwise say the command and exit 6.
try {
  await ensurePackages(LOCAL_REQUIREMENTS, { log: (line) => console.log(line) });
} catch (e) {
  if (!(e instanceof CrabboxError)) throw e;
  console.error(`demo: ${e.message}`);
  Deno.exit(e.exitStatus);
}
const missing = checkLocalPrerequisites();
if (missing.length > 0) {
  const e = localPrerequisiteError(missing);
  console.error(`demo: ${e.message}`);
  if (e.hint) console.error(`hint: ${e.hint}`);
  Deno.exit(e.exitStatus);
}

const crew = `demo-${crypto.randomUUID().slice(0, 6)}`;
const ownHome = Deno.env.get("CRABBOX_HOME") === undefined;
const home = Deno.env.get("CRABBOX_HOME") ?? await Deno.makeTempDir({ prefix: "crabbox-demo-" });
Deno.env.set("CRABBOX_HOME", home);

const nameServer = (name: string) =>
  `setsid socat TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo ${name}' ` +
  `</dev/null >/dev/null 2>&1 &\n`;

const step = (text: string) => console.log(`\n== ${text}`);

try {
  step(`leasing crew ${crew}: api, db, web on the local provider`);
  const started = performance.now();
  await using leased = await leaseCrew(
    crew,
    ["api", "db", "web"].map((slug) => ({
      slug,
      provider: "local",
      expose: [8080],
      init: nameServer(slug),
    })),
    { home, log: (m) => console.log(`   ${m}`) },
  );
  console.log(
    `   ${leased.members.length} boxes up in ${((performance.now() - started) / 1000).toFixed(1)}s`,
  );

  step(`crabbox list --crew ${crew}`);
  await main(["list", "--crew", crew]);

  step(`crabbox run --id ${crew}/api -- hostname`);
  await main(["run", "--id", `${crew}/api`, "--", "hostname"]);

  step("each member's port 8080, reached by name through the SSH-mesh");
  const { connectCrew } = await import("./mod.ts");
  await using mesh = await connectCrew(crew, { home });
  for (const lease of await listLeases({ crew }, { home })) {
    const address = mesh.address(lease.slug, 8080);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(address.split(":")[1]) });
    const buf = new Uint8Array(64);
    const n = await conn.read(buf) ?? 0;
    conn.close();
    console.log(
      `   ${lease.slug}.cbx → ${address} answers ${
        new TextDecoder().decode(buf.subarray(0, n)).trim()
      }`,
    );
  }

  step(`releasing crew ${crew}`);
} catch (e) {
  if (e instanceof CrabboxError) {
    console.error(`demo: ${e.message}`);
    if (e.hint) console.error(`hint: ${e.hint}`);
    Deno.exit(e.exitStatus);
  }
  throw e;
}
if (ownHome) await Deno.remove(home, { recursive: true }).catch(() => {});
console.log("   released. done.");
