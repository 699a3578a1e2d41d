/*
 * A freestanding real-mode guest for ktstr's own KVM VMM. Every vCPU
 * starts here at 0x1000 with CS=DS=SS=0 (DS limit 4 GiB, set by the host)
 * and its own stack. Under a spinlock it prints one line on COM1:
 *
 *   L=<LAPIC ID reg> A=<CPUID.1 EBX> B0=<0xB.0 EAX>,<EBX>,<EDX> B1=<0xB.1 EAX>,<EBX> C3=<4.3 EAX>
 *
 * then writes the debug-exit port to end its vCPU.
 */
    .code16
    .intel_syntax noprefix
    .globl _start
_start:
    cli
lock:
    mov al, 1
    xchg byte ptr [0x600], al
    test al, al
    jnz lock

    mov al, 'L'
    call tag
    addr32 mov eax, dword ptr [0xfee00020]
    call hex32

    mov al, 'A'
    call tag
    mov eax, 1
    cpuid
    mov eax, ebx
    call hex32

    mov si, 'B' | ('0' << 8)
    call tag2
    mov eax, 0xb
    xor ecx, ecx
    cpuid
    push edx
    push ebx
    call hex32
    call comma
    pop eax
    call hex32
    call comma
    pop eax
    call hex32

    mov si, 'B' | ('1' << 8)
    call tag2
    mov eax, 0xb
    mov ecx, 1
    cpuid
    push ebx
    call hex32
    call comma
    pop eax
    call hex32

    mov si, 'C' | ('3' << 8)
    call tag2
    mov eax, 4
    mov ecx, 3
    cpuid
    call hex32

    mov al, '\n'
    call putc
    mov byte ptr [0x600], 0
    mov dx, 0x501
    out dx, al
spin:
    hlt
    jmp spin

/* " X=" for the letter in AL (no leading space for L). */
tag:
    cmp al, 'L'
    je 1f
    push ax
    mov al, ' '
    call putc
    pop ax
1:  call putc
    mov al, '='
    jmp putc

/* " XY=" for the two letters in SI. */
tag2:
    mov al, ' '
    call putc
    mov ax, si
    call putc
    mov al, ah
    call putc
    mov al, '='
    jmp putc

comma:
    mov al, ','
    jmp putc

    .include "real_mode_io.inc"
