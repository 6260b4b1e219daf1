/**
 * The local provider's crew network on real boxes: members of one crew dial
 * each other's crew addresses; another crew, a box without a crew and the
 * host have no way in; each box sees its own /etc/hosts; releasing the last
 * member removes the crew namespace and its bridge.
 */
import assert from "node:assert/strict";
import { encodeLabels } from "../../lib/core/labels.ts";
import { newLeaseId } from "../../lib/core/names.ts";
import { createLocalProvider, crewNetNamespace } from "../../providers/local/mod.ts";
import type { ProviderLease } from "../../providers/types.ts";
import {
  boxSsh,
  localFixture,
  memberSpec,
  netnsNames,
  requireE2E,
  startNameServer,
} from "./_local.ts";

const enabled = requireE2E();

/** Dial ip:port from inside a box; the first line answered, or "" with the error. */
async function dial(
  from: ProviderLease,
  ip: string,
  port: number,
  kh: string,
): Promise<{ line: string; err: string }> {
  const r = await boxSsh(
    from.ssh!,
    ["socat", "-u", `TCP:${ip}:${port},connect-timeout=2`, "STDOUT"],
    kh,
  );
  return { line: r.stdout.trim(), err: r.stderr.trim() };
}

async function hostText(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

Deno.test({
  name:
    "e2e: local crew network: members dial each other's crew addresses; other crews, crewless boxes and the host cannot; last release removes the bridge namespace",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fx = await localFixture("neta");
    const made: ProviderLease[] = [];
    try {
      const [a1, a2] = await Promise.all([
        fx.provider.create(memberSpec(fx, "api")),
        fx.provider.create(memberSpec(fx, "db")),
      ]);
      made.push(a1, a2);
      const b1 = await fx.provider.create({ ...memberSpec(fx, "api"), crew: "netb" });
      made.push(b1);
      const loneId = newLeaseId();
      const lone = await fx.provider.create({
        ...memberSpec(fx, "lone"),
        leaseId: loneId,
        crew: undefined,
        labels: encodeLabels({ leaseId: loneId, slug: "lone" }),
      });
      made.push(lone);

      const ipA1 = String(a1.data?.crewAddress);
      const ipA2 = String(a2.data?.crewAddress);
      const ipB1 = String(b1.data?.crewAddress);
      assert.match(ipA1, /^10\.\d+\.\d+\.\d+$/);
      assert.match(ipA2, /^10\.\d+\.\d+\.\d+$/);
      assert.notEqual(ipA1, ipA2);
      assert.equal(ipA1.split(".").slice(0, 3).join("."), ipA2.split(".").slice(0, 3).join("."));
      assert.notEqual(
        ipB1.split(".").slice(0, 3).join("."),
        ipA1.split(".").slice(0, 3).join("."),
        "two crews of one home get different subnets",
      );
      assert.equal(lone.data?.crewAddress, undefined);

      const nsA = await crewNetNamespace(fx.home, "neta");
      const nsB = await crewNetNamespace(fx.home, "netb");
      const names = await netnsNames();
      assert.ok(names.includes(nsA) && names.includes(nsB), names.join(" "));

      const kh = fx.knownHostsFile;
      await startNameServer(a1.ssh!, fx.key.keyPath, 7001, "a1-api", "0.0.0.0");
      await startNameServer(a2.ssh!, fx.key.keyPath, 7002, "a2-db", "0.0.0.0");

      // Members of one crew dial each other.
      assert.equal((await dial(a2, ipA1, 7001, kh)).line, "a1-api");
      assert.equal((await dial(a1, ipA2, 7002, kh)).line, "a2-db");
      // Another crew and a crewless box cannot: no route into crew A's subnet.
      const fromB = await dial(b1, ipA1, 7001, kh);
      assert.equal(fromB.line, "", "another crew must not reach crew A");
      assert.match(fromB.err, /unreachable|refused|timed out/i);
      const fromLone = await dial(lone, ipA1, 7001, kh);
      assert.equal(fromLone.line, "");
      assert.match(fromLone.err, /unreachable|refused|timed out/i);
      // The host holds no address or route of a crew network (checked without sending traffic).
      const hostAddrs = await hostText("ip", ["-o", "addr"]);
      const hostRoutes = await hostText("ip", ["route"]);
      for (const ip of [ipA1, ipA2, ipB1]) {
        const subnet = ip.split(".").slice(0, 3).join(".") + ".";
        assert.ok(!hostAddrs.includes(subnet), `host has an address in ${subnet}0/24`);
        assert.ok(!hostRoutes.includes(subnet), `host has a route to ${subnet}0/24`);
      }
      assert.ok(!/\bvb-[0-9a-f]{12}\b/.test(await hostText("ip", ["-o", "link"])));

      // Each box sees its own /etc/hosts with its name on its crew address.
      const hostsA1 = await boxSsh(a1.ssh!, ["cat", "/etc/hosts"], kh);
      assert.match(hostsA1.stdout, new RegExp(`^${ipA1.replaceAll(".", "\\.")} crabbox-api$`, "m"));
      const hostsA2 = await boxSsh(a2.ssh!, ["cat", "/etc/hosts"], kh);
      assert.match(hostsA2.stdout, new RegExp(`^${ipA2.replaceAll(".", "\\.")} crabbox-db$`, "m"));
      assert.ok(!hostsA2.stdout.includes("crabbox-api"));
      const getent = await boxSsh(a1.ssh!, ["getent", "hosts", "crabbox-api"], kh);
      assert.equal(getent.stdout.trim().split(/\s+/)[0], ipA1);
      // The host's own /etc/hosts is untouched by the boxes.
      assert.ok(!(await Deno.readTextFile("/etc/hosts")).includes(ipA1));
      assert.equal(
        await Deno.readTextFile(`/etc/netns/${a1.providerId}/hosts`),
        hostsA1.stdout,
      );

      // Releasing one member keeps the crew network; the last one removes it.
      await fx.provider.delete(a1);
      made.splice(made.indexOf(a1), 1);
      assert.ok((await netnsNames()).includes(nsA));
      await assert.rejects(Deno.stat(`/etc/netns/${a1.providerId}`));
      assert.equal((await dial(a2, ipA1, 7001, kh)).line, "");
      await fx.provider.delete(a2);
      made.splice(made.indexOf(a2), 1);
      assert.ok(!(await netnsNames()).includes(nsA), "crew A's namespace is gone");
      assert.ok((await netnsNames()).includes(nsB), "crew B's network stays");
    } finally {
      for (const l of made) await fx.provider.delete(l).catch(() => {});
      await Deno.remove(fx.home, { recursive: true }).catch(() => {});
    }
    const left = await netnsNames();
    assert.ok(
      !left.includes(await crewNetNamespace(fx.home, "netb")),
      "crew B's namespace is gone",
    );
  },
});

