/**
 * Runs the escape suite in this process and prints one JSON object: attack name →
 * { attack: verdict, control: verdict | "skipped: reason" } (a verdict is null when as
 * expected, else the reason). tests/security/escape_test.ts runs it as uid 65534 through
 * runAsNobody for the rootless half; args: a JSON `{ cgroup?: { parent, box } }`.
 */
import { ATTACKS, Lab, runAttack, verdict } from "./_attacks.ts";

/** One attack's results. */
export interface AttackReport {
  attack: string | null;
  control: string | null;
}

/** Runs every attack and control that applies to this user. */
export async function runSuite(
  options: { cgroup?: { parent: string; box: string } } = {},
): Promise<Record<string, AttackReport>> {
  const out: Record<string, AttackReport> = {};
  await using lab = await Lab.create(options);
  const root = Deno.uid() === 0;
  for (const attack of ATTACKS) {
    if (!root && attack.rootOnly) continue;
    if (attack.name.includes("cgroup") && !lab.cgroup) continue;
    const report: AttackReport = { attack: null, control: null };
    try {
      const expect = typeof attack.expect === "function"
        ? attack.expect(lab)
        : attack.expect;
      report.attack = verdict(await runAttack(lab, attack, false), expect);
    } catch (e) {
      report.attack = `threw: ${(e as Error).message}`;
    }
    if (!root && attack.controlNeedsRoot) {
      report.control = `skipped: ${attack.controlNeedsRoot}`;
    } else {
      try {
        const c = attack.control;
        const expect = typeof c.expect === "function"
          ? c.expect(lab)
          : c.expect;
        report.control = verdict(await runAttack(lab, attack, true), expect);
      } catch (e) {
        report.control = `threw: ${(e as Error).message}`;
      }
    }
    out[attack.name] = report;
  }
  return out;
}

if (import.meta.main) {
  const options = JSON.parse(Deno.args[0] ?? "{}");
  console.log(JSON.stringify(await runSuite(options)));
}
