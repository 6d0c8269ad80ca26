//! The spanning tree of the `bp-rr-tree` algorithm: which links carry delta-groups (eager) and
//! which carry only beacons (lazy).
//!
//! On a mesh, the paper's BP+RR still delivers each update to a node over several links, because
//! neighbours forward it in the same interval before any of them can know the others did. Over a
//! tree every update crosses each link once: the lower bound. So the engine restricts BP+RR to the
//! links of a spanning tree that the nodes build among themselves, and keeps the other links alive
//! with a [`Beacon`] now and then, as PlumTree keeps its lazy links (Leitão et al., SRDS 2007).
//!
//! The tree is a shortest-path tree towards the live node of lowest *rank* (a number unique to each
//! replica), built like a distance-vector protocol:
//!
//! - Every node tells each neighbour, in a beacon, its root, the root's *epoch*, its distance to
//!   the root and whether that neighbour is its parent. The root starts a new epoch every
//!   `period` ticks; the others pass it on, so a fresh epoch says "there is a live path to the root".
//! - A node follows the neighbour offering the lowest root, then the shortest distance. It never
//!   follows one that may lead back through itself (the feasibility condition of DUAL/EIGRP): a
//!   neighbour is acceptable for the same root only with a newer epoch than the node has seen, or
//!   the same epoch and a distance below the smallest the node has had in that epoch. So parent
//!   pointers never form a loop, even on stale beacons.
//! - A node whose parent is lost detaches (distance ∞) until a newer epoch arrives by another path;
//!   a root whose epoch stops advancing for `STALE_PERIODS` periods is presumed gone, and the lowest
//!   remaining rank takes over.
//! - A link is eager (carries delta-groups) only between a parent and its child, and only once
//!   the node's root has held for [`SETTLE_TICKS`]: a forming or re-forming tree moves no data
//!   over links it is about to prune.
//!
//! Correctness of the data never rests on the tree: the engine catches up every link that becomes a
//! tree link (with deltas when it left the tree moments ago, else with the state-driven exchange),
//! so a wrong, partial or changing tree costs extra transfers and delay, never data. All the tree must do is end up connected, which the
//! rules above guarantee once links stop failing.

use crate::peer::PeerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The distance of a node that has no path to its root.
pub const DETACHED: u32 = u32::MAX;

/// Periods without a new epoch after which a root is presumed gone.
pub const STALE_PERIODS: u64 = 4;

/// Ticks a node's root must hold before its links carry delta-groups (see
/// [`SpanningTree::is_eager`]).
pub const SETTLE_TICKS: u64 = 2;

/// What a node tells a neighbour about its place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beacon {
    /// The rank of the node's root.
    pub root: u64,
    /// The newest epoch of that root the node has seen.
    pub epoch: u64,
    /// Hops to the root ([`DETACHED`] when it has no path).
    pub dist: u32,
    /// Whether the receiver is the sender's parent.
    pub parent: bool,
}

/// One node's view of the tree.
#[derive(Clone, Debug)]
pub struct SpanningTree<P> {
    /// This node's rank: the lowest rank in a connected network is the root.
    rank: u64,
    /// Ticks between two epochs of a root; an unchanged beacon is repeated every two periods.
    period: u64,
    /// The next epoch this node issues while it is a root; it only grows, across restarts too.
    own_epoch: u64,
    /// The tick of this node's next epoch while it is a root.
    next_epoch_at: u64,
    root: u64,
    root_epoch: u64,
    dist: u32,
    /// The smallest distance held in `root_epoch`: the feasibility bound.
    feasible: u32,
    parent: Option<P>,
    /// The tick `root_epoch` last advanced.
    fresh_at: u64,
    /// The tick the root last changed.
    root_since: u64,
    /// Whether the root has held for [`SETTLE_TICKS`]: until then no link is eager.
    settled: bool,
    /// The tick this node last detached (its path to the root lost), while it stays detached.
    detached_since: Option<u64>,
    /// Detached for over a period (no newer epoch came by another path, so the root is likely
    /// gone): every link carries data until the tree re-forms, so a lost root stalls nothing
    /// while it is presumed gone (4 periods). A parent lost is usually replaced within a period,
    /// flooding nothing.
    flooding: bool,
    /// The latest beacon from each neighbour.
    heard: BTreeMap<P, Beacon>,
    /// Roots presumed gone, with the newest epoch seen of each: older beacons of theirs are ignored.
    dismissed: BTreeMap<u64, u64>,
    /// The last beacon sent to each neighbour and when, so beacons go out on change or each period.
    sent: BTreeMap<P, (Beacon, u64)>,
}