Deno.test({
  name:
    "e2e: local privateSystem test mode: /etc, /usr/local, /var and /run writes stay in the box; /etc/hosts is /etc/netns/<id>/hosts and can be renamed over",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fx = await localFixture("priv");
    const provider = createLocalProvider({
      home: fx.home,
      env: () => undefined,
      config: { privateSystem: true },
      fetch,
      log: () => {},
    });
    const box = await provider.create(memberSpec(fx, "api"));
    const other = await provider.create(memberSpec(fx, "db"));
    const mark = `m${crypto.randomUUID().slice(0, 8)}`;
    try {
      const kh = fx.knownHostsFile;
      const script = [
        "set -e",
        `printf '#!/bin/sh\\necho ${mark}\\n' > /usr/local/bin/cbx-${mark}`,
        `chmod 755 /usr/local/bin/cbx-${mark}`,
        `mkdir -p /run/crabbox /var/lib/crabbox && echo ${mark} > /run/crabbox/${mark} && echo ${mark} > /var/lib/crabbox/${mark}`,
        `echo ${mark} > /etc/hosts.cbx`,
        // A rename over /etc/hosts works in this mode (no bind mount in the way).
        `cp /etc/hosts /etc/hosts.new && echo '10.9.9.9 ${mark}.cbx' >> /etc/hosts.new && mv /etc/hosts.new /etc/hosts`,
        `cbx-${mark}`,
      ].join("\n");
      const r = await boxSsh(box.ssh!, ["sh", "-s"], kh, script);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), mark);
      for (
        const p of [
          `/usr/local/bin/cbx-${mark}`,
          `/run/crabbox/${mark}`,
          `/var/lib/crabbox/${mark}`,
        ]
      ) {
        await assert.rejects(Deno.stat(p), `${p} leaked to the host`);
      }
      assert.ok(!(await Deno.readTextFile("/etc/hosts")).includes(mark));
      const hostCbx = await Deno.readTextFile("/etc/hosts.cbx").catch(() => "");
      assert.ok(!hostCbx.includes(mark), "the box's /etc/hosts.cbx leaked to the host");
      // The host sees the box's /etc changes under /etc/netns/<id>/.
      assert.match(await Deno.readTextFile(`/etc/netns/${box.providerId}/hosts`), new RegExp(mark));
      assert.equal(
        (await Deno.readTextFile(`/etc/netns/${box.providerId}/hosts.cbx`)).trim(),
        mark,
      );
      // Another box does not see them.
      const o = await boxSsh(other.ssh!, [
        "sh",
        "-c",
        `cat /etc/hosts.cbx /run/crabbox/${mark} 2>&1; command -v cbx-${mark} || true`,
      ], kh);
      assert.ok(
        !o.stdout.includes(`/usr/local/bin/cbx-${mark}`) && !o.stdout.includes(`${mark}\n`),
        o.stdout,
      );
    } finally {
      await provider.delete(box).catch(() => {});
      await provider.delete(other).catch(() => {});
      await Deno.remove(fx.home, { recursive: true }).catch(() => {});
    }
    await assert.rejects(Deno.stat(`/etc/netns/${box.providerId}`));
    await assert.rejects(Deno.stat(`/etc/netns/${box.providerId}.work`));
  },
});
