//! Frames on the wire: a version byte, then the message in `crdt::codec`'s encoding (bincode
//! 2.0.1, named only there). Decoding checks the size before reading and never panics.

use crate::error::ProtocolError;
use crdt::codec;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire version this build speaks. Bump it when a message's encoding changes.
pub const WIRE_VERSION: u8 = 6;

/// The default largest frame a node accepts (and sends): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Encodes `msg` as a frame.
pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    let mut frame = vec![WIRE_VERSION];
    frame.extend(codec::encode(msg)?);
    Ok(frame)
}

/// Decodes a frame of at most `max_frame` bytes.
pub fn decode<M: DeserializeOwned>(frame: &[u8], max_frame: usize) -> Result<M, ProtocolError> {
    if frame.len() > max_frame {
        return Err(ProtocolError::FrameTooLarge {
            size: frame.len(),
            limit: max_frame,
        });
    }
    let (&version, body) = frame.split_first().ok_or(ProtocolError::Empty)?;
    if version != WIRE_VERSION {
        return Err(ProtocolError::UnsupportedVersion(version));
    }
    Ok(codec::decode(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crdt::{Op, ReplicaId, Store, Value, Writer};
    use proptest::prelude::*;

    type Msg = Message<Store>;

    fn sample() -> Msg {
        let w = Writer {
            replica: ReplicaId(1),
            now_ms: 5,
        };
        let group = Store::default()
            .apply("k", Op::SetAdd(Value::from(serde_json::json!("x"))), &w)
            .unwrap();
        Message::Delta { seq: 7, group }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(
            decode::<Msg>(&encode(&m).unwrap(), DEFAULT_MAX_FRAME).unwrap(),
            m
        );
    }

    #[test]
    fn refuses_oversized_empty_and_foreign_frames() {
        let frame = encode(&sample()).unwrap();
        assert!(matches!(
            decode::<Msg>(&frame, 4),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        assert_eq!(decode::<Msg>(&[], 100), Err(ProtocolError::Empty));
        let mut other = frame.clone();
        other[0] = 9;
        assert_eq!(
            decode::<Msg>(&other, DEFAULT_MAX_FRAME),
            Err(ProtocolError::UnsupportedVersion(9))
        );
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut frame = vec![WIRE_VERSION];
            frame.extend(bytes);
            let _ = decode::<Msg>(&frame, DEFAULT_MAX_FRAME);
        }

        #[test]
        fn every_truncation_or_bit_flip_of_a_valid_frame_is_refused_or_valid(cut in 0usize..64, flip in 0usize..64) {
            let frame = encode(&sample()).unwrap();
            let cut = cut.min(frame.len() - 1);
            prop_assert!(decode::<Msg>(&frame[..cut], DEFAULT_MAX_FRAME).is_err());
            let mut flipped = frame.clone();
            let i = flip % frame.len();
            flipped[i] ^= 0x5a;
            // Either refused, or a well-formed message (a flipped seq is still a message).
            if let Ok(m) = decode::<Msg>(&flipped, DEFAULT_MAX_FRAME) {
                prop_assert_eq!(decode::<Msg>(&encode(&m).unwrap(), DEFAULT_MAX_FRAME).unwrap(), m);
            }
        }
    }
}
