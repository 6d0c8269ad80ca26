//! One simulated replica of any algorithm, behind one interface, so the runner treats them alike.

use crate::algorithm::Algorithm;
use crate::baseline::opbased::{OpBased, OpMessage};
use crate::baseline::scuttlebutt::{SbMessage, Scuttlebutt};
use crate::engine::{Config, Engine, Input, Output};
use crate::message::Message;
use crdt::{Decompose, Measure};
use serde::{Deserialize, Serialize};

/// A message of any algorithm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SimMessage<L> {
    /// The delta engine's (and state-based).
    Engine(Message<L>),
    /// Scuttlebutt's.
    Scuttlebutt(SbMessage<L>),
    /// Op-based broadcast's.
    Op(OpMessage<L>),
}

impl<L: Measure> SimMessage<L> {
    /// Payload and metadata units.
    pub fn units(&self) -> (u64, u64) {
        match self {
            SimMessage::Engine(m) => (m.payload_units(), m.metadata_units()),
            SimMessage::Scuttlebutt(m) => m.units(),
            SimMessage::Op(m) => m.units(),
        }
    }
}

/// A replica of any algorithm.
pub enum SimNode<L> {
    /// Delta-based or state-based.
    Engine(Engine<u32, L>),
    /// Scuttlebutt.
    Scuttlebutt(Scuttlebutt<L>),
    /// Op-based.
    Op(OpBased<L>),
}

type Sends<L> = Vec<(u32, SimMessage<L>)>;

impl<L: Decompose + Measure + serde::Serialize> SimNode<L> {
    /// Node `id` of `nodes` running `algorithm`, starting from `initial` together with its
    /// `neighbours` (who start from the same state). The baselines start from ⊥ only: their logs
    /// have no preload.
    pub fn new(
        algorithm: Algorithm,
        id: u32,
        nodes: usize,
        neighbours: &[u32],
        initial: L,
    ) -> Self {
        assert!(
            initial.is_bottom() || !matches!(algorithm, Algorithm::Scuttlebutt | Algorithm::Op),
            "{algorithm} cannot start from a preloaded state"
        );
        match algorithm {
            Algorithm::Scuttlebutt => {
                SimNode::Scuttlebutt(Scuttlebutt::new(id, nodes, neighbours.iter().copied()))
            }
            Algorithm::Op => SimNode::Op(OpBased::new(id, neighbours.iter().copied())),
            _ => {
                let config = Config {
                    rank: id.into(),
                    ..Config::new(algorithm)
                };
                let mut e = Engine::new(config, initial, 0);
                neighbours.iter().for_each(|&j| e.add_synced_neighbour(j));
                SimNode::Engine(e)
            }
        }
    }

    /// The replicated state.
    pub fn state(&self) -> &L {
        match self {
            SimNode::Engine(e) => e.state(),
            SimNode::Scuttlebutt(s) => s.state(),
            SimNode::Op(o) => o.state(),
        }
    }

    fn engine(e: &mut Engine<u32, L>, input: Input<u32, L>) -> Sends<L> {
        e.handle(input)
            .into_iter()
            .filter_map(|o| match o {
                Output::Send { to, msg } => Some((to, SimMessage::Engine(msg))),
                Output::Applied { .. } | Output::Event(_) => None,
            })
            .collect()
    }

    /// A local update.
    pub fn update(&mut self, delta: L) -> Sends<L> {
        match self {
            SimNode::Engine(e) => Self::engine(e, Input::Update(delta)),
            SimNode::Scuttlebutt(s) => {
                s.update(delta);
                vec![]
            }
            SimNode::Op(o) => {
                o.update(delta);
                vec![]
            }
        }
    }

    /// One sync interval.
    pub fn tick(&mut self) -> Sends<L> {
        match self {
            SimNode::Engine(e) => Self::engine(e, Input::Tick),
            SimNode::Scuttlebutt(s) => wrap(s.tick(), SimMessage::Scuttlebutt),
            SimNode::Op(o) => wrap(o.tick(), SimMessage::Op),
        }
    }

    /// A message from `from`. A message of another algorithm's family is ignored.
    pub fn receive(&mut self, from: u32, msg: SimMessage<L>) -> Sends<L> {
        match (self, msg) {
            (SimNode::Engine(e), SimMessage::Engine(msg)) => {
                Self::engine(e, Input::Received { from, msg })
            }
            (SimNode::Scuttlebutt(s), SimMessage::Scuttlebutt(m)) => {
                wrap(s.receive(from, m), SimMessage::Scuttlebutt)
            }
            (SimNode::Op(o), SimMessage::Op(m)) => wrap(o.receive(from, m), SimMessage::Op),
            _ => vec![],
        }
    }

    /// Reachability of a neighbour changed. Only the delta engine reacts; the baselines keep
    /// retransmitting over their links.
    pub fn neighbour(&mut self, peer: u32, up: bool) {
        if let SimNode::Engine(e) = self {
            Self::engine(
                e,
                if up {
                    Input::NeighbourUp(peer)
                } else {
                    Input::NeighbourDown(peer)
                },
            );
        }
    }

    /// A crash and restart: a delta engine keeps its durable state and loses its buffer and what
    /// it knew of its neighbours (they come back as new and are caught up by state). The baselines
    /// keep everything: neither can recover without its logs.
    pub fn crash_restart(&mut self, neighbours: &[u32]) {
        if let SimNode::Engine(e) = self {
            let mut fresh = Engine::new(*e.config(), e.state().clone(), e.restart_base());
            for &j in neighbours {
                fresh.handle(Input::NeighbourUp(j));
            }
            *e = fresh;
        }
    }

    /// Memory in units.
    pub fn memory_units(&self) -> u64 {
        match self {
            SimNode::Engine(e) => e.memory_units(),
            SimNode::Scuttlebutt(s) => s.memory_units(),
            SimNode::Op(o) => o.memory_units(),
        }
    }

    /// What it still holds for others: buffered groups, logged deltas not yet stable, or pending
    /// ops.
    pub fn pending(&self) -> usize {
        match self {
            SimNode::Engine(e) => e.buffer().len(),
            SimNode::Scuttlebutt(s) => s.logged(),
            SimNode::Op(o) => o.pending(),
        }
    }
}

fn wrap<M, L>(sends: Vec<(u32, M)>, f: fn(M) -> SimMessage<L>) -> Sends<L> {
    sends.into_iter().map(|(to, m)| (to, f(m))).collect()
}
