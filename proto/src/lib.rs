//! ktstr-proto: what the host and the guest agent say to each other.
//!
//! - [`frame`]: the wire format of the channel. Every message is one frame
//!   (magic, length, CRC32, payload); the reader bounds the length, checks
//!   the CRC and resynchronizes after garbage, so nothing the guest sends
//!   can make the host allocate without bound or misparse silently.
//! - [`message`]: the messages, serialized as JSON inside frames.
//! - [`job`]: what the guest agent is asked to do, shipped in the
//!   initramfs's per-job suffix.
//!
//! Both sides link this crate; it depends on neither.

pub mod frame;
pub mod job;
pub mod message;
pub mod worker;

pub use frame::{encode, FrameDecoder, FrameError, MAX_FRAME_LEN};
pub use job::{Fault, Job, JobSpec, SchedulerLaunch, JOB_PATH};
pub use message::{GuestMessage, GuestReport, OutputStream, PROTOCOL_VERSION};
pub use worker::{ProgressPoint, WorkerReport, MAX_PROGRESS_POINTS, SAMPLE_INTERVAL_MS};
