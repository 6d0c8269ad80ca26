//! The paper's workloads: what each node does at each event.

use crdt::{Decompose, GCounter, GMap, GSet, LwwMap, Measure, ReplicaId};
use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A workload: at each event, node `node` makes one update and returns its delta (⊥ for a read).
pub trait Workload {
    /// The replicated lattice.
    type L: Decompose + Measure + Serialize + DeserializeOwned;
    /// One event at `node` (of `nodes`) in `round`, given its current state.
    fn event(
        &mut self,
        node: u32,
        nodes: u32,
        round: u64,
        state: &Self::L,
        rng: &mut SmallRng,
    ) -> Self::L;

    /// A state of `size` payload units that every node holds before the first event, for
    /// measuring how costs grow with the state (`None`: this workload has no such state).
    fn preload(&mut self, size: u64) -> Option<Self::L> {
        let _ = size;
        None
    }
}

/// A workload by name, as `--workload` takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WorkloadSpec {
    /// Each event adds a unique element to a grow-only set.
    GSet,
    /// Each event increments a grow-only counter.
    GCounter,
    /// A last-writer-wins map of 1000 keys split among the nodes; each event rewrites K% of the
    /// node's keys.
    GMap(u32),
    /// Retwis with users drawn from a Zipf distribution of this coefficient: follow 15%, post 35%,
    /// timeline read 50%.
    Retwis(f64),
}

impl fmt::Display for WorkloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadSpec::GSet => f.write_str("gset"),
            WorkloadSpec::GCounter => f.write_str("gcounter"),
            WorkloadSpec::GMap(k) => write!(f, "gmap:{k}"),
            WorkloadSpec::Retwis(z) => write!(f, "retwis:{z}"),
        }
    }
}

impl FromStr for WorkloadSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "unknown workload {s:?}; expected gset, gcounter, gmap:K (1..=100) or retwis:ZIPF"
            )
        };
        match s.split_once(':') {
            None if s == "gset" => Ok(WorkloadSpec::GSet),
            None if s == "gcounter" => Ok(WorkloadSpec::GCounter),
            Some(("gmap", k)) => k
                .parse()
                .ok()
                .filter(|k| (1..=100).contains(k))
                .map(WorkloadSpec::GMap)
                .ok_or_else(bad),
            Some(("retwis", z)) => z
                .parse()
                .ok()
                .filter(|z: &f64| *z >= 0.0)
                .map(WorkloadSpec::Retwis)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

/// `gset`: node i's n-th element is `i << 32 | n`.
#[derive(Default)]
pub struct GSetWorkload {
    counter: u64,
}

impl Workload for GSetWorkload {
    type L = GSet<u64>;
    fn event(
        &mut self,
        node: u32,
        _: u32,
        _: u64,
        state: &GSet<u64>,
        _: &mut SmallRng,
    ) -> GSet<u64> {
        self.counter += 1;
        state.add(u64::from(node) << 32 | self.counter)
    }

    /// Elements counted down from `u64::MAX`, apart from every element an event adds.
    fn preload(&mut self, size: u64) -> Option<GSet<u64>> {
        Some((0..size).map(|i| u64::MAX - i).collect())
    }
}

/// `gcounter`: +1 at the node's entry.
#[derive(Default)]
pub struct GCounterWorkload;

impl Workload for GCounterWorkload {
    type L = GCounter;
    fn event(&mut self, node: u32, _: u32, _: u64, state: &GCounter, _: &mut SmallRng) -> GCounter {
        state.inc(ReplicaId(u64::from(node)), 1).unwrap_or_default() // one a round never reaches u64::MAX
    }
}

/// `gmap:K`.
pub struct GMapWorkload {
    /// Percentage of the node's keys each event rewrites.
    pub percent: u32,
    /// Keys in the map.
    pub keys: u32,
}

impl Workload for GMapWorkload {
    type L = LwwMap<u32, u64>;
    fn event(
        &mut self,
        node: u32,
        nodes: u32,
        round: u64,
        state: &Self::L,
        rng: &mut SmallRng,
    ) -> Self::L {
        let mine: Vec<u32> = (0..self.keys).filter(|k| k % nodes == node).collect();
        let count = (mine.len() * self.percent as usize).div_ceil(100);
        let mut delta = LwwMap::default();
        for i in sample(rng, mine.len(), count) {
            let value: u64 = rng.gen();
            let d = state.update(mine[i], |r| r.set(ReplicaId(u64::from(node)), round, value));
            crdt::Lattice::join(&mut delta, &d);
        }
        delta
    }
}

/// `retwis:ZIPF`: per user, a followers set, a wall and a timeline (keys `3u`, `3u+1`, `3u+2`).
pub struct RetwisWorkload {
    cumulative: Vec<f64>,
    tweets: u64,
}

impl RetwisWorkload {
    /// Users in the Retwis workload.
    pub const USERS: usize = 1000;

    /// Retwis over [`Self::USERS`] users with Zipf coefficient `zipf`.
    pub fn new(zipf: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=Self::USERS)
            .map(|k| {
                total += 1.0 / (k as f64).powf(zipf);
                total
            })
            .collect();
        RetwisWorkload {
            cumulative,
            tweets: 0,
        }
    }

    fn user(&self, rng: &mut SmallRng) -> u32 {
        let x = rng.gen::<f64>() * self.cumulative[Self::USERS - 1];
        self.cumulative
            .partition_point(|c| *c < x)
            .min(Self::USERS - 1) as u32
    }
}

impl Workload for RetwisWorkload {
    type L = GMap<u32, GSet<u64>>;
    fn event(&mut self, node: u32, _: u32, _: u64, state: &Self::L, rng: &mut SmallRng) -> Self::L {
        let dice = rng.gen_range(0..100);
        let user = self.user(rng);
        if dice < 15 {
            // follow: `user` follows `other`.
            let other = self.user(rng);
            state.update(3 * other, |s| s.add(u64::from(user)))
        } else if dice < 50 {
            // post: to the wall and to every follower's timeline.
            self.tweets += 1;
            let tweet = u64::from(node) << 32 | self.tweets;
            let mut delta = state.update(3 * user + 1, |s| s.add(tweet));
            let followers: Vec<u64> = state
                .get(&(3 * user))
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for f in followers {
                let d = state.update(3 * f as u32 + 2, |s| s.add(tweet));
                crdt::Lattice::join(&mut delta, &d);
            }
            delta
        } else {
            // timeline: a read.
            crdt::Lattice::bottom()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_names() {
        assert_eq!("gmap:10".parse(), Ok(WorkloadSpec::GMap(10)));
        assert_eq!("retwis:0.5".parse(), Ok(WorkloadSpec::Retwis(0.5)));
        assert!("gmap:0".parse::<WorkloadSpec>().is_err());
        assert!("nope".parse::<WorkloadSpec>().is_err());
    }

    #[test]
    fn zipf_favours_low_ranks() {
        use rand::SeedableRng;
        let w = RetwisWorkload::new(1.5);
        let mut rng = SmallRng::seed_from_u64(1);
        let top = (0..1000).filter(|_| w.user(&mut rng) < 10).count();
        assert!(top > 700, "{top}");
    }
}
