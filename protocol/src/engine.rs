//! The delta-sync engine (Enes et al., ICDE 2019, Algorithm 2) as a sans-IO state machine:
//! `handle(input) -> outputs`. No sockets, no clock: a `Tick` input is one sync interval.
//!
//! - Every interval, each neighbour j gets the join of the buffered groups it has not acked, minus
//!   those that came from j (BP). A neighbour that is new, came back, or whose ack is older than the
//!   oldest buffered group is caught up by a state-driven join-decomposition exchange instead
//!   ([`Message::CatchUp`]): it merges our state and answers with exactly what we lack.
//! - A received group is reduced to Δ(group, state) before it is merged and buffered (RR): nothing
//!   new, nothing buffered. Every delta message is acked; groups acked by every neighbour are dropped.
//! - `bp-rr-tree` does all of this over the links of a spanning tree only ([`crate::tree`]): the
//!   other links are *lazy* and carry beacons. A link that turns eager is caught up: with deltas if
//!   it left the tree less than two beacon periods ago (it held the buffer back meanwhile), else by
//!   state, as a new neighbour is.
//! - Catching up (`catch_up.rs`) goes by set reconciliation ([`crate::reconcile`]) by default: the
//!   two sides find what differs and send only that; the state-driven exchange is the fallback.

use crate::algorithm::Algorithm;
use crate::buffer::{DeltaBuffer, Origin};
use crate::message::Message;
use crate::peer::PeerId;
use crate::reconcile::Index;
use crate::tree::SpanningTree;
use crdt::{Decompose, Measure};
use std::collections::BTreeMap;
use std::sync::Arc;

mod catch_up;
mod io;

pub use io::{Config, Event, Input, Neighbour, Output, Stats};

/// The engine. See the module docs.
#[derive(Clone, Debug)]
pub struct Engine<P, L> {
    config: Config,
    state: L,
    buffer: DeltaBuffer<P, L>,
    neighbours: BTreeMap<P, Neighbour>,
    /// Ticks seen: the engine's only notion of time.
    tick: u64,
    stats: Stats,
    /// `bp-rr-tree` only: which links are on the spanning tree (boxed: the other algorithms'
    /// engines, hundreds of them in a simulation, do not carry its size).
    tree: Option<Box<SpanningTree<P>>>,
    /// The last [`Event::AckedByAll`] reported.
    acked_by_all: u64,
    /// Changes to the state so far: what the reconciliation index is checked against.
    version: u64,
    /// The reconciliation index, and the states the indexes exchanges hold were taken of (boxed:
    /// most engines of a simulation never index).
    index: Option<Box<IndexAt<L>>>,
    /// Reconciliations this engine opened (makes each opening's session id its own).
    openings: u64,
}

/// The reconciliation index and when it was taken: at `version`, when the buffer's next number
/// was `seq`.
#[derive(Clone, Debug)]
struct IndexAt<L> {
    version: u64,
    seq: u64,
    index: Arc<Index>,
    /// The state each index an exchange holds was taken of (found by the index's `Arc`): an
    /// exchange sends what its index names from that state, not from the state now. Pieces can
    /// change as the state grows (a run of removed dots grows into a longer one, under another
    /// hash), so a piece named at index time may be gone from the state now — not from the
    /// state the index was taken of. Kept while an exchange holds its index.
    taken_of: Vec<(Arc<Index>, L)>,
}

impl<P: PeerId, L: Decompose + Measure + serde::Serialize> Engine<P, L> {
    /// An engine over `state`. `seq_base` must exceed every sequence number this replica used before
    /// (the node derives it from the clock at start, the simulator keeps it across crashes), so a
    /// stale ack from before a restart can never acknowledge a new group.
    pub fn new(config: Config, state: L, seq_base: u64) -> Self {
        let mut buffer = DeltaBuffer::default();
        buffer.advance_to(seq_base);
        Engine {
            tree: config
                .algorithm
                .tree()
                .then(|| SpanningTree::new(config.rank, seq_base, config.beacon_period_ticks))
                .map(Box::new),
            config,
            state,
            buffer,
            neighbours: BTreeMap::new(),
            tick: 0,
            stats: Stats::default(),
            acked_by_all: seq_base,
            version: 0,
            index: None,
            openings: 0,
        }
    }