impl<P: PeerId> SpanningTree<P> {
    /// A node of `rank`, alone, its own root. `epoch_base` must exceed every epoch it issued before.
    pub fn new(rank: u64, epoch_base: u64, period: u64) -> Self {
        SpanningTree {
            rank,
            period: period.max(1),
            own_epoch: epoch_base,
            next_epoch_at: 0,
            root: rank,
            root_epoch: epoch_base,
            dist: 0,
            feasible: 0,
            parent: None,
            fresh_at: 0,
            root_since: 0,
            settled: true,
            detached_since: None,
            flooding: false,
            heard: BTreeMap::new(),
            dismissed: BTreeMap::new(),
            sent: BTreeMap::new(),
        }
    }

    /// The parent (`None` at the root and while detached).
    pub fn parent(&self) -> Option<P> {
        self.parent
    }

    /// The root this node follows.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Hops to the root, [`DETACHED`] while detached.
    pub fn dist(&self) -> u32 {
        self.dist
    }

    /// The epoch a restarted node must start above.
    pub fn epoch(&self) -> u64 {
        self.own_epoch.max(self.root_epoch)
    }

    /// Whether delta-groups go over the link to `peer`: our root has held for [`SETTLE_TICKS`], and
    /// `peer` is the parent or says we are its parent. A new link is lazy until the tree takes it
    /// in, and while roots still change (a network forming, a root gone) nothing is eager: data
    /// waits a couple of ticks rather than flooding links that the settling tree then prunes (on
    /// 1,000 nodes whose every update came at once, that flood was 78% above the lower bound).
    pub fn is_eager(&self, peer: &P) -> bool {
        if self.flooding {
            return true;
        }
        self.settled
            && (self.parent == Some(*peer) || self.heard.get(peer).is_some_and(|b| b.parent))
    }

    /// A beacon from `from`.
    pub fn heard(&mut self, from: P, beacon: Beacon) {
        self.heard.insert(from, beacon);
    }

    /// `peer` is no longer a neighbour.
    pub fn forget(&mut self, peer: &P) {
        self.heard.remove(peer);
        self.sent.remove(peer);
        if self.parent == Some(*peer) {
            self.detach();
        }
    }

    /// One tick: issue or check epochs, choose the parent, and return the beacons to send to
    /// `neighbours` (to each, when what it would say changed or a period has passed).
    pub fn tick(&mut self, now: u64, neighbours: impl Iterator<Item = P>) -> Vec<(P, Beacon)> {
        let root_before = self.root;
        if self.root == self.rank {
            if now >= self.next_epoch_at {
                self.own_epoch += 1;
                self.root_epoch = self.own_epoch;
                self.next_epoch_at = now + self.period;
            }
        } else if now.saturating_sub(self.fresh_at) > STALE_PERIODS * self.period {
            self.dismissed.insert(self.root, self.root_epoch);
            self.become_root(now);
        }
        self.choose_parent(now);
        if self.root != root_before {
            self.root_since = now;
        }
        self.settled = now >= self.root_since + SETTLE_TICKS;
        if self.dist == DETACHED {
            let since = *self.detached_since.get_or_insert(now);
            self.flooding = now > since + self.period;
        } else {
            self.detached_since = None;
            self.flooding = false;
        }
        // A dismissed root above ours can never win again: only lower roots need remembering.
        let root = self.root;
        self.dismissed.retain(|&r, _| r < root);
        let mut out = Vec::new();
        for to in neighbours {
            let beacon = Beacon {
                root: self.root,
                epoch: self.root_epoch,
                dist: self.dist,
                parent: self.parent == Some(to),
            };
            let due = self
                .sent
                .get(&to)
                .is_none_or(|(b, at)| *b != beacon || now >= at + 2 * self.period);
            if due {
                self.sent.insert(to, (beacon, now));
                out.push((to, beacon));
            }
        }
        out
    }

