//! Scuttlebutt (van Renesse et al.) over deltas, as the paper's authors ran it: every update is a
//! delta named by a dot `(origin, counter)` and kept in a log; each round a node whose log is not
//! empty sends each neighbour its *knowledge matrix* (row k: what it knows node k has seen), and
//! the neighbour answers with every logged delta the sender's own row does not cover. A dot that
//! every row covers has been seen by every node: it is stable and leaves the log (Scuttlebutt-GC).
//! No acks.
//!
//! The matrix is what lets the log shrink, and it is what dominates this baseline's transmission:
//! N rows of up to N entries per message, against one vector (N entries) for Scuttlebutt without
//! garbage collection, whose log grows for ever.

use crdt::{Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A version vector: the highest contiguous counter seen per origin (absent = 0).
pub type Vector = BTreeMap<u32, u64>;

/// A Scuttlebutt message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SbMessage<L> {
    /// "This is what I know every node has seen": the sender's knowledge matrix, one row per node.
    Digest {
        /// Row k: the vector the sender knows node k to have seen.
        matrix: Vec<Vector>,
    },
    /// The deltas the digest's sender had not seen, by dot, in dot order.
    Deltas {
        /// `(origin, counter, delta)`.
        deltas: Vec<(u32, u64, L)>,
    },
}

impl<L: Measure> SbMessage<L> {
    /// Payload and metadata units: a matrix costs one unit per row plus one per vector entry (the
    /// authors' count); a delta costs its payload plus one unit for its dot.
    pub fn units(&self) -> (u64, u64) {
        match self {
            SbMessage::Digest { matrix } => (0, matrix_units(matrix)),
            SbMessage::Deltas { deltas } => deltas.iter().fold((0, 0), |(p, m), (_, _, d)| {
                (p + d.payload_units(), m + 1 + d.metadata_units())
            }),
        }
    }
}

fn matrix_units(matrix: &[Vector]) -> u64 {
    matrix.iter().map(|row| 1 + row.len() as u64).sum()
}

fn covers(vector: &Vector, origin: u32, counter: u64) -> bool {
    vector.get(&origin).is_some_and(|&c| c >= counter)
}

/// One Scuttlebutt replica.
#[derive(Clone, Debug)]
pub struct Scuttlebutt<L> {
    id: u32,
    state: L,
    neighbours: Vec<u32>,
    /// Deltas not yet seen by every node, by dot.
    log: BTreeMap<(u32, u64), L>,
    /// Row k: what this node knows node k has seen. Row `id` is this node's own vector.
    matrix: Vec<Vector>,
}

impl<L: Lattice + Measure> Scuttlebutt<L> {
    /// Replica `id` of `nodes`, with `neighbours`.
    pub fn new(id: u32, nodes: usize, neighbours: impl IntoIterator<Item = u32>) -> Self {
        Scuttlebutt {
            id,
            state: L::bottom(),
            neighbours: neighbours.into_iter().collect(),
            log: BTreeMap::new(),
            matrix: vec![Vector::new(); nodes.max(id as usize + 1)],
        }
    }

    /// The state.
    pub fn state(&self) -> &L {
        &self.state
    }

    /// Deltas still logged (not yet known to be seen by every node).
    pub fn logged(&self) -> usize {
        self.log.len()
    }

    fn own(&mut self) -> &mut Vector {
        &mut self.matrix[self.id as usize]
    }

    /// A local update.
    pub fn update(&mut self, delta: L) {
        let id = self.id;
        let c = self.own().entry(id).or_insert(0);
        *c += 1;
        let dot = (id, *c);
        self.state.join(&delta);
        self.log.insert(dot, delta);
    }

    /// Whether some node is known to have seen a dot this one has not: it must ask.
    fn behind(&self) -> bool {
        let own = &self.matrix[self.id as usize];
        self.matrix
            .iter()
            .flatten()
            .any(|(&o, &c)| !covers(own, o, c))
    }

    /// One round: the matrix to every neighbour, while the log holds anything (the authors' rule)
    /// or while this node knows it lacks a dot that another has seen (so a node whose log has
    /// emptied still asks for what came after; the authors' runs never left one waiting).
    pub fn tick(&mut self) -> Vec<(u32, SbMessage<L>)> {
        if self.log.is_empty() && !self.behind() {
            return vec![];
        }
        self.neighbours
            .iter()
            .map(|&j| {
                let matrix = self.matrix.clone();
                (j, SbMessage::Digest { matrix })
            })
            .collect()
    }

