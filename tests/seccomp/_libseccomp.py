"""Builds a seccomp filter with libseccomp (Debian python3-seccomp) from a JSON description on
stdin and writes its BPF (struct sock_filter[]) to stdout. Used by the tests to cross-check
denobox's compiler. Input:
  {"arch": "x86_64"|"aarch64", "default": <u32 action>, "badArch": <u32 action>,
   "rules": [{"syscall": name|number, "action": <u32>, "args": [{"arg", "op", "a", "b"}]}]}
Rules whose action equals the default are skipped (libseccomp refuses them; they change
nothing)."""
import json, os, sys, tempfile
import seccomp

def action(v):
    kind, data = v & 0xFFFF0000, v & 0xFFFF
    if v == 0x7FFF0000: return seccomp.ALLOW
    if v == 0x80000000: return seccomp.KILL_PROCESS
    if v == 0: return seccomp.KILL
    if v == 0x00030000: return seccomp.TRAP
    if v == 0x7FFC0000: return seccomp.LOG
    if v == 0x7FC00000: return seccomp.NOTIFY
    if kind == 0x00050000: return seccomp.ERRNO(data)
    if kind == 0x7FF00000: return seccomp.TRACE(data)
    raise ValueError("unknown action %x" % v)

OPS = {"eq": seccomp.EQ, "ne": seccomp.NE, "lt": seccomp.LT, "le": seccomp.LE,
       "gt": seccomp.GT, "ge": seccomp.GE, "masked-eq": seccomp.MASKED_EQ}

spec = json.load(sys.stdin)
f = seccomp.SyscallFilter(defaction=action(spec["default"]))
f.set_attr(seccomp.Attr.ACT_BADARCH, action(spec["badArch"]))
if spec["arch"] == "aarch64":
    f.add_arch(seccomp.Arch.AARCH64)
    f.remove_arch(seccomp.Arch.NATIVE)
for r in spec["rules"]:
    if r["action"] == spec["default"]:
        continue
    args = []
    for c in r.get("args", []):
        if c["op"] == "masked-eq":
            args.append(seccomp.Arg(c["arg"], seccomp.MASKED_EQ, int(c["a"]), int(c["b"])))
        else:
            args.append(seccomp.Arg(c["arg"], OPS[c["op"]], int(c["a"])))
    f.add_rule(action(r["action"]), r["syscall"], *args)
with tempfile.TemporaryFile() as out:
    f.export_bpf(out)
    out.seek(0)
    sys.stdout.buffer.write(out.read())
