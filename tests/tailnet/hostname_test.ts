/** tailscale.hostname templates: rendering, DNS-label rules, the slug affixes. */

import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import { parseConfig } from "../../lib/core/config.ts";
import { renderTailnetHostname } from "../../lib/tailnet/hostname.ts";

const v = { crew: "pr-42", slug: "api", owner: "alice" };

Deno.test("renderTailnetHostname: default, placeholders, affixes around the slug", () => {
  assert.deepEqual(renderTailnetHostname(undefined, v), {
    hostname: "crabbox-api",
    prefix: "crabbox-",
    suffix: "",
  });
  assert.deepEqual(renderTailnetHostname("{owner}-{crew}-{slug}-box", v), {
    hostname: "alice-pr-42-api-box",
    prefix: "alice-pr-42-",
    suffix: "-box",
  });
});

Deno.test("renderTailnetHostname: not a DNS label, or {slug} missing/twice → usage error naming the template", () => {
  const bad: [string | undefined, typeof v][] = [
    ["{crew}", v],
    ["{slug}-{slug}", v],
    ["-{slug}", v],
    ["{slug}-", v],
    ["x".repeat(60) + "-{slug}", v],
    ["{crew}{slug}", { ...v, crew: undefined as unknown as string }],
  ];
  for (const [t, values] of bad.slice(0, 5)) {
    assert.throws(
      () => renderTailnetHostname(t, values),
      (e) =>
        e instanceof CrabboxError && e.exitStatus === 2 && e.code === "bad_tailscale_hostname" &&
        e.message.includes(JSON.stringify(t)),
      String(t),
    );
  }
  // Without a crew {crew} is empty: fine while the result is a label.
  assert.equal(renderTailnetHostname("{crew}{slug}", { slug: "api", owner: "a" }).hostname, "api");
});

Deno.test("config: tailscale.loginServer, tailscale.hostname and network are checked", async () => {
  const ok = await parseConfig(
    "network: tailscale\ntailscale:\n  loginServer: https://hs.example.com\n  hostname: '{crew}-{slug}'\n",
    "c.yaml",
    () => undefined,
    {},
  );
  assert.equal(ok.network, "tailscale");
  assert.equal(ok.tailscale.loginServer, "https://hs.example.com");
  assert.equal(ok.tailscale.hostname, "{crew}-{slug}");
  for (
    const text of [
      "network: vpn\n",
      "tailscale:\n  loginServer: 'https://x y'\n",
      "tailscale:\n  hostname: 'Crabbox-{slug}'\n",
      "tailscale:\n  hostname: '{id}-{slug}'\n",
      "tailscale:\n  bogus: 1\n",
    ]
  ) {
    await assert.rejects(
      parseConfig(text, "c.yaml", () => undefined, {}),
      (e) => e instanceof CrabboxError && e.kind === "config" && e.message.startsWith("c.yaml:"),
      text,
    );
  }
});