    /// A message from `from`.
    pub fn receive(&mut self, from: u32, msg: SbMessage<L>) -> Vec<(u32, SbMessage<L>)> {
        match msg {
            SbMessage::Digest { matrix } => {
                // A row for a node we do not know of is ignored: the matrix is bounded by ours.
                for (mine, theirs) in self.matrix.iter_mut().zip(&matrix) {
                    for (&o, &c) in theirs {
                        let e = mine.entry(o).or_insert(0);
                        *e = (*e).max(c);
                    }
                }
                self.collect_stable();
                let seen = matrix.get(from as usize).cloned().unwrap_or_default();
                let deltas: Vec<(u32, u64, L)> = self
                    .log
                    .iter()
                    .filter(|((o, c), _)| !covers(&seen, *o, *c))
                    .map(|((o, c), d)| (*o, *c, d.clone()))
                    .collect();
                let mut out = Vec::new();
                if !deltas.is_empty() {
                    out.push((from, SbMessage::Deltas { deltas }));
                }
                // A node with an empty log sends no digests of its own; when it knows more than
                // the asker (typically: that the asker's logged dots are stable), it answers with
                // its matrix, or the asker would keep its log and ask for ever. Each such answer
                // leaves the asker knowing at least as much, so it cannot ping-pong. Ours now
                // covers theirs, so "knows more" is "theirs does not cover ours".
                if self.log.is_empty() && !self.covered_by(&matrix) {
                    let matrix = self.matrix.clone();
                    out.push((from, SbMessage::Digest { matrix }));
                }
                out
            }
            SbMessage::Deltas { deltas } => {
                for (o, c, d) in deltas {
                    // Only the next contiguous one per origin: the vector must stay a true summary.
                    let seen = self.own().entry(o).or_insert(0);
                    if c == *seen + 1 {
                        *seen = c;
                        self.state.join(&d);
                        self.log.insert((o, c), d);
                    }
                }
                vec![]
            }
        }
    }

    /// Whether `theirs` knows everything this node's matrix holds.
    fn covered_by(&self, theirs: &[Vector]) -> bool {
        self.matrix.iter().enumerate().all(|(k, row)| {
            let t = theirs.get(k);
            row.iter()
                .all(|(&o, &c)| t.is_some_and(|t| covers(t, o, c)))
        })
    }

    /// Drops the dots every row covers: every node has seen them.
    fn collect_stable(&mut self) {
        let matrix = &self.matrix;
        self.log
            .retain(|&(o, c), _| !matrix.iter().all(|row| covers(row, o, c)));
    }

    /// Memory in units, as the authors count it: the state, the log (payload and one dot each)
    /// and the matrix.
    pub fn memory_units(&self) -> u64 {
        let log: u64 = self
            .log
            .values()
            .map(|d| d.payload_units() + d.metadata_units() + 1)
            .sum();
        self.state.payload_units() + self.state.metadata_units() + log + matrix_units(&self.matrix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::GSet;

    type Node = Scuttlebutt<GSet<u64>>;

    /// A line 0 - 1 - … - (n-1).
    fn line(n: u32) -> Vec<Node> {
        (0..n)
            .map(|i| {
                let nb = [i.checked_sub(1), (i + 1 < n).then_some(i + 1)];
                Scuttlebutt::new(i, n as usize, nb.into_iter().flatten())
            })
            .collect()
    }

    /// One round: every node ticks in turn, each digest is answered at once. Returns whether
    /// anything was sent, and the units sent.
    fn round(nodes: &mut [Node]) -> (bool, u64) {
        let (mut sent, mut units) = (false, 0);
        for i in 0..nodes.len() {
            for (j, digest) in nodes[i].tick() {
                sent = true;
                units += digest.units().1;
                for (_, deltas) in nodes[j as usize].receive(i as u32, digest) {
                    let (p, m) = deltas.units();
                    units += p + m;
                    nodes[i].receive(j, deltas);
                }
            }
        }
        (sent, units)
    }

    /// Rounds until quiet (at most 20): the number of rounds that sent something, and the units.
    fn until_quiet(nodes: &mut [Node]) -> (u32, u64) {
        let (mut rounds, mut units) = (0, 0);
        while rounds < 20 {
            let (sent, u) = round(nodes);
            if !sent {
                break;
            }
            rounds += 1;
            units += u;
        }
        (rounds, units)
    }

    #[test]
    fn a_dot_seen_by_every_node_leaves_the_log() {
        let mut n = line(2);
        n[0].update(GSet::from_iter([1]));
        n[1].update(GSet::from_iter([2]));
        let (rounds, _) = until_quiet(&mut n);
        assert!(rounds < 20, "quiet once every dot is stable");
        assert_eq!(n[0].state(), n[1].state());
        assert_eq!(n[0].state().len(), 2);
        assert_eq!(
            (n[0].logged(), n[1].logged()),
            (0, 0),
            "both dots are stable"
        );
    }

    #[test]
    fn a_third_node_keeps_dots_logged_until_it_has_them() {
        // Node 0 cannot drop its dot before it learns, through 1, that 2 has it.
        let mut n = line(3);
        n[0].update(GSet::from_iter([7]));
        round(&mut n);
        assert_eq!(n[0].logged(), 1, "node 2 has not confirmed the dot yet");
        let (rounds, _) = until_quiet(&mut n);
        assert!(rounds < 20);
        assert!(n.iter().all(|x| x.state().len() == 1 && x.logged() == 0));
    }

    #[test]
    fn a_node_with_an_empty_log_still_asks_for_what_it_lacks() {
        let mut n = line(2);
        n[0].update(GSet::from_iter([1]));
        // Round 1: 0's matrix (2 rows, 1 entry: 3 units) shows 1 that 0 has seen (0, 1); 1's log
        // is empty, yet 1 asks next and gets the delta (1 payload + 1 dot).
        let (_, units) = until_quiet(&mut n);
        assert_eq!(n[1].state().len(), 1);
        assert_eq!((n[0].logged(), n[1].logged()), (0, 0));
        assert!(units >= 3 + 2, "at least 0's digest and the delta: {units}");
    }
}
