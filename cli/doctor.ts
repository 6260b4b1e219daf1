/**
 * `crabbox doctor [--crew NAME] [--online] [--json]`.
 *
 * @module
 */

import { command, flag, value } from "./args/command.ts";
import type { DoctorReport } from "../lib/doctor/checks.ts";
import { type CliIo, table } from "./output.ts";

const MARK = { ok: "ok  ", warn: "warn", skip: "skip", fail: "FAIL" } as const;

/** Render a report for a terminal. */
export function renderDoctorReport(report: DoctorReport): string {
  const lines: string[] = [];
  for (const c of report.checks) {
    lines.push(`${MARK[c.status]}  ${c.name.padEnd(9)}  ${c.message}`);
    const snippet = c.details?.snippet;
    if (typeof snippet === "string" && (c.status === "fail" || c.status === "skip")) {
      lines.push(...snippet.trimEnd().split("\n").map((l) => `        ${l}`));
    }
  }
  if (report.members && report.members.length > 1 && report.matrix) {
    const slugs = report.members.map((m) => m.slug);
    const cellFor = (from: string, to: string) => {
      if (from === to) return "-";
      const c = report.matrix!.find((x) => x.from === from && x.to === to)!;
      return c.verdict === "ok"
        ? c.reason.startsWith("ssh-peer") ? "OK (ssh-peer)" : "OK"
        : c.verdict === "via-operator"
        ? "via operator SSH-mesh"
        : `NO (${c.reason})`;
    };
    lines.push("", "reachability (row reaches column):");
    lines.push(
      table([
        ["from \\ to", ...slugs],
        ...slugs.map((f) => [f, ...slugs.map((t) => cellFor(f, t))]),
      ]),
    );
  }
  if (report.tailnetMatrix && report.tailnetMatrix.length > 0) {
    const cells = report.tailnetMatrix;
    const slugs = [...new Set(cells.flatMap((c) => [c.from, c.to]))].sort();
    const cellFor = (from: string, to: string) => {
      if (from === to) return "-";
      const c = cells.find((x) => x.from === from && x.to === to);
      if (!c) return "?";
      const ports = c.ports.map((p) => `${p.port}`).join(",");
      return c.verdict === "ok" ? `OK${ports ? ` tcp ${ports}` : ""}` : `NO (${c.reason})`;
    };
    lines.push("", "tailnet, measured from inside each member (row dials column by <slug>.cbx):");
    lines.push(
      table([
        ["from \\ to", ...slugs],
        ...slugs.map((f) => [f, ...slugs.map((t) => cellFor(f, t))]),
      ]),
    );
  }
  return lines.join("\n");
}

/** The `doctor` command, writing through `io`. */
export function doctorCommand(io: CliIo) {
  return command({
    name: "doctor",
    description: "check ssh, state, providers and (with --crew) every plane of a crew",
    options: {
      crew: value("--crew <name>", "also check this crew"),
      online: flag(
        "--online",
        "allow network calls: provider credentials, and with --crew a dial test from inside each tailnet member",
      ),
      json: flag("--json", "print the report as JSON"),
    },
    action: async (flags) => {
      const { runDoctor } = await import("../lib/doctor/checks.ts");
      const report = await runDoctor({ ...io.options, crew: flags.crew, online: flags.online });
      if (flags.json) io.printJson(report);
      else io.out(renderDoctorReport(report));
      io.status = report.ok ? 0 : 1;
    },
  });
}
