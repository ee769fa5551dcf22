/**
 * Worker for the cross-process allocation test: leases N addresses for this process, prints
 * them as JSON, then holds them until its stdin closes.
 */
import { AddressPool } from "denobox/net";

const [stateDir, count] = Deno.args;
const pool = AddressPool.open({
  subnet: "10.77.0.0/24",
  name: "race",
  stateDir: stateDir!,
});
const got: string[] = [];
for (let i = 0; i < Number(count); i++) {
  got.push((await pool.lease(Deno.pid)).address);
}
console.log(JSON.stringify(got));
for await (
  const _ of Deno.stdin.readable
) { /* hold until the parent closes stdin */ }
