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

use crate::algorithm::Algorithm;
use crate::buffer::{DeltaBuffer, Origin};
use crate::message::Message;
use crate::tree::SpanningTree;
use crdt::{Decompose, Measure};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// What a peer identity needs: the node uses libp2p's PeerId, tests and the simulator `u32`.
pub trait PeerId: Copy + Ord + Debug {}
impl<T: Copy + Ord + Debug> PeerId for T {}

/// Engine settings.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The algorithm (`state`, or one of the delta variants; the simulator's baselines are separate).
    pub algorithm: Algorithm,
    /// Ticks to wait for an answer to a catch-up before sending it again (it may have been lost).
    pub catch_up_retry_ticks: u64,
    /// The most groups buffered. Past it the oldest are dropped and the neighbours that had not acked
    /// them are caught up by state: memory stays bounded when a neighbour stops acking.
    pub max_buffer_groups: usize,
    /// `bp-rr-tree`: this replica's rank, unique in the network; the lowest live rank is the root.
    pub rank: u64,
    /// `bp-rr-tree`: ticks between a root's epochs. Shorter heals a broken tree sooner (a node
    /// that lost its parent waits up to one period) and costs more beacons.
    pub beacon_period_ticks: u64,
}

impl Config {
    /// Defaults for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Config {
            algorithm,
            catch_up_retry_ticks: 4,
            max_buffer_groups: 10_000,
            rank: 0,
            beacon_period_ticks: 10,
        }
    }
}

/// An input to the engine.
#[derive(Clone, Debug)]
pub enum Input<P, L> {
    /// A local update: the delta a delta-mutator returned for the current state.
    Update(L),
    /// A message from a peer.
    Received {
        /// The sender.
        from: P,
        /// What it sent.
        msg: Message<L>,
    },
    /// A sync interval elapsed.
    Tick,
    /// A neighbour became reachable (new, or back after a partition or restart).
    NeighbourUp(P),
    /// A neighbour became unreachable; it will be caught up by state when it returns.
    NeighbourDown(P),
}

/// What the engine asks its shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output<P, L> {
    /// Send `msg` to `to`.
    Send {
        /// The neighbour.
        to: P,
        /// The message.
        msg: Message<L>,
    },
    /// The state grew by `delta` (persist it, tell watchers).
    Applied {
        /// What is new.
        delta: L,
        /// Where it came from.
        origin: Origin<P>,
    },
}

/// Per-neighbour sync state.
#[derive(Clone, Debug, Default)]
pub struct Neighbour {
    /// The highest sequence number it acked; `None` until a catch-up (or a first ack) establishes
    /// what it has, so nothing is ever skipped for a neighbour we know nothing about.
    pub acked: Option<u64>,
    /// The tick a catch-up went out, while its answer is awaited.
    pub catch_up_sent: Option<u64>,
    /// `bp-rr-tree`: the tick the link left the spanning tree, while it is off it (it gets
    /// beacons, not delta-groups).
    pub lazy_since: Option<u64>,
}

impl Neighbour {
    /// Off the spanning tree (`bp-rr-tree`).
    pub fn is_lazy(&self) -> bool {
        self.lazy_since.is_some()
    }
}

/// Counters the experiments and metrics read.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Messages sent, by kind label (`delta`, `ack`, `state`).
    pub messages_sent: BTreeMap<&'static str, u64>,
    /// Payload units sent.
    pub payload_units_sent: u64,
    /// Metadata units sent.
    pub metadata_units_sent: u64,
    /// Full states sent (catch-ups, and every state-based message).
    pub full_state_sends: u64,
    /// Groups received that carried nothing new.
    pub redundant_groups_received: u64,
    /// Messages ignored because the sender is not a neighbour.
    pub ignored_messages: u64,
}

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
}

