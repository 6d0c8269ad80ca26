//! Scuttlebutt (van Renesse et al.) over deltas: every update is a delta named by a dot
//! `(origin, counter)`; each round a node sends each neighbour its version vector, and the
//! neighbour answers with every delta the vector does not cover. No acks; the log of deltas is
//! kept forever (the paper's Scuttlebutt without garbage collection).

use crdt::{Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A Scuttlebutt message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SbMessage<L> {
    /// "This is what I have": the sender's version vector.
    Digest {
        /// Highest contiguous counter seen per origin.
        vv: BTreeMap<u32, u64>,
    },
    /// The deltas the digest did not cover, by dot, in dot order.
    Deltas {
        /// `(origin, counter, delta)`.
        deltas: Vec<(u32, u64, L)>,
    },
}

impl<L: Measure> SbMessage<L> {
    /// Payload and metadata units (one per vector entry, one per dot).
    pub fn units(&self) -> (u64, u64) {
        match self {
            SbMessage::Digest { vv } => (0, vv.len() as u64),
            SbMessage::Deltas { deltas } => deltas.iter().fold((0, 0), |(p, m), (_, _, d)| {
                (p + d.payload_units(), m + 1 + d.metadata_units())
            }),
        }
    }
}

/// One Scuttlebutt replica.
#[derive(Clone, Debug)]
pub struct Scuttlebutt<L> {
    id: u32,
    state: L,
    neighbours: BTreeSet<u32>,
    /// Every delta seen, by dot.
    log: BTreeMap<(u32, u64), L>,
    /// Contiguous counters seen per origin.
    vv: BTreeMap<u32, u64>,
}

impl<L: Lattice + Measure> Scuttlebutt<L> {
    /// A replica `id` with `neighbours`.
    pub fn new(id: u32, neighbours: impl IntoIterator<Item = u32>) -> Self {
        Scuttlebutt {
            id,
            state: L::bottom(),
            neighbours: neighbours.into_iter().collect(),
            log: BTreeMap::new(),
            vv: BTreeMap::new(),
        }
    }

    /// The state.
    pub fn state(&self) -> &L {
        &self.state
    }

    /// A local update.
    pub fn update(&mut self, delta: L) {
        let c = self.vv.entry(self.id).or_insert(0);
        *c += 1;
        self.state.join(&delta);
        self.log.insert((self.id, *c), delta);
    }

    /// One round: a digest to every neighbour.
    pub fn tick(&mut self) -> Vec<(u32, SbMessage<L>)> {
        self.neighbours
            .iter()
            .map(|&j| {
                (
                    j,
                    SbMessage::Digest {
                        vv: self.vv.clone(),
                    },
                )
            })
            .collect()
    }

    /// A message from `from`.
    pub fn receive(&mut self, from: u32, msg: SbMessage<L>) -> Vec<(u32, SbMessage<L>)> {
        match msg {
            SbMessage::Digest { vv } => {
                let deltas: Vec<(u32, u64, L)> = self
                    .log
                    .iter()
                    .filter(|((o, c), _)| *c > vv.get(o).copied().unwrap_or(0))
                    .map(|((o, c), d)| (*o, *c, d.clone()))
                    .collect();
                if deltas.is_empty() {
                    vec![]
                } else {
                    vec![(from, SbMessage::Deltas { deltas })]
                }
            }
            SbMessage::Deltas { deltas } => {
                for (o, c, d) in deltas {
                    // Only the next contiguous one per origin: the vector must stay a true summary.
                    let seen = self.vv.entry(o).or_insert(0);
                    if c == *seen + 1 {
                        *seen = c;
                        self.state.join(&d);
                        self.log.insert((o, c), d);
                    }
                }
                vec![]
            }
        }
    }

    /// Memory in units: state, log (payload and one dot each), vector.
    pub fn memory_units(&self) -> u64 {
        let log: u64 = self
            .log
            .values()
            .map(|d| d.payload_units() + d.metadata_units() + 1)
            .sum();
        self.state.payload_units() + self.state.metadata_units() + log + self.vv.len() as u64
    }
}
