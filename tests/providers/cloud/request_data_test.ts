/**
 * The shared plumbing never lets a failed answer repeat the request: the
 * scrubber on every encoding a provider may echo in, fetchWithRetry (failed
 * answers only) and the REST client (JSON, form and query) against a local
 * server that echoes what it got.
 */

import assert from "node:assert/strict";
import {
  apiClient,
  capMessage,
  cloudRuntime,
  errorMessage,
  fetchWithRetry,
  REQUEST_DATA_MARKER,
  requestFragments,
  restError,
  scrubRequestData,
} from "../../../providers/cloud/mod.ts";
import { serveFake } from "../../fakes/fake_http.ts";
import { assertNoRequestData, ECHO_AUTH_KEY, ECHO_USER_DATA } from "../cloud_helpers.ts";

const JSON_BODY = JSON.stringify({
  name: "crabbox-api-0123abcd",
  server_type: "cpx22",
  user_data: ECHO_USER_DATA,
});
const B64_FORM = new URLSearchParams({
  Action: "RunInstances",
  InstanceType: "t3.small",
  UserData: btoa(ECHO_USER_DATA),
}).toString();

const scrub = (answer: string, ...sent: string[]) =>
  scrubRequestData(answer, requestFragments(sent));

Deno.test("request data: values, their lines and words, and base64 text are fragments; short codes are not", () => {
  const f = requestFragments([JSON_BODY]);
  assert.ok(f.includes(ECHO_USER_DATA));
  assert.ok(f.includes(`CRABBOX_TAILSCALE_AUTH_KEY=${ECHO_AUTH_KEY}`));
  assert.ok(f.includes(ECHO_AUTH_KEY));
  assert.ok(f.includes("crabbox-api-0123abcd"));
  assert.ok(!f.includes("cpx22"));
  const g = requestFragments([B64_FORM]);
  assert.ok(g.includes(btoa(ECHO_USER_DATA)), "the base64 value");
  assert.ok(g.includes(ECHO_USER_DATA), "and the text it encodes");
  assert.ok(g.includes(ECHO_AUTH_KEY));
  assert.ok(!g.includes("RunInstances") && !g.includes("t3.small"));
  assert.deepEqual(requestFragments([undefined, ""]), []);
});

Deno.test("request data: every echo form is replaced (raw, JSON, Go's \\u003c JSON, XML, URL, partial)", () => {
  const cases: [string, string][] = [
    ["plain text echo of the JSON body", `invalid input: ${JSON_BODY}`],
    [
      "JSON envelope with the body in its message",
      JSON.stringify({ error: { code: "invalid_input", message: `bad: ${JSON_BODY}` } }),
    ],
    [
      "JSON envelope with the user data decoded",
      JSON.stringify({ error: { message: `user_data invalid: ${ECHO_USER_DATA}` } }),
    ],
    [
      "Go's HTML-safe JSON escaping",
      JSON.stringify({ message: `bad: <${ECHO_USER_DATA}>` }).replace(/</g, "\\u003c")
        .replace(/>/g, "\\u003e"),
    ],
    [
      "XML entity-escaped (EC2 style)",
      `<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad &apos;${
        ECHO_USER_DATA.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/"/g, "&quot;")
      }&apos;</Message></Error></Errors></Response>`,
    ],
    ["URL-encoded echo", `bad parameter: ${B64_FORM}`],
    ["one line only", `unexpected line: export CRABBOX_TAILSCALE_AUTH_KEY=${ECHO_AUTH_KEY}`],
    ["the key alone", `{"message":"bad key ${ECHO_AUTH_KEY} (truncated"}`],
  ];
  for (const [what, answer] of cases) {
    const out = scrub(answer, JSON_BODY, B64_FORM);
    assert.ok(out.includes(REQUEST_DATA_MARKER), `${what}: ${out}`);
    try {
      assertNoRequestData(out);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  }
  // What was not sent stays.
  assert.equal(
    scrub('{"error":{"code":"invalid_input","message":"server type cpx99 unknown"}}', JSON_BODY),
    '{"error":{"code":"invalid_input","message":"server type cpx99 unknown"}}',
  );
  assert.equal(scrub("plain", ""), "plain");
});

Deno.test("request data: capMessage keeps at most 300 characters; errorMessage caps JSON fields too", () => {
  assert.equal(capMessage("  short  "), "short");
  assert.equal(capMessage("x".repeat(1000)).length, 300);
  assert.ok(capMessage("x".repeat(1000)).endsWith("…"));
  assert.equal(errorMessage(JSON.stringify({ message: "y".repeat(1000) })).length, 300);
  assert.equal(errorMessage("z".repeat(1000)).length, 300);
});

Deno.test("fetchWithRetry scrubs failed answers only", async () => {
  const answer = (status: number) =>
    fetchWithRetry({
      provider: "x",
      api: "the X API",
      host: "x.test",
      what: "POST /boxes",
      send: () => Promise.resolve(new Response(`echo: ${JSON_BODY}`, { status })),
      secrets: () => [],
      request: [JSON_BODY],
      retryDelayMs: () => undefined,
      rt: { maxRetries: 0, sleep: () => Promise.resolve() },
      log: () => {},
    });
  const failed = await answer(422);
  assert.equal(failed.text, `echo: ${REQUEST_DATA_MARKER}`);
  const ok = await answer(200);
  assert.equal(ok.text, `echo: ${JSON_BODY}`, "a 2xx answer is data, left as it is");
});

Deno.test("apiClient: a 422 echoing a JSON, form or query request never carries it into the error", async () => {
  // A REST API that answers every call 422 with what it received in `message`.
  const server = serveFake(async (req) =>
    Response.json({
      message: `invalid: ${new URL(req.url).search} ${await req.text()}`,
    }, { status: 422 })
  );
  try {
    const ctx = { home: "/tmp", env: () => undefined, config: {}, fetch, log: () => {} };
    const call = apiClient({
      provider: "demo",
      baseUrl: server.url,
      headers: () => ({}),
      secrets: () => [],
      fetch,
      rt: cloudRuntime(ctx, { waitForSsh: false }, 10),
      log: () => {},
      toError: (f) =>
        restError(f, errorMessage(f.text), {
          provider: "demo",
          label: "Demo",
          credentials: "DEMO_KEY",
          hint: "",
        }),
    });
    const requests = [
      { method: "POST" as const, path: "/pods", body: { json: { env: { INIT: ECHO_USER_DATA } } } },
      { method: "POST" as const, path: "/nodes/pve/qemu", body: { form: B64_FORM } },
      {
        method: "GET" as const,
        path: `/pods?filter=${encodeURIComponent(`key=${ECHO_AUTH_KEY}`)}`,
      },
    ];
    for (const r of requests) {
      await assert.rejects(call(r), (e: Error & { details?: unknown }) => {
        assert.match(e.message, /^Demo rejected (POST|GET) \/(pods|nodes\/pve\/qemu): invalid: /);
        assert.ok(e.message.includes(REQUEST_DATA_MARKER), e.message);
        assertNoRequestData(`${e.message}\n${JSON.stringify(e.details)}`);
        return true;
      });
    }
  } finally {
    await server.close();
  }
});
