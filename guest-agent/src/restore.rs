//! The idle guest a snapshot is taken of ([`Job::Await`]): after its
//! first `ready` the agent blocks on the channel until the host sends
//! [`HostMessage::Start`]. That read is where every guest restored from
//! the snapshot resumes. Before it runs the job, the agent makes the
//! restored guest its own: it steps the wall clock to the host's (the
//! guest's monotonic clock and TSC continue from the moment of the
//! snapshot, so no timer, worker clock or watchdog sees a jump; only
//! `CLOCK_REALTIME` is stale) and mixes the host's fresh seed into the
//! kernel's random pool, forcing a reseed, since every restored guest
//! would otherwise draw the same random stream.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;

use ktstr_proto::{FrameDecoder, GuestMessage, HostMessage, JobSpec, MAX_START_FRAME_LEN};
use nix::sys::time::TimeSpec;
use nix::time::{clock_settime, ClockId};

use crate::channel::Channel;
use crate::error::{AgentError, Result};

/// `RNDADDENTROPY`: `_IOW('R', 0x03, int[2])`.
const RNDADDENTROPY: u64 = 0x4008_5203;
/// `RNDRESEEDCRNG`: `_IO('R', 0x07)`.
const RNDRESEEDCRNG: u64 = 0x5207;

/// Waits on `port` (the channel's read side) for the host's `Start`,
/// makes the guest its own (clock, randomness) and returns the job, with
/// warnings for what failed of that. Any other frame is answered
/// `rejected` on `channel` and waiting goes on.
pub fn await_start(
    port: &mut File,
    channel: &std::sync::Mutex<Channel>,
) -> (Result<JobSpec>, Vec<String>) {
    let mut decoder = FrameDecoder::new(MAX_START_FRAME_LEN);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match port.read(&mut buf) {
            Ok(0) => {
                let e = AgentError::Job("the channel closed before the job came".into());
                return (Err(e), Vec::new());
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return (Err(AgentError::io("read", "the channel", e)), Vec::new()),
        };
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let reason = match frame.map(|p| HostMessage::from_payload(&p)) {
                Ok(Ok(HostMessage::Start {
                    job,
                    realtime_us,
                    seed,
                    ..
                })) => {
                    let mut warnings = Vec::new();
                    if let Err(e) = set_wall_clock(realtime_us) {
                        warnings.push(e);
                    }
                    if let Err(e) = reseed(&seed) {
                        warnings.push(e);
                    }
                    return (Ok(*job), warnings);
                }
                Ok(Ok(other)) => format!("waiting for a job, got {other:?}"),
                Ok(Err(e)) => format!("host message: {e}"),
                Err(e) => format!("host frame: {e}"),
            };
            let mut ch = channel.lock().unwrap_or_else(|p| p.into_inner());
            let _ = ch.send(&GuestMessage::Rejected { reason });
        }
    }
}

/// Steps `CLOCK_REALTIME` to the host's time.
fn set_wall_clock(realtime_us: u64) -> std::result::Result<(), String> {
    let ts = TimeSpec::new(
        (realtime_us / 1_000_000) as i64,
        ((realtime_us % 1_000_000) * 1_000) as i64,
    );
    clock_settime(ClockId::CLOCK_REALTIME, ts).map_err(|e| format!("setting the wall clock: {e}"))
}

/// Mixes `seed` into the input pool, credited, and reseeds the CRNG from
/// it at once.
fn reseed(seed: &[u8]) -> std::result::Result<(), String> {
    if seed.is_empty() || seed.len() > 512 {
        return Err(format!("a seed of {} bytes is refused", seed.len()));
    }
    let random = OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + seed.len());
    info.extend(((seed.len() * 8) as i32).to_ne_bytes());
    info.extend((seed.len() as i32).to_ne_bytes());
    info.extend_from_slice(seed);
    info.resize(8 + seed.len().div_ceil(4) * 4, 0);
    // SAFETY: `info` is a valid rand_pool_info: its header gives a buffer
    // length that the vector holds in full; the kernel only reads it.
    let added = unsafe { nix::libc::ioctl(random.as_raw_fd(), RNDADDENTROPY as _, info.as_ptr()) };
    if added != 0 {
        return Err(format!(
            "RNDADDENTROPY: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: RNDRESEEDCRNG takes no argument.
    let reseeded = unsafe { nix::libc::ioctl(random.as_raw_fd(), RNDRESEEDCRNG as _) };
    if reseeded != 0 {
        return Err(format!(
            "RNDRESEEDCRNG: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
