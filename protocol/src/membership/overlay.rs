//! An in-memory network of membership machines, for the tests and the simulator.

use super::{Effect, Membership, MembershipConfig, Msg};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// An in-memory network of membership machines with `u32` ids: messages in order per pair (as
/// on a connection) and in random order across pairs; a message to a dead node fails at its
/// sender; a share [`Overlay::loss`] of the others is lost without a word. Used by the tests and
/// by the simulator's `overlay` topology.
pub struct Overlay {
    cfg: MembershipConfig,
    nodes: BTreeMap<u32, Membership<u32>>,
    dead: BTreeSet<u32>,
    links: BTreeMap<(u32, u32), VecDeque<Msg<u32>>>,
    rng: SmallRng,
    /// The largest active view seen at any moment.
    pub max_active: usize,
    /// The share of messages lost in flight, unseen by either side (0 unless set).
    pub loss: f64,
    /// Peer exchange as the node runs it beside the protocol: every this many ticks, each node
    /// learns a sample of a random neighbour's peer book (`None`, the default: the protocol
    /// alone). The node ticks its membership every sync interval (500 ms) and exchanges every
    /// 30 s: 60 ticks.
    pub exchange_every: Option<usize>,
    /// Each node's peer book: its join contact, the peers it got a message from, and those
    /// samples brought.
    books: BTreeMap<u32, BTreeSet<u32>>,
    ticked: usize,
}

impl Overlay {
    /// No node yet; views bounded by `k`, random choices drawn from `seed`.
    pub fn new(k: usize, seed: u64) -> Overlay {
        Overlay {
            cfg: MembershipConfig::with_active(k),
            nodes: BTreeMap::new(),
            dead: BTreeSet::new(),
            links: BTreeMap::new(),
            rng: SmallRng::seed_from_u64(seed),
            max_active: 0,
            loss: 0.0,
            exchange_every: None,
            books: BTreeMap::new(),
            ticked: 0,
        }
    }

    /// Queues what `from` sends.
    fn effects(&mut self, from: u32, effects: Vec<Effect<u32>>) {
        for e in effects {
            if let Effect::Send { to, msg } = e {
                self.links.entry((from, to)).or_default().push_back(msg);
            }
        }
        let n = self.nodes[&from].active().len();
        self.max_active = self.max_active.max(n);
    }

    /// A new node `id` joining through a random live node (the first one alone).
    pub fn add(&mut self, id: u32) {
        let live: Vec<u32> = self.live();
        let seed = self.rng.gen();
        self.nodes.insert(id, Membership::new(id, self.cfg, seed));
        if let Some(contact) = live.choose(&mut self.rng).copied() {
            // The node keeps its contact in its book (a `--peer`, a peer mDNS found).
            self.books.entry(id).or_default().insert(contact);
            let fx = self.nodes.get_mut(&id).unwrap().join(contact);
            self.effects(id, fx);
        }
    }

    /// The nodes not killed.
    pub fn live(&self) -> Vec<u32> {
        self.nodes
            .keys()
            .copied()
            .filter(|n| !self.dead.contains(n))
            .collect()
    }

    /// Kills `id`: its neighbours see their links fail.
    pub fn kill(&mut self, id: u32) {
        self.dead.insert(id);
        for n in self.live() {
            if self.nodes[&n].active().contains(&id) {
                let fx = self.nodes.get_mut(&n).unwrap().on_unreachable(id);
                self.effects(n, fx);
            }
        }
    }

