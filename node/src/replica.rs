//! [`Replica`]: the node's write path. It owns the engine, the store's durable log and the change
//! feed, and carries out the engine's reports: every delta is on disk before anyone hears of it (a
//! client's reply, a neighbour's ack, a feed event), and the metrics count what the engine reports.
//! It does no I/O but the disk: messages to send go back to the caller (the event loop hands them
//! to the peers layer), so it is tested without a network.

use crate::client::{View, Write};
use crate::clock::unix_ms;
use crate::feed::Feed;
use crate::metrics::{Metrics, PeerCounters};
use crate::persist::{Checkpoint, Durable};
use crate::snapshot::{digest, Snapshot};
use crate::views::{ApplyError, CheckpointInfo, ObjectView, PeerView, Return, RollbackOutcome};
use anyhow::Context;
use crdt::{Lattice, ReplicaId, Store, Writer};
pub use degraded::Degraded;
use libp2p::PeerId;
use protocol::{Engine, Event, Input, Message, Output};
pub use quarantine::Quarantine;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Messages for the peers layer to send, in order.
pub(crate) type Sends = Vec<(PeerId, Message<Store>)>;

/// A group of writes committed together.
pub(crate) type WriteGroup = Vec<Write>;

/// The write path. See the module docs.
pub(crate) struct Replica {
    engine: Engine<PeerId, Store>,
    /// The dot and counter-entry owner of local writes.
    writer: ReplicaId,
    /// Every delta is committed here before it is acknowledged to anyone.
    durable: Durable,
    feed: Arc<Feed>,
    metrics: Metrics,
    /// When each neighbour last acknowledged us (`Event::Acked`), ms since the epoch.
    last_ack: BTreeMap<PeerId, u64>,
    /// The store takes no writes (disk full, I/O error): writes are refused and sync paused until
    /// a probe commit succeeds (each tick).
    degraded: Option<Degraded>,
    /// Neighbours' writes stamped too far ahead of this node's clock, held (`None`: no bound).
    quarantine: Option<Quarantine>,
    /// What was sent since the start, sampled each second.
    history: crate::sync_history::SyncHistory,
}

/// What one engine input produced: the deltas to commit and the messages to send after.
struct Driven {
    applied: Vec<Store>,
    sends: Sends,
}

impl Replica {
    pub(crate) fn new(
        engine: Engine<PeerId, Store>,
        writer: ReplicaId,
        durable: Durable,
        feed: Arc<Feed>,
    ) -> Self {
        Replica {
            engine,
            writer,
            durable,
            feed,
            metrics: Metrics::default(),
            last_ack: BTreeMap::new(),
            degraded: None,
            quarantine: None,
            history: crate::sync_history::SyncHistory::new(crate::clock::unix_ms(), 1000),
        }
    }

    /// Samples what was sent so far, once a step has passed since the last sample
    /// (`bytes_sent`: the peers layer's count of frame bytes, asked only then).
    pub(crate) fn record_history(&mut self, bytes_sent: impl FnOnce() -> u64) {
        let now = crate::clock::unix_ms();
        if !self.history.due(now) {
            return;
        }
        let stats = self.engine.stats();
        let bytes_sent = bytes_sent();
        self.history.record(crate::sync_history::Sample {
            t_unix_ms: now,
            bytes: bytes_sent,
            payload: stats.payload_units_sent,
            metadata: stats.metadata_units_sent,
        });
    }

    /// Holds neighbours' writes stamped more than `max_skew` ahead of this node's clock until it
    /// is within it (see [`Quarantine`]).
    pub(crate) fn with_max_clock_skew(mut self, max_skew: Option<std::time::Duration>) -> Self {
        self.quarantine = max_skew.map(|d| Quarantine::new(d.as_millis() as u64));
        self
    }

