//! Op-based reliable causal broadcast over the overlay: each update is an op stamped with a
//! vector clock; it is flooded to every neighbour but the one it came from, delivered in causal
//! order, and retransmitted on each link until that link acks it (so it survives loss).

use crdt::{Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// An operation: its origin, its vector clock (its own entry is its counter), and its effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalOp<L> {
    /// The replica that made it.
    pub origin: u32,
    /// The vector clock at the origin right after it.
    pub clock: BTreeMap<u32, u64>,
    /// Its effect.
    pub payload: L,
}

impl<L> CausalOp<L> {
    fn counter(&self) -> u64 {
        self.clock.get(&self.origin).copied().unwrap_or(0)
    }
}

/// An op-based message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OpMessage<L> {
    /// Every op not yet acked on this link, numbered by link sequence up to `upto`.
    Ops {
        /// The link sequence number of the last op.
        upto: u64,
        /// The ops.
        ops: Vec<CausalOp<L>>,
    },
    /// "I have every op of this link up to `upto`."
    Ack {
        /// The link sequence number acknowledged.
        upto: u64,
    },
}

impl<L: Measure> OpMessage<L> {
    /// Payload and metadata units (vector-clock entries per op, one per sequence number or ack).
    pub fn units(&self) -> (u64, u64) {
        match self {
            OpMessage::Ops { ops, .. } => ops.iter().fold((0, 1), |(p, m), op| {
                (
                    p + op.payload.payload_units(),
                    m + op.clock.len() as u64 + op.payload.metadata_units(),
                )
            }),
            OpMessage::Ack { .. } => (0, 1),
        }
    }
}

/// The outgoing side of one link.
#[derive(Clone, Debug)]
struct Link<L> {
    next: u64,
    unacked: VecDeque<(u64, CausalOp<L>)>,
}

impl<L> Default for Link<L> {
    fn default() -> Self {
        Link {
            next: 0,
            unacked: VecDeque::new(),
        }
    }
}

/// One op-based replica.
#[derive(Clone, Debug)]
pub struct OpBased<L> {
    id: u32,
    state: L,
    /// Ops delivered per origin.
    clock: BTreeMap<u32, u64>,
    /// Received but not yet causally deliverable, with the neighbour they came from.
    waiting: BTreeMap<(u32, u64), (u32, CausalOp<L>)>,
    links: BTreeMap<u32, Link<L>>,
}

impl<L: Lattice + Measure> OpBased<L> {
    /// A replica `id` with `neighbours`.
    pub fn new(id: u32, neighbours: impl IntoIterator<Item = u32>) -> Self {
        OpBased {
            id,
            state: L::bottom(),
            clock: BTreeMap::new(),
            waiting: BTreeMap::new(),
            links: neighbours
                .into_iter()
                .map(|j| (j, Link::default()))
                .collect(),
        }
    }

    /// The state.
    pub fn state(&self) -> &L {
        &self.state
    }

    /// A local update.
    pub fn update(&mut self, delta: L) {
        *self.clock.entry(self.id).or_insert(0) += 1;
        let op = CausalOp {
            origin: self.id,
            clock: self.clock.clone(),
            payload: delta,
        };
        self.state.join(&op.payload);
        self.forward(&op, None);
    }

    fn forward(&mut self, op: &CausalOp<L>, except: Option<u32>) {
        for (&j, link) in self.links.iter_mut() {
            if Some(j) != except {
                link.next += 1;
                link.unacked.push_back((link.next, op.clone()));
            }
        }
    }

    /// One round: every unacked op to its link.
    pub fn tick(&mut self) -> Vec<(u32, OpMessage<L>)> {
        self.links
            .iter()
            .filter(|(_, l)| !l.unacked.is_empty())
            .map(|(&j, l)| {
                (
                    j,
                    OpMessage::Ops {
                        upto: l.next,
                        ops: l.unacked.iter().map(|(_, op)| op.clone()).collect(),
                    },
                )
            })
            .collect()
    }

    fn delivered(&self, op: &CausalOp<L>) -> bool {
        op.counter() <= self.clock.get(&op.origin).copied().unwrap_or(0)
    }

    fn deliverable(&self, op: &CausalOp<L>) -> bool {
        op.clock.iter().all(|(&k, &c)| {
            let have = self.clock.get(&k).copied().unwrap_or(0);
            if k == op.origin {
                c == have + 1
            } else {
                c <= have
            }
        })
    }

    /// A message from `from`.
    pub fn receive(&mut self, from: u32, msg: OpMessage<L>) -> Vec<(u32, OpMessage<L>)> {
        match msg {
            OpMessage::Ack { upto } => {
                if let Some(link) = self.links.get_mut(&from) {
                    while link.unacked.front().is_some_and(|(s, _)| *s <= upto) {
                        link.unacked.pop_front();
                    }
                }
                vec![]
            }
            OpMessage::Ops { upto, ops } => {
                for op in ops {
                    if !self.delivered(&op) {
                        self.waiting
                            .entry((op.origin, op.counter()))
                            .or_insert((from, op));
                    }
                }
                self.deliver_ready();
                vec![(from, OpMessage::Ack { upto })]
            }
        }
    }

    fn deliver_ready(&mut self) {
        loop {
            let ready: BTreeSet<(u32, u64)> = self
                .waiting
                .iter()
                .filter(|(_, (_, op))| self.deliverable(op))
                .map(|(k, _)| *k)
                .collect();
            if ready.is_empty() {
                return;
            }
            for key in ready {
                if let Some((from, op)) = self.waiting.remove(&key) {
                    if self.deliverable(&op) {
                        self.state.join(&op.payload);
                        self.clock.insert(op.origin, op.counter());
                        self.forward(&op, Some(from));
                    } else {
                        self.waiting.insert(key, (from, op));
                    }
                }
            }
        }
    }

    /// Ops waiting for causal delivery or for an ack.
    pub fn pending(&self) -> usize {
        self.waiting.len() + self.links.values().map(|l| l.unacked.len()).sum::<usize>()
    }

    /// Memory in units: state, clock, waiting and unacked ops (payload plus clock each).
    pub fn memory_units(&self) -> u64 {
        let op_units = |op: &CausalOp<L>| op.payload.payload_units() + op.clock.len() as u64;
        let waiting: u64 = self.waiting.values().map(|(_, op)| op_units(op)).sum();
        let links: u64 = self
            .links
            .values()
            .flat_map(|l| l.unacked.iter())
            .map(|(_, op)| 1 + op_units(op))
            .sum();
        self.state.payload_units()
            + self.state.metadata_units()
            + self.clock.len() as u64
            + waiting
            + links
    }
}
