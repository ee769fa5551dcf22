// denobox child routines for aarch64 (GNU as). Same contract as sandbox/arch/x86_64.S:
// denobox_routine interprets the syscall program (x0 = program), denobox_init is the entry of
// the tiny init executable. tests/sandbox/routine_test.ts re-assembles this file with
// aarch64-linux-gnu-as and compares the bytes with sandbox/_routine.ts.

  .text
  .globl denobox_routine
denobox_routine:
  mov x19, x0
  add x20, x19, #64
  mov x21, #0
next:
  ldr x8, [x20]
  cmn x8, #1
  b.eq end
  ldr x22, [x20, #56]
  ldr x0, [x20, #8]
  tbz x22, #0, 1f
  ldr x0, [x0]
1:
  ldr x1, [x20, #16]
  tbz x22, #1, 2f
  ldr x1, [x1]
2:
  ldr x2, [x20, #24]
  tbz x22, #2, 3f
  ldr x2, [x2]
3:
  ldr x3, [x20, #32]
  tbz x22, #3, 4f
  ldr x3, [x3]
4:
  ldr x4, [x20, #40]
  tbz x22, #4, 5f
  ldr x4, [x4]
5:
  ldr x5, [x20, #48]
  tbz x22, #5, 6f
  ldr x5, [x5]
6:
  svc #0
  str x0, [x20, #64]
  cmn x0, #4095
  b.cs failed
  tbz x22, #9, 7f
  ldr x9, [x20, #72]
  cmp x0, x9
  b.ne mismatch
7:
  tbz x22, #10, advance
  cbz x0, advance
  ldr x21, [x20, #72]
  mov x9, #80
  madd x20, x21, x9, x19
  add x20, x20, #64
  b next
advance:
  add x20, x20, #80
  add x21, x21, #1
  b next
failed:
  tbnz x22, #8, advance
  neg x0, x0
  b report
mismatch:
  mov x0, #125
report:
  str x0, [x20, #64]
  str x21, [x20, #72]
  ldr x8, [x19, #8]
  ldr x0, [x19]
  add x1, x20, #64
  mov x2, #16
  svc #0
end:
  ldr x8, [x19, #16]
  mov x0, #127
  svc #0
  b end

  .globl denobox_init
denobox_init:
  adr x19, params
  sub sp, sp, #384
  ldr x8, [x19, #48]
  mov x0, #4
  add x1, sp, #144
  mov x2, #16
  mov x3, #40
  svc #0
  cmp x0, #16
  b.ne init_failed
  ldr x8, [x19, #56]
  ldr x0, [sp, #144]
  ldr w1, [sp, #156]
  mov x2, #3
  mov x3, #2
  movk x3, #0x10, lsl #16
  mov x4, #4
  mov x5, #0
  svc #0
  ldr x9, [sp, #144]
  cmp x0, x9
  b.ne init_failed
  mov x25, x0
  mov x9, #3
  str x9, [x25]
  ldr x8, [x19, #64]
  mov x0, #0x4111
  mov x1, #0
  mov x2, #0
  mov x3, #0
  mov x4, #0
  svc #0
  cmp x0, #0
  b.lt init_failed
  b.ne started
  ldr w21, [sp, #152]
  mov x19, x25
  mov x9, #80
  madd x20, x21, x9, x19
  add x20, x20, #64
  b next
started:
  mov x23, x0
  mov x26, #0
  str xzr, [sp, #144]
  mov x9, #-1
  str x9, [sp, #152]
  ldr x8, [x19, #8]
  mov x0, #3
  add x1, sp, #144
  mov x2, #16
  svc #0
  mov x9, #-1
  str x9, [sp, #128]
  ldr x8, [x19, #16]
  mov x0, #-1
  add x1, sp, #128
  mov x2, #8
  mov x3, #0x80000
  svc #0
  mov x24, x0
wait_signal:
  ldr x8, [x19]
  mov x0, x24
  mov x1, sp
  mov x2, #128
  svc #0
  cmp x0, #128
  b.ne wait_signal
  ldr w1, [sp]
  cmp w1, #17
  b.eq reap
  ldr x8, [x19, #32]
  mov x0, x23
  svc #0
  b wait_signal
reap:
  ldr x8, [x19, #24]
  mov x0, #-1
  add x1, sp, #136
  mov x2, #1
  movk x2, #0x4000, lsl #16
  add x3, sp, #192
  svc #0
  cmp x0, #0
  b.le wait_signal
  ldr x9, [sp, #224]
  cmp x9, x26
  csel x26, x9, x26, gt
  cmp x0, x23
  b.ne reap
  mov x9, #-2
  str x9, [sp, #144]
  ldr w9, [sp, #136]
  str x9, [sp, #152]
  mov x9, #-4
  str x9, [sp, #160]
  str x26, [sp, #168]
  ldr x8, [x19, #8]
  mov x0, #3
  add x1, sp, #144
  mov x2, #32
  svc #0
  ldr w9, [sp, #136]
  and w0, w9, #0x7f
  cbz w0, exited
  add w0, w0, #128
  b leave
exited:
  ubfx w0, w9, #8, #8
leave:
  ldr x8, [x19, #40]
  svc #0
  b leave
init_failed:
  neg x0, x0
  cmp x0, #0
  b.gt 8f
  mov x0, #5
8:
  str x0, [sp, #144]
  mov x9, #-5
  str x9, [sp, #152]
  ldr x8, [x19, #8]
  mov x0, #3
  add x1, sp, #144
  mov x2, #16
  svc #0
  mov x0, #127
  b leave

  .balign 8

params:
  .quad 0, 0, 0, 0, 0, 0, 0, 0, 0
