/*
 * A tiny PVH kernel for ktstr's own KVM VMM: an ELF with the Xen
 * PHYS32_ENTRY note, entered in 32-bit protected mode with EBX pointing
 * at hvm_start_info, as a PVH vmlinux is. It prints on COM1:
 *
 *   PVH magic=<magic> cr0=<CR0> cs=<CS> cmdline=<text>
 *   RSDP <the 8 bytes at rsdp_paddr>
 *   MAP <addr> <size> <type>          (each memory map entry, hex)
 *   MOD <paddr> <size> <the module's first 8 bytes>
 *   IN <the first byte read from COM2, or ? after a long wait>
 *
 * With a command line starting "wait", it spins forever after the first
 * line instead (for the host's kill and timeout paths); with "flood", it
 * writes 'x' to COM1 forever.
 *
 * writes "CHANNEL\n" on COM2, then powers off through the FADT's sleep
 * control port (SLP_TYP 5 | SLP_EN = 0x34 to port 0x3c0).
 */
    .intel_syntax noprefix
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18            /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start

    .text
    .code32
    .globl pvh_start
pvh_start:
    cli
    mov esp, 0x80000
    mov ebp, ebx                 /* hvm_start_info */
    lea esi, s_magic
    call puts
    mov eax, [ebp]               /* magic */
    call hex32
    lea esi, s_cr0
    call puts
    mov eax, cr0
    call hex32
    lea esi, s_cs
    call puts
    xor eax, eax
    mov ax, cs
    call hex32
    lea esi, s_cmdline
    call puts
    mov esi, [ebp + 24]          /* cmdline_paddr */
    call puts
    call newline
    mov esi, [ebp + 24]
    cmp dword ptr [esi], 0x74696177 /* "wait" */
    jne 1f
spin:
    jmp spin
1:  cmp dword ptr [esi], 0x6f6f6c66 /* "floo" */
    jne 2f
flood:
    mov al, 'x'
    call putc
    jmp flood
2:
    lea esi, s_rsdp
    call puts
    mov esi, [ebp + 32]          /* rsdp_paddr */
    mov ecx, 8
    call putn
    call newline

    mov edi, [ebp + 40]          /* memmap_paddr */
    mov ecx, [ebp + 48]          /* memmap_entries */
map:
    test ecx, ecx
    jz modules
    lea esi, s_map
    call puts
    mov eax, [edi]               /* addr (low 32 bits) */
    call hex32
    call space
    mov eax, [edi + 8]           /* size (low 32 bits) */
    call hex32
    call space
    mov eax, [edi + 16]          /* type */
    call hex32
    call newline
    add edi, 24
    dec ecx
    jmp map

modules:
    cmp dword ptr [ebp + 12], 0  /* nr_modules */
    je finish
    mov edi, [ebp + 16]          /* modlist_paddr */
    lea esi, s_mod
    call puts
    mov eax, [edi]               /* paddr */
    call hex32
    call space
    mov eax, [edi + 8]           /* size */
    call hex32
    call space
    mov esi, [edi]
    mov ecx, 8
    call putn
    call newline

    jmp finish

    .set BITS, 32
    .include "common.inc"

s_magic:   .asciz "PVH magic="
s_cr0:     .asciz " cr0="
s_cs:      .asciz " cs="
s_cmdline: .asciz " cmdline="
