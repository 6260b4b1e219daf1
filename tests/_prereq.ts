/**
 * Tests that need a system tool (ssh-keygen, cloud-init, PyYAML): with
 * `CRABBOX_E2E=required` (CI) they always run, so a missing tool fails them;
 * otherwise a missing tool skips them with a loud `SKIPPED` line on stderr.
 *
 * @module
 */

/** Whether `cmd args…` runs and exits 0 here. */
export async function toolWorks(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * The `ignore` value for a test that needs `what`: `false` when it is
 * present or required (the test then runs; it must assert `present` first),
 * `true` with a loud SKIPPED line otherwise.
 */
export function skipWithout(present: boolean, what: string): boolean {
  if (present || Deno.env.get("CRABBOX_E2E") === "required") return false;
  console.error(
    `\n*** SKIPPED: ${what} is missing (set CRABBOX_E2E=required to fail instead) ***\n`,
  );
  return true;
}

/** Fail the running test when a required tool is missing. */
export function assertTool(present: boolean, what: string): void {
  if (!present) throw new Error(`${what} is required (CRABBOX_E2E=required) but missing`);
}