    /// A view for a small read on the loop.
    pub(crate) fn view(&self, peer_id: PeerId) -> View<'_> {
        View {
            peer_id,
            engine: &self.engine,
            metrics: &self.metrics,
            degraded: self.degraded.as_ref().map(|d| d.reason.as_str()),
            quarantine: self.quarantine.as_ref(),
            clock_offsets: Vec::new(),
            behind: Vec::new(),
            identity_warnings: Vec::new(),
            history: &self.history,
        }
    }

    /// A snapshot for a whole-store read: `peers` as the peers layer sees them (their unacked
    /// groups filled in here, from the engine).
    pub(crate) fn snapshot(
        &self,
        peer_id: PeerId,
        peers: Vec<(PeerId, PeerView)>,
        peer_counters: PeerCounters,
    ) -> Snapshot {
        let peers = peers
            .into_iter()
            .map(|(p, view)| {
                let skewed = self.quarantine.as_ref().and_then(|q| q.per_peer().get(&p));
                PeerView {
                    pending_groups: self.engine.unacked_groups(&p) as u64,
                    last_ack_unix_ms: self.last_ack.get(&p).copied(),
                    clock_ahead_ms: skewed.map(|s| s.ahead_ms),
                    held_ahead: skewed.map_or(0, |s| s.held),
                    ..view
                }
            })
            .collect();
        Snapshot {
            peer_id,
            state: self.engine.state().clone(),
            stats: self.engine.stats().clone(),
            buffer_groups: self.engine.buffer().len(),
            buffer_units: self.engine.buffer().units(),
            neighbours: self.engine.neighbours().len(),
            peers,
            counts: self.metrics.counts,
            replication_lag: self.metrics.replication_lag.clone(),
            peer_counters,
            store_degraded: self.degraded.is_some(),
            writes_held: self.quarantine.as_ref().map_or(0, Quarantine::held),
        }
    }

    /// Feeds the engine one input and carries out its reports; returns what to commit and send.
    fn drive(&mut self, input: Input<PeerId, Store>) -> Driven {
        let mut driven = Driven {
            applied: Vec::new(),
            sends: Vec::new(),
        };
        for o in self.engine.handle(input) {
            match o {
                Output::Send { to, msg } => driven.sends.push((to, msg)),
                Output::Applied { delta, .. } => driven.applied.push(delta),
                Output::Event(Event::LocalUpdate { seq }) => self.metrics.local_update(seq),
                Output::Event(Event::AckedByAll { below }) => self.metrics.acked_by_all(below),
                Output::Event(Event::NeighbourUp(peer)) => tracing::info!(%peer, "neighbour up"),
                Output::Event(Event::Acked(peer)) => {
                    self.last_ack.insert(peer, unix_ms());
                }
                Output::Event(Event::Reconciled(peer)) => {
                    tracing::debug!(%peer, "reconciled")
                }
                Output::Event(Event::ReconcileAborted(peer)) => tracing::warn!(
                    %peer,
                    "reconciliation cut off (a malformed or endless exchange); catching up by state"
                ),
                Output::Event(Event::NeighbourDown(peer)) => {
                    tracing::info!(%peer, "neighbour down");
                    self.metrics.counts.neighbour_down += 1;
                }
            }
        }
        driven
    }

    /// A connection to `peer` opened.
    pub(crate) fn neighbour_up(&mut self, peer: PeerId) {
        self.drive(Input::NeighbourUp(peer));
    }

    /// When `peer` last acknowledged us (ms since the epoch).
    pub(crate) fn last_ack(&self, peer: &PeerId) -> Option<u64> {
        self.last_ack.get(peer).copied()
    }

    /// A message to `peer` was larger than a frame: the engine catches it up by reconciliation.
    pub(crate) fn undeliverable(&mut self, peer: PeerId) {
        self.drive(Input::Undeliverable(peer));
    }

    /// The last connection to `peer` closed.
    pub(crate) fn neighbour_down(&mut self, peer: PeerId) {
        self.drive(Input::NeighbourDown(peer));
    }

    /// A sync interval elapsed (or a client asked for a round): what to send. While the store
    /// takes no writes, nothing is sent (the state may hold what the disk does not) and the store
    /// is probed instead: the whole state committed as the snapshot, after which all is as before.
    pub(crate) fn tick(&mut self) -> Sends {
        if let Some(d) = &mut self.degraded {
            // Probes back off (1, 2, 4 … 32 ticks apart): each writes the whole state.
            if d.wait > 0 {
                d.wait -= 1;
                return Vec::new();
            }
            match self.durable.compact_reopened(self.engine.state()) {
                Ok(()) => {
                    tracing::info!(was = %d.reason, "the store takes writes again");
                    self.degraded = None;
                }
                Err(_) => {
                    d.backoff = (d.backoff * 2).clamp(1, 32);
                    d.wait = d.backoff;
                    return Vec::new();
                }
            }
        }
        self.release_held();
        self.drive(Input::Tick).sends
    }

    /// Joins the held writes whose stamps this node's clock has come within the skew of.
    fn release_held(&mut self) {
        let Some(due) = self.quarantine.as_mut().and_then(|q| q.due(unix_ms())) else {
            return;
        };
        let Driven { applied, .. } = self.drive(Input::Update(due));
        if let Ok(first) = self.commit(&applied, true) {
            self.metrics.counts.remote += applied.len() as u64;
            for (i, delta) in applied.iter().enumerate() {
                self.publish(first + i as u64, delta, true);
            }
        }
    }

    /// A message from `from`: merges what is new, commits it, then returns what to send (its ack
    /// among them). Nothing is returned if the commit failed: no ack for what is not on disk.
    /// While the store takes no writes, messages are dropped unread (their senders send again).
    pub(crate) fn receive(&mut self, from: PeerId, mut msg: Message<Store>) -> Sends {
        if self.degraded.is_some() {
            return Vec::new();
        }
        if let Some(q) = &mut self.quarantine {
            q.admit(from, &mut msg, unix_ms());
        }
        let Driven { applied, sends } = self.drive(Input::Received { from, msg });
        let Ok(first) = self.commit(&applied, true) else {
            return Vec::new();
        };
        self.metrics.counts.remote += applied.len() as u64;
        for (i, delta) in applied.iter().enumerate() {
            self.publish(first + i as u64, delta, true);
        }
        sends
    }

    /// The change feed's events for log entry `index` (`delta`, from a neighbour when `remote`).
    fn publish(&self, index: u64, delta: &Store, remote: bool) {
        let (views, conflicts) = entry_events(self.engine.state(), delta, remote);
        let origin = if remote { "remote" } else { "local" };
        self.feed.publish(index, &views, &conflicts, origin);
    }

    /// Applies a group of writes in memory, commits every delta they caused with one fsync, then
    /// replies. A write that changes nothing commits nothing and answers the current value. A
    /// write reaches neighbours only through the engine's buffer, sent at a later tick, after this
    /// commit: no neighbour ever holds a dot this replica could lose and reuse.
    ///
    /// Replies and feed events cost what the writes changed: each object's size and change come
    /// from the deltas; its whole value only for small objects or when a write asks for it.
    pub(crate) fn apply_group(&mut self, group: WriteGroup) {
        if let Some(d) = &self.degraded {
            for Write { reply, .. } in group {
                let _ = reply.send(Err(ApplyError::Unavailable(d.clone())));
            }
            return;
        }
        let writer = Writer {
            replica: self.writer,
            now_ms: unix_ms(),
        };
        let mut committed = Vec::new();
        let mut answers = Vec::new();
        for Write { ops, ret, reply } in group {
            // The keys to answer with (none for a batch, which answers with a count).
            let keys = (ret != Return::Nothing).then(|| {
                let mut seen = HashSet::new();
                ops.iter()
                    .filter(|(k, _)| seen.insert(k.as_str()))
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<String>>()
            });
            match self.engine.state().apply_batch(ops, &writer) {
                Ok(delta) => {
                    let applied = self.drive(Input::Update(delta)).applied;
                    if applied.is_empty() {
                        self.metrics.counts.unchanged_writes += 1;
                    }
                    let shown = keys.map(|keys| (keys, joined(applied.iter().cloned())));
                    committed.extend(applied);
                    answers.push((reply, Ok((shown, ret))));
                }
                Err(e) => answers.push((reply, Err(ApplyError::Crdt(e)))),
            }
        }
        let stored = self.commit(&committed, false);
        if let Ok(first) = stored {
            for (i, delta) in committed.iter().enumerate() {
                self.publish(first + i as u64, delta, false);
            }
        }
        let state = self.engine.state();
        for (reply, answer) in answers {
            let answer = match (&stored, answer) {
                (Err(d), Ok(_)) => Err(ApplyError::NotStored(d.clone())),
                (_, Ok((None, _))) => Ok(Vec::new()),
                (_, Ok((Some((keys, delta)), ret))) => Ok(views_of(state, &keys, &delta, ret)),
                (_, Err(e)) => Err(e),
            };
            let _ = reply.send(answer);
        }
    }

    /// Commits `deltas` (one fsync) and compacts when due; returns the log index of the first.
    /// A failed commit, or a failed compaction after a commit that succeeded (the commit stands),
    /// puts the store in degraded mode: no writes, no sync, until a probe succeeds.
    fn commit(&mut self, deltas: &[Store], remote: bool) -> Result<u64, Degraded> {
        if deltas.is_empty() {
            return Ok(0);
        }
        let first = self
            .durable
            .append_from(deltas, remote)
            .map_err(|e| self.degrade(&e))?;
        if let Err(e) = self.durable.maybe_compact(self.engine.state()) {
            self.degrade(&e);
        }
        Ok(first)
    }

    fn degrade(&mut self, e: &anyhow::Error) -> Degraded {
        let d = Degraded::of(e);
        tracing::error!(
            error = %d.reason,
            "the store takes no writes: writes are refused and sync paused until it does"
        );
        self.degraded = Some(d.clone());
        d
    }

    /// Saves the current state as checkpoint `label`; `None` if the label is taken.
    pub(crate) fn checkpoint(&mut self, label: &str) -> anyhow::Result<Option<CheckpointInfo>> {
        let state = self.engine.state().clone();
        let checkpoint = Checkpoint {
            created_unix_ms: unix_ms(),
            digest: digest(&state),
            state,
        };
        let info = CheckpointInfo {
            label: label.to_string(),
            digest: checkpoint.digest.clone(),
            created_unix_ms: checkpoint.created_unix_ms,
        };
        Ok(self
            .durable
            .save_checkpoint(label, &checkpoint)?
            .then_some(info))
    }

    /// Every checkpoint.
    pub(crate) fn checkpoints(&self) -> anyhow::Result<Vec<CheckpointInfo>> {
        Ok(self
            .durable
            .checkpoints()?
            .into_iter()
            .map(|(label, digest, created_unix_ms)| CheckpointInfo {
                label,
                digest,
                created_unix_ms,
            })
            .collect())
    }

    /// A backup: the state and every checkpoint, as of now.
    pub(crate) fn backup(&self) -> anyhow::Result<crate::persist::Backup> {
        Ok(crate::persist::Backup {
            created_unix_ms: unix_ms(),
            state: self.engine.state().clone(),
            checkpoints: self.durable.all_checkpoints()?,
            next_index: self.durable.next_index(),
        })
    }

    /// Checkpoint `label` with its state.
    pub(crate) fn checkpoint_state(&self, label: &str) -> anyhow::Result<Option<Checkpoint>> {
        self.durable.checkpoint(label)
    }

    /// Reverts to checkpoint `label` through the ordinary write path (durable, replicated).
    pub(crate) fn rollback(
        &mut self,
        label: &str,
        partial: bool,
    ) -> anyhow::Result<RollbackOutcome> {
        let Some(checkpoint) = self.durable.checkpoint(label)? else {
            return Ok(RollbackOutcome::NoSuchCheckpoint);
        };
        let plan = crdt::revert::revert(&checkpoint.state, self.engine.state());
        if !plan.irreversible.is_empty() && !partial {
            return Ok(RollbackOutcome::Refused {
                irreversible: plan.irreversible,
            });
        }
        if !plan.ops.is_empty() {
            let (tx, mut rx) = oneshot::channel();
            self.apply_group(vec![Write {
                ops: plan.ops,
                ret: Return::Nothing,
                reply: tx,
            }]);
            rx.try_recv()
                .context("the rollback's write got no answer")??;
        }
        tracing::info!(%label, reverted = plan.reverted.len(), irreversible = plan.irreversible.len(), "rolled back");
        Ok(RollbackOutcome::Done {
            reverted: plan.reverted,
            irreversible: plan.irreversible,
        })
    }
}

