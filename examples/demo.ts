/**
 * denobox in one run, no download: a program in a sandbox on the built-in default root (a
 * read-only view of this host's /usr with a curated /etc), showing what it sees.
 * Run: `deno task demo` (root, or any user where user namespaces are enabled).
 */
import { spawn } from "denobox/sandbox";

const script = `
echo "I am PID $$ ($(cat /proc/1/cmdline | tr '\\0' ' ') is my init)"
echo "hostname: $(hostname)"
echo "network interfaces: $(ls /sys/class/net 2>/dev/null || ip -o link | cut -d: -f2)"
echo "my uid: $(id -u); uid map: $(cat /proc/self/uid_map | tr -s ' ')"
if [ -e /etc/shadow ]; then echo "/etc/shadow: VISIBLE"; else echo "/etc/shadow: absent"; fi
echo "/ holds: $(ls / | tr '\\n' ' ')"
echo "processes I can see: $(ls /proc | grep -c '^[0-9]')"
touch /usr/probe 2>/dev/null && echo "/usr: writable" || echo "/usr: read-only"
`;

await using box = await spawn({
  argv: ["/bin/sh", "-c", script],
  env: { PATH: "/usr/bin:/bin" },
  stdout: "pipe",
  stderr: "pipe",
});
const { status, stdout, stderr } = await box.output();
console.log(
  `Host: pid ${Deno.pid}, uid ${Deno.uid()}, sandbox init is host pid ${box.pid}`,
);
console.log(new TextDecoder().decode(stdout).trimEnd());
const err = new TextDecoder().decode(stderr).trim();
if (err) console.error(err);
console.log(`exit code ${status.code}`);
