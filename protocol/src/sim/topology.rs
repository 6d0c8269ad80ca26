//! Overlay topologies for the simulator and the real-process scripts.

use crate::membership::overlay::Overlay;
use rand::seq::SliceRandom;
use rand::{rngs::SmallRng, SeedableRng};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Active views' bound for `overlay` when none is given (`--max-neighbours`).
pub const DEFAULT_MAX_NEIGHBOURS: usize = 8;

/// A topology's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Partial mesh, every node exactly 4 neighbours: node i links to i±1 and i±2 (mod N), so it is
    /// connected and regular for any N ≥ 5.
    Mesh,
    /// Binary tree: node i's parent is (i−1)/2, so the degree is at most 3.
    Tree,
    /// A cycle.
    Ring,
    /// A path.
    Line,
    /// Everyone with everyone.
    Full,
    /// A random connected `d`-regular graph, drawn from the seed.
    Random(usize),
    /// What the membership protocol builds (`protocol::membership`, HyParView) with active views
    /// of at most `k`: nodes join one by one through a random earlier node, with no global
    /// knowledge, then shuffle and repair for a while; the graph is their active views.
    Overlay(usize),
}

/// Ticks the membership protocol runs after the last join, before its views are taken.
pub const OVERLAY_TICKS: usize = 100;

impl Topology {
    /// The undirected edges `(a, b)` with `a < b` for `n` nodes (`seed` for `Random`).
    pub fn edges(self, n: usize, seed: u64) -> Vec<(u32, u32)> {
        let mut edges = BTreeSet::new();
        let mut link = |a: usize, b: usize| {
            if a != b {
                edges.insert((a.min(b) as u32, a.max(b) as u32));
            }
        };
        match self {
            Topology::Mesh => {
                for i in 0..n {
                    link(i, (i + 1) % n);
                    link(i, (i + 2) % n);
                }
            }
            Topology::Tree => (1..n).for_each(|i| link(i, (i - 1) / 2)),
            Topology::Ring => (0..n).for_each(|i| link(i, (i + 1) % n)),
            Topology::Line => (1..n).for_each(|i| link(i - 1, i)),
            Topology::Full => (0..n).for_each(|i| (i + 1..n).for_each(|j| link(i, j))),
            Topology::Random(d) => return random_regular(n, d, seed),
            Topology::Overlay(k) => {
                let overlay = Overlay::bootstrapped(n as u32, k, seed, OVERLAY_TICKS);
                for (a, view) in overlay.views().iter().enumerate() {
                    for b in view {
                        link(a, *b as usize);
                    }
                }
            }
        }
        edges.into_iter().collect()
    }

    /// The neighbours of every node.
    pub fn neighbours(self, n: usize, seed: u64) -> Vec<Vec<u32>> {
        let mut adj = vec![Vec::new(); n];
        for (a, b) in self.edges(n, seed) {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        }
        adj
    }
}

/// A random connected d-regular simple graph by the configuration model, redrawn until it is one
/// (falls back to the mesh's circulant when n·d is odd or no draw succeeds).
fn random_regular(n: usize, d: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = SmallRng::seed_from_u64(seed);
    if (n * d).is_multiple_of(2) && d < n {
        'draw: for _ in 0..1000 {
            let mut stubs: Vec<usize> = (0..n).flat_map(|i| std::iter::repeat_n(i, d)).collect();
            stubs.shuffle(&mut rng);
            let mut edges = BTreeSet::new();
            for pair in stubs.chunks(2) {
                let (a, b) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
                if a == b || !edges.insert((a as u32, b as u32)) {
                    continue 'draw;
                }
            }
            let edges: Vec<(u32, u32)> = edges.into_iter().collect();
            if connected(n, &edges) {
                return edges;
            }
        }
    }
    Topology::Mesh.edges(n, seed)
}

/// Whether the graph on `n` nodes is connected.
pub fn connected(n: usize, edges: &[(u32, u32)]) -> bool {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a as usize].push(b as usize);
        adj[b as usize].push(a as usize);
    }
    let mut seen = vec![false; n];
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        if n == 0 || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(adj[i].iter().copied());
    }
    seen.iter().all(|s| *s)
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Mesh => f.write_str("mesh"),
            Topology::Tree => f.write_str("tree"),
            Topology::Ring => f.write_str("ring"),
            Topology::Line => f.write_str("line"),
            Topology::Full => f.write_str("full"),
            Topology::Random(d) => write!(f, "random:{d}"),
            Topology::Overlay(k) => write!(f, "overlay:{k}"),
        }
    }
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "mesh" => Topology::Mesh,
            "tree" => Topology::Tree,
            "ring" => Topology::Ring,
            "line" => Topology::Line,
            "full" => Topology::Full,
            "overlay" => Topology::Overlay(DEFAULT_MAX_NEIGHBOURS),
            _ => match (
                s.strip_prefix("random:").map(str::parse),
                s.strip_prefix("overlay:").map(str::parse),
            ) {
                (Some(Ok(d)), _) => Topology::Random(d),
                (_, Some(Ok(k))) if k > 0 => Topology::Overlay(k),
                _ => {
                    return Err(format!(
                        "unknown topology {s:?}; expected mesh, tree, ring, line, full, random:D, overlay or overlay:K"
                    ))
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_the_promised_degrees_and_are_connected() {
        for n in [5, 15, 32, 50] {
            for t in [
                Topology::Mesh,
                Topology::Tree,
                Topology::Ring,
                Topology::Line,
                Topology::Full,
                Topology::Random(4),
                Topology::Overlay(3),
            ] {
                let adj = t.neighbours(n, 7);
                assert!(connected(n, &t.edges(n, 7)), "{t} on {n} is not connected");
                let max = adj.iter().map(Vec::len).max().unwrap();
                match t {
                    Topology::Mesh | Topology::Random(4) => {
                        assert!(adj.iter().all(|a| a.len() == 4), "{t} on {n}")
                    }
                    Topology::Tree => assert!(max <= 3),
                    Topology::Ring => assert!(adj.iter().all(|a| a.len() == 2)),
                    Topology::Line => assert_eq!(max, 2),
                    Topology::Overlay(k) => assert!(max <= k),
                    _ => assert!(adj.iter().all(|a| a.len() == n - 1)),
                }
            }
        }
    }
}
