/**
 * A fake exe.dev HTTPS API on 127.0.0.1: `POST /exec` only, Bearer auth
 * (401 otherwise), a body of at most 64 KiB, the command text split by a
 * POSIX-style lexer (single/double quotes, backslashes; an unterminated quote
 * is an error), and `new` / `ls` / `rm` / `whoami` with JSON answers —
 * `{"error": "…"}` for a bad flag, a duplicate or invalid name (lowercase
 * letters, digits and `-`, not ending in `-<digits>`), an unknown VM.
 * `ls` returns every VM of the account, including ones crabbox did not make
 * (`foreign`), so filtering by tag must happen client-side.
 *
 * Not modelled: the `X-Exe-Exit` trailer, the SSH lobby transport, the exact
 * tag charset and the per-key rate limit ([uncertain]; faults can inject a
 * 429 with `Retry-After`), images, `--setup-script`, regions.
 *
 * @module
 */

import { type FakeHttp, type RecordedRequest, redactedHeaders, serveFake } from "./fake_http.ts";

/** A VM in the fake. */
export interface FakeVm {
  /** Name. */
  vm_name: string;
  /** ssh destination. */
  ssh_dest: string;
  /** Status. */
  status: string;
  /** Tags. */
  tags: string[];
  /** The `new` flags other than name/tags, as given. */
  flags: Record<string, string>;
  /** `ls` reads left in `starting`. */
  startPolls?: number;
}

/** A queued fault for a command verb. */
export interface ExedevFault {
  /** Verb (`new`, `ls`, `rm`). */
  verb: string;
  /** HTTP status (200 with an error body is exe.dev's usual failure). */
  status?: number;
  /** Error text. */
  error: string;
  /** Retry-After seconds. */
  retryAfter?: number;
  /** How many calls (default 1). */
  times?: number;
}

/** Options. */
export interface FakeExedevOptions {
  /** Accepted token. */
  token?: string;
  /** The ssh_dest of a new VM (e.g. `root@127.77.x.y`); default `<name>.exe.xyz`. */
  sshDest?: (name: string) => string;
  /** VMs not made by crabbox, listed by `ls`. */
  foreign?: FakeVm[];
}

/** A running fake. */
export interface FakeExedev extends AsyncDisposable {
  /** Base URL for `CRABBOX_EXEDEV_API_URL`. */
  url: string;
  /** Token. */
  token: string;
  /** Requests (auth redacted; body = the command text). */
  requests: RecordedRequest[];
  /** Command argv of each request. */
  commands: string[][];
  /** VMs by name (foreign ones included). */
  vms: Map<string, FakeVm>;
  /** `ls` reads a new VM shows as `starting` before `running` (default 0: running at once). */
  startPolls: number;
  /** Queue a fault. */
  inject(fault: ExedevFault): void;
  /** Stop. */
  close(): Promise<void>;
}

/**
 * Split a command line like a POSIX shell (no expansions); `undefined` for an
 * unterminated quote.
 *
 * @example
 * ```ts
 * import { lexCommand } from "./exedev.ts";
 * lexCommand("new --name 'a b' \"c\\\"d\""); // ["new", "--name", "a b", 'c"d']
 * ```
 */
export function lexCommand(text: string): string[] | undefined {
  const out: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      i++;
      for (; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) i++;
        word += text[i];
      }
      if (i >= text.length) return undefined;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 < text.length) word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) out.push(word);
  return out;
}

const NEW_VALUE_FLAGS = new Set([
  "--name",
  "--tag",
  "--image",
  "--cpu",
  "--memory",
  "--disk",
  "--env",
  "--command",
  "--comment",
]);
const NEW_BOOL_FLAGS = new Set(["--json", "--no-email"]);

/**
 * Start the fake.
 *
 * @example
 * ```ts
 * import { startFakeExedev } from "./exedev.ts";
 * await using fake = startFakeExedev();
 * ```
 */
