# denobox child routines for x86_64 (GNU as, Intel syntax). The source of truth for the bytes in
# sandbox/_routine.ts; tests/sandbox/routine_test.ts re-assembles this file and compares.
#
# 1. denobox_routine(program): run by clone() in the child. Interprets a flat syscall program
#    (layout in sandbox/program.ts) and never returns. No stack use, no libc, no JS.
#      header: [0] control fd, [8] nr write, [16] nr exit_group; steps from offset 64,
#      80 bytes each: nr, arg0..arg5, flags, result, aux.
#      flags: bit i (0-5) = arg i is an address to load the argument from; bit 8 = a failure is
#      fine; bit 9 = the result must equal aux (else ECANCELED); bit 10 = when the result is
#      positive (the parent side of a fork), continue at step aux.
#      nr -1 ends the program. A failing step writes {errno, step index} (16 bytes) to the control
#      fd and exits with status 127.
# 2. denobox_init: the entry point of the tiny static init executable (see sandbox/_init.ts).
#    fd 3 is the control pipe, fd 4 the memfd holding the syscall program. It maps the program
#    at the address it had in the parent (header word 40) and vforks: the child runs the
#    command's steps from the index in header word 48 (low half; the high half is the size),
#    so the command starts from this one-page address space, not the parent's (its maxrss is
#    its own). Once the child has exec'd (or failed, having reported its error), init writes
#    {0, -1} ("started"). All signals arrive blocked; a signalfd receives them: SIGCHLD reaps
#    every child (zombies of orphans included), remembering the largest ru_maxrss; any other
#    signal is forwarded to the payload. When the payload is reaped, {-2, raw wait status} and
#    {-4, largest maxrss in KiB} go to the control pipe and init exits with its code (or
#    128 + signal). A failure of its own set-up is reported as {errno, -5}, then exit 127.
#    Syscall numbers come from the params block that the TypeScript side fills in:
#    read, write, signalfd4, wait4, kill, exit_group, pread64, mmap, clone.

  .intel_syntax noprefix
  .text
  .globl denobox_routine
denobox_routine:
  mov r12, rdi
  lea r13, [r12 + 64]
  xor r14d, r14d
next:
  mov rax, [r13]
  cmp rax, -1
  je end
  mov rbx, [r13 + 56]
  mov rdi, [r13 + 8]
  test bl, 1
  jz 1f
  mov rdi, [rdi]
1:
  mov rsi, [r13 + 16]
  test bl, 2
  jz 2f
  mov rsi, [rsi]
2:
  mov rdx, [r13 + 24]
  test bl, 4
  jz 3f
  mov rdx, [rdx]
3:
  mov r10, [r13 + 32]
  test bl, 8
  jz 4f
  mov r10, [r10]
4:
  mov r8, [r13 + 40]
  test bl, 16
  jz 5f
  mov r8, [r8]
5:
  mov r9, [r13 + 48]
  test bl, 32
  jz 6f
  mov r9, [r9]
6:
  syscall
  mov [r13 + 64], rax
  cmp rax, -4095
  jae failed
  test ebx, 0x200
  jz 7f
  cmp rax, [r13 + 72]
  jne mismatch
7:
  test ebx, 0x400
  jz advance
  test rax, rax
  jz advance
  mov r14, [r13 + 72]
  imul rax, r14, 80
  lea r13, [r12 + rax + 64]
  jmp next
advance:
  add r13, 80
  inc r14
  jmp next
failed:
  test ebx, 0x100
  jnz advance
  neg rax
  jmp report
mismatch:
  mov eax, 125
report:
  mov [r13 + 64], rax
  mov [r13 + 72], r14
  mov rax, [r12 + 8]
  mov rdi, [r12]
  lea rsi, [r13 + 64]
  mov edx, 16
  syscall
end:
  mov rax, [r12 + 16]
  mov edi, 127
  syscall
  jmp end

  .globl denobox_init
denobox_init:
  lea rbp, [rip + params]
  sub rsp, 384
  and rsp, -16
  # the program's header words 40 and 48: its address, and size << 32 | first command step
  mov rax, [rbp + 48]
  mov edi, 4
  lea rsi, [rsp + 144]
  mov edx, 16
  mov r10d, 40
  syscall
  cmp rax, 16
  jne init_failed
  # map it at the same address (our address space is nearly empty), copy-on-write
  mov rax, [rbp + 56]
  mov rdi, [rsp + 144]
  mov esi, [rsp + 156]
  mov edx, 3
  mov r10d, 0x100002
  mov r8d, 4
  xor r9d, r9d
  syscall
  cmp rax, [rsp + 144]
  jne init_failed
  mov r12, rax
  mov qword ptr [r12], 3
  # vfork the command: it runs the rest of the program in this small address space
  mov rax, [rbp + 64]
  mov edi, 0x4111
  xor esi, esi
  xor edx, edx
  xor r10d, r10d
  xor r8d, r8d
  syscall
  test rax, rax
  js init_failed
  jnz started
  mov r14d, [rsp + 152]
  imul rax, r14, 80
  lea r13, [r12 + rax + 64]
  jmp next
started:
  mov r15, rax
  xor ebx, ebx
  mov qword ptr [rsp + 144], 0
  mov qword ptr [rsp + 152], -1
  mov rax, [rbp + 8]
  mov edi, 3
  lea rsi, [rsp + 144]
  mov edx, 16
  syscall
  mov qword ptr [rsp + 128], -1
  mov rax, [rbp + 16]
  mov rdi, -1
  lea rsi, [rsp + 128]
  mov edx, 8
  mov r10d, 0x80000
  syscall
  mov r12, rax
wait_signal:
  mov rax, [rbp]
  mov rdi, r12
  mov rsi, rsp
  mov edx, 128
  syscall
  cmp rax, 128
  jne wait_signal
  mov esi, [rsp]
  cmp esi, 17
  je reap
  mov rax, [rbp + 32]
  mov rdi, r15
  syscall
  jmp wait_signal
reap:
  mov rax, [rbp + 24]
  mov rdi, -1
  lea rsi, [rsp + 136]
  mov edx, 0x40000001
  lea r10, [rsp + 192]
  syscall
  test rax, rax
  jle wait_signal
  mov rcx, [rsp + 224]
  cmp rcx, rbx
  jle 1f
  mov rbx, rcx
1:
  cmp rax, r15
  jne reap
  mov qword ptr [rsp + 144], -2
  mov eax, [rsp + 136]
  mov [rsp + 152], rax
  mov qword ptr [rsp + 160], -4
  mov [rsp + 168], rbx
  mov rax, [rbp + 8]
  mov edi, 3
  lea rsi, [rsp + 144]
  mov edx, 32
  syscall
  mov eax, [rsp + 136]
  mov edi, eax
  and edi, 0x7f
  jz exited
  add edi, 128
  jmp leave
exited:
  shr eax, 8
  and eax, 0xff
  mov edi, eax
leave:
  mov rax, [rbp + 40]
  syscall
  jmp leave
init_failed:
  neg rax
  jg 2f
  mov eax, 5
2:
  mov [rsp + 144], rax
  mov qword ptr [rsp + 152], -5
  mov rax, [rbp + 8]
  mov edi, 3
  lea rsi, [rsp + 144]
  mov edx, 16
  syscall
  mov edi, 127
  jmp leave

  .balign 8

params:
  .quad 0, 0, 0, 0, 0, 0, 0, 0, 0