    fn become_root(&mut self, now: u64) {
        self.own_epoch = self.own_epoch.max(self.root_epoch) + 1;
        self.root = self.rank;
        self.root_epoch = self.own_epoch;
        self.dist = 0;
        self.feasible = 0;
        self.parent = None;
        self.fresh_at = now;
        self.next_epoch_at = now + self.period;
    }

    fn detach(&mut self) {
        self.parent = None;
        self.dist = DETACHED;
    }

    /// A beacon that may lead to a root: not detached, not our child, not of a dismissed epoch.
    fn usable(&self, b: &Beacon) -> bool {
        b.dist != DETACHED && !b.parent && self.dismissed.get(&b.root).is_none_or(|&e| b.epoch > e)
    }

    /// Whether following a neighbour that says `b` cannot close a loop through this node.
    fn feasible(&self, b: &Beacon) -> bool {
        b.root < self.root
            || (b.root == self.root
                && (b.epoch > self.root_epoch
                    || (b.epoch == self.root_epoch && b.dist < self.feasible)))
    }

    fn choose_parent(&mut self, now: u64) {
        // Keep the parent while it still leads to our root; take in its newer epochs.
        if let Some(p) = self.parent {
            match self.heard.get(&p).copied() {
                Some(b) if self.usable(&b) && b.root == self.root => self.follow(p, b, now),
                _ => self.detach(),
            }
        }
        let current = self.parent.and_then(|p| self.heard.get(&p)).map(|b| b.dist);
        let best = self
            .heard
            .iter()
            .filter(|(_, b)| self.usable(b) && self.feasible(b))
            .min_by_key(|(&q, b)| (b.root, b.dist, q))
            .map(|(&q, &b)| (q, b));
        if let Some((q, b)) = best {
            // Switch for a better root or a strictly shorter path, never for a tie (no flapping).
            let better = b.root < self.root || current.is_none_or(|d| b.dist < d);
            if better && Some(q) != self.parent {
                self.follow(q, b, now);
            }
        }
    }

