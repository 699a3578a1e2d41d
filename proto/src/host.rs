//! Messages from the host to a running guest agent, one per frame, as
//! JSON: live requests the agent carries out and answers with a
//! [`crate::GuestMessage`] carrying the same id.

use serde::{Deserialize, Serialize};

/// The largest host frame a running guest agent accepts: requests are
/// small, and the guest must not allocate on a host's (or a bug's) say-so.
pub const MAX_HOST_FRAME_LEN: usize = 64 * 1024;

/// The largest frame a guest waiting for its job ([`crate::Job::Await`])
/// accepts: a [`HostMessage::Start`] carries a whole job (its Plan).
pub const MAX_START_FRAME_LEN: usize = 16 << 20;

/// The bytes of entropy a restored guest is given.
pub const SEED_LEN: usize = 32;

/// One request from the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostMessage {
    /// The job of a guest restored from a snapshot, which waits for it in
    /// [`crate::Job::Await`]. The agent steps its wall clock to the host's,
    /// mixes `seed` into the kernel's random pool and reseeds it (restored
    /// guests would otherwise share one random stream), then reports ready
    /// afresh and runs `job` as if it had booted with it.
    Start {
        /// Echoed in nothing: the answer is the agent's `Ready`.
        id: u64,
        /// The job.
        job: Box<crate::JobSpec>,
        /// The host's `CLOCK_REALTIME` when it sent this, in microseconds
        /// since the epoch.
        realtime_us: u64,
        /// Fresh random bytes from the host ([`SEED_LEN`] of them).
        seed: Vec<u8>,
    },
    /// Are you there? Answered by `Ack { message: "pong" }`.
    Ping {
        /// Echoed in the answer.
        id: u64,
    },
    /// What does the guest see now? Answered by `Report`.
    Report {
        /// Echoed in the answer.
        id: u64,
    },
    /// End the running plan now: its steps stop, its workers stop and
    /// report as at the end of a normal run. Answered by `Ack`.
    StopPlan {
        /// Echoed in the answer.
        id: u64,
    },
    /// A live session's request (`Job::Live`). Answered by `Live`.
    Live {
        /// Echoed in the answer.
        id: u64,
        /// What to do.
        request: Box<ktstr_plan::live::LiveRequest>,
    },
    /// End a live session: stop every worker and the scheduler, remove
    /// the cgroups, power off. Answered by `Ack`, then `Done`.
    Shutdown {
        /// Echoed in the answer.
        id: u64,
    },
}

impl HostMessage {
    /// The request's id.
    pub fn id(&self) -> u64 {
        match self {
            HostMessage::Ping { id }
            | HostMessage::Start { id, .. }
            | HostMessage::Report { id }
            | HostMessage::StopPlan { id }
            | HostMessage::Live { id, .. }
            | HostMessage::Shutdown { id } => *id,
        }
    }

    /// The message as a frame payload.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("host messages always serialize")
    }

    /// Parses a frame payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_messages_round_trip_and_unknown_ones_fail() {
        for m in [
            HostMessage::Ping { id: 1 },
            HostMessage::Report { id: 2 },
            HostMessage::StopPlan { id: 3 },
            HostMessage::Live {
                id: 4,
                request: Box::new(ktstr_plan::live::LiveRequest::Dmesg { lines: 5 }),
            },
            HostMessage::Shutdown { id: 5 },
            HostMessage::Start {
                id: 6,
                job: Box::new(crate::JobSpec {
                    job: crate::Job::Probe,
                    fault: None,
                }),
                realtime_us: 1_700_000_000_000_000,
                seed: vec![7; SEED_LEN],
            },
        ] {
            let back = HostMessage::from_payload(&m.to_payload()).unwrap();
            assert_eq!(back.id(), m.id());
            assert_eq!(back, m);
        }
        assert!(HostMessage::from_payload(br#"{"type":"reboot","id":1}"#).is_err());
        assert!(HostMessage::from_payload(b"\xff").is_err());
    }
}
