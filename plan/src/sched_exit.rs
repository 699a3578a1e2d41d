//! Why a sched_ext scheduler ended, in one line: the kernel's exit kind
//! and message, read from what the guest collected (the scheduler's
//! output tail and the kernel's `sched_ext` lines). The whole detail
//! stays in the sidecar; verdicts, the REPL and reports lead with this.

/// The headline of a scheduler's end, from its exit `detail`:
/// - the BPF verifier refusing a program: `the kernel's BPF verifier
///   rejected program P: <its last lines>`;
/// - the scheduler's own `EXIT: kind (message)` line (the kernel's exit
///   info as the scheduler prints it: `runnable task stall (...)`,
///   `scx_bpf_error (...)`, `unregistered from user space`);
/// - the kernel's `sched_ext: BPF scheduler "x" disabled (reason)`;
/// - else the detail's first line.
pub fn headline(detail: &str) -> String {
    headline_on(detail, None)
}

/// [`headline`], naming the kernel release (`6.12.118`) in a verifier
/// rejection when it is known.
pub fn headline_on(detail: &str, kernel: Option<&str>) -> String {
    if let Some(v) = verifier_rejection(detail, kernel) {
        return v;
    }
    let lines = || detail.lines().map(str::trim);
    if let Some(l) = lines().find_map(|l| l.strip_prefix("EXIT: ")) {
        return l.to_string();
    }
    if let Some(l) = lines().find(|l| l.contains(" disabled (")) {
        return l.to_string();
    }
    lines().find(|l| !l.is_empty()).unwrap_or("").to_string()
}

/// `the 6.12.118 kernel's BPF verifier rejected program P: ...` (`the
/// kernel's` when `kernel` is unknown) when libbpf reported a program
/// that failed to load (`libbpf: prog 'P': BPF program load failed: ...`
/// or `... failed to load: -N`), with the last two lines of the
/// verifier's log (what it choked on, and how far it got).
pub fn verifier_rejection(detail: &str, kernel: Option<&str>) -> Option<String> {
    let program = detail.lines().find_map(|l| {
        let rest = l.split("prog '").nth(1)?;
        let (name, tail) = rest.split_once("':")?;
        (tail.contains("BPF program load failed") || tail.contains("failed to load"))
            .then(|| name.to_string())
    })?;
    let log: Vec<&str> = detail
        .lines()
        .map(str::trim)
        .take_while(|l| !l.contains("-- END PROG LOAD LOG --"))
        .filter(|l| !l.is_empty() && !l.starts_with("libbpf:"))
        .collect();
    let last = &log[log.len().saturating_sub(2)..];
    let whose = kernel.map_or("the kernel's".to_string(), |k| format!("the {k} kernel's"));
    Some(if last.is_empty() {
        format!("{whose} BPF verifier rejected program {program}")
    } else {
        format!(
            "{whose} BPF verifier rejected program {program}: {}",
            last.join(" / ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headlines_name_the_kernels_reason() {
        let qmap = "scheduler qmap was detached\n\n  R init[1]\nEXIT: runnable task stall (scx_qmap[42] failed to run for 5.1s)\n";
        assert_eq!(
            headline(qmap),
            "runnable task stall (scx_qmap[42] failed to run for 5.1s)"
        );
        let kernel = "scheduler simple exited (signal 9)\nsched_ext: BPF scheduler \"simple\" disabled (unregistered from user space)";
        assert!(headline(kernel).ends_with("disabled (unregistered from user space)"));
        assert_eq!(headline("\nfirst\nsecond"), "first");
    }

    #[test]
    fn a_verifier_rejection_names_the_program_and_what_it_choked_on() {
        let detail = "/sched/scx_lavd exited (exit status: 1) before attaching\n\
            libbpf: prog 'lavd_dispatch': BPF program load failed: Permission denied\n\
            libbpf: prog 'lavd_dispatch': -- BEGIN PROG LOAD LOG --\n\
            0: R1=ctx() R10=fp0\n\
            ; int BPF_PROG(lavd_dispatch)\n\
            R2 min value is negative, either use unsigned or 'var &= const'\n\
            processed 8128 insns (limit 1000000) max_states_per_insn 6\n\
            -- END PROG LOAD LOG --\n\
            libbpf: prog 'lavd_dispatch': failed to load: -13\n";
        assert_eq!(
            headline(detail),
            "the kernel's BPF verifier rejected program lavd_dispatch: R2 min value is \
             negative, either use unsigned or 'var &= const' / processed 8128 insns (limit \
             1000000) max_states_per_insn 6"
        );
        assert_eq!(verifier_rejection("EXIT: runnable task stall", None), None);
    }
}