/// The change feed's events for one log entry, `delta`, joined into `state`: a view of each
/// object it changed (size, change, and the value of small ones) and, for a neighbour's delta,
/// the conflicts it left (`(key, type, conflicts)`, as `GET /v1/conflicts` lists them). The
/// replica publishes them as it commits; a restart replays the log through here.
pub(crate) fn entry_events(
    state: &Store,
    delta: &Store,
    remote: bool,
) -> (
    Vec<ObjectView>,
    Vec<(String, &'static str, serde_json::Value)>,
) {
    // The keys it touched, in order, once each (a resolve touches the key it resolves).
    let keys: Vec<String> = delta
        .keys_touched()
        .into_iter()
        .map(str::to_string)
        .collect();
    let views = views_of(state, &keys, delta, Return::Auto);
    let mut conflicts = Vec::new();
    if remote {
        for key in keys {
            let list = state.conflicts_at(&key);
            if let (Some(first), Ok(json)) = (list.first(), serde_json::to_value(&list)) {
                conflicts.push((key, first.kind.name(), json));
            }
        }
    }
    (views, conflicts)
}

/// The join of `deltas`.
fn joined(deltas: impl IntoIterator<Item = Store>) -> Store {
    deltas.into_iter().fold(Store::default(), |mut all, d| {
        all.join(&d);
        all
    })
}

/// The views of `keys` (those that exist in `state`) after `delta`, holding what `ret` says.
fn views_of(state: &Store, keys: &[String], delta: &Store, ret: Return) -> Vec<ObjectView> {
    keys.iter()
        .filter_map(|k| Some(ObjectView::changed(k, state.get(k)?, delta.get(k), ret)))
        .collect()
}

#[cfg(test)]
mod tests;

mod degraded;
mod quarantine;
