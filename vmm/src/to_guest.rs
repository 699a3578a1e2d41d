//! The host → guest direction of the channel: requests for a running
//! guest agent, queued from any thread and written by the session once
//! the agent is ready (same frames, CRC and bounds as the other way).

use std::io::Write;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use ktstr_proto::{encode, HostMessage};

/// One thing to write to the guest agent.
#[derive(Debug, Clone)]
pub enum ToGuest {
    /// A request, framed.
    Message(HostMessage),
    /// Bytes as they are: for testing the agent's frame checks with
    /// corrupt or oversized frames.
    Raw(Vec<u8>),
}

impl ToGuest {
    /// The bytes that go on the wire.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            ToGuest::Message(m) => encode(&m.to_payload()),
            ToGuest::Raw(b) => b.clone(),
        }
    }
}

/// Queues requests for one session's guest agent; cheap to clone, usable
/// from any thread (an `on_message` callback included).
#[derive(Debug, Clone)]
pub struct HostSender(Sender<ToGuest>);

impl HostSender {
    /// Queues `m`; false once the session has ended.
    pub fn send(&self, m: HostMessage) -> bool {
        self.0.send(ToGuest::Message(m)).is_ok()
    }

    /// Queues raw bytes (see [`ToGuest::Raw`]); false once the session has
    /// ended.
    pub fn send_raw(&self, bytes: Vec<u8>) -> bool {
        self.0.send(ToGuest::Raw(bytes)).is_ok()
    }
}

/// The session's end of a [`HostSender`].
#[derive(Debug)]
pub struct HostQueue(Receiver<ToGuest>);

/// A sender and the queue a session reads it from.
pub fn host_queue() -> (HostSender, HostQueue) {
    let (tx, rx) = mpsc::channel();
    (HostSender(tx), HostQueue(rx))
}

impl HostQueue {
    /// Everything queued so far.
    pub(crate) fn drain(&self) -> Vec<ToGuest> {
        self.0.try_iter().collect()
    }
}

/// Writes frames to the guest on a thread of its own, so a guest that does
/// not read can never block the session (and its deadline).
pub(crate) fn spawn_writer(mut out: Box<dyn Write + Send>) -> Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        for bytes in rx {
            if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                return;
            }
        }
    });
    tx
}
