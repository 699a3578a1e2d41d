//! Channel frames: `KTS1` magic, payload length (u32 LE), CRC32 of the
//! payload (u32 LE), payload.

/// Marks the start of a frame.
pub const MAGIC: [u8; 4] = *b"KTS1";
/// Bytes before the payload.
pub const HEADER_LEN: usize = 12;
/// The largest payload either side accepts.
pub const MAX_FRAME_LEN: usize = 16 << 20;

/// A frame the decoder rejected. The decoder carries on with the next
/// frame after each of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Bytes that are not part of any frame.
    #[error("{skipped} bytes of garbage between frames")]
    Garbage {
        /// How many bytes were skipped.
        skipped: usize,
    },
    /// A header announcing more than the limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversized {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A payload whose checksum does not match.
    #[error("frame of {len} bytes failed its CRC32 check (header {expected:#010x}, payload {actual:#010x})")]
    Checksum {
        /// Payload length.
        len: usize,
        /// CRC from the header.
        expected: u32,
        /// CRC of the bytes received.
        actual: u32,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({have} of {need} bytes)")]
    Truncated {
        /// Bytes of the frame received.
        have: usize,
        /// Bytes the frame needed.
        need: usize,
    },
}

/// Encodes one frame around `payload`.
///
/// # Panics
/// If `payload` exceeds [`MAX_FRAME_LEN`]: senders must split or refuse.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= MAX_FRAME_LEN, "frame payload too large");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Incremental frame reader: feed bytes as they arrive, take out payloads
/// and errors in stream order. Memory is bounded by the frame limit.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
    garbage: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that rejects payloads over `max` bytes (at most
    /// [`MAX_FRAME_LEN`]).
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            max: max.min(MAX_FRAME_LEN),
            garbage: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame or error, or None until more bytes come.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let Some(start) = find_magic(&self.buf) else {
            // Keep a possible partial magic at the end.
            let keep = partial_magic_suffix(&self.buf);
            let drop = self.buf.len() - keep;
            self.garbage += drop;
            self.buf.drain(..drop);
            return None;
        };
        if start > 0 {
            self.garbage += start;
            self.buf.drain(..start);
        }
        if self.garbage > 0 {
            let skipped = std::mem::take(&mut self.garbage);
            return Some(Err(FrameError::Garbage { skipped }));
        }
        if self.buf.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes")) as usize;
        if len > self.max {
            // Not a frame we accept: resync past this magic.
            self.buf.drain(..MAGIC.len());
            return Some(Err(FrameError::Oversized { len, max: self.max }));
        }
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        let expected = u32::from_le_bytes(self.buf[8..12].try_into().expect("4 bytes"));
        let actual = crc32fast::hash(&self.buf[HEADER_LEN..HEADER_LEN + len]);
        if expected != actual {
            self.buf.drain(..MAGIC.len());
            return Some(Err(FrameError::Checksum {
                len,
                expected,
                actual,
            }));
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Some(Ok(payload))
    }

    /// Call at end of stream: an error for a frame cut short or trailing
    /// garbage, None if the stream ended cleanly between frames.
    pub fn finish(&mut self) -> Option<FrameError> {
        let rest = std::mem::take(&mut self.buf);
        let garbage = std::mem::take(&mut self.garbage);
        if rest.starts_with(&MAGIC) && rest.len() >= HEADER_LEN {
            let len = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes")) as usize;
            return Some(FrameError::Truncated {
                have: rest.len(),
                need: HEADER_LEN + len,
            });
        }
        let skipped = garbage + rest.len();
        (skipped > 0).then_some(FrameError::Garbage { skipped })
    }
}

fn find_magic(buf: &[u8]) -> Option<usize> {
    buf.windows(MAGIC.len()).position(|w| w == MAGIC)
}

fn partial_magic_suffix(buf: &[u8]) -> usize {
    (1..MAGIC.len())
        .rev()
        .find(|&n| buf.len() >= n && buf[buf.len() - n..] == MAGIC[..n])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(d: &mut FrameDecoder) -> Vec<Result<Vec<u8>, FrameError>> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn round_trips_byte_by_byte() {
        let mut wire = encode(b"hello");
        wire.extend(encode(b""));
        wire.extend(encode(&[7u8; 1000]));
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            got.extend(drain(&mut d));
        }
        assert_eq!(
            got,
            vec![Ok(b"hello".to_vec()), Ok(vec![]), Ok(vec![7u8; 1000])]
        );
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn corrupt_frame_is_reported_and_the_next_one_read() {
        let mut bad = encode(b"payload");
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let mut wire = b"noise".to_vec();
        wire.extend(bad);
        wire.extend(encode(b"good"));
        let mut d = FrameDecoder::default();
        d.push(&wire);
        let got = drain(&mut d);
        assert_eq!(got[0], Err(FrameError::Garbage { skipped: 5 }));
        assert!(matches!(got[1], Err(FrameError::Checksum { len: 7, .. })));
        // The corrupt frame's remaining bytes are garbage before the next.
        assert!(matches!(got[2], Err(FrameError::Garbage { .. })));
        assert_eq!(got[3], Ok(b"good".to_vec()));
    }

    #[test]
    fn oversized_header_never_allocates_and_resyncs() {
        let mut wire = MAGIC.to_vec();
        wire.extend(u32::MAX.to_le_bytes());
        wire.extend(0u32.to_le_bytes());
        wire.extend(encode(b"after"));
        let mut d = FrameDecoder::new(1024);
        d.push(&wire);
        let got = drain(&mut d);
        assert!(matches!(
            got[0],
            Err(FrameError::Oversized { max: 1024, .. })
        ));
        assert_eq!(got.last().unwrap(), &Ok(b"after".to_vec()));
    }

    #[test]
    fn truncated_stream_is_reported() {
        let wire = encode(b"0123456789");
        let mut d = FrameDecoder::default();
        d.push(&wire[..15]);
        assert!(drain(&mut d).is_empty());
        assert_eq!(
            d.finish(),
            Some(FrameError::Truncated { have: 15, need: 22 })
        );
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        // A simple xorshift generator: deterministic, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut d = FrameDecoder::new(4096);
        for round in 0..2000 {
            let mut chunk = Vec::new();
            for _ in 0..(round % 97) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.push(x as u8);
            }
            if round % 5 == 0 {
                chunk.extend(MAGIC);
            }
            d.push(&chunk);
            while d.next_frame().is_some() {}
            assert!(d.buf.len() <= HEADER_LEN + 4096 + 97 + 4);
        }
    }
}
