//! What a simulation run measured: per-round totals and the run's report.

use crate::algorithm::Algorithm;
use serde::Serialize;
use std::time::Duration;

/// Totals of one round.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RoundSample {
    /// Payload units sent in the round.
    pub payload_units: u64,
    /// Metadata units sent in the round.
    pub metadata_units: u64,
    /// Encoded bytes sent in the round.
    pub bytes: u64,
    /// Memory per node at the round's end, averaged over nodes.
    pub avg_memory_units: f64,
    /// Memory per node just after its own sync, before any answer arrives, averaged over nodes:
    /// where the paper's authors sampled (their memory timer shares the sync timer's process and
    /// period, so it fires right after each sync, while the acks are still on their way).
    pub sync_memory_units: f64,
}

/// What a run measured (totals up to convergence).
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The topology, as named on the command line.
    pub topology: String,
    /// The workload, as named on the command line.
    pub workload: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Payload units of every local update (each must reach N − 1 other nodes).
    pub updates: u64,
    /// Payload units sent.
    pub payload_units: u64,
    /// Metadata units sent.
    pub metadata_units: u64,
    /// Encoded bytes sent (wire frames).
    pub bytes: u64,
    /// CPU time spent inside the replicas.
    pub cpu: Duration,
    /// Memory per node, averaged over nodes and rounds.
    pub avg_memory_units: f64,
    /// Memory per node sampled at its syncs (before the acks), averaged over nodes and rounds.
    pub sync_memory_units: f64,
    /// Rounds until every node held the same state.
    pub rounds: u64,
    /// Whether they did within the allowed rounds.
    pub converged: bool,
    /// The lower bound: every update delivered once to every other node.
    pub lower_bound_units: u64,
    /// Groups or ops still held, summed over nodes, after the quiescent rounds.
    pub pending_after_quiescence: usize,
    /// The most neighbours any node had (for `overlay`: the largest active view).
    pub max_neighbours: usize,
    /// Per-round totals.
    pub samples: Vec<RoundSample>,
}

impl SimReport {
    /// Payload plus metadata units.
    pub fn transmission(&self) -> u64 {
        self.payload_units + self.metadata_units
    }

    /// Metadata share of the transmission.
    pub fn metadata_share(&self) -> f64 {
        self.metadata_units as f64 / self.transmission().max(1) as f64
    }
}
