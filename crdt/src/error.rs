//! The crate's one error type.

use crate::kind::Kind;

/// What can go wrong in the CRDT layer. None of these leaves a state half-changed: mutators return
/// deltas and touch nothing, and decoding builds a fresh value or fails.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CrdtError {
    /// A write named a key that already holds an object of another type; nothing was written.
    #[error("key {key:?} holds a {existing}, not a {requested}")]
    TypeClash {
        /// The key written.
        key: String,
        /// The type the key has.
        existing: Kind,
        /// The type the write asked for.
        requested: Kind,
    },
    /// A write named a reserved key (one starting with NUL); nothing was written.
    #[error("key {0:?} is reserved (keys may not start with NUL)")]
    ReservedKey(String),
    /// A `resolve` asked to keep a type the key does not have; nothing was written.
    #[error("key {key:?} has no {keep} to keep")]
    NothingToKeep {
        /// The key.
        key: String,
        /// The type asked for.
        keep: Kind,
    },
    /// A counter write that would take the counter past what it holds (`u64::MAX` increments,
    /// or decrements); nothing was written.
    #[error("key {key:?}: adding {by} would overflow the counter; nothing was written")]
    Overflow {
        /// The key.
        key: String,
        /// The amount the write asked to add.
        by: i128,
    },
    /// A document edit whose path does not lead where the edit needs (no such field or index,
    /// or an object of another kind); nothing was written.
    #[error("path {path}: {why}; nothing was written")]
    Path {
        /// The path, as JSON.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Bytes did not decode as the expected type; nothing was decoded.
    #[error("malformed encoding: {0}")]
    Decode(String),
    /// Input larger than the decoder accepts (`codec::DECODE_LIMIT`); it was not read.
    #[error("input of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Bytes offered.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// A value failed to encode: a bug, reported rather than panicking.
    #[error("encoding failed: {0}")]
    Encode(String),
}
