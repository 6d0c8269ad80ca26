//! What neighbours say to each other, and its size in the paper's units.

use crate::reconcile::Part;
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
    /// A round of reconciliation ([`crate::reconcile`]), which catches up a neighbour that is new
    /// or too far behind in proportion to the difference. `parts` narrow the hash ranges where the
    /// two sides differ; `items` are irreducibles the receiver lacks. A message without parts ends
    /// the exchange: its receiver acks `seq`, and both sides then hold each other's state as of
    /// the indexes they answered from.
    Reconcile {
        /// The exchange (chosen by the side that opened it).
        session: u64,
        /// The message's place in the exchange: 0 opens it, each answer is one more. A message
        /// out of turn (a duplicate, or one of an exchange given up) is ignored.
        round: u32,
        /// The lowest of the sender's next sequence numbers when it indexed the states it answered
        /// from in this exchange.
        seq: u64,
        /// Ranges still to narrow; none: the exchange is over.
        parts: Vec<Part>,
        /// In an opening: the first 64 bits of the opener's smallest hashes (a bottom-k sketch),
        /// from which the other side estimates how much differs. Empty otherwise.
        sketch: Vec<u64>,
        /// Irreducibles the receiver lacks, joined.
        items: L,
    },
}

impl<L> Message<L> {
    /// The lattice data the message carries, if any (a delta-group, a state, reconciled items),
    /// for a shell that must hold part of it back (writes stamped too far ahead of its clock).
    pub fn payload_mut(&mut self) -> Option<&mut L> {
        match self {
            Message::Delta { group: l, .. }
            | Message::CatchUp { state: l, .. }
            | Message::State { state: l }
            | Message::Reconcile { items: l, .. } => Some(l),
            Message::Ack { .. } | Message::Beacon(_) => None,
        }
    }
}

impl<L: Measure> Message<L> {
    /// The metric label: `delta`, `ack`, `state` (full-state catch-ups count as state) or `digest`
    /// (beacons and reconciliation rounds).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Delta { .. } => "delta",
            Message::Ack { .. } => "ack",
            Message::CatchUp { .. } | Message::State { .. } => "state",
            Message::Beacon(_) | Message::Reconcile { .. } => "digest",
        }
    }

    /// Payload units carried: the lattice's elements, entries and values.
    pub fn payload_units(&self) -> u64 {
        match self {
            Message::Delta { group: l, .. }
            | Message::CatchUp { state: l, .. }
            | Message::State { state: l }
            | Message::Reconcile { items: l, .. } => l.payload_units(),
            Message::Ack { .. } | Message::Beacon(_) => 0,
        }
    }

    /// Metadata units carried: one per sequence number or ack, plus the lattice's own (dots); a
    /// beacon counts two (a version entry, root → epoch, and a distance); a reconciliation round
    /// one per fingerprint and per hash listed.
    pub fn metadata_units(&self) -> u64 {
        match self {
            Message::Delta { group: l, .. } | Message::CatchUp { state: l, .. } => {
                1 + l.metadata_units()
            }
            Message::State { state } => state.metadata_units(),
            Message::Reconcile {
                parts,
                items,
                sketch,
                ..
            } => {
                1 + sketch.len() as u64
                    + parts.iter().map(Part::metadata_units).sum::<u64>()
                    + items.metadata_units()
            }
            Message::Ack { .. } => 1,
            Message::Beacon(_) => 2,
        }
    }
}
