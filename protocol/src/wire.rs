//! Frames on the wire: a version byte, then the message in `crdt::codec`'s encoding (bincode
//! 2.0.1, named only there). Decoding checks the size before reading and never panics.

use crate::error::ProtocolError;
use crdt::codec;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire version this build speaks. Bump it when a message's encoding changes.
pub const WIRE_VERSION: u8 = 7;

/// The default largest frame a node accepts (and sends): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Encodes `msg` as a frame.
pub fn encode<M: Serialize>(msg: &M) -> Result<Vec<u8>, ProtocolError> {
    encode_within_limits(msg, usize::MAX, u64::MAX)
}

/// Encodes `msg` as a frame a receiver will take — at most `max_frame` bytes and at most
/// [`codec::NETWORK_ITEM_BUDGET`] sequence items — or says which limit it passes
/// ([`ProtocolError::FrameTooLarge`], [`ProtocolError::TooManyItems`]): the sender catches such a
/// neighbour up another way.
pub fn encode_within<M: Serialize>(msg: &M, max_frame: usize) -> Result<Vec<u8>, ProtocolError> {
    encode_within_limits(msg, max_frame, codec::NETWORK_ITEM_BUDGET)
}

fn encode_within_limits<M: Serialize>(
    msg: &M,
    max_frame: usize,
    max_items: u64,
) -> Result<Vec<u8>, ProtocolError> {
    let (body, items) = codec::encode_counting_items(msg)?;
    if items > max_items {
        return Err(ProtocolError::TooManyItems {
            items,
            limit: max_items,
        });
    }
    let mut frame = Vec::with_capacity(body.len() + 1);
    frame.push(WIRE_VERSION);
    frame.extend(body);
    if frame.len() > max_frame {
        return Err(ProtocolError::FrameTooLarge {
            size: frame.len(),
            limit: max_frame,
        });
    }
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
    use crdt::{Lattice, Op, ReplicaId, Store, Value, Writer};
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

    /// Frames of documents whose text is packed (deflated) and plain round-trip. With
    /// `DELTANODE_FUZZ_SEEDS=DIR` set, they are written there as seeds for the fuzz targets:
    /// `DIR/wire_decode/doc-N` the frames, `DIR/crdt_decode/doc-state` the last state's encoding
    /// (RELIABILITY.md, "Fuzzing").
    #[test]
    fn documents_with_packed_and_plain_texts_round_trip() {
        let w = Writer {
            replica: ReplicaId(1),
            now_ms: 5,
        };
        let words: String = (0..400).map(|i| format!("w{} ", i % 23)).collect();
        let mut state = Store::default();
        let mut frames = Vec::new();
        for op in [
            Op::DocPut(
                vec![],
                serde_json::json!({"t": words.clone(), "n": [1, "two"]}),
            ),
            Op::DocSplice(
                vec![crdt::doc::Step::Field("t".into())],
                10,
                300,
                "typed".into(),
            ),
            Op::DocDelete(vec![crdt::doc::Step::Field("n".into())]),
        ] {
            let delta = state.apply("d", op, &w).unwrap();
            state.join(&delta);
            frames.push(
                encode(&Message::Delta {
                    seq: 1,
                    group: delta,
                })
                .unwrap(),
            );
        }
        let state_bytes = crdt::codec::encode(&state).unwrap();
        let catch_up = Message::CatchUp { seq: 3, state };
        frames.push(encode(&catch_up).unwrap());
        // The text put whole is packed: smaller than its characters.
        assert!(
            frames[0].len() < words.len() / 2,
            "{} bytes",
            frames[0].len()
        );
        for frame in &frames {
            let m = decode::<Msg>(frame, DEFAULT_MAX_FRAME).unwrap();
            assert_eq!(&encode(&m).unwrap(), frame);
        }
        if let Ok(dir) = std::env::var("DELTANODE_FUZZ_SEEDS") {
            for target in ["wire_decode", "crdt_decode"] {
                std::fs::create_dir_all(format!("{dir}/{target}")).unwrap();
            }
            for (i, frame) in frames.iter().enumerate() {
                std::fs::write(format!("{dir}/wire_decode/doc-{i}"), frame).unwrap();
            }
            std::fs::write(format!("{dir}/crdt_decode/doc-state"), state_bytes).unwrap();
        }
    }

    #[test]
    fn a_message_past_either_limit_is_named_before_it_is_sent() {
        let w = Writer {
            replica: ReplicaId(1),
            now_ms: 5,
        };
        // A document whose text holds 1,000 items, 600 of them deleted: about 400 bytes.
        let mut doc = Store::default();
        for op in [
            Op::DocPut(vec![], serde_json::json!({"t": "x".repeat(1_000)})),
            Op::DocSplice(
                vec![crdt::doc::Step::Field("t".into())],
                0,
                600,
                String::new(),
            ),
        ] {
            let d = doc.apply("d", op, &w).unwrap();
            doc.join(&d);
        }
        let msg = Message::Delta { seq: 1, group: doc };
        let frame = encode_within_limits(&msg, DEFAULT_MAX_FRAME, 1_000).unwrap();
        assert_eq!(frame, encode(&msg).unwrap());
        assert!(frame.len() < 600, "{} bytes", frame.len());
        assert!(matches!(
            encode_within_limits(&msg, DEFAULT_MAX_FRAME, 999),
            Err(ProtocolError::TooManyItems {
                items: 1_000,
                limit: 999
            })
        ));
        assert!(matches!(
            encode_within_limits(&msg, 100, 1_000),
            Err(ProtocolError::FrameTooLarge { limit: 100, .. })
        ));
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
