//! The crate's one error type.

use crdt::CrdtError;

/// Why a frame was refused. A refused frame is dropped whole: no state changes, nothing is acked,
/// and the sender will retransmit what it still owes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    /// The frame is larger than the receiver accepts.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Bytes received.
        size: usize,
        /// Bytes accepted.
        limit: usize,
    },
    /// The message holds more sequence items than one decode may make
    /// ([`crdt::codec::NETWORK_ITEM_BUDGET`]): no receiver would take it.
    #[error("message of {items} sequence items exceeds the limit of {limit}")]
    TooManyItems {
        /// Items in the message.
        items: u64,
        /// Items a receiver decodes.
        limit: u64,
    },
    /// The frame was empty: not even a version byte.
    #[error("empty frame")]
    Empty,
    /// The frame speaks a wire version this node does not.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// The body did not decode as a message.
    #[error("malformed message: {0}")]
    Malformed(#[from] CrdtError),
}
