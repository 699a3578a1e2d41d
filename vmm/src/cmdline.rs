//! The guest kernel command line.

/// The device the guest agent's channel is on (COM2). A serial port works
/// the same on every backend: QEMU's 8250 and the own VMM's.
pub const CHANNEL_DEVICE: &str = "/dev/ttyS1";

/// The command line every ktstr guest boots with:
/// - `console=ttyS0`: the console the host logs;
/// - `panic=-1 oops=panic`: a panic or oops ends the VM at once (the
///   backend turns the reboot into an exit) instead of leaving a half-dead
///   guest to time out;
/// - `rdinit=/init`: the guest agent;
/// - `nokaslr mitigations=off`: stable symbols, no needless slowdown;
/// - `8250.nr_uarts=2`: only the two ports used;
/// - `rcupdate.rcu_expedited=1`: measurably faster boot under TCG;
/// - `ktstr.channel=`: where the agent finds the channel.
///
/// `extra` is appended (space-separated) when not empty.
pub fn guest_cmdline(extra: &str) -> String {
    let mut s = format!(
        "console=ttyS0 panic=-1 oops=panic rdinit=/init nokaslr mitigations=off \
         8250.nr_uarts=2 rcupdate.rcu_expedited=1 ktstr.channel={CHANNEL_DEVICE}"
    );
    if !extra.trim().is_empty() {
        s.push(' ');
        s.push_str(extra.trim());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_extra() {
        assert!(guest_cmdline("").ends_with("ktstr.channel=/dev/ttyS1"));
        assert!(guest_cmdline(" loglevel=3 ").ends_with("ttyS1 loglevel=3"));
    }
}
