//! Churn on the `overlay` topology: a share of the nodes leaves for good halfway through the
//! events and as many new ones join, through the membership protocol; every round the protocol
//! ticks and each node's sync neighbours follow its active view.

use super::{Sim, SimConfig};
use crate::membership::overlay::Overlay;
use crdt::{Decompose, Measure};
use rand::seq::SliceRandom;
use rand::{rngs::SmallRng, SeedableRng};
use serde::Serialize;

/// The membership protocol under a run with churn.
pub(super) struct Churn {
    overlay: Overlay,
    /// Nodes that join halfway (the last ids), absent until then.
    joiners: Vec<u32>,
    /// The round they join and as many others leave.
    at: u64,
}

impl Churn {
    /// For `cfg` (an `overlay:K` run with `churn` > 0): the membership protocol over the first
    /// N − joiners nodes, and the graph it built.
    pub(super) fn start(cfg: &SimConfig, k: usize) -> (Churn, Vec<Vec<u32>>) {
        let n = cfg.nodes as u32;
        let joining = ((cfg.churn * n as f64).round() as u32).clamp(1, n.saturating_sub(2).max(1));
        let members = n - joining;
        let overlay = Overlay::bootstrapped(members, k, cfg.seed, super::topology::OVERLAY_TICKS);
        let adj = (0..n).map(|i| overlay.view(i).to_vec()).collect();
        let churn = Churn {
            overlay,
            joiners: (members..n).collect(),
            at: (cfg.events / 2).max(1),
        };
        (churn, adj)
    }

    /// Nodes absent at the start.
    pub(super) fn joiners(&self) -> &[u32] {
        &self.joiners
    }

    /// How many leave (as many as join).
    pub(super) fn leaving(&self) -> usize {
        self.joiners.len()
    }

    /// One round's membership: at the churn round, random members leave for good and the
    /// joiners join; then a tick, and every live node's sync neighbours become its active view.
    pub(super) fn round<L: Decompose + Measure + Serialize>(
        &mut self,
        round: u64,
        sim: &mut Sim<'_, L>,
    ) {
        if round == self.at {
            let mut members: Vec<u32> = self
                .overlay
                .live()
                .into_iter()
                .filter(|m| !sim.down[*m as usize])
                .collect();
            members.shuffle(&mut SmallRng::seed_from_u64(sim.cfg.seed ^ 0xc4u64));
            for &v in members.iter().take(self.joiners.len()) {
                sim.down[v as usize] = true;
                sim.gone[v as usize] = true;
                self.overlay.kill(v);
            }
            for &j in &self.joiners {
                sim.down[j as usize] = false;
                self.overlay.add(j);
                self.overlay.settle();
            }
        }
        self.overlay.ticks(1);
        for i in 0..sim.adj.len() {
            if sim.gone[i] {
                continue;
            }
            let view = self.overlay.view(i as u32).to_vec();
            let old = std::mem::replace(&mut sim.adj[i], view.clone());
            for p in view.iter().filter(|p| !old.contains(p)) {
                sim.nodes[i].neighbour(*p, true);
            }
            for p in old.iter().filter(|p| !view.contains(p)) {
                sim.nodes[i].neighbour(*p, false);
            }
            sim.max_neighbours = sim.max_neighbours.max(view.len());
        }
    }
}
