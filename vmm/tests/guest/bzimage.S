/*
 * A tiny bzImage for ktstr's own KVM VMM: a real setup header (boot
 * protocol 2.15, one setup sector, 64-bit entry), and at startup_64
 * (load address + 0x200) code entered in long mode with RSI pointing at
 * boot_params, as a Linux bzImage is. It prints on COM1 what the zero
 * page holds:
 *
 *   BZ loader=<type_of_loader> cr0=<CR0> cr4=<CR4> efer=<EFER> cs=<CS> cmdline=<text>
 *   RSDP <the 8 bytes at acpi_rsdp_addr>
 *   MAP <addr> <size> <type>          (each e820 entry, hex)
 *   MOD <ramdisk_image> <ramdisk_size> <the initrd's first 8 bytes>
 *   IN <the first byte read from COM2, or ? after a long wait>
 *
 * writes "CHANNEL\n" on COM2, then powers off (0x34 to port 0x3c0).
 * Built with `as --64` and `objcopy -O binary`.
 */
    .intel_syntax noprefix
    .text
    .org 0x1f1
    .byte 1                      /* setup_sects */
    .org 0x1fe
    .word 0xaa55                 /* boot_flag */
    .word 0                      /* jump */
    .ascii "HdrS"                /* header */
    .word 0x020f                 /* version */
    .org 0x211
    .byte 1                      /* loadflags: LOADED_HIGH */
    .org 0x214
    .long 0x100000               /* code32_start */
    .org 0x22c
    .long 0x7fffffff             /* initrd_addr_max */
    .long 0x200000               /* kernel_alignment */
    .byte 0                      /* relocatable_kernel */
    .byte 0                      /* min_alignment */
    .word 1                      /* xloadflags: XLF_KERNEL_64 */
    .long 2047                   /* cmdline_size */
    .org 0x260
    .long 0x10000                /* init_size */
    .org 0x400                   /* the protected-mode part: 0x100000 */
startup_32:
    hlt
    jmp startup_32
    .org 0x600                   /* startup_64: 0x100200 */
    .code64
startup_64:
    cli
    mov rbp, rsi                 /* boot_params */
    lea rsi, [rip + s_loader]
    call puts
    movzx eax, byte ptr [rbp + 0x210]
    call hex32
    lea rsi, [rip + s_cr0]
    call puts
    mov rax, cr0
    call hex32
    lea rsi, [rip + s_cr4]
    call puts
    mov rax, cr4
    call hex32
    lea rsi, [rip + s_efer]
    call puts
    mov ecx, 0xc0000080
    rdmsr
    call hex32
    lea rsi, [rip + s_cs]
    call puts
    xor eax, eax
    mov ax, cs
    call hex32
    lea rsi, [rip + s_cmdline]
    call puts
    mov esi, [rbp + 0x228]       /* cmd_line_ptr */
    call puts
    call newline

    lea rsi, [rip + s_rsdp]
    call puts
    mov rsi, [rbp + 0x70]        /* acpi_rsdp_addr */
    mov ecx, 8
    call putn
    call newline

    lea rdi, [rbp + 0x2d0]       /* e820_table */
    movzx ecx, byte ptr [rbp + 0x1e8]
map:
    test ecx, ecx
    jz modules
    lea rsi, [rip + s_map]
    call puts
    mov eax, [rdi]
    call hex32
    call space
    mov eax, [rdi + 8]
    call hex32
    call space
    mov eax, [rdi + 16]
    call hex32
    call newline
    add rdi, 20
    dec ecx
    jmp map

modules:
    cmp dword ptr [rbp + 0x21c], 0
    je finish
    lea rsi, [rip + s_mod]
    call puts
    mov eax, [rbp + 0x218]       /* ramdisk_image */
    call hex32
    call space
    mov eax, [rbp + 0x21c]       /* ramdisk_size */
    call hex32
    call space
    mov esi, [rbp + 0x218]
    mov ecx, 8
    call putn
    call newline

    jmp finish

    .set BITS, 64
    .include "common.inc"

s_loader:  .asciz "BZ loader="
s_cr0:     .asciz " cr0="
s_cr4:     .asciz " cr4="
s_efer:    .asciz " efer="
s_cs:      .asciz " cs="
s_cmdline: .asciz " cmdline="
