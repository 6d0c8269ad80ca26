//! `GET /metrics`: every metric SPEC.md lists, rendered from a [`Snapshot`] off the event loop by
//! prometheus-client, in the Prometheus text format or OpenMetrics as the scraper asks
//! ([`format`]). The engine's counters (messages, units,
//! full-state sends), gauges of the state, and what the shell counts ([`crate::metrics`]) go into a
//! registry built for the scrape.

mod format;

pub use format::{openmetrics_to_text, Format};

use crate::snapshot::Snapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// A counter family with one label, from `(label value, count)` entries; a value listed twice
/// adds up, so known values listed first at 0 are always exported (dashboards get a series).
fn counters_by(
    registry: &mut Registry,
    (name, help, label): (&str, &str, &str),
    entries: impl IntoIterator<Item = (String, u64)>,
) {
    let family = Family::<Vec<(String, String)>, Counter>::default();
    for (value, n) in entries {
        family.get_or_create(&vec![(label.into(), value)]).inc_by(n);
    }
    registry.register(name, help, family);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// The metrics of `snap` in `format`, with the API's error answers by status (`api_errors`) and
/// whether this start re-keyed the node (`rekeyed`).
pub fn render(
    snap: &Snapshot,
    api_errors: &BTreeMap<u16, u64>,
    rekeyed: bool,
    format: Format,
) -> String {
    let (counts, shell) = (&snap.counts, &snap.peer_counters);
    let stats = &snap.stats;
    let state = &snap.state;
    let mut r = Registry::default();
    counters_by(
        &mut r,
        (
            "deltanode_sync_messages_sent",
            "Sync messages sent, by kind",
            "kind",
        ),
        ["delta", "ack", "state", "digest"]
            .map(|k| (k.into(), stats.messages_sent.get(k).copied().unwrap_or(0))),
    );
    let peers = &snap.peers;
    let (forgotten_sent, forgotten_received) = shell.forgotten_bytes;
    let sent: u64 = forgotten_sent + peers.iter().map(|p| p.bytes_sent).sum::<u64>();
    let received: u64 = forgotten_received + peers.iter().map(|p| p.bytes_received).sum::<u64>();
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
        snap.buffer_groups as i64,
    );
    gauge(
        &mut r,
        "deltanode_neighbours",
        "Connected neighbours",
        snap.neighbours as i64,
    );
    gauge(
        &mut r,
        "deltanode_writes_held_ahead",
        "Neighbours' writes held for being stamped more than --max-clock-skew ahead (by release time)",
        snap.writes_held as i64,
    );
    gauge(
        &mut r,
        "deltanode_store_degraded",
        "1 while the store takes no writes (a full disk, an I/O error): writes refused, sync paused",
        i64::from(snap.store_degraded),
    );
    gauge(
        &mut r,
        "deltanode_identity_cloned",
        "1 when neighbours found another process answering with this node's identity (a copied data dir): it re-keys at its next start",
        i64::from(shell.cloned),
    );
    counter(
        &mut r,
        "deltanode_identity_twins_seen",
        "Neighbours found to have two processes behind their identity",
        shell.twins_seen,
    );
    gauge(
        &mut r,
        "deltanode_identity_rekeyed",
        "1 when this start found the data dir copied or moved and gave the node a new network identity",
        i64::from(rekeyed),
    );
    counter(
        &mut r,
        "deltanode_neighbour_down",
        "Neighbours lost",
        counts.neighbour_down,
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
        snap.memory_units() as i64,
    );
    gauge(
        &mut r,
        "deltanode_conflicts",
        "Conflicts GET /v1/conflicts lists: type clashes, and registers and map fields holding concurrent values",
        state.conflicts() as i64,
    );
    counters_by(
        &mut r,
        ("deltanode_updates", "Updates applied, by origin", "origin"),
        [
            ("local".into(), counts.local),
            ("remote".into(), counts.remote),
        ],
    );
    counter(
        &mut r,
        "deltanode_unchanged_writes",
        "Local writes that changed nothing (answered with the current value, nothing committed)",
        counts.unchanged_writes,
    );
    r.register(
        "deltanode_replication_lag_seconds",
        "From a local update until every neighbour acked it",
        snap.replication_lag.clone(),
    );
    counter(
        &mut r,
        "deltanode_decode_errors",
        "Frames that failed to decode (dropped)",
        shell.decode_errors,
    );
    counters_by(
        &mut r,
        (
            "deltanode_membership_bad_input",
            "Membership messages past the protocol's bounds (cut back, never fatal), by kind",
            "kind",
        ),
        [
            (
                "repeated_join".into(),
                shell.membership_bad_input.repeated_joins,
            ),
            (
                "overlong_walk".into(),
                shell.membership_bad_input.overlong_walks,
            ),
            (
                "oversized_sample".into(),
                shell.membership_bad_input.oversized_samples,
            ),
        ],
    );
    counter(
        &mut r,
        "deltanode_forgotten_peers",
        "Peers forgotten after staying disconnected for longer than --forget-after",
        shell.forgotten_peers,
    );
    counter(
        &mut r,
        "deltanode_inbound_failures",
        "Inbound sync streams that failed after the request was read (timeout, reset)",
        shell.inbound_failures,
    );
    counter(
        &mut r,
        "deltanode_oversized_frames",
        "Incoming frames refused for a length over the limit (the stream is dropped)",
        shell.oversized_frames.load(Ordering::Relaxed),
    );
    counters_by(
        &mut r,
        (
            "deltanode_rejected_connections",
            "Connections refused, by reason (not_neighbour, handshake)",
            "reason",
        ),
        ["handshake", "not_neighbour"]
            .map(|k| (k.to_string(), 0))
            .into_iter()
            .chain(
                shell
                    .rejected_connections
                    .iter()
                    .map(|(k, n)| (k.to_string(), *n)),
            ),
    );
    counters_by(
        &mut r,
        (
            "deltanode_peer_samples",
            "Peer-exchange samples, by result (sent, received, malformed)",
            "result",
        ),
        ["sent", "received", "malformed"]
            .map(|k| (k.into(), shell.peer_samples.get(k).copied().unwrap_or(0))),
    );
    counters_by(
        &mut r,
        (
            "deltanode_api_errors",
            "API requests answered with an error, by HTTP status",
            "status",
        ),
        [400u16, 401, 404, 409, 413, 500]
            .map(|k| (k.to_string(), 0))
            .into_iter()
            .chain(api_errors.iter().map(|(k, n)| (k.to_string(), *n))),
    );
    counter(
        &mut r,
        "deltanode_reconciliations",
        "Catch-ups by reconciliation that ended (counted by the side that got the last message)",
        stats.reconciliations,
    );
    counter(
        &mut r,
        "deltanode_reconcile_aborted",
        "Reconciliations cut off: a peer that broke the protocol or would not let it end",
        stats.reconcile_aborted,
    );
    counter(
        &mut r,
        "deltanode_full_state_sends",
        "Full states sent (catch-ups and state-based rounds)",
        stats.full_state_sends,
    );
    counters_by(
        &mut r,
        (
            "deltanode_neighbour_bytes_sent",
            "Sync frame bytes sent, per peer",
            "peer",
        ),
        peers.iter().map(|p| (p.peer_id.clone(), p.bytes_sent)),
    );
    counters_by(
        &mut r,
        (
            "deltanode_neighbour_bytes_received",
            "Sync frame bytes received, per peer",
            "peer",
        ),
        peers.iter().map(|p| (p.peer_id.clone(), p.bytes_received)),
    );
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    match format {
        Format::OpenMetrics => out,
        Format::Text => openmetrics_to_text(&out),
    }
}
