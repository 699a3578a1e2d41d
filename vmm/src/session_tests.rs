//! The session layer against a fake backend: every way a VM can end.

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::time::Duration;

use ktstr_proto::{encode, GuestMessage, GuestReport, PROTOCOL_VERSION};
use ktstr_topology::Topology;

use super::*;
use crate::backend::{BackendExit, BackendKind, LaunchedVm, VmProcess};

/// A VM that prints `console`, sends `channel` and then exits with
/// `exit` (or never, when None).
struct FakeBackend {
    console: Vec<u8>,
    channel: Vec<u8>,
    endless_channel: bool,
    exit: Option<bool>,
    /// What the session writes to the guest.
    to_guest: Arc<Mutex<Vec<u8>>>,
}

/// A guest's channel input that the test can read back.
struct Captured(Arc<Mutex<Vec<u8>>>);
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct FakeProcess {
    exit: Option<bool>,
    polls: u32,
    killed: bool,
}

impl VmProcess for FakeProcess {
    fn try_wait(&mut self) -> Result<Option<BackendExit>, VmError> {
        self.polls += 1;
        if self.killed {
            return Ok(Some(BackendExit {
                success: false,
                status: "signal: 9".into(),
            }));
        }
        Ok(match self.exit {
            Some(success) if self.polls > 5 => Some(BackendExit {
                success,
                status: if success {
                    "exit status: 0"
                } else {
                    "exit status: 1"
                }
                .into(),
            }),
            _ => None,
        })
    }
    fn kill(&mut self) {
        self.killed = true;
    }
    fn diagnostics(&self) -> String {
        "fake diagnostics".into()
    }
}

/// Zeros forever.
struct Endless;
impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

impl VmBackend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::QemuTcg
    }
    fn check(&self, _: &VmSpec) -> Result<(), VmError> {
        Ok(())
    }
    fn launch(&self, _: &VmSpec) -> Result<LaunchedVm, VmError> {
        let channel: Box<dyn Read + Send> = if self.endless_channel {
            Box::new(Endless)
        } else {
            Box::new(Cursor::new(self.channel.clone()))
        };
        Ok(LaunchedVm {
            process: Box::new(FakeProcess {
                exit: self.exit,
                polls: 0,
                killed: false,
            }),
            console: Box::new(Cursor::new(self.console.clone())),
            console_input: Box::new(std::io::sink()),
            channel,
            channel_output: Box::new(Captured(Arc::clone(&self.to_guest))),
            memory: Err("the fake backend has no guest RAM".into()),
        })
    }
}

fn ready(protocol: u32) -> Vec<u8> {
    let t: Topology = "1n1l2c1t".parse().unwrap();
    encode(
        &GuestMessage::Ready {
            protocol,
            agent_version: "test".into(),
            report: Box::new(GuestReport {
                kernel_release: "6.12".into(),
                layout: t.expected_layout(),
                sched_ext_state: None,
                cmdline: String::new(),
                mem_total_kib: 1,
                warnings: vec![],
            }),
        }
        .to_payload(),
    )
}

fn frame(m: GuestMessage) -> Vec<u8> {
    encode(&m.to_payload())
}

fn run_fake(backend: FakeBackend, timeout_ms: u64) -> VmOutcome {
    run_fake_with(backend, timeout_ms, None)
}

fn run_fake_with(backend: FakeBackend, timeout_ms: u64, to_guest: Option<HostQueue>) -> VmOutcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = VmSpec {
        kernel: PathBuf::from("/k"),
        initramfs: PathBuf::from("/i"),
        cmdline: String::new(),
        topology: "1n1l2c1t".parse().unwrap(),
        memory_mb: 256,
        timeout: Duration::from_millis(timeout_ms),
        work_dir: dir.path().to_path_buf(),
        snapshot: Default::default(),
    };
    let mut io = SessionIo::logged(dir.path().join("console.log"));
    io.channel_limit = 1 << 20;
    io.to_guest = to_guest;
    let mut seen = 0;
    let o = run(&backend, &spec, io, &mut |_| seen += 1).unwrap();
    assert!(dir.path().join("console.log").is_file());
    o
}

fn backend(console: &str, channel: Vec<u8>, exit: Option<bool>) -> FakeBackend {
    FakeBackend {
        console: console.as_bytes().to_vec(),
        channel,
        endless_channel: false,
        exit,
        to_guest: Arc::default(),
    }
}

#[test]
fn ready_exit_done_and_power_off_is_clean() {
    let mut ch = ready(PROTOCOL_VERSION);
    ch.extend(frame(GuestMessage::Exit { code: 4 }));
    ch.extend(frame(GuestMessage::Done));
    let o = run_fake(
        backend("boot\nreboot: Power down\n", ch, Some(true)),
        10_000,
    );
    assert_eq!(o.end, VmEnd::Completed);
    assert!(o.is_clean(), "{}", o.failure_report());
    assert_eq!(o.exit_code, Some(4));
    assert_eq!(o.console_tail.last().unwrap(), "reboot: Power down");
    assert!(o.ready_ms.is_some());
}

