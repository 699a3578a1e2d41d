/*
 * A freestanding real-mode guest that is saved mid-run and restored by
 * ktstr's own KVM VMM. Every vCPU takes a ticket (its index), then counts
 * COUNT iterations: each adds the loop register to ESI and increments its
 * own counter in memory at 0x800 + 4 * index. Under a spinlock it prints
 *
 *   cpu=<index> count=<memory counter> sum=<ESI>
 *
 * and writes the debug-exit port. A restore that lost memory, registers
 * or a vCPU prints other numbers, or nothing.
 */
    .code16
    .intel_syntax noprefix
    .globl _start
    .set COUNT, 0x00040000
_start:
    cli
    mov ax, 1
    lock xadd word ptr [0x700], ax
    movzx ebx, ax
    shl bx, 2
    add bx, 0x800
    xor esi, esi
    mov ecx, COUNT
count:
    add esi, ecx
    inc dword ptr [bx]
    dec ecx
    jnz count

lock:
    mov al, 1
    xchg byte ptr [0x600], al
    test al, al
    jnz lock

    mov al, 'c'
    call putc
    mov al, 'p'
    call putc
    mov al, 'u'
    call putc
    mov al, '='
    call putc
    mov eax, ebx
    sub eax, 0x800
    shr eax, 2
    call hex32
    mov al, ' '
    call putc
    mov al, 'n'
    call putc
    mov al, '='
    call putc
    mov eax, dword ptr [bx]
    call hex32
    mov al, ' '
    call putc
    mov al, 's'
    call putc
    mov al, '='
    call putc
    mov eax, esi
    call hex32
    mov al, '\n'
    call putc
    mov byte ptr [0x600], 0
    mov dx, 0x501
    out dx, al
spin:
    hlt
    jmp spin

    .include "real_mode_io.inc"