impl<P: PeerId, L: Decompose + Measure> Engine<P, L> {
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
                self.neighbours.entry(peer).or_default();
            }
            Input::NeighbourDown(peer) => {
                self.neighbours.remove(&peer);
                if let Some(tree) = &mut self.tree {
                    tree.forget(&peer);
                }
                self.collect_garbage();
            }
        }
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
        if self.delta_mode() {
            self.buffer.push(Origin::Local, delta.clone());
            self.bound_buffer();
        }
        out.push(Output::Applied {
            delta,
            origin: Origin::Local,
        });
    }

    /// Merges a received group; returns what was new (⊥ if nothing). With RR, only Δ(group, state)
    /// is buffered; without, the whole group is, if it inflates the state at all.
    fn merge(&mut self, from: P, group: &L, rr: bool, out: &mut Vec<Output<P, L>>) {
        let new = self.state.delta_and_merge(group);
        if new.is_bottom() {
            self.stats.redundant_groups_received += 1;
            return;
        }
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
                    }
                    self.collect_garbage();
                }
            }
            Message::CatchUp { seq, state } => {
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
            Message::State { state } => {
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
                    let waiting = n
                        .catch_up_sent
                        .is_some_and(|t| self.tick - t < self.config.catch_up_retry_ticks);
                    if !waiting {
                        n.catch_up_sent = Some(self.tick);
                        out.push(Output::Send {
                            to,
                            msg: Message::CatchUp {
                                seq: next,
                                state: self.state.clone(),
                            },
                        });
                    }
                }
            }
        }
        self.collect_garbage();
    }

    /// `bp-rr-tree`: moves the tree on a tick, sends the beacons due, and applies what changed to
    /// the links. A link leaving the tree keeps its ack and holds the buffer back for a grace of
    /// two beacon periods; rejoining while the buffer still reaches back to its ack, it resumes
    /// with delta-groups (every growth of the state since is buffered), else it is caught up by
    /// state. Trees settle and re-form within the grace, so they cost no state transfers.
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
                (None, false) => n.lazy_since = Some(self.tick),
                (Some(_), true) => {
                    n.lazy_since = None;
                    n.catch_up_sent = None;
                    if n.acked.is_some_and(|a| a < oldest) {
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
    fn collect_garbage(&mut self) {
        let min_acked = self
            .neighbours
            .values()
            .filter(|n| self.holds_buffer(n))
            .filter_map(|n| n.acked)
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
mod tests {
    use super::*;
    use crdt::GSet;
    use proptest::prelude::*;

    type E = Engine<u32, GSet<u64>>;

    fn engine(alg: Algorithm, neighbours: &[u32]) -> E {
        let mut e = Engine::new(Config::new(alg), GSet::default(), 0);
        neighbours.iter().for_each(|&j| e.add_synced_neighbour(j));
        e
    }

    fn set(xs: &[u64]) -> GSet<u64> {
        xs.iter().copied().collect()
    }

    fn sends(out: &[Output<u32, GSet<u64>>]) -> Vec<(u32, Message<GSet<u64>>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, msg } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_local_update_goes_to_every_neighbour_and_is_dropped_once_all_ack() {
        let mut e = engine(Algorithm::BpRr, &[1, 2]);
        let out = e.handle(Input::Update(set(&[7])));
        assert!(matches!(
            &out[..],
            [Output::Applied {
                origin: Origin::Local,
                ..
            }]
        ));
        let s = sends(&e.handle(Input::Tick));
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|(_, m)| *m
            == Message::Delta {
                seq: 1,
                group: set(&[7])
            }));
        e.handle(Input::Received {
            from: 1,
            msg: Message::Ack { seq: 1 },
        });
        assert_eq!(e.buffer().len(), 1, "neighbour 2 has not acked yet");
        e.handle(Input::Received {
            from: 2,
            msg: Message::Ack { seq: 1 },
        });
        assert!(e.buffer().is_empty());
        assert!(
            sends(&e.handle(Input::Tick)).is_empty(),
            "nothing left to send"
        );
    }

    #[test]
    fn unacked_groups_are_resent_until_acked() {
        let mut e = engine(Algorithm::BpRr, &[1]);
        e.handle(Input::Update(set(&[1])));
        e.handle(Input::Tick);
        e.handle(Input::Update(set(&[2])));
        let s = sends(&e.handle(Input::Tick));
        assert_eq!(
            s,
            vec![(
                1,
                Message::Delta {
                    seq: 2,
                    group: set(&[1, 2])
                }
            )]
        );
    }

    #[test]
    fn bp_keeps_a_group_from_its_origin_and_rr_buffers_only_what_is_new() {
        for alg in Algorithm::ON_THE_WIRE
            .into_iter()
            .filter(|a| *a != Algorithm::State)
        {
            let mut e = engine(alg, &[1, 2]);
            e.handle(Input::Update(set(&[1])));
            e.handle(Input::Tick);
            e.handle(Input::Received {
                from: 1,
                msg: Message::Ack { seq: 1 },
            });
            e.handle(Input::Received {
                from: 2,
                msg: Message::Ack { seq: 1 },
            });
            let out = e.handle(Input::Received {
                from: 1,
                msg: Message::Delta {
                    seq: 9,
                    group: set(&[1, 5]),
                },
            });
            assert!(sends(&out).contains(&(1, Message::Ack { seq: 9 })));
            let buffered = &e.buffer().iter().last().unwrap().group;
            assert_eq!(
                buffered,
                &if alg.rr() { set(&[5]) } else { set(&[1, 5]) },
                "{alg}"
            );
            let to: Vec<u32> = sends(&e.handle(Input::Tick))
                .into_iter()
                .map(|(to, _)| to)
                .collect();
            assert_eq!(to, if alg.bp() { vec![2] } else { vec![1, 2] }, "{alg}");
        }
    }

    #[test]
    fn a_redundant_group_is_acked_but_not_buffered() {
        let mut e = engine(Algorithm::BpRr, &[1]);
        e.handle(Input::Update(set(&[1, 2])));
        let before = e.buffer().len();
        let out = e.handle(Input::Received {
            from: 1,
            msg: Message::Delta {
                seq: 3,
                group: set(&[2]),
            },
        });
        assert_eq!(sends(&out), vec![(1, Message::Ack { seq: 3 })]);
        assert_eq!(e.buffer().len(), before);
        assert_eq!(e.stats().redundant_groups_received, 1);
    }

    #[test]
    fn a_new_neighbour_is_caught_up_by_one_state_exchange() {
        let mut a = engine(Algorithm::BpRr, &[]);
        let mut b = engine(Algorithm::BpRr, &[]);
        a.handle(Input::Update(set(&[1, 2])));
        b.handle(Input::Update(set(&[3])));
        a.handle(Input::NeighbourUp(2));
        b.handle(Input::NeighbourUp(1));
        // a starts the exchange; b merges a's state, acks it, and answers with what a lacks.
        let s = sends(&a.handle(Input::Tick));
        assert_eq!(
            s,
            vec![(
                2,
                Message::CatchUp {
                    seq: 1,
                    state: set(&[1, 2])
                }
            )]
        );
        let reply = sends(&b.handle(Input::Received {
            from: 1,
            msg: s[0].1.clone(),
        }));
        assert_eq!(
            reply,
            vec![
                (1, Message::Ack { seq: 1 }),
                (
                    1,
                    Message::Delta {
                        seq: 2,
                        group: set(&[3])
                    }
                )
            ]
        );
        // b does not start a catch-up of its own while its answer is in flight.
        assert!(sends(&b.handle(Input::Tick)).is_empty());
        let mut back = Vec::new();
        for (_, m) in reply {
            back.extend(sends(&a.handle(Input::Received { from: 2, msg: m })));
        }
        for (_, m) in back {
            b.handle(Input::Received { from: 1, msg: m });
        }
        assert_eq!(a.state(), b.state());
        assert_eq!(a.neighbours()[&2].acked, Some(1));
        assert_eq!(b.neighbours()[&1].acked, Some(2));
        // b buffered only what was new to it, tagged with a; a's and b's next ticks send nothing back.
        assert!(sends(&a.handle(Input::Tick)).is_empty());
        assert!(sends(&b.handle(Input::Tick)).is_empty());
    }

    #[test]
    fn a_lost_catch_up_is_retried_after_the_retry_interval() {
        let mut a = engine(Algorithm::BpRr, &[]);
        a.handle(Input::NeighbourUp(2));
        let retry = a.config().catch_up_retry_ticks;
        let catch_ups: usize = (0..=retry)
            .map(|_| sends(&a.handle(Input::Tick)).len())
            .sum();
        assert_eq!(catch_ups, 2);
    }

    #[test]
    fn bogus_acks_and_strangers_change_nothing() {
        let mut e = engine(Algorithm::BpRr, &[1]);
        e.handle(Input::Update(set(&[1])));
        e.handle(Input::Received {
            from: 1,
            msg: Message::Ack { seq: 1_000 },
        });
        assert_eq!(
            e.buffer().len(),
            1,
            "an ack beyond anything sent must not drop data"
        );
        let out = e.handle(Input::Received {
            from: 9,
            msg: Message::Delta {
                seq: 1,
                group: set(&[66]),
            },
        });
        assert!(out.is_empty());
        assert!(!e.state().contains(&66));
        assert_eq!(e.stats().ignored_messages, 1);
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_groups_and_the_laggard_is_caught_up_by_state() {
        let mut e = Engine::new(
            Config {
                max_buffer_groups: 3,
                ..Config::new(Algorithm::BpRr)
            },
            GSet::default(),
            0,
        );
        e.add_synced_neighbour(1);
        for x in 0..5 {
            e.handle(Input::Update(set(&[x])));
        }
        assert_eq!(e.buffer().len(), 3);
        assert_eq!(e.neighbours()[&1].acked, None);
        let s = sends(&e.handle(Input::Tick));
        assert_eq!(
            s,
            vec![(
                1,
                Message::CatchUp {
                    seq: 5,
                    state: set(&[0, 1, 2, 3, 4])
                }
            )]
        );
    }

    #[test]
    fn a_restarted_engine_ignores_acks_from_before_its_restart() {
        let mut e = Engine::new(Config::new(Algorithm::BpRr), set(&[1]), 100);
        e.add_synced_neighbour(1);
        e.handle(Input::Update(set(&[2])));
        e.handle(Input::Received {
            from: 1,
            msg: Message::Ack { seq: 50 },
        });
        assert_eq!(
            e.buffer().len(),
            1,
            "an ack of a seq numbered before the restart acks nothing new"
        );
    }

    /// A tree of engines (parent of i is (i−1)/2) with unique elements `origin << 32 | n`: an
    /// element can reach i from j's side only through j, so a group i sends j must hold none of them.
    fn on_side_of(from: u32, towards: u32, origin: u32) -> bool {
        let in_subtree = |root: u32, mut x: u32| loop {
            if x == root {
                return true;
            }
            if x == 0 {
                return false;
            }
            x = (x - 1) / 2;
        };
        if towards == (from.max(1) - 1) / 2 && from != 0 {
            !in_subtree(from, origin)
        } else {
            in_subtree(towards, origin)
        }
    }

    proptest! {
        #[test]
        fn bp_never_sends_a_group_back_towards_its_origin(writers in prop::collection::vec(prop::collection::vec(any::<bool>(), 7), 1..12)) {
            let n = 7u32;
            let neighbours = |i: u32| -> Vec<u32> {
                let mut v: Vec<u32> = (0..n).filter(|&c| c != 0 && (c - 1) / 2 == i).collect();
                if i != 0 { v.push((i - 1) / 2) }
                v
            };
            let mut nodes: Vec<E> = (0..n).map(|i| engine(Algorithm::BpRr, &neighbours(i))).collect();
            let mut counter = 0u64;
            for round in writers.iter().chain(std::iter::repeat_n(&vec![false; 7], 6)) {
                let mut queue = std::collections::VecDeque::new();
                for i in 0..n {
                    if round[i as usize] {
                        counter += 1;
                        nodes[i as usize].handle(Input::Update(set(&[u64::from(i) << 32 | counter])));
                    }
                    queue.extend(sends(&nodes[i as usize].handle(Input::Tick)).into_iter().map(|(to, m)| (i, to, m)));
                }
                while let Some((from, to, msg)) = queue.pop_front() {
                    if let Message::Delta { group, .. } = &msg {
                        for x in group.iter() {
                            prop_assert!(!on_side_of(from, to, (x >> 32) as u32), "{from} sent {x:#x} back to {to}");
                        }
                    }
                    queue.extend(sends(&nodes[to as usize].handle(Input::Received { from, msg })).into_iter().map(|(t, m)| (to, t, m)));
                }
            }
            let all = nodes[0].state().clone();
            prop_assert!(nodes.iter().all(|e| e.state() == &all && e.buffer().is_empty()));
        }
    }
}
