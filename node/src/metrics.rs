//! `GET /metrics`: every metric SPEC.md lists, in Prometheus text format (prometheus-client).
//!
//! Counters the engine already keeps (messages, units, full-state sends) and gauges of the state are
//! read at scrape time into a registry built for the scrape; what only the shell sees (lag, updates by
//! origin, neighbours lost, decode errors, bytes per neighbour) lives in [`Metrics`].

use crate::node::View;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Local updates awaiting every neighbour's ack, for the lag histogram; beyond this (no neighbour
/// acking for a long time) the oldest are dropped unobserved.
const MAX_LAG_TRACKED: usize = 100_000;

/// What the shell counts.
pub struct Metrics {
    /// Seconds from a local update until every neighbour acked it.
    pub replication_lag: Histogram,
    /// Local updates not yet acked by every neighbour: (sequence number, when).
    pending: VecDeque<(u64, Instant)>,
    /// Updates applied, local.
    pub updates_local: u64,
    /// Updates applied, remote (groups that brought something new).
    pub updates_remote: u64,
    /// Neighbours lost.
    pub neighbour_down: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// Inbound sync streams that failed after the request was read (timeouts, resets).
    pub inbound_failures: u64,
    /// Incoming frames refused for their length (shared with the frame codec).
    pub oversized_frames: Arc<AtomicU64>,
    /// Connections refused: by reason (`not_neighbour`, `handshake` — e.g. a wrong swarm key).
    pub rejected_connections: BTreeMap<&'static str, u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // 1 ms … ~65 s.
            replication_lag: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            pending: VecDeque::new(),
            updates_local: 0,
            updates_remote: 0,
            neighbour_down: 0,
            decode_errors: 0,
            inbound_failures: 0,
            oversized_frames: Arc::default(),
            rejected_connections: BTreeMap::new(),
        }
    }
}

impl Metrics {
    /// A local update buffered at sequence number `seq`.
    pub fn local_update(&mut self, seq: u64) {
        self.updates_local += 1;
        if self.pending.len() == MAX_LAG_TRACKED {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, Instant::now()));
    }

    /// Every neighbour has acked everything below `acked_by_all`: observe the updates it covers.
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

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// The Prometheus text for `view`, with the API's error answers by status (`api_errors`).
pub fn render(view: &View<'_>, api_errors: &BTreeMap<u16, u64>) -> String {
    let m = view.metrics;
    let stats = view.engine.stats();
    let state = view.engine.state();
    let mut r = Registry::default();
    let kinds = Family::<Vec<(String, String)>, Counter>::default();
    for kind in ["delta", "ack", "state", "digest"] {
        kinds
            .get_or_create(&vec![("kind".into(), kind.into())])
            .inc_by(stats.messages_sent.get(kind).copied().unwrap_or(0));
    }
    r.register(
        "deltanode_sync_messages_sent",
        "Sync messages sent, by kind",
        kinds,
    );
    let peers = view.peers();
    let sent: u64 = peers.iter().map(|p| p.bytes_sent).sum();
    let received: u64 = peers.iter().map(|p| p.bytes_received).sum();
    counter(
        &mut r,
        "deltanode_sync_bytes_sent",
        "Sync frame bytes sent",
        sent,
    );
    counter(
        &mut r,
        "deltanode_sync_bytes_received",
        "Sync frame bytes received",
        received,
    );
    counter(
        &mut r,
        "deltanode_sync_payload_units_sent",
        "Payload units sent (elements, entries, values)",
        stats.payload_units_sent,
    );
    counter(
        &mut r,
        "deltanode_sync_metadata_units_sent",
        "Metadata units sent (sequence numbers, acks, dots)",
        stats.metadata_units_sent,
    );
    gauge(
        &mut r,
        "deltanode_delta_buffer_groups",
        "Delta-groups in the buffer",
        view.engine.buffer().len() as i64,
    );
    gauge(
        &mut r,
        "deltanode_neighbours",
        "Connected neighbours",
        view.engine.neighbours().len() as i64,
    );
    counter(
        &mut r,
        "deltanode_neighbour_down",
        "Neighbours lost",
        m.neighbour_down,
    );
    gauge(
        &mut r,
        "deltanode_objects",
        "Objects in the store",
        state.len() as i64,
    );
    gauge(
        &mut r,
        "deltanode_memory_units",
        "State, buffer and ack map in the paper's units (as the simulator counts memory)",
        view.engine.memory_units() as i64,
    );
    gauge(
        &mut r,
        "deltanode_conflicts",
        "Registers and map fields holding concurrent values",
        state.conflicts() as i64,
    );
    let updates = Family::<Vec<(String, String)>, Counter>::default();
    updates
        .get_or_create(&vec![("origin".into(), "local".into())])
        .inc_by(m.updates_local);
    updates
        .get_or_create(&vec![("origin".into(), "remote".into())])
        .inc_by(m.updates_remote);
    r.register("deltanode_updates", "Updates applied, by origin", updates);
    r.register(
        "deltanode_replication_lag_seconds",
        "From a local update until every neighbour acked it",
        m.replication_lag.clone(),
    );
    counter(
        &mut r,
        "deltanode_decode_errors",
        "Frames that failed to decode (dropped)",
        m.decode_errors,
    );
    counter(
        &mut r,
        "deltanode_inbound_failures",
        "Inbound sync streams that failed after the request was read (timeout, reset)",
        m.inbound_failures,
    );
    counter(
        &mut r,
        "deltanode_oversized_frames",
        "Incoming frames refused for a length over the limit (the stream is dropped)",
        m.oversized_frames.load(Ordering::Relaxed),
    );
    let rejected = Family::<Vec<(String, String)>, Counter>::default();
    // The known reasons are always exported (at 0 until one happens), so dashboards have a series.
    for reason in ["handshake", "not_neighbour"] {
        rejected
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc_by(0);
    }
    for (reason, n) in &m.rejected_connections {
        rejected
            .get_or_create(&vec![("reason".into(), reason.to_string())])
            .inc_by(*n);
    }
    r.register(
        "deltanode_rejected_connections",
        "Connections refused, by reason (not_neighbour, handshake)",
        rejected,
    );
    let api = Family::<Vec<(String, String)>, Counter>::default();
    for status in [400, 401, 404, 409, 413, 500] {
        api.get_or_create(&vec![("status".into(), status.to_string())])
            .inc_by(0);
    }
    for (status, n) in api_errors {
        api.get_or_create(&vec![("status".into(), status.to_string())])
            .inc_by(*n);
    }
    r.register(
        "deltanode_api_errors",
        "API requests answered with an error, by HTTP status",
        api,
    );
    counter(
        &mut r,
        "deltanode_full_state_sends",
        "Full states sent (catch-ups and state-based rounds)",
        stats.full_state_sends,
    );
    let (nsent, nrecv) = (
        Family::<Vec<(String, String)>, Counter>::default(),
        Family::<Vec<(String, String)>, Counter>::default(),
    );
    for p in &peers {
        nsent
            .get_or_create(&vec![("peer".into(), p.peer_id.clone())])
            .inc_by(p.bytes_sent);
        nrecv
            .get_or_create(&vec![("peer".into(), p.peer_id.clone())])
            .inc_by(p.bytes_received);
    }
    r.register(
        "deltanode_neighbour_bytes_sent",
        "Sync frame bytes sent, per peer",
        nsent,
    );
    r.register(
        "deltanode_neighbour_bytes_received",
        "Sync frame bytes received, per peer",
        nrecv,
    );
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    out
}
