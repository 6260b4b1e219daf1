import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { apiBaseUrl, assertSelectorValue, configPort } from "../../../providers/cloud/common.ts";

const code = (f: () => unknown) => {
  try {
    f();
    return "ok";
  } catch (e) {
    assert.ok(e instanceof CrabboxError, String(e));
    return `${e.code}/${e.exitStatus}`;
  }
};

Deno.test("apiBaseUrl: https, or http on loopback; never credentials, a query or a fragment", () => {
  assert.equal(apiBaseUrl("X", "https://api.example.com/v1").href, "https://api.example.com/v1");
  assert.equal(apiBaseUrl("X", "http://127.0.0.1:8080/v1").port, "8080");
  assert.equal(code(() => apiBaseUrl("X", "http://[::1]:1/")), "ok");
  for (
    const bad of [
      "http://api.example.com/v1",
      "ftp://127.0.0.1/",
      "https://user:secret@api.example.com/",
      "https://user@api.example.com/",
      "https://:secret@api.example.com/",
      "https://api.example.com/v1?x=1",
      "https://api.example.com/v1#frag",
      "not a url",
    ]
  ) {
    assert.equal(code(() => apiBaseUrl("X", bad)), "bad_endpoint/2", bad);
  }
  try {
    apiBaseUrl("X", "https://user:hunter22@api.example.com/");
  } catch (e) {
    assert.ok(!(e as Error).message.includes("hunter22"), "the password is not echoed");
  }
});

Deno.test("assertSelectorValue: only valid label values reach a provider's filter", () => {
  assert.equal(assertSelectorValue("crew", "pr-42"), "pr-42");
  for (const bad of ["", "a b", "a,b", "a=b", "A", "x".repeat(64), "a\nb", "-a"]) {
    assert.equal(code(() => assertSelectorValue("crew", bad)), "bad_selector/2", bad);
  }
});

Deno.test("configPort: 1..65535, else a config error naming the key", () => {
  assert.equal(configPort({ sshPort: 65535 }, "hetzner", "sshPort", 22), 65535);
  assert.equal(configPort({}, "hetzner", "sshPort", 22), 22);
  for (const bad of [0, 65536, 22.5, "22"]) {
    assert.equal(
      code(() => configPort({ sshPort: bad }, "hetzner", "sshPort", 22)),
      "bad_config_value/11",
      String(bad),
    );
  }
});