export function startFakeExedev(options: FakeExedevOptions = {}): FakeExedev {
  const token = options.token ?? "exe1.fake-test-token-0123456789";
  const vms = new Map<string, FakeVm>((options.foreign ?? []).map((v) => [v.vm_name, v]));
  const requests: RecordedRequest[] = [];
  const commands: string[][] = [];
  const faults: ExedevFault[] = [];
  const state = { startPolls: 0 };
  const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  const fail = (error: string) => json({ error });

  function run(argv: string[]): Response {
    const [verb, ...rest] = argv;
    const fi = faults.findIndex((f) => f.verb === verb);
    if (fi >= 0) {
      const f = faults[fi];
      if ((f.times ?? 1) <= 1) faults.splice(fi, 1);
      else faults[fi] = { ...f, times: (f.times ?? 1) - 1 };
      return json(
        { error: f.error },
        f.status ?? 200,
        f.retryAfter === undefined ? {} : { "retry-after": String(f.retryAfter) },
      );
    }
    switch (verb) {
      case "whoami":
        return json({ email: "tester@example.com" });
      case "ls":
        for (const a of rest) {
          if (!["--json", "--l", "-l"].includes(a)) return fail(`ls: unknown argument ${a}`);
        }
        return json({
          vms: [...vms.values()].map(({ flags: _f, ...v }) => ({
            ...v,
            ssh_host: v.ssh_dest.split("@").pop(),
          })),
        });
      case "rm": {
        const names = rest.filter((a) => a !== "--json");
        if (names.length !== 1 || names[0].startsWith("-")) return fail("rm: give one VM name");
        if (!vms.delete(names[0])) return fail(`VM ${names[0]} not found`);
        return json({ vm_name: names[0], status: "deleted" });
      }
      case "new": {
        const flags: Record<string, string> = {};
        const tags: string[] = [];
        for (let i = 0; i < rest.length; i++) {
          let [flag, value] = rest[i].split(/=(.*)/s, 2) as [string, string | undefined];
          if (NEW_BOOL_FLAGS.has(flag) && value === undefined) continue;
          if (!NEW_VALUE_FLAGS.has(flag)) return fail(`new: unknown flag ${flag}`);
          if (value === undefined) {
            value = rest[++i];
            if (value === undefined) return fail(`new: ${flag} needs a value`);
          }
          if (flag === "--tag") tags.push(value);
          else flags[flag.slice(2)] = value;
        }
        const name = flags.name;
        if (!name || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) {
          return fail(`invalid VM name ${JSON.stringify(name)}`);
        }
        if (/-[0-9]+$/.test(name)) return fail(`VM name ${name} must not end in -<digits>`);
        if (vms.has(name)) return fail("VM name already exists");
        delete flags.name;
        const vm: FakeVm = {
          vm_name: name,
          ssh_dest: options.sshDest?.(name) ?? `${name}.exe.xyz`,
          status: state.startPolls > 0 ? "starting" : "running",
          tags,
          flags,
          startPolls: state.startPolls,
        };
        vms.set(name, vm);
        const { flags: _f, startPolls: _p, ...view } = vm;
        return json({ ...view, https_url: `https://${name}.exe.xyz`, region: "lon" });
      }
      default:
        return fail(`unknown command ${JSON.stringify(verb ?? "")}`);
    }
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: redactedHeaders(req.headers, ["authorization"]),
      status: 0,
    };
    requests.push(rec);
    const answer = (r: Response) => (rec.status = r.status, r);
    if (url.pathname !== "/exec") return answer(json({ error: "not found" }, 404));
    if (req.method !== "POST") return answer(json({ error: "POST only" }, 405));
    if (req.headers.get("authorization") !== `Bearer ${token}`) {
      return answer(json({ error: "unauthorized: invalid or expired token" }, 401));
    }
    const body = await req.text();
    rec.body = body;
    if (new TextEncoder().encode(body).length > 64 * 1024) {
      return answer(json({ error: "command too long" }, 413));
    }
    const argv = lexCommand(body);
    if (!argv) return answer(fail("unterminated quote"));
    commands.push(argv);
    return answer(run(argv));
  }

  const server: FakeHttp = serveFake(handle);
  return {
    url: server.url,
    token,
    requests,
    commands,
    vms,
    get startPolls() {
      return state.startPolls;
    },
    set startPolls(n: number) {
      state.startPolls = n;
    },
    inject: (f) => faults.push(f),
    close: () => server.close(),
    [Symbol.asyncDispose]: () => server.close(),
  };
}