#[test]
fn panic_lines_classify_the_end() {
    let console = "x\n[ 1.0] Kernel panic - not syncing: sysrq triggered crash\n";
    let o = run_fake(
        backend(console, ready(PROTOCOL_VERSION), Some(true)),
        10_000,
    );
    assert!(matches!(o.end, VmEnd::KernelPanic { ref message } if message.contains("sysrq")));
    let console = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000b00\n";
    let o = run_fake(backend(console, vec![], Some(true)), 10_000);
    assert!(
        matches!(
            o.end,
            VmEnd::AgentExited {
                exit_code: Some(11),
                ..
            }
        ),
        "{:?}",
        o.end
    );
}

#[test]
fn stopping_without_done_is_early_and_backend_failure_is_named() {
    let o = run_fake(backend("", ready(PROTOCOL_VERSION), Some(true)), 10_000);
    assert_eq!(o.end, VmEnd::EndedEarly);
    let o = run_fake(backend("", vec![], Some(false)), 10_000);
    assert!(matches!(o.end, VmEnd::BackendFailed { ref status } if status.contains('1')));
    assert!(o.failure_report().contains("fake diagnostics"));
}

#[test]
fn a_guest_that_never_ends_times_out() {
    let o = run_fake(backend("", ready(PROTOCOL_VERSION), None), 300);
    assert_eq!(
        o.end,
        VmEnd::Timeout {
            after_s: 0.3,
            agent_ready: true
        }
    );
    assert!(o.lifetime_ms < 5_000.0);
}

#[test]
fn bad_frames_and_versions_are_errors_in_the_result() {
    let mut ch = ready(PROTOCOL_VERSION + 1);
    ch.extend(encode(b"{not json"));
    let mut corrupt = frame(GuestMessage::Done);
    corrupt[14] ^= 1;
    ch.extend(corrupt);
    ch.extend(&frame(GuestMessage::Exit { code: 0 })[..16]);
    let o = run_fake(backend("", ch, Some(true)), 10_000);
    let errors = o.protocol_errors.join("\n");
    assert!(errors.contains("protocol"), "{errors}");
    assert!(errors.contains("malformed message"), "{errors}");
    assert!(errors.contains("CRC32"), "{errors}");
    assert!(errors.contains("ended inside a frame"), "{errors}");
    assert_eq!(o.end, VmEnd::EndedEarly);
}

#[test]
fn a_flood_is_cut_off_at_the_limit() {
    let mut b = backend("", vec![], None);
    b.endless_channel = true;
    let o = run_fake(b, 60_000);
    assert_eq!(o.end, VmEnd::ChannelOverflow { limit: 1 << 20 });
}

#[test]
fn host_requests_wait_for_the_agent_and_go_out_framed_in_order() {
    use ktstr_proto::{FrameDecoder, HostMessage};
    let (sender, queue) = crate::to_guest::host_queue();
    assert!(sender.send(HostMessage::Ping { id: 1 }));
    assert!(sender.send_raw(b"junk".to_vec()));
    assert!(sender.send(HostMessage::StopPlan { id: 2 }));
    // No agent ever says ready: nothing may be written.
    let silent = backend("", vec![], Some(true));
    let written = Arc::clone(&silent.to_guest);
    run_fake_with(silent, 10_000, Some(queue));
    thread::sleep(Duration::from_millis(200));
    assert!(written.lock().unwrap().is_empty());
    // Once it is ready, everything goes out, in order.
    let (sender, queue) = crate::to_guest::host_queue();
    sender.send(HostMessage::Ping { id: 1 });
    sender.send_raw(b"junk".to_vec());
    sender.send(HostMessage::StopPlan { id: 2 });
    let mut ch = ready(PROTOCOL_VERSION);
    ch.extend(frame(GuestMessage::Done));
    let b = backend("", ch, Some(true));
    let written = Arc::clone(&b.to_guest);
    run_fake_with(b, 10_000, Some(queue));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut decoder = FrameDecoder::default();
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < deadline {
        // The raw junk is reported once the next frame's magic follows it.
        decoder.push(&std::mem::take(&mut *written.lock().unwrap()));
        while let Some(f) = decoder.next_frame() {
            got.push(
                f.map(|p| HostMessage::from_payload(&p).unwrap())
                    .map_err(|e| e.to_string()),
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        got,
        [
            Ok(HostMessage::Ping { id: 1 }),
            Err("4 bytes of garbage between frames".to_string()),
            Ok(HostMessage::StopPlan { id: 2 }),
        ]
    );
}
