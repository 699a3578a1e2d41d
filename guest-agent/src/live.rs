//! Live requests from the host: a thread reads host frames from the
//! channel (bounded to [`MAX_HOST_FRAME_LEN`], checked and resynchronized
//! like the host's reader), carries each request out and answers it. A
//! corrupt, oversized or unknown frame is answered with `Rejected`, and
//! the agent carries on. A live session's requests (`Live`, `Shutdown`)
//! are handed to the session ([`crate::plan::live`]), which answers them.

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;

use ktstr_proto::{FrameDecoder, GuestMessage, HostMessage, MAX_HOST_FRAME_LEN};

use crate::channel::Channel;

/// What live requests can reach in the running job.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// Set by `StopPlan`: the running plan ends its steps now.
    pub stop_plan: Arc<AtomicBool>,
    /// Whether a plan is running (so `StopPlan` has something to stop).
    pub plan_running: Arc<AtomicBool>,
    /// The live session's inbox, while one runs.
    pub session: Arc<Mutex<Option<Sender<LiveCall>>>>,
}

/// A live session's request, handed from the listener to the session.
#[derive(Debug)]
pub enum LiveCall {
    /// Carry it out and answer.
    Request {
        /// The request's id.
        id: u64,
        /// What to do.
        request: Box<ktstr_plan::live::LiveRequest>,
    },
    /// End the session.
    Shutdown {
        /// The request's id.
        id: u64,
    },
}

/// Starts the thread that reads `port` (the channel's read side) and
/// answers each host request on `channel`.
pub fn spawn_listener(mut port: File, channel: Arc<Mutex<Channel>>, state: LiveState) {
    thread::spawn(move || {
        let mut decoder = FrameDecoder::new(MAX_HOST_FRAME_LEN);
        let mut buf = [0u8; 4096];
        loop {
            let n = match port.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                let answer = match frame {
                    Err(e) => GuestMessage::Rejected {
                        reason: format!("host frame: {e}"),
                    },
                    Ok(payload) => match HostMessage::from_payload(&payload) {
                        Ok(request) => match answer(request, &state) {
                            Some(a) => a,
                            None => continue,
                        },
                        Err(e) => GuestMessage::Rejected {
                            reason: format!("host message ({} bytes): {e}", payload.len()),
                        },
                    },
                };
                let mut ch = channel.lock().unwrap_or_else(|p| p.into_inner());
                if ch.send(&answer).is_err() {
                    return;
                }
            }
        }
    });
}

/// Hands a live session's request to the session; None when it took it
/// (it answers), else the answer that there is none.
fn to_session(call: LiveCall, state: &LiveState) -> Option<GuestMessage> {
    let inbox = state.session.lock().unwrap_or_else(|p| p.into_inner());
    let id = match &call {
        LiveCall::Request { id, .. } | LiveCall::Shutdown { id } => *id,
    };
    match inbox.as_ref().map(|tx| tx.send(call)) {
        Some(Ok(())) => None,
        _ => Some(GuestMessage::Live {
            id,
            answer: ktstr_plan::live::LiveAnswer::Failed {
                error: "no live session runs in this guest".into(),
            },
        }),
    }
}

/// Carries out `request` and says how it went; None when a live session
/// took it and answers it itself.
pub fn answer(request: HostMessage, state: &LiveState) -> Option<GuestMessage> {
    Some(match request {
        HostMessage::Live { id, request } => {
            return to_session(LiveCall::Request { id, request }, state)
        }
        HostMessage::Shutdown { id } => return to_session(LiveCall::Shutdown { id }, state),
        HostMessage::Start { id, .. } => GuestMessage::Ack {
            id,
            message: "a job runs already: only a guest restored from a snapshot waits for one"
                .into(),
        },
        HostMessage::Ping { id } => GuestMessage::Ack {
            id,
            message: "pong".into(),
        },
        HostMessage::Report { id } => match crate::report::gather(Vec::new()) {
            Ok(report) => GuestMessage::Report {
                id,
                report: Box::new(report),
            },
            Err(e) => GuestMessage::Ack {
                id,
                message: format!("no report: {e}"),
            },
        },
        HostMessage::StopPlan { id } => {
            let message = if state.plan_running.load(Ordering::SeqCst) {
                state.stop_plan.store(true, Ordering::SeqCst);
                "stopping the plan"
            } else {
                "no plan is running"
            };
            GuestMessage::Ack {
                id,
                message: message.into(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_with_their_id() {
        let state = LiveState::default();
        let a = answer(HostMessage::Ping { id: 7 }, &state);
        assert_eq!(
            a,
            Some(GuestMessage::Ack {
                id: 7,
                message: "pong".into()
            })
        );
        let idle = answer(HostMessage::StopPlan { id: 8 }, &state);
        assert!(
            matches!(idle, Some(GuestMessage::Ack { id: 8, ref message }) if message == "no plan is running")
        );
        assert!(!state.stop_plan.load(Ordering::SeqCst));
        state.plan_running.store(true, Ordering::SeqCst);
        answer(HostMessage::StopPlan { id: 9 }, &state);
        assert!(state.stop_plan.load(Ordering::SeqCst));
    }

    #[test]
    fn live_requests_go_to_the_session_or_are_refused_without_one() {
        let state = LiveState::default();
        let request = ktstr_plan::live::LiveRequest::Stats;
        let refused = answer(
            HostMessage::Live {
                id: 4,
                request: Box::new(request.clone()),
            },
            &state,
        );
        assert!(matches!(
            refused,
            Some(GuestMessage::Live {
                id: 4,
                answer: ktstr_plan::live::LiveAnswer::Failed { .. }
            })
        ));
        let (tx, rx) = std::sync::mpsc::channel();
        *state.session.lock().unwrap() = Some(tx);
        assert_eq!(
            answer(
                HostMessage::Live {
                    id: 5,
                    request: Box::new(request)
                },
                &state
            ),
            None
        );
        assert!(matches!(rx.try_recv(), Ok(LiveCall::Request { id: 5, .. })));
        assert_eq!(answer(HostMessage::Shutdown { id: 6 }, &state), None);
        assert!(matches!(rx.try_recv(), Ok(LiveCall::Shutdown { id: 6 })));
    }
}
