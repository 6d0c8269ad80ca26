//! Bounded partial views: HyParView (Leitão, Pereira and Rodrigues, "HyParView: a membership
//! protocol for reliable gossip-based broadcast", DSN 2007) as a sans-IO state machine, generic
//! over the peer id, driven by the node and by the simulator alike.
//!
//! Each node keeps an *active view* of at most [`MembershipConfig::active`] peers — its neighbours,
//! over which data flows — and a larger *passive view* of peers it knows but is not linked to,
//! kept fresh by shuffles and used to repair the active view when a neighbour fails. Links are
//! symmetric: a node that adds a peer to its active view tells it ([`Msg::Joined`]: the receiver
//! links the sender too, and says so back when that changed its view — so a link dropped on one
//! side while the other re-made it comes back on both), and a node that drops one says so
//! ([`Msg::Disconnect`]).
//!
//! - *Join*: a new node sends [`Msg::Join`] to any member (from `--peer`, the peer book or mDNS).
//!   The contact links it and sends [`Msg::ForwardJoin`] to its other neighbours; each forwards it on
//!   a random walk of [`MembershipConfig::active_walk`] steps, and the node where it ends links the
//!   newcomer too (the one at step [`MembershipConfig::passive_walk`] puts it in its passive view).
//! - *Repair*: below its bound, a node asks a random passive peer to become a neighbour
//!   ([`Msg::Neighbor`]; *high* priority when it has no neighbour left, which is always accepted);
//!   a refusal or an unreachable peer makes it try another on the next tick.
//! - *Shuffle*: every [`MembershipConfig::shuffle_every`] ticks a node sends itself and a sample of
//!   both views on a random walk; where the walk ends the sample is exchanged for one of that
//!   node's passive view, so passive views stay a fresh random sample of the cluster.
//! - *Half links*: should a `Joined` or a `Disconnect` be lost, one side holds a link the other
//!   does not. Walks (forwarded joins, shuffles) go between neighbours only, so a node that gets
//!   one from a peer outside its active view answers [`Msg::Disconnect`]; every node shuffles
//!   through a random neighbour every period, so a half link is found and dropped.
//!
//! Effects come out as [`Effect::Send`], and as [`Effect::Up`] / [`Effect::Down`] when a peer
//! enters or leaves the active view: the driver makes it a sync neighbour, or stops.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

/// What a peer id must be.
pub trait Member: Copy + Eq + Ord + Hash + Debug {}
impl<T: Copy + Eq + Ord + Hash + Debug> Member for T {}

/// The protocol's sizes and walk lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    /// Active view bound (`--max-neighbours`).
    pub active: usize,
    /// Passive view bound.
    pub passive: usize,
    /// Steps a join is forwarded before a node links the newcomer (ARWL).
    pub active_walk: u8,
    /// The step at which a node puts the newcomer in its passive view (PRWL).
    pub passive_walk: u8,
    /// Active peers in a shuffle's sample.
    pub shuffle_active: usize,
    /// Passive peers in a shuffle's sample.
    pub shuffle_passive: usize,
    /// Ticks between shuffles.
    pub shuffle_every: u64,
    /// Ticks between *rotations*: a node with a full view swaps a random neighbour for a random
    /// passive peer. Rare, so links stay stable; it is what joins again a group whose members'
    /// views filled up among themselves (a partition no shortage would ever repair).
    pub rotate_every: u64,
}

impl MembershipConfig {
    /// The paper's proportions for an active view of `k`: a passive view of 6k (at least 30),
    /// walks of 6 and 3 steps, samples of 3 + 4 peers.
    pub fn with_active(k: usize) -> Self {
        MembershipConfig {
            active: k.max(1),
            passive: (6 * k).max(30),
            active_walk: 6,
            passive_walk: 3,
            shuffle_active: 3,
            shuffle_passive: 4,
            shuffle_every: 10,
            rotate_every: 100,
        }
    }
}

