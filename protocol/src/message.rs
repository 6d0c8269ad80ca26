//! What neighbours say to each other, and its size in the paper's units.

use crate::tree::Beacon;
use crdt::Measure;
use serde::{Deserialize, Serialize};

/// A message between neighbours of the delta-sync engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message<L> {
    /// A delta-group: the join of the sender's buffer entries the receiver had not acked, filtered
    /// (BP) and possibly reduced. `seq` is the sender's next sequence number: acking it covers every
    /// entry below it.
    Delta {
        /// The sender's buffer position this group covers up to (exclusive).
        seq: u64,
        /// The group.
        group: L,
    },
    /// "I have merged your message `seq`."
    Ack {
        /// The `seq` of the message acknowledged.
        seq: u64,
    },
    /// State-driven catch-up of a neighbour that is new or too far behind: the sender's full state
    /// as of `seq`. The receiver merges it (keeping only what is new), acks `seq`, and answers with
    /// a `Delta` of exactly what the sender lacks: Δ(receiver's state, `state`).
    CatchUp {
        /// The sender's next sequence number when the state was taken.
        seq: u64,
        /// The sender's full state.
        state: L,
    },
    /// The state-based algorithm's message: the full state, every round, no reply.
    State {
        /// The sender's full state.
        state: L,
    },
    /// `bp-rr-tree`: the sender's place in the spanning tree (a digest of it, sent on change and
    /// once per beacon period; no reply).
    Beacon(Beacon),
}

impl<L: Measure> Message<L> {
    /// The metric label: `delta`, `ack`, `state` (catch-ups count as state) or `digest` (beacons).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Delta { .. } => "delta",
            Message::Ack { .. } => "ack",
            Message::CatchUp { .. } | Message::State { .. } => "state",
            Message::Beacon(_) => "digest",
        }
    }

    /// Payload units carried: the lattice's elements, entries and values.
    pub fn payload_units(&self) -> u64 {
        match self {
            Message::Delta { group: l, .. }
            | Message::CatchUp { state: l, .. }
            | Message::State { state: l } => l.payload_units(),
            Message::Ack { .. } | Message::Beacon(_) => 0,
        }
    }

    /// Metadata units carried: one per sequence number or ack, plus the lattice's own (dots); a
    /// beacon counts two (a version entry, root → epoch, and a distance).
    pub fn metadata_units(&self) -> u64 {
        match self {
            Message::Delta { group: l, .. } | Message::CatchUp { state: l, .. } => {
                1 + l.metadata_units()
            }
            Message::State { state } => state.metadata_units(),
            Message::Ack { .. } => 1,
            Message::Beacon(_) => 2,
        }
    }
}
