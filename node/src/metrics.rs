//! What the shell counts: the replication lag of local updates and the updates by origin
//! ([`Metrics`], kept by the replica), and what happens on connections ([`PeerCounters`], kept by
//! the peers layer). The engine's own counters are read from the engine; the `prometheus` module
//! renders all of it at scrape time.

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

/// Local updates awaiting every neighbour's ack, for the lag histogram; beyond this (no neighbour
/// acking for a long time) the oldest are dropped unobserved.
const MAX_LAG_TRACKED: usize = 100_000;

/// Counts of updates and neighbours, as of one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateCounts {
    /// Updates applied, local.
    pub local: u64,
    /// Updates applied, remote (groups that brought something new).
    pub remote: u64,
    /// Neighbours lost.
    pub neighbour_down: u64,
    /// Local writes that changed nothing (and so committed nothing).
    pub unchanged_writes: u64,
}

/// What the replica counts. Fed by the engine's reports; it derives nothing itself.
pub struct Metrics {
    /// Seconds from a local update until every neighbour acked it.
    pub replication_lag: Histogram,
    /// Local updates not yet acked by every neighbour: (update number, when).
    pending: VecDeque<(u64, Instant)>,
    /// Updates by origin and neighbours lost.
    pub counts: UpdateCounts,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 1 ms … ~65 s.
            replication_lag: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            pending: VecDeque::new(),
            counts: UpdateCounts::default(),
        }
    }
}

/// What the peers layer counts.
#[derive(Clone, Debug, Default)]
pub struct PeerCounters {
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// Inbound sync streams that failed after the request was read (timeouts, resets).
    pub inbound_failures: u64,
    /// Incoming frames refused for their length (shared with the frame codec).
    pub oversized_frames: Arc<AtomicU64>,
    /// Connections refused: by reason (`not_neighbour`, `handshake` — e.g. a wrong swarm key).
    pub rejected_connections: BTreeMap<&'static str, u64>,
    /// Sync frame bytes sent to and received from peers since forgotten (`--forget-after`): the
    /// node's totals keep counting them after their per-peer rows are gone.
    pub forgotten_bytes: (u64, u64),
    /// Peers forgotten.
    pub forgotten_peers: u64,
    /// Peer samples (peer exchange) by result: `sent`, `received`, `malformed`.
    pub peer_samples: BTreeMap<&'static str, u64>,
    /// Membership messages past the protocol's bounds, cut back (`protocol::membership::BadInput`).
    pub membership_bad_input: protocol::membership::BadInput,
    /// Peers found to have two processes behind their identity.
    pub twins_seen: u64,
    /// Another process was found to share this node's identity.
    pub cloned: bool,
}

impl Metrics {
    /// The engine numbered a local update `seq` (`Event::LocalUpdate`).
    pub fn local_update(&mut self, seq: u64) {
        self.counts.local += 1;
        if self.pending.len() == MAX_LAG_TRACKED {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, Instant::now()));
    }

    /// Every neighbour holds every local update below `acked_by_all` (`Event::AckedByAll`):
    /// observe the lag of those.
    pub fn acked_by_all(&mut self, acked_by_all: u64) {
        while self
            .pending
            .front()
            .is_some_and(|(seq, _)| *seq < acked_by_all)
        {
            let (_, at) = self.pending.pop_front().expect("checked");
            self.replication_lag.observe(at.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_histogram_observes_each_update_once_when_acked_by_all() {
        let mut m = Metrics::default();
        for seq in 10..15 {
            m.local_update(seq);
        }
        m.acked_by_all(12);
        m.acked_by_all(12);
        let count = |m: &Metrics| {
            let mut text = String::new();
            let mut r = prometheus_client::registry::Registry::default();
            r.register("lag", "lag", m.replication_lag.clone());
            prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
            text.lines()
                .find(|l| l.starts_with("lag_count"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        };
        assert_eq!(count(&m), 2);
        m.acked_by_all(100);
        assert_eq!((count(&m), m.counts.local), (5, 5));
    }
}
