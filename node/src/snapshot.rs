//! [`Snapshot`]: an owned copy of everything a whole-store read needs, taken on the event loop in
//! time proportional to the number of objects (each object is shared, not copied; see
//! `crdt::shared`) and read on the reader's own task, so a large read never holds up writes.

use crate::metrics::{PeerCounters, UpdateCounts};
use crate::views::PeerView;
use crdt::{codec, Measure, Store};
use libp2p::PeerId;
use prometheus_client::metrics::histogram::Histogram;
use protocol::Stats;

/// The node as of one moment. See the module docs.
pub struct Snapshot {
    /// The node's PeerId.
    pub peer_id: PeerId,
    /// The replicated state.
    pub state: Store,
    /// The engine's counters.
    pub stats: Stats,
    /// Groups in the delta-buffer.
    pub buffer_groups: usize,
    /// The buffer's size in the paper's units.
    pub buffer_units: u64,
    /// Connected neighbours.
    pub neighbours: usize,
    /// Every peer seen, with the groups it has not acked.
    pub peers: Vec<PeerView>,
    /// Updates by origin, neighbours lost.
    pub counts: UpdateCounts,
    /// The replication-lag histogram (a handle: it keeps counting after the snapshot).
    pub replication_lag: Histogram,
    /// What the peers layer counts.
    pub peer_counters: PeerCounters,
    /// The store takes no writes (a full disk, an I/O error).
    pub store_degraded: bool,
    /// Release times of neighbours' writes held for being stamped too far ahead.
    pub writes_held: usize,
}

impl Snapshot {
    /// Memory in the paper's units, as the simulator counts it: state, buffer, one ack per neighbour.
    pub fn memory_units(&self) -> u64 {
        self.state.payload_units()
            + self.state.metadata_units()
            + self.buffer_units
            + self.neighbours as u64
    }

    /// The state's digest: hex SHA-256 of its canonical encoding.
    pub fn digest(&self) -> String {
        digest(&self.state)
    }
}

/// Hex SHA-256 of `state`'s canonical encoding.
pub fn digest(state: &Store) -> String {
    codec::hex(&codec::digest(state).unwrap_or_default())
}