    /// Adds `peer` as a neighbour already known to hold everything below our current sequence
    /// number: for a cluster that starts together from ⊥, as the paper's experiments do.
    pub fn add_synced_neighbour(&mut self, peer: P) {
        let seq = self.buffer.next_seq();
        self.neighbours.insert(
            peer,
            Neighbour {
                acked: Some(seq),
                ..Neighbour::default()
            },
        );
    }

    /// The replicated state.
    pub fn state(&self) -> &L {
        &self.state
    }

    /// The delta-buffer.
    pub fn buffer(&self) -> &DeltaBuffer<P, L> {
        &self.buffer
    }

    /// The neighbours and their sync state.
    pub fn neighbours(&self) -> &BTreeMap<P, Neighbour> {
        &self.neighbours
    }

    /// A `seq_base` for this replica restarted: above every sequence number and epoch it used.
    pub fn restart_base(&self) -> u64 {
        let epoch = self.tree.as_deref().map_or(0, SpanningTree::epoch);
        self.buffer.next_seq().max(epoch) + 1
    }

    /// Buffered groups `peer` has not acked (all of them if it has acked nothing yet).
    pub fn unacked_groups(&self, peer: &P) -> usize {
        let acked = self.neighbours.get(peer).and_then(|n| n.acked).unwrap_or(0);
        self.buffer.iter().filter(|e| e.seq >= acked).count()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Memory in units: state, buffer, and one ack entry per neighbour.
    pub fn memory_units(&self) -> u64 {
        self.state.payload_units()
            + self.state.metadata_units()
            + self.buffer.units()
            + self.neighbours.len() as u64
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input<P, L>) -> Vec<Output<P, L>> {
        let mut out = Vec::new();
        match input {
            Input::Update(delta) => self.on_update(delta, &mut out),
            Input::Received { from, msg } => {
                if self.neighbours.contains_key(&from) {
                    self.on_message(from, msg, &mut out);
                } else {
                    self.stats.ignored_messages += 1;
                }
            }
            Input::Tick => self.on_tick(&mut out),
            Input::NeighbourUp(peer) => {
                if let std::collections::btree_map::Entry::Vacant(e) = self.neighbours.entry(peer) {
                    e.insert(Neighbour::default());
                    out.push(Output::Event(Event::NeighbourUp(peer)));
                }
            }
            Input::Undeliverable(peer) => {
                if let Some(n) = self.neighbours.get_mut(&peer) {
                    n.acked = None;
                    n.catch_up_sent = None;
                    n.end_reconciliation();
                }
            }
            Input::NeighbourDown(peer) => {
                if self.neighbours.remove(&peer).is_some() {
                    out.push(Output::Event(Event::NeighbourDown(peer)));
                }
                if let Some(tree) = &mut self.tree {
                    tree.forget(&peer);
                }
                self.collect_garbage();
            }
        }
        self.report_acked_by_all(&mut out);
        for o in &out {
            if let Output::Send { msg, .. } = o {
                *self.stats.messages_sent.entry(msg.kind()).or_default() += 1;
                self.stats.payload_units_sent += msg.payload_units();
                self.stats.metadata_units_sent += msg.metadata_units();
                if matches!(msg, Message::CatchUp { .. } | Message::State { .. }) {
                    self.stats.full_state_sends += 1;
                }
            }
        }
        out
    }

    fn delta_mode(&self) -> bool {
        self.config.algorithm != Algorithm::State
    }

    fn on_update(&mut self, delta: L, out: &mut Vec<Output<P, L>>) {
        if delta.leq(&self.state) {
            return;
        }
        self.state.join(&delta);
        self.version += 1;
        let seq = if self.delta_mode() {
            let seq = self.buffer.push(Origin::Local, delta.clone());
            self.bound_buffer();
            seq
        } else {
            // Nothing is buffered, but the update is numbered all the same, for `AckedByAll`.
            let seq = self.buffer.next_seq();
            self.buffer.advance_to(seq + 1);
            seq
        };
        out.push(Output::Applied {
            delta,
            origin: Origin::Local,
        });
        out.push(Output::Event(Event::LocalUpdate { seq }));
    }

    /// Reports [`Event::AckedByAll`] when the lowest ack among the neighbours groups go to has
    /// grown. A neighbour still to be caught up holds it back; with none, nothing is reported.
    fn report_acked_by_all(&mut self, out: &mut Vec<Output<P, L>>) {
        let mut below: Option<u64> = None;
        for n in self.neighbours.values().filter(|n| !n.is_lazy()) {
            let Some(a) = n.acked else { return };
            below = Some(below.map_or(a, |b| b.min(a)));
        }
        if let Some(below) = below.filter(|b| *b > self.acked_by_all) {
            self.acked_by_all = below;
            out.push(Output::Event(Event::AckedByAll { below }));
        }
    }

    /// Merges a received group; returns what was new (⊥ if nothing). With RR, only Δ(group, state)
    /// is buffered; without, the whole group is, if it inflates the state at all.
    fn merge(&mut self, from: P, group: &L, rr: bool, out: &mut Vec<Output<P, L>>) {
        let new = self.state.delta_and_merge(group);
        if new.is_bottom() {
            self.stats.redundant_groups_received += 1;
            return;
        }
        self.version += 1;
        if self.delta_mode() {
            self.buffer.push(
                Origin::Neighbour(from),
                if rr { new.clone() } else { group.clone() },
            );
            self.bound_buffer();
        }
        out.push(Output::Applied {
            delta: new,
            origin: Origin::Neighbour(from),
        });
    }

    fn on_message(&mut self, from: P, msg: Message<L>, out: &mut Vec<Output<P, L>>) {
        match msg {
            Message::Delta { seq, group } => {
                self.merge(from, &group, self.config.algorithm.rr(), out);
                out.push(Output::Send {
                    to: from,
                    msg: Message::Ack { seq },
                });
            }
            Message::Ack { seq } => {
                // An ack above anything we numbered is bogus: ignore it rather than skip data.
                if seq <= self.buffer.next_seq() {
                    if let Some(n) = self.neighbours.get_mut(&from) {
                        n.acked = Some(n.acked.map_or(seq, |a| a.max(seq)));
                        n.catch_up_sent = None;
                        if n.reconcile_seq.is_some_and(|r| r <= seq) {
                            // The ack of our last reconciliation message: that exchange is over.
                            n.end_reconciliation();
                        }
                        out.push(Output::Event(Event::Acked(from)));
                    }
                    self.collect_garbage();
                }
            }
            Message::CatchUp { seq, state } => {
                if let Some(n) = self.neighbours.get_mut(&from) {
                    // It ends any reconciliation with them (they may have answered one with it).
                    n.end_reconciliation();
                }
                // What they lack, computed before their state joins ours.
                let missing = self.state.delta(&state);
                self.merge(from, &state, true, out);
                out.push(Output::Send {
                    to: from,
                    msg: Message::Ack { seq },
                });
                let next = self.buffer.next_seq();
                let n = self.neighbours.entry(from).or_default();
                if missing.is_bottom() {
                    // They hold everything we have: they are synced up to here.
                    n.acked = Some(n.acked.map_or(next, |a| a.max(next)));
                } else {
                    // Answer like a delta message, so their ack of `next` marks them synced; meanwhile
                    // don't start a catch-up of our own.
                    n.catch_up_sent = Some(self.tick);
                    out.push(Output::Send {
                        to: from,
                        msg: Message::Delta {
                            seq: next,
                            group: missing,
                        },
                    });
                }
            }
            Message::Reconcile {
                session,
                round,
                seq,
                parts,
                items,
                sketch,
            } => {
                self.on_reconcile(from, (session, round), seq, (parts, sketch), items, out);
            }
            Message::State { state } => {
                // State-based sync has no acks: a neighbour whose state covers ours holds every
                // local update so far.
                if self.state.leq(&state) {
                    let next = self.buffer.next_seq();
                    if let Some(n) = self.neighbours.get_mut(&from) {
                        n.acked = Some(n.acked.map_or(next, |a| a.max(next)));
                    }
                }
                self.merge(from, &state, true, out);
            }
            Message::Beacon(beacon) => {
                if let Some(tree) = &mut self.tree {
                    tree.heard(from, beacon);
                }
            }
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Output<P, L>>) {
        self.tick += 1;
        if self.index.as_ref().is_some_and(|i| !i.taken_of.is_empty()) {
            self.drop_unheld_snapshots();
        }
        if !self.delta_mode() {
            if !self.state.is_bottom() {
                for &to in self.neighbours.keys() {
                    out.push(Output::Send {
                        to,
                        msg: Message::State {
                            state: self.state.clone(),
                        },
                    });
                }
            }
            return;
        }
        self.tend_tree(out);
        let next = self.buffer.next_seq();
        let oldest = self.buffer.oldest_seq();
        let bp = self.config.algorithm.bp();
        let mut catch_ups = Vec::new();
        for (&to, n) in self.neighbours.iter_mut().filter(|(_, n)| !n.is_lazy()) {
            match n.acked {
                Some(a) if a >= oldest => {
                    if a >= next {
                        continue;
                    }
                    let group = self.buffer.group_since(a, bp.then_some(to));
                    if group.is_bottom() {
                        // Everything it lacks came from it (BP): nothing to send, it is synced.
                        n.acked = Some(next);
                    } else {
                        out.push(Output::Send {
                            to,
                            msg: Message::Delta { seq: next, group },
                        });
                    }
                }
                _ => {
                    // An exchange under way may wait for a side indexing a large state.
                    let patience = if n.session.is_some() {
                        self.config.reconcile_retry_ticks
                    } else {
                        self.config.catch_up_retry_ticks
                    };
                    let waiting = n.catch_up_sent.is_some_and(|t| self.tick - t < patience);
                    if !waiting {
                        n.catch_up_sent = Some(self.tick);
                        catch_ups.push(to);
                    }
                }
            }
        }
        for to in catch_ups {
            self.start_catch_up(to, out);
        }
        self.collect_garbage();
    }

    /// `bp-rr-tree`: moves the tree on a tick, sends the beacons due, and applies what changed to
    /// the links. A link leaving the tree keeps its ack and holds the buffer back for a grace of
    /// two beacon periods; rejoining while the buffer still reaches back to its ack and what it
    /// has not acked is small (`resume_limit_units`), it resumes with delta-groups (every growth
    /// of the state since is buffered), else it is caught up — by reconciliation, which sends only
    /// what the far side lacks (it was fed through another path meanwhile).
    fn tend_tree(&mut self, out: &mut Vec<Output<P, L>>) {
        let Some(tree) = &mut self.tree else {
            return;
        };
        for (to, beacon) in tree.tick(self.tick, self.neighbours.keys().copied()) {
            out.push(Output::Send {
                to,
                msg: Message::Beacon(beacon),
            });
        }
        let oldest = self.buffer.oldest_seq();
        for (peer, n) in self.neighbours.iter_mut() {
            match (n.lazy_since, tree.is_eager(peer)) {
                (None, false) => {
                    // Off the tree: no new catch-up starts over it (it is caught up if it
                    // rejoins). An exchange under way runs to its end: it sends only what the
                    // far side lacks, and ending it would throw its rounds away (a root too busy
                    // merging a large catch-up to beacon in time flapped one three times).
                    n.lazy_since = Some(self.tick);
                }
                (Some(_), true) => {
                    n.lazy_since = None;
                    if n.session.is_none() {
                        n.catch_up_sent = None;
                    }
                    let backlog_too_big = |a: u64| {
                        self.config.reconcile
                            && self.buffer.group_since(a, Some(*peer)).payload_units()
                                > self.config.resume_limit_units
                    };
                    if n.acked.is_some_and(|a| a < oldest || backlog_too_big(a)) {
                        n.acked = None;
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether `n`'s ack holds the buffer back: on the tree, or off it for less than the grace.
    fn holds_buffer(&self, n: &Neighbour) -> bool {
        n.lazy_since
            .is_none_or(|t| self.tick - t <= 2 * self.config.beacon_period_ticks)
    }

    /// Drops the groups every neighbour on the tree (or in its grace) has acked. Neighbours still to be caught up by
    /// state do not hold the buffer back: the catch-up carries the whole state.
    ///
    /// A neighbour being reconciled that has acked nothing holds it back from the lowest index it
    /// was answered from: once the exchange ends it is synced up to there, and what came after
    /// must still be buffered for it.
    fn collect_garbage(&mut self) {
        let min_acked = self
            .neighbours
            .values()
            .filter(|n| self.holds_buffer(n))
            .filter_map(|n| n.acked.or(n.reconcile_seq.filter(|_| !n.is_lazy())))
            .min();
        self.buffer
            .drop_below(min_acked.unwrap_or(self.buffer.next_seq()));
    }

    fn bound_buffer(&mut self) {
        if self.buffer.truncate_to(self.config.max_buffer_groups) > 0 {
            let oldest = self.buffer.oldest_seq();
            for n in self.neighbours.values_mut() {
                if n.acked.is_some_and(|a| a < oldest) {
                    n.acked = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