    /// Delivers until no message is in flight, in passes: each pass takes the head of every
    /// busy link, in random order. A message to a dead node fails at its sender.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            // Only busy links are kept.
            let mut pairs: Vec<(u32, u32)> = self.links.keys().copied().collect();
            if pairs.is_empty() {
                return;
            }
            pairs.shuffle(&mut self.rng);
            for (from, to) in pairs {
                let queue = self.links.get_mut(&(from, to)).unwrap();
                let msg = queue.pop_front().unwrap();
                if queue.is_empty() {
                    self.links.remove(&(from, to));
                }
                if self.dead.contains(&from) || (self.loss > 0.0 && self.rng.gen_bool(self.loss)) {
                    continue;
                }
                let (at, fx) = if self.dead.contains(&to) {
                    (from, self.nodes.get_mut(&from).unwrap().on_unreachable(to))
                } else {
                    self.books.entry(to).or_default().insert(from);
                    (to, self.nodes.get_mut(&to).unwrap().on_message(from, msg))
                };
                self.effects(at, fx);
            }
        }
        panic!("messages never stop");
    }

    /// `n` ticks of every live node, each followed by delivery (and, with
    /// [`Overlay::exchange_every`], peer exchange).
    pub fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            for id in self.live() {
                let fx = self.nodes.get_mut(&id).unwrap().tick();
                self.effects(id, fx);
            }
            self.settle();
            self.ticked += 1;
            if self
                .exchange_every
                .is_some_and(|e| self.ticked.is_multiple_of(e.max(1)))
            {
                self.exchange();
            }
        }
    }

    /// Each live node learns up to 16 peers of a random neighbour's book (the node's sample).
    fn exchange(&mut self) {
        for id in self.live() {
            let Some(&from) = self.nodes[&id].active().choose(&mut self.rng) else {
                continue;
            };
            let mut sample: Vec<u32> = self
                .books
                .get(&from)
                .map(|b| b.iter().copied().filter(|p| *p != id).collect())
                .unwrap_or_default();
            sample.shuffle(&mut self.rng);
            sample.truncate(16);
            // As the node does: what a sample brings goes in the receiver's book too.
            self.books
                .entry(id)
                .or_default()
                .extend(sample.iter().copied());
            self.nodes.get_mut(&id).unwrap().learn(sample);
        }
    }

    /// Every live node: view bounded, no dead or self neighbour, links symmetric; and the live
    /// nodes connected through active views.
    pub fn check(&self) -> Result<(), String> {
        let live = self.live();
        for id in &live {
            let m = &self.nodes[id];
            if m.active().len() > self.cfg.active || m.passive().len() > self.cfg.passive {
                return Err(format!("{id}: views over their bounds"));
            }
            for p in m.active() {
                if self.dead.contains(p) || p == id {
                    return Err(format!("{id} keeps {p} (dead or itself) as a neighbour"));
                }
                if !self.nodes[p].active().contains(id) {
                    return Err(format!("{id} links {p}, not the other way"));
                }
            }
        }
        let mut seen = BTreeSet::from([live[0]]);
        let mut todo = vec![live[0]];
        while let Some(n) = todo.pop() {
            for p in self.nodes[&n].active() {
                if seen.insert(*p) {
                    todo.push(*p);
                }
            }
        }
        if seen.len() != live.len() {
            let cut: Vec<u32> = live.iter().copied().filter(|n| !seen.contains(n)).collect();
            return Err(format!(
                "{} of {} live nodes reachable; cut off: {cut:?}",
                seen.len(),
                live.len()
            ));
        }
        Ok(())
    }
}

impl Overlay {
    /// `n` nodes joined one by one through random earlier ones, then `ticks` ticks.
    pub fn bootstrapped(n: u32, k: usize, seed: u64, ticks: usize) -> Overlay {
        let mut net = Overlay::new(k, seed);
        for id in 0..n {
            net.add(id);
            net.settle();
        }
        net.ticks(ticks);
        net
    }

    /// `id`'s active view (empty for a node never added).
    pub fn view(&self, id: u32) -> &[u32] {
        self.nodes.get(&id).map_or(&[], |m| m.active())
    }

    /// Every node's active view, in id order (a killed node's as it was).
    pub fn views(&self) -> Vec<Vec<u32>> {
        self.nodes.values().map(|m| m.active().to_vec()).collect()
    }

    /// Draws from the overlay's random source.
    pub fn random(&mut self, below: usize) -> usize {
        self.rng.gen_range(0..below)
    }
}
