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
    /// Its materialised value; left out of a write's reply and of a change event when the object
    /// is large (over [`SMALL`]) unless asked for (`Prefer: return=representation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// How many elements, fields or values it holds ([`crdt::Object::size`]).
    pub size: usize,
    /// What the write (or the neighbour's delta) changed ([`crdt::Object::change`]); none on reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<serde_json::Value>,
}

/// Objects up to this size (and [`SMALL_BYTES`] of JSON) carry their whole value in write replies
/// and change events by default; larger ones carry their size and the change. Changes of more
/// elements or fields than this are told by count.
pub const SMALL: usize = 1_000;

/// The most JSON a value sent by default may take: a few elements can be large.
pub const SMALL_BYTES: usize = 64 << 10;

/// What a write's reply holds of each object it names (RFC 7240 `Prefer: return=…`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Return {
    /// The value for objects up to [`SMALL`], else the size and the change.
    #[default]
    Auto,
    /// Always the value (`Prefer: return=representation`).
    Representation,
    /// Never the value (`Prefer: return=minimal`).
    Minimal,
    /// No views at all (a batch answers with a count).
    Nothing,
}

impl ObjectView {
    /// The view of `object` at `key`, with its whole value (a read).
    pub fn new(key: &str, object: Object<'_>) -> Self {
        ObjectView {
            key: key.to_string(),
            kind: object.kind().name(),
            value: Some(object.value()),
            size: object.size(),
            change: None,
        }
    }

    /// The view of `object` at `key` after `delta` (its part of a write or a neighbour's group),
    /// with the value when `ret` asks for it: costs the delta, and the value only when asked.
    pub fn changed(key: &str, object: Object<'_>, delta: Option<Object<'_>>, ret: Return) -> Self {
        let size = object.size();
        let value = match ret {
            Return::Representation => true,
            Return::Auto => size <= SMALL && object.value_fits(SMALL_BYTES),
            Return::Minimal | Return::Nothing => false,
        };
        ObjectView {
            key: key.to_string(),
            kind: object.kind().name(),
            value: value.then(|| object.value()),
            size,
            change: delta.map(|d| object.change(&d, SMALL)),
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
    /// How far ahead of this node's clock its latest held write was stamped (ms), if any was
    /// (`--max-clock-skew`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_ahead_ms: Option<u64>,
    /// Messages from it whose writes were held for being stamped too far ahead.
    pub held_ahead: u64,
    /// Messages to it that were larger than a frame (not sent: it was caught up by
    /// reconciliation instead).
    pub oversized_sends: u64,
    /// When the last of those was (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_oversized_unix_ms: Option<u64>,
    /// Its clock minus this node's (ms), as last measured (`/deltanode/clock/1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    /// The round trip of the last libp2p ping to it (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// What it runs, as its identify says (e.g. `deltanode/0.1.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
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
    /// Refused: the store takes no writes (a full disk, an I/O error); nothing changed. The node
    /// takes writes again by itself once its store does.
    #[error("{}: writes are refused until it is fixed (reads go on): {}", if .0.disk_full { "the disk is full" } else { "the store failed" }, .0.reason)]
    Unavailable(crate::replica::Degraded),
    /// Applied in memory but the commit failed: not acknowledged. It is kept (and written with
    /// the whole state) if the store takes writes again before the node stops.
    #[error("{}: the write was not stored: {}", if .0.disk_full { "the disk is full" } else { "the store failed" }, .0.reason)]
    NotStored(crate::replica::Degraded),
}

/// The node's own addresses as they change: where it listens (a wildcard listener gains and loses
/// interfaces' addresses as they come and go) and the external addresses peers confirmed through
/// identify. Shared by the peers layer, which updates it, and the API, which shows it.
#[derive(Clone, Debug, Default)]
pub struct OwnAddrs(std::sync::Arc<std::sync::RwLock<(Vec<String>, Vec<String>)>>);

impl OwnAddrs {
    /// Starting from the listen addresses the node came up with.
    pub fn new(listen: Vec<String>) -> OwnAddrs {
        OwnAddrs(std::sync::Arc::new(std::sync::RwLock::new((
            listen,
            Vec::new(),
        ))))
    }

    /// Where it listens now.
    pub fn listen(&self) -> Vec<String> {
        self.0.read().map(|a| a.0.clone()).unwrap_or_default()
    }

    /// External addresses peers confirmed.
    pub fn external(&self) -> Vec<String> {
        self.0.read().map(|a| a.1.clone()).unwrap_or_default()
    }

    /// Adds (`true`) or removes an address, listen or external.
    pub(crate) fn update(&self, external: bool, addr: String, add: bool) {
        if let Ok(mut a) = self.0.write() {
            let list = if external { &mut a.1 } else { &mut a.0 };
            list.retain(|x| *x != addr);
            if add {
                list.push(addr);
            }
        }
    }
}
