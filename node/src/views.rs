//! What the node shows its clients: objects, peers, checkpoints, and the outcomes of writes and
//! rollbacks. Plain data, built by the node and serialised by the API.

use crdt::{CrdtError, Object};
use serde::Serialize;

/// An object as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectView {
    /// Its key.
    pub key: String,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its materialised value.
    pub value: serde_json::Value,
}

impl ObjectView {
    /// The view of `object` at `key`.
    pub fn new(key: &str, object: Object<'_>) -> Self {
        ObjectView {
            key: key.to_string(),
            kind: object.kind().name(),
            value: object.value(),
        }
    }
}

/// What the node knows of one peer (`GET /v1/peers`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerView {
    /// Its PeerId.
    pub peer_id: String,
    /// Whether a connection is open.
    pub connected: bool,
    /// Addresses it was reached at.
    pub addrs: Vec<String>,
    /// Frame bytes sent to it.
    pub bytes_sent: u64,
    /// Frame bytes received from it.
    pub bytes_received: u64,
    /// When it last acked a message (ms since the epoch), if ever.
    pub last_ack_unix_ms: Option<u64>,
    /// Buffered groups it has not acked.
    pub pending_groups: u64,
}

/// A checkpoint as the API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointInfo {
    /// Its name.
    pub label: String,
    /// The state's digest then.
    pub digest: String,
    /// When it was taken (ms since the epoch).
    pub created_unix_ms: u64,
}

/// What a rollback did.
#[derive(Debug)]
pub enum RollbackOutcome {
    /// No such checkpoint.
    NoSuchCheckpoint,
    /// Some changed objects cannot be reverted and `partial` was not set: nothing changed.
    Refused {
        /// Those objects' keys.
        irreversible: Vec<String>,
    },
    /// The compensating writes are applied (and will replicate).
    Done {
        /// Keys reverted.
        reverted: Vec<String>,
        /// Keys left as they are (only with `partial`).
        irreversible: Vec<String>,
    },
}

/// Why a write was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The write itself was refused (a type clash); nothing changed.
    #[error(transparent)]
    Crdt(#[from] CrdtError),
    /// The store could not commit it; the node stops rather than run ahead of its disk.
    #[error("the store failed ({0}); the node has stopped")]
    Storage(String),
}