    fn follow(&mut self, p: P, b: Beacon, now: u64) {
        let dist = b.dist + 1;
        if b.root != self.root || b.epoch > self.root_epoch {
            self.root = b.root;
            self.root_epoch = b.epoch;
            self.feasible = dist;
            self.fresh_at = now;
        } else {
            self.feasible = self.feasible.min(dist);
        }
        self.dist = dist;
        self.parent = Some(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Nodes 0..n (rank = id) on `edges`; each round every node ticks in turn and its beacons
    /// arrive at once; `cut` removes a link for good.
    struct Net {
        trees: Vec<SpanningTree<u32>>,
        adj: Vec<Vec<u32>>,
        now: u64,
    }

    impl Net {
        fn new(n: u32, edges: &[(u32, u32)], period: u64) -> Self {
            let mut adj = vec![Vec::new(); n as usize];
            for &(a, b) in edges {
                adj[a as usize].push(b);
                adj[b as usize].push(a);
            }
            Net {
                trees: (0..n)
                    .map(|i| SpanningTree::new(i.into(), 0, period))
                    .collect(),
                adj,
                now: 0,
            }
        }

        fn cut(&mut self, a: u32, b: u32) {
            self.adj[a as usize].retain(|&x| x != b);
            self.adj[b as usize].retain(|&x| x != a);
            self.trees[a as usize].forget(&b);
            self.trees[b as usize].forget(&a);
        }

        /// One round; returns a node whose parent pointers led into a loop after any tick.
        fn round(&mut self, alive: &[bool]) -> Option<usize> {
            self.now += 1;
            let mut looped = None;
            for i in 0..self.trees.len() {
                if !alive[i] {
                    continue;
                }
                let out = self.trees[i].tick(self.now, self.adj[i].clone().into_iter());
                for (to, b) in out {
                    if alive[to as usize] {
                        self.trees[to as usize].heard(i as u32, b);
                    }
                }
                looped = looped.or_else(|| (0..self.trees.len()).find(|&x| self.loops(x)));
            }
            looped
        }

        /// Whether following parents from `x` never reaches a root.
        fn loops(&self, mut x: usize) -> bool {
            for _ in 0..=self.trees.len() {
                match self.trees[x].parent() {
                    Some(p) => x = p as usize,
                    None => return false,
                }
            }
            true
        }

        /// Whether the eager links among `alive` nodes form one spanning tree of them.
        fn is_spanning_tree(&self, alive: &[bool]) -> bool {
            let live: Vec<u32> = (0..self.trees.len() as u32)
                .filter(|&i| alive[i as usize])
                .collect();
            let mut eager = 0;
            let mut seen = vec![false; self.trees.len()];
            let mut stack = vec![live[0]];
            seen[live[0] as usize] = true;
            for &i in &live {
                for &j in &self.adj[i as usize] {
                    let both =
                        self.trees[i as usize].is_eager(&j) && self.trees[j as usize].is_eager(&i);
                    if alive[j as usize] && both && i < j {
                        eager += 1;
                    }
                }
            }
            while let Some(i) = stack.pop() {
                for &j in &self.adj[i as usize] {
                    if alive[j as usize] && !seen[j as usize] && self.trees[i as usize].is_eager(&j)
                    {
                        seen[j as usize] = true;
                        stack.push(j);
                    }
                }
            }
            eager == live.len() - 1 && live.iter().all(|&i| seen[i as usize])
        }
    }

    /// A beacon of epoch 1.
    fn beacon(root: u64, dist: u32, parent: bool) -> Beacon {
        Beacon {
            root,
            epoch: 1,
            dist,
            parent,
        }
    }

    fn mesh(n: u32) -> Vec<(u32, u32)> {
        (0..n)
            .flat_map(|i| [(i, (i + 1) % n), (i, (i + 2) % n)])
            .collect()
    }

    #[test]
    fn links_are_lazy_until_the_tree_takes_them_in_and_while_the_root_changes() {
        let mut t: SpanningTree<u32> = SpanningTree::new(5, 0, 10);
        t.tick(1, [1, 2].into_iter());
        assert!(!t.is_eager(&1) && !t.is_eager(&2), "nothing heard: lazy");
        t.heard(1, beacon(5, 1, true));
        t.tick(2, [1, 2].into_iter());
        assert!(t.is_eager(&1), "a child, root held since the start");
        assert!(!t.is_eager(&2), "heard nothing from 2");
        // A lower root appears through 2: the node follows it and waits SETTLE_TICKS.
        t.heard(2, beacon(3, 0, false));
        t.tick(3, [1, 2].into_iter());
        assert_eq!((t.root(), t.parent()), (3, Some(2)));
        assert!(!t.is_eager(&2) && !t.is_eager(&1), "root just changed");
        t.tick(3 + SETTLE_TICKS, [1, 2].into_iter());
        assert!(t.is_eager(&2), "the parent, root settled");
    }

    #[test]
    fn a_node_detached_for_over_a_period_sends_on_every_link_until_the_tree_reforms() {
        let mut t: SpanningTree<u32> = SpanningTree::new(5, 0, 10);
        t.heard(1, beacon(1, 0, false));
        t.tick(1, [1, 2].into_iter());
        t.tick(4, [1, 2].into_iter());
        assert!(
            t.is_eager(&1) && !t.is_eager(&2),
            "on the tree: only the parent"
        );
        t.forget(&1);
        t.tick(5, [2].into_iter());
        assert_eq!(t.dist(), DETACHED);
        assert!(
            !t.is_eager(&2),
            "a parent lost is usually replaced within a period"
        );
        t.tick(16, [2].into_iter());
        assert!(t.is_eager(&2), "detached for over a period: every link");
        // The root is presumed gone after STALE_PERIODS; the node roots a tree of its own.
        t.tick(1 + STALE_PERIODS * 10 + 1, [2].into_iter());
        assert_eq!((t.root(), t.dist()), (5, 0));
        assert!(!t.is_eager(&2), "attached again: the tree decides");
    }

    #[test]
    fn a_mesh_settles_on_a_shortest_path_tree_to_the_lowest_rank() {
        let mut net = Net::new(15, &mesh(15), 10);
        let alive = vec![true; 15];
        for _ in 0..10 {
            assert!(net.round(&alive).is_none());
        }
        assert!(net.is_spanning_tree(&alive));
        for (i, t) in net.trees.iter().enumerate() {
            assert_eq!(t.root(), 0);
            // In C15(1,2) node i is ⌈min(i, 15 − i) / 2⌉ hops from 0.
            let d = (i as u32).min(15 - i as u32).div_ceil(2);
            assert_eq!(t.dist(), d, "node {i}");
        }
        // Once settled, nothing changes and beacons go out once per period.
        let parents: Vec<_> = net.trees.iter().map(|t| t.parent()).collect();
        let mut beacons = 0;
        for _ in 0..50 {
            net.now += 1;
            for i in 0..15 {
                let out = net.trees[i].tick(net.now, net.adj[i].clone().into_iter());
                beacons += out.len();
                for (to, b) in out {
                    net.trees[to as usize].heard(i as u32, b);
                }
            }
        }
        assert_eq!(
            parents,
            net.trees.iter().map(|t| t.parent()).collect::<Vec<_>>()
        );
        assert!(beacons <= 60 * 6, "{beacons} beacons in 50 ticks");
    }

    #[test]
    fn the_tree_heals_when_a_link_or_the_root_goes() {
        let mut net = Net::new(15, &mesh(15), 5);
        let mut alive = vec![true; 15];
        for _ in 0..10 {
            assert!(net.round(&alive).is_none());
        }
        let parent_of_1 = net.trees[1].parent().unwrap();
        net.cut(1, parent_of_1);
        for _ in 0..15 {
            assert!(net.round(&alive).is_none());
        }
        assert!(net.is_spanning_tree(&alive), "after a tree link was cut");
        alive[0] = false;
        for j in net.adj[0].clone() {
            net.cut(0, j);
        }
        for _ in 0..(STALE_PERIODS + 4) * 5 {
            assert!(net.round(&alive).is_none());
        }
        assert!(net.is_spanning_tree(&alive), "after the root left");
        assert!(net.trees[1..].iter().all(|t| t.root() == 1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Random connected graphs, random links cut: parent pointers never form a loop, and once
        /// cutting stops, the eager links become a spanning tree of every connected part.
        #[test]
        fn parents_never_loop_and_the_tree_settles(
            n in 3u32..20,
            extra in prop::collection::vec((0u32..20, 0u32..20), 0..30),
            cuts in prop::collection::vec((0u32..20, 0u32..20, 0u64..30), 0..12),
        ) {
            // A random spanning path plus random extra links.
            let mut edges: Vec<(u32, u32)> = (1..n).map(|i| (i - 1, i)).collect();
            edges.extend(extra.into_iter().map(|(a, b)| ((a % n).min(b % n), (a % n).max(b % n))).filter(|(a, b)| a != b));
            edges.sort_unstable();
            edges.dedup();
            let mut net = Net::new(n, &edges, 3);
            let alive = vec![true; n as usize];
            for r in 0..30 {
                for &(a, b, at) in &cuts {
                    let (a, b) = (a % n, b % n);
                    if at == r && a != b && net.adj[a as usize].contains(&b) {
                        net.cut(a, b);
                    }
                }
                let looped = net.round(&alive);
                prop_assert!(looped.is_none(), "a parent loop through {:?} in round {}", looped, r);
            }
            for _ in 0..(STALE_PERIODS + 2) * 3 * u64::from(n) {
                assert!(net.round(&alive).is_none());
            }
            // Each connected part settles on one tree rooted at its lowest node.
            for i in 0..n {
                let mut comp = vec![false; n as usize];
                let mut stack = vec![i];
                comp[i as usize] = true;
                while let Some(x) = stack.pop() {
                    for &y in &net.adj[x as usize] {
                        if !comp[y as usize] { comp[y as usize] = true; stack.push(y); }
                    }
                }
                let lowest = (0..n).find(|&x| comp[x as usize]).unwrap();
                prop_assert_eq!(net.trees[i as usize].root(), u64::from(lowest));
                prop_assert!(net.is_spanning_tree(&comp));
            }
        }
    }
}