/// The membership messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg<P> {
    /// "Link me in": from a node joining the cluster to its contact.
    Join,
    /// A join on its random walk.
    ForwardJoin {
        /// The newcomer.
        joiner: P,
        /// Steps left.
        ttl: u8,
    },
    /// "I linked you": the receiver links the sender too (and answers with its own `Joined` if
    /// it had not).
    Joined,
    /// "Be my neighbour": `high` when the sender has none left (always accepted). Accepted with
    /// [`Msg::Joined`], refused with [`Msg::Refused`].
    Neighbor {
        /// Priority.
        high: bool,
    },
    /// A [`Msg::Neighbor`] refused (the sender tries another passive peer).
    Refused,
    /// "I dropped you from my active view."
    Disconnect,
    /// A sample of `origin`'s views on a random walk.
    Shuffle {
        /// Who started it (gets the reply).
        origin: P,
        /// Steps left.
        ttl: u8,
        /// `origin` and a sample of its views.
        peers: Vec<P>,
    },
    /// The answer to a [`Msg::Shuffle`]: a sample of the passive view where the walk ended.
    ShuffleReply {
        /// The sample.
        peers: Vec<P>,
    },
}

impl<P> Msg<P> {
    /// The same message with every peer id mapped by `f` (for the wire: to bytes and back),
    /// `None` if `f` refuses one.
    pub fn try_map<Q>(self, f: impl Fn(P) -> Option<Q>) -> Option<Msg<Q>> {
        let all = |peers: Vec<P>| peers.into_iter().map(&f).collect::<Option<Vec<Q>>>();
        Some(match self {
            Msg::Join => Msg::Join,
            Msg::ForwardJoin { joiner, ttl } => Msg::ForwardJoin {
                joiner: f(joiner)?,
                ttl,
            },
            Msg::Joined => Msg::Joined,
            Msg::Neighbor { high } => Msg::Neighbor { high },
            Msg::Refused => Msg::Refused,
            Msg::Disconnect => Msg::Disconnect,
            Msg::Shuffle { origin, ttl, peers } => Msg::Shuffle {
                origin: f(origin)?,
                ttl,
                peers: all(peers)?,
            },
            Msg::ShuffleReply { peers } => Msg::ShuffleReply { peers: all(peers)? },
        })
    }
}

/// The largest sample a shuffle may carry (a peer sending more is ignored past it).
pub const MAX_SAMPLE: usize = 64;

/// Messages that broke the protocol's bounds, by kind: each was cut back to what the protocol
/// allows (never fatal), and counted so an operator sees a misbehaving peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BadInput {
    /// `Join`s from a peer already in the active view: answered with `Joined`, not forwarded
    /// again (each forward costs a message per neighbour, so a repeated join would amplify).
    pub repeated_joins: u64,
    /// `ForwardJoin`s and `Shuffle`s whose walk was longer than this node would start: cut to
    /// its own walk length.
    pub overlong_walks: u64,
    /// Shuffle samples of more than [`MAX_SAMPLE`] peers: cut to that.
    pub oversized_samples: u64,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<P> {
    /// Send `msg` to `to` (connecting if need be).
    Send {
        /// The receiver.
        to: P,
        /// The message.
        msg: Msg<P>,
    },
    /// `P` entered the active view: a neighbour now.
    Up(P),
    /// `P` left the active view: no longer a neighbour (the driver may close the link).
    Down(P),
}

/// One node's membership. See the module docs.
#[derive(Clone, Debug)]
pub struct Membership<P> {
    me: P,
    cfg: MembershipConfig,
    active: Vec<P>,
    passive: Vec<P>,
    /// The passive peer asked to become a neighbour and not answered yet.
    asked: Option<P>,
    ticks: u64,
    /// The tick since which the active view has been short of its bound, if it is.
    short_since: Option<u64>,
    /// This node's offset in the rotation period (drawn once), so nodes do not rotate together.
    phase: u64,
    rng: SmallRng,
    bad_input: BadInput,
    /// Peers this node sent a `Disconnect` in the last [`DROP_MEMORY`] ticks, with the tick.
    dropped: Vec<(P, u64)>,
}

