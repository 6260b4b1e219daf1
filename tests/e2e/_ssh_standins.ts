/**
 * SSH endpoints that stand in for how cloud providers expose a box, built on
 * a real `local` box: a port relay (RunPod's mapped public port), and a
 * second sshd inside the box's network namespace with its own users (a CI
 * agent's `semaphore` user with a handed-out key; a gateway where an access
 * token is the user name and needs no key). The extra users live only in a
 * private mount namespace (bind-mounted passwd/shadow copies), so nothing on
 * the host changes. Every process is started here and stopped by its pid.
 *
 * @module
 */

/** A running stand-in endpoint. */
export interface StandIn extends AsyncDisposable {
  /** Host-side address. */
  host: string;
  /** Host-side port. */
  port: number;
  /** Stop every process it started (by pid) and remove its files. */
  stop(): Promise<void>;
}

/** A stand-in sshd: a {@link StandIn} whose users can get keys later (cloud-init at boot). */
export interface SshStandIn extends StandIn {
  /** Authorize `publicKey` for `user` (which must be one of the stand-in's users). */
  authorize(user: string, publicKey: string): void;
}

/** A user of the stand-in sshd. */
export interface StandInUser {
  /** Login name (a token for the gateway stand-in). */
  name: string;
  /** Public key line accepted for this user. */
  authorizedKey?: string;
  /** Accept this user with no credential at all (the token in the name is the credential). */
  noAuth?: boolean;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(
  host: string,
  port: number,
  child: Deno.ChildProcess,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  let exited = false;
  child.status.then(() => exited = true);
  while (Date.now() < deadline && !exited) {
    try {
      const c = await Deno.connect({ hostname: host, port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port}`);
}

function startLogged(args: string[], log: string): Deno.ChildProcess {
  const file = Deno.openSync(log, { write: true, create: true, append: true });
  const child = new Deno.Command(args[0], {
    args: args.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  child.stderr.pipeTo(file.writable).catch(() => {});
  return child;
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
}

/**
 * A TCP relay from `127.0.0.1:<free port>` to `target` (RunPod's public port
 * mapped to a box's sshd).
 */
export async function startPortRelay(target: { host: string; port: number }): Promise<StandIn> {
  const dir = await Deno.makeTempDir({ prefix: "cbx-relay-" });
  const port = freePort();
  const child = startLogged([
    "socat",
    `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
    `TCP:${target.host}:${target.port}`,
  ], `${dir}/relay.log`);
  await waitPort("127.0.0.1", port, child, "port relay");
  const stop = async () => {
    await stopChild(child);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return { host: "127.0.0.1", port, stop, [Symbol.asyncDispose]: stop };
}

/**
 * A second sshd inside a local box's network namespace (`netns`, the box's
 * lease id) on 127.0.0.1:2222, reached from the host through a relay on
 * `127.0.0.1:<free port>`, with `users` added to a private passwd/shadow.
 * Users are uid 0 (the box runs as root) with their own names, so sshd sets
 * `$USER` to the login name.
 */
export async function startSshStandIn(
  netns: string,
  hostname: string,
  users: StandInUser[],
  options: { address?: string } = {},
): Promise<SshStandIn> {
  if (!/^cbx-[0-9a-f]{12}$/.test(netns)) throw new Error(`bad netns ${netns}`);
  const dir = await Deno.makeTempDir({ prefix: "cbx-standin-" });
  await Deno.chmod(dir, 0o700);
  const keygen = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/host_key`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!keygen.success) throw new Error("ssh-keygen failed");
  await Deno.mkdir(`${dir}/keys`);
  let passwd = await Deno.readTextFile("/etc/passwd");
  let shadow = await Deno.readTextFile("/etc/shadow").catch(() => "");
  const day = Math.floor(Date.now() / 86_400_000);
  for (const u of users) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(u.name)) throw new Error(`bad user ${u.name}`);
    passwd += `${u.name}:x:0:0:${u.name}:/root:/bin/sh\n`;
    shadow += u.noAuth ? `${u.name}::${day}:0:99999:7:::\n` : `${u.name}:*:${day}:0:99999:7:::\n`;
    await Deno.writeTextFile(
      `${dir}/keys/${u.name}`,
      u.authorizedKey ? `${u.authorizedKey.trim()}\n` : "",
    );
  }
  await Deno.writeTextFile(`${dir}/passwd`, passwd);
  await Deno.writeTextFile(`${dir}/shadow`, shadow, { mode: 0o600 });
  const noAuth = users.some((u) => u.noAuth);
  await Deno.writeTextFile(
    `${dir}/sshd_config`,
    [
      "ListenAddress 127.0.0.1:2222",
      `HostKey ${dir}/host_key`,
      `AuthorizedKeysFile ${dir}/keys/%u`,
      "PermitRootLogin yes",
      "PubkeyAuthentication yes",
      `PasswordAuthentication ${noAuth ? "yes" : "no"}`,
      `PermitEmptyPasswords ${noAuth ? "yes" : "no"}`,
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      "AllowTcpForwarding yes",
      "PidFile none",
      "UseDNS no",
      "PrintMotd no",
      "",
    ].join("\n"),
  );
  const script =
    'hostname "$1" && mount --bind "$2" /etc/passwd && mount --bind "$3" /etc/shadow && ' +
    'exec /usr/sbin/sshd -D -e -f "$4"';
  const sshd = startLogged([
    "ip",
    "netns",
    "exec",
    netns,
    "unshare",
    "--mount",
    "--uts",
    "--",
    "sh",
    "-c",
    script,
    "sh",
    hostname,
    `${dir}/passwd`,
    `${dir}/shadow`,
    `${dir}/sshd_config`,
  ], `${dir}/sshd.log`);
  const address = options.address ?? "127.0.0.1";
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) throw new Error(`bad address ${address}`);
  const port = options.address ? 22 : freePort();
  const relay = startLogged([
    "socat",
    `TCP-LISTEN:${port},bind=${address},reuseaddr,fork`,
    `EXEC:ip netns exec ${netns} socat STDIO TCP\\:127.0.0.1\\:2222`,
  ], `${dir}/relay.log`);
  const stop = async () => {
    await stopChild(relay);
    await stopChild(sshd);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitPort(address, port, relay, "stand-in relay");
    // The relay listens at once; wait until sshd itself answers through it.
    const deadline = Date.now() + 10_000;
    while (true) {
      const c = await Deno.connect({ hostname: address, port });
      const buf = new Uint8Array(64);
      const n = await Promise.race([
        c.read(buf),
        new Promise<null>((r) => setTimeout(() => r(null), 1000)),
      ]);
      c.close();
      if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("SSH-")) break;
      if (Date.now() > deadline) {
        throw new Error(
          `stand-in sshd did not answer: ${await Deno.readTextFile(`${dir}/sshd.log`).catch(() =>
            ""
          )}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const authorize = (user: string, publicKey: string) => {
    if (!users.some((u) => u.name === user)) throw new Error(`no stand-in user ${user}`);
    Deno.writeTextFileSync(`${dir}/keys/${user}`, `${publicKey.trim()}\n`, { append: true });
  };
  return { host: address, port, stop, authorize, [Symbol.asyncDispose]: stop };
}
