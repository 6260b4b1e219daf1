/**
 * A throwaway key pair for the provider stand-in e2e tests (a key a
 * provider "hands out").
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