/// Ticks a node remembers a peer it told `Disconnect` (see [`Membership::on_message`]).
const DROP_MEMORY: u64 = 2;

impl<P: Member> Membership<P> {
    /// A node `me` with no view yet; `seed` draws its random choices.
    pub fn new(me: P, cfg: MembershipConfig, seed: u64) -> Self {
        Membership {
            me,
            cfg,
            active: Vec::new(),
            passive: Vec::new(),
            asked: None,
            ticks: 0,
            short_since: None,
            phase: 0,
            rng: SmallRng::seed_from_u64(seed),
            bad_input: BadInput::default(),
            dropped: Vec::new(),
        }
        .with_phase()
    }

    fn with_phase(mut self) -> Self {
        self.phase = self.rng.gen_range(0..self.cfg.rotate_every.max(1));
        self
    }

    /// The active view: the neighbours.
    pub fn active(&self) -> &[P] {
        &self.active
    }

    /// The passive view.
    pub fn passive(&self) -> &[P] {
        &self.passive
    }

    /// The messages received that broke the protocol's bounds.
    pub fn bad_input(&self) -> BadInput {
        self.bad_input
    }

    /// `ttl` cut to the longest walk this node starts (counted when it was longer).
    fn bounded_walk(&mut self, ttl: u8) -> u8 {
        if ttl > self.cfg.active_walk {
            self.bad_input.overlong_walks += 1;
        }
        ttl.min(self.cfg.active_walk)
    }

    /// `peers` cut to [`MAX_SAMPLE`] (counted when it was larger).
    fn bounded_sample(&mut self, mut peers: Vec<P>) -> Vec<P> {
        if peers.len() > MAX_SAMPLE {
            self.bad_input.oversized_samples += 1;
            peers.truncate(MAX_SAMPLE);
        }
        peers
    }

    /// Joins the cluster through `contact` (kept as a passive candidate, so a lost join is
    /// repaired through it).
    pub fn join(&mut self, contact: P) -> Vec<Effect<P>> {
        if contact == self.me {
            return Vec::new();
        }
        self.add_passive(contact);
        let mut out = Vec::new();
        send(&mut out, contact, Msg::Join);
        out
    }

    /// Peers learnt outside the protocol (mDNS, `--peer`, the peer book): passive candidates,
    /// which repair links the active view to when it is short.
    pub fn learn(&mut self, peers: impl IntoIterator<Item = P>) {
        for p in peers {
            self.add_passive(p);
        }
    }

