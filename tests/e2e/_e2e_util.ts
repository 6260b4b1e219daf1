/**
 * Small e2e helpers: a throwaway key pair for the provider stand-in tests
 * (a key a provider "hands out"), `pgrep -f`, and polling until something
 * shows.
 *
 * @module
 */

/** A generated ed25519 key pair in a temp dir. */
export interface TempKeyPair {
  /** Private key (OpenSSH PEM). */
  privateKey: string;
  /** Public key line. */
  publicKey: string;
  /** Remove the temp dir. */
  remove(): Promise<void>;
}

/** Generate an ed25519 key pair with ssh-keygen in a temp dir. */
export async function tempKeyPair(comment: string): Promise<TempKeyPair> {
  const dir = await Deno.makeTempDir({ prefix: "cbx-key-" });
  const out = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", `${dir}/id`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return {
    privateKey: await Deno.readTextFile(`${dir}/id`),
    publicKey: (await Deno.readTextFile(`${dir}/id.pub`)).trim(),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Pids of processes whose command line contains `pattern` (`pgrep -f`). */
export async function pgrep(pattern: string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", pattern], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** Poll `probe` every few ms until it returns a value (60 s at most). */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
