//! ktstr-proto: what the host and the guest agent say to each other.
//!
//! - [`frame`]: the wire format of the channel. Every message is one frame
//!   (magic, length, CRC32, payload); the reader bounds the length, checks
//!   the CRC and resynchronizes after garbage, so nothing the guest sends
//!   can make the host allocate without bound or misparse silently.
//! - [`message`]: the guest's messages to the host, serialized as JSON
//!   inside frames.
//! - [`host`]: the host's messages to a running guest agent (live
//!   requests), in the same frames; the agent answers each.
//! - [`job`]: what the guest agent is asked to do, shipped in the
//!   initramfs's per-job suffix; a plan job carries the typed
//!   [`ktstr_plan::Plan`].
//!
//! Both sides link this crate; it depends on neither (only on the plan and
//! topology data types).

pub mod frame;
pub mod host;
pub mod job;
pub mod message;

pub use frame::{encode, FrameDecoder, FrameError, MAX_FRAME_LEN};
pub use host::{HostMessage, MAX_HOST_FRAME_LEN, MAX_START_FRAME_LEN, SEED_LEN};
pub use job::{Fault, Job, JobSpec, SchedulerLaunch, JOB_PATH};
pub use ktstr_plan::results::{
    CpuSpan, OpsApplied, ProgressPoint, WorkerReport, MAX_CPU_SPANS, MAX_CPU_SPAN_MS,
    MAX_PROGRESS_POINTS, SAMPLE_INTERVAL_MS,
};
pub use message::{
    GuestMessage, GuestReport, OutputStream, PROTOCOL_VERSION, WORKERS_STARTED_EVENT,
};