    /// A message from `from`.
    pub fn on_message(&mut self, from: P, msg: Msg<P>) -> Vec<Effect<P>> {
        let mut out = Vec::new();
        if from == self.me {
            return out;
        }
        let walk = matches!(msg, Msg::ForwardJoin { .. } | Msg::Shuffle { .. });
        if walk && !self.active.contains(&from) && !self.dropped.iter().any(|(p, _)| *p == from) {
            // Walks go between neighbours only: the sender holds a link this node does not (a
            // `Joined` or a `Disconnect` lost on the way). Dropping it there makes the link
            // symmetric again; the walk itself goes on. Not when this node dropped it a moment
            // ago: its `Disconnect` is on the way, and a second one, arriving after the two had
            // linked again, would cut the new link on one side.
            self.dropped.push((from, self.ticks));
            send(&mut out, from, Msg::Disconnect);
        }
        match msg {
            Msg::Join if self.active.contains(&from) => {
                self.bad_input.repeated_joins += 1;
                send(&mut out, from, Msg::Joined);
            }
            Msg::Join => {
                self.add_active(from, &mut out);
                for p in self.active.clone() {
                    if p != from {
                        let ttl = self.cfg.active_walk;
                        send(&mut out, p, Msg::ForwardJoin { joiner: from, ttl });
                    }
                }
            }
            Msg::ForwardJoin { joiner, ttl } => {
                if joiner == self.me {
                    return out;
                }
                let ttl = self.bounded_walk(ttl);
                if ttl == 0 || self.active.len() <= 1 {
                    self.add_active(joiner, &mut out);
                } else {
                    if ttl == self.cfg.passive_walk {
                        self.add_passive(joiner);
                    }
                    let next = self.random_active_except(&[from, joiner]);
                    match next {
                        Some(n) => send(
                            &mut out,
                            n,
                            Msg::ForwardJoin {
                                joiner,
                                ttl: ttl - 1,
                            },
                        ),
                        None => self.add_active(joiner, &mut out),
                    }
                }
            }
            Msg::Joined => {
                if self.asked == Some(from) {
                    self.asked = None;
                }
                self.add_active(from, &mut out);
            }
            Msg::Neighbor { high } => {
                if self.active.contains(&from) {
                    send(&mut out, from, Msg::Joined);
                } else if high || self.active.len() < self.cfg.active {
                    self.add_active(from, &mut out);
                } else {
                    send(&mut out, from, Msg::Refused);
                }
            }
            Msg::Refused => {
                if self.asked == Some(from) {
                    self.asked = None;
                }
            }
            Msg::Disconnect => {
                if self.remove_active(from, &mut out) {
                    self.add_passive(from);
                }
            }
            Msg::Shuffle { origin, ttl, peers } => {
                let ttl = self.bounded_walk(ttl);
                let peers = self.bounded_sample(peers);
                let next = (ttl > 0)
                    .then(|| self.random_active_except(&[from, origin]))
                    .flatten();
                match next {
                    Some(n) => send(
                        &mut out,
                        n,
                        Msg::Shuffle {
                            origin,
                            ttl: ttl - 1,
                            peers,
                        },
                    ),
                    None if origin != self.me => {
                        let mut reply = self.passive.clone();
                        reply.shuffle(&mut self.rng);
                        reply.truncate(peers.len());
                        send(&mut out, origin, Msg::ShuffleReply { peers: reply });
                        for p in peers {
                            self.add_passive(p);
                        }
                    }
                    None => {}
                }
            }
            Msg::ShuffleReply { peers } => {
                for p in self.bounded_sample(peers) {
                    self.add_passive(p);
                }
            }
        }
        out
    }

    /// `peer` cannot be reached (its link failed, or a message to it could not be sent): it
    /// leaves both views; a neighbour's place is refilled from the passive view.
    pub fn on_unreachable(&mut self, peer: P) -> Vec<Effect<P>> {
        let mut out = Vec::new();
        self.remove_active(peer, &mut out);
        self.passive.retain(|p| *p != peer);
        if self.asked == Some(peer) {
            self.asked = None;
        }
        self.repair(&mut out);
        out
    }

    /// A tick: repairs a short active view, and shuffles every [`MembershipConfig::shuffle_every`].
    pub fn tick(&mut self) -> Vec<Effect<P>> {
        let mut out = Vec::new();
        self.ticks += 1;
        let now = self.ticks;
        self.dropped.retain(|(_, at)| now - at <= DROP_MEMORY);
        // An unanswered request is given up after a tick (the peer may be gone).
        self.asked = None;
        self.repair(&mut out);
        self.rotate(&mut out);
        if self.ticks.is_multiple_of(self.cfg.shuffle_every.max(1)) {
            if let Some(to) = self.random_active_except(&[]) {
                let mut peers = vec![self.me];
                peers.extend(self.sample(&self.active.clone(), self.cfg.shuffle_active, to));
                peers.extend(self.sample(&self.passive.clone(), self.cfg.shuffle_passive, to));
                let ttl = self.cfg.active_walk;
                send(
                    &mut out,
                    to,
                    Msg::Shuffle {
                        origin: self.me,
                        ttl,
                        peers,
                    },
                );
            }
        }
        out
    }

