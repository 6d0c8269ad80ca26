//! The frames of `/deltanode/clock/1`, where neighbours read each other's clocks and name the
//! replica id they write under (the exchange itself is in the peers layer).
//!
//! A request is the asker's time and replica id (8 + 8 bytes, little-endian; older nodes send the
//! time alone). An answer echoes the asker's time, then gives the answerer's time, replica id and
//! a flag byte (bit 0: "another process answers with your identity"); older nodes stop after the
//! two times. Anything shorter than the times is malformed; bytes after the known fields are
//! ignored, so a later version can add fields.

use crate::codec::FrameCodec;
use libp2p::StreamProtocol;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/deltanode/clock/1");

/// The largest frame accepted (requests are 16 bytes, answers 25).
pub const MAX_FRAME: usize = 64;

/// The codec: length-prefixed frames of at most [`MAX_FRAME`] bytes.
pub fn codec() -> FrameCodec {
    FrameCodec::new(MAX_FRAME)
}

/// "What time is it?"
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The asker's clock when it sent this (ms since the epoch).
    pub time: u64,
    /// The replica id the asker writes under (`None` from older nodes).
    pub replica: Option<u64>,
}

/// The answer to a [`Request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The request's time, echoed.
    pub echoed: u64,
    /// The answerer's clock when it answered (ms since the epoch).
    pub time: u64,
    /// The replica id the answerer writes under (`None` from older nodes).
    pub replica: Option<u64>,
    /// Whether the answerer has seen another process answer with the asker's identity.
    pub twin: bool,
}

/// A clock frame too short to hold its times.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a clock frame of {0} bytes, too short")]
pub struct Malformed(pub usize);

fn word(frame: &[u8], at: usize) -> Option<u64> {
    let bytes = frame.get(at..at + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

impl Request {
    /// The frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.time.to_le_bytes().to_vec();
        if let Some(id) = self.replica {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// The request in `frame`.
    pub fn decode(frame: &[u8]) -> Result<Self, Malformed> {
        Ok(Request {
            time: word(frame, 0).ok_or(Malformed(frame.len()))?,
            replica: word(frame, 8),
        })
    }
}

impl Answer {
    /// The frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.echoed.to_le_bytes().to_vec();
        out.extend_from_slice(&self.time.to_le_bytes());
        if let Some(id) = self.replica {
            out.extend_from_slice(&id.to_le_bytes());
            out.push(u8::from(self.twin));
        }
        out
    }

    /// The answer in `frame`.
    pub fn decode(frame: &[u8]) -> Result<Self, Malformed> {
        let (Some(echoed), Some(time)) = (word(frame, 0), word(frame, 8)) else {
            return Err(Malformed(frame.len()));
        };
        Ok(Answer {
            echoed,
            time,
            replica: word(frame, 16),
            twin: frame.get(24).is_some_and(|f| f & 1 == 1),
        })
    }
}

/// `answerer − asker`, in ms, from the asker's send and receive times and the answerer's reading,
/// taken halfway through the round trip (as NTP does); saturates at the ends of `i64`, whatever
/// the answerer claims.
pub fn offset(sent: u64, theirs: u64, received: u64) -> i64 {
    let midpoint = (i128::from(sent) + i128::from(received)) / 2;
    let d = i128::from(theirs) - midpoint;
    d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The median of `offsets` (`None` if there are none).
pub fn median(mut offsets: Vec<i64>) -> Option<i64> {
    offsets.sort_unstable();
    offsets.get(offsets.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_halfway_through_the_round_trip_and_the_median_resists_one_liar() {
        assert_eq!(offset(1_000, 1_050, 1_100), 0);
        assert_eq!(offset(1_000, 3_601_050, 1_100), 3_600_000);
        assert_eq!(offset(1_000, 50, 1_100), -1_000);
        assert_eq!(offset(u64::MAX - 2, u64::MAX - 1, u64::MAX), 0);
        assert_eq!(median(vec![3_600_000, 5, -3]), Some(5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_lying_answer_saturates_instead_of_overflowing() {
        // An answerer's time past i64::MAX once wrapped to a large negative offset (and
        // overflowed in debug builds).
        assert_eq!(offset(1_000, u64::MAX, 1_100), i64::MAX);
        assert_eq!(offset(1_000, (1u64 << 63) + 2_000, 1_100), i64::MAX);
        assert_eq!(offset(u64::MAX, 0, u64::MAX), i64::MIN);
    }

    #[test]
    fn frames_round_trip_and_older_shorter_frames_still_read() {
        let r = Request {
            time: 7,
            replica: Some(9),
        };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let old = Request {
            time: 7,
            replica: None,
        };
        assert_eq!(old.encode().len(), 8);
        assert_eq!(Request::decode(&old.encode()), Ok(old));
        let a = Answer {
            echoed: 7,
            time: 8,
            replica: Some(9),
            twin: true,
        };
        assert_eq!(Answer::decode(&a.encode()), Ok(a));
        let old = Answer {
            echoed: 7,
            time: 8,
            replica: None,
            twin: false,
        };
        assert_eq!(Answer::decode(&old.encode()), Ok(old));
        // Trailing bytes a later version may add are ignored.
        let mut longer = a.encode();
        longer.extend_from_slice(b"later");
        assert_eq!(Answer::decode(&longer), Ok(a));
    }

    #[test]
    fn short_frames_are_malformed() {
        assert_eq!(Request::decode(&[1; 7]), Err(Malformed(7)));
        assert_eq!(Answer::decode(&[1; 15]), Err(Malformed(15)));
        assert_eq!(Answer::decode(&[]), Err(Malformed(0)));
    }
}