    /// Below the bound and not waiting for an answer: asks a random passive peer — with high
    /// priority when the view is empty, or has been short for a whole shuffle period. (Without
    /// the second rule, a group whose members' views are full among themselves but for one short
    /// member stays cut off for ever: full nodes refuse low-priority requests. With it, that
    /// member takes a place in a full node, whose evicted neighbour repairs in turn, so the
    /// shortage moves on at one link per shuffle period until it meets a free slot — and groups
    /// cut off join again.)
    fn repair(&mut self, out: &mut Vec<Effect<P>>) {
        if self.active.len() >= self.cfg.active {
            self.short_since = None;
            return;
        }
        let since = *self.short_since.get_or_insert(self.ticks);
        if self.asked.is_some() || self.passive.is_empty() {
            return;
        }
        let long_short = self.ticks.saturating_sub(since) >= self.cfg.shuffle_every;
        if long_short {
            self.short_since = Some(self.ticks);
        }
        self.ask(self.active.is_empty() || long_short, out);
    }

    /// Every [`MembershipConfig::rotate_every`] ticks (from a random phase of its own), a full
    /// node asks a random passive peer with high priority: accepted, it takes the place of a
    /// random neighbour.
    fn rotate(&mut self, out: &mut Vec<Effect<P>>) {
        let every = self.cfg.rotate_every.max(1);
        if self.active.len() < self.cfg.active
            || self.asked.is_some()
            || self.passive.is_empty()
            || !(self.ticks + self.phase).is_multiple_of(every)
        {
            return;
        }
        self.ask(true, out);
    }

    /// Asks a random passive peer (there is one) to become a neighbour, and waits for it.
    fn ask(&mut self, high: bool, out: &mut Vec<Effect<P>>) {
        let p = self.passive[self.rng.gen_range(0..self.passive.len())];
        self.asked = Some(p);
        send(out, p, Msg::Neighbor { high });
    }

    /// `n` random peers of `from`, `except` left out.
    fn sample(&mut self, from: &[P], n: usize, except: P) -> Vec<P> {
        let mut v: Vec<P> = from.iter().copied().filter(|p| *p != except).collect();
        v.shuffle(&mut self.rng);
        v.truncate(n);
        v
    }

    fn random_active_except(&mut self, except: &[P]) -> Option<P> {
        let candidates: Vec<P> = self
            .active
            .iter()
            .copied()
            .filter(|p| !except.contains(p))
            .collect();
        candidates.choose(&mut self.rng).copied()
    }

    /// Links `peer` and tells it ([`Msg::Joined`]), dropping a random neighbour (told with
    /// [`Msg::Disconnect`]) if the view is full.
    fn add_active(&mut self, peer: P, out: &mut Vec<Effect<P>>) {
        if peer == self.me || self.active.contains(&peer) {
            return;
        }
        if self.active.len() >= self.cfg.active {
            let i = self.rng.gen_range(0..self.active.len());
            let dropped = self.active.swap_remove(i);
            self.dropped.push((dropped, self.ticks));
            send(out, dropped, Msg::Disconnect);
            out.push(Effect::Down(dropped));
            self.add_passive(dropped);
        }
        self.passive.retain(|p| *p != peer);
        self.active.push(peer);
        out.push(Effect::Up(peer));
        send(out, peer, Msg::Joined);
    }

    /// Unlinks `peer`; whether it was linked.
    fn remove_active(&mut self, peer: P, out: &mut Vec<Effect<P>>) -> bool {
        let Some(i) = self.active.iter().position(|p| *p == peer) else {
            return false;
        };
        self.active.swap_remove(i);
        out.push(Effect::Down(peer));
        true
    }

    /// Keeps `peer` as a passive candidate, evicting a random one when full.
    fn add_passive(&mut self, peer: P) {
        if peer == self.me || self.active.contains(&peer) || self.passive.contains(&peer) {
            return;
        }
        if self.passive.len() >= self.cfg.passive {
            let i = self.rng.gen_range(0..self.passive.len());
            self.passive.swap_remove(i);
        }
        self.passive.push(peer);
    }
}

fn send<P>(out: &mut Vec<Effect<P>>, to: P, msg: Msg<P>) {
    out.push(Effect::Send { to, msg });
}

#[cfg(any(test, feature = "sim"))]
pub mod overlay;
#[cfg(test)]
mod tests;
