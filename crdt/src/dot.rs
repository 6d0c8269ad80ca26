//! Replica identities, dots and causal contexts: the causality metadata of the add-wins types.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The identity of a replica: every update it makes is tagged with it.
/// A node derives it from its PeerId; the simulator numbers its nodes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ReplicaId(pub u64);

/// A unique event: the `counter`-th update made by `replica` on one object (counters start at 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who made the event.
    pub replica: ReplicaId,
    /// Its sequence number at that replica.
    pub counter: u64,
}

impl Dot {
    /// The dot `(replica, counter)`.
    pub fn new(replica: ReplicaId, counter: u64) -> Self {
        Dot { replica, counter }
    }
}

/// The set of dots a replica has seen, kept compact: a version vector of contiguous prefixes
/// `1..=n` per replica, plus a "cloud" of dots beyond a gap. Always compacted, so two contexts
/// holding the same dots are equal as values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ContextRepr", into = "ContextRepr")]
pub struct CausalContext {
    vv: BTreeMap<ReplicaId, u64>,
    cloud: BTreeSet<Dot>,
}

/// Wire form of a context; decoding recompacts it, so a peer cannot plant a non-canonical one.
#[derive(Clone, Serialize, Deserialize)]
struct ContextRepr {
    vv: BTreeMap<ReplicaId, u64>,
    cloud: BTreeSet<Dot>,
}

impl From<ContextRepr> for CausalContext {
    fn from(r: ContextRepr) -> Self {
        let mut c = CausalContext {
            vv: r.vv.into_iter().filter(|&(_, n)| n > 0).collect(),
            cloud: r.cloud.into_iter().filter(|d| d.counter > 0).collect(),
        };
        c.compact();
        c
    }
}

impl From<CausalContext> for ContextRepr {
    fn from(c: CausalContext) -> Self {
        ContextRepr {
            vv: c.vv,
            cloud: c.cloud,
        }
    }
}

impl CausalContext {
    /// The empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no dot has been seen.
    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// Whether `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.prefix(dot.replica) || self.cloud.contains(dot)
    }

    /// The length of the contiguous prefix seen from `replica`.
    pub fn prefix(&self, replica: ReplicaId) -> u64 {
        self.vv.get(&replica).copied().unwrap_or(0)
    }

    /// The next fresh dot for `replica`: above everything seen from it.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        let in_cloud = self
            .cloud
            .range(Dot::new(replica, 0)..=Dot::new(replica, u64::MAX))
            .next_back()
            .map_or(0, |d| d.counter);
        Dot::new(
            replica,
            self.prefix(replica).max(in_cloud).saturating_add(1),
        )
    }

    /// Adds one dot.
    pub fn insert(&mut self, dot: Dot) {
        if dot.counter == 0 || self.contains(&dot) {
            return;
        }
        let prefix = self.vv.entry(dot.replica).or_insert(0);
        if dot.counter == *prefix + 1 {
            *prefix += 1;
            self.absorb_cloud(dot.replica);
        } else {
            if *prefix == 0 {
                self.vv.remove(&dot.replica);
            }
            self.cloud.insert(dot);
        }
    }

    /// `self ← self ∪ other`. Costs `other`'s size (and the dots it lets join a prefix), not
    /// `self`'s: only the replicas `other` names can gain a prefix.
    pub fn join(&mut self, other: &CausalContext) {
        for (&r, &n) in &other.vv {
            let p = self.vv.entry(r).or_insert(0);
            if n > *p {
                *p = n;
            }
        }
        self.cloud.extend(other.cloud.iter().copied());
        let mut touched: Vec<ReplicaId> = other
            .vv
            .keys()
            .copied()
            .chain(other.cloud.iter().map(|d| d.replica))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for r in touched {
            self.absorb_cloud(r);
        }
    }

    /// Whether every dot of `self` is in `other`.
    pub fn is_subset(&self, other: &CausalContext) -> bool {
        self.vv.iter().all(|(&r, &n)| {
            let p = other.prefix(r);
            n <= p || (p + 1..=n).all(|c| other.cloud.contains(&Dot::new(r, c)))
        }) && self.cloud.iter().all(|d| other.contains(d))
    }

    /// Every dot, in order. Costs the number of dots, however compact the context.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        let prefixes = self
            .vv
            .iter()
            .flat_map(|(&r, &n)| (1..=n).map(move |c| Dot::new(r, c)));
        let mut all: Vec<Dot> = prefixes.chain(self.cloud.iter().copied()).collect();
        all.sort_unstable();
        all.into_iter()
    }

    /// The contiguous prefixes, per replica.
    pub fn prefixes(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.vv.iter().map(|(&r, &n)| (r, n))
    }

    /// The dots beyond a gap.
    pub fn cloud(&self) -> impl Iterator<Item = &Dot> + '_ {
        self.cloud.iter()
    }

    /// Entries kept: one per version-vector replica plus one per cloud dot (the metadata units).
    pub fn units(&self) -> u64 {
        (self.vv.len() + self.cloud.len()) as u64
    }

    /// Restores the canonical form: cloud dots covered by or adjacent to a prefix move into it.
    fn compact(&mut self) {
        let replicas: BTreeSet<ReplicaId> = self.cloud.iter().map(|d| d.replica).collect();
        for r in replicas {
            self.absorb_cloud(r);
        }
    }

    /// Restores the canonical form for replica `r`: its cloud dots covered by or adjacent to its
    /// prefix move into it. Costs the dots moved (and a look at the first one left).
    fn absorb_cloud(&mut self, r: ReplicaId) {
        let mut prefix = self.prefix(r);
        while let Some(&d) = self
            .cloud
            .range(Dot::new(r, 0)..=Dot::new(r, u64::MAX))
            .next()
        {
            if d.counter > prefix + 1 {
                break;
            }
            prefix = prefix.max(d.counter);
            self.cloud.remove(&d);
        }
        if prefix > 0 {
            self.vv.insert(r, prefix);
        } else {
            self.vv.remove(&r);
        }
    }
}

impl FromIterator<Dot> for CausalContext {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut c = CausalContext::new();
        for d in iter {
            c.insert(d);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dot(r: u64, c: u64) -> Dot {
        Dot::new(ReplicaId(r), c)
    }

    #[test]
    fn insert_compacts_into_prefix() {
        let mut c = CausalContext::new();
        c.insert(dot(1, 2));
        assert_eq!(c.prefix(ReplicaId(1)), 0);
        c.insert(dot(1, 1));
        assert_eq!(c.prefix(ReplicaId(1)), 2);
        assert_eq!(c.cloud().count(), 0);
        assert_eq!(c.next_dot(ReplicaId(1)), dot(1, 3));
    }

    proptest! {
        #[test]
        fn canonical_whatever_the_insertion_order(mut dots in prop::collection::vec((0u64..3, 1u64..8), 0..20)) {
            let a: CausalContext = dots.iter().map(|&(r, c)| dot(r, c)).collect();
            dots.reverse();
            let b: CausalContext = dots.iter().map(|&(r, c)| dot(r, c)).collect();
            prop_assert_eq!(&a, &b);
            for &(r, c) in &dots {
                prop_assert!(a.contains(&dot(r, c)));
            }
            prop_assert_eq!(a.dots().count(), dots.iter().collect::<BTreeSet<_>>().len());
        }

        #[test]
        fn join_is_union(x in prop::collection::vec((0u64..3, 1u64..8), 0..12), y in prop::collection::vec((0u64..3, 1u64..8), 0..12)) {
            let a: CausalContext = x.iter().map(|&(r, c)| dot(r, c)).collect();
            let b: CausalContext = y.iter().map(|&(r, c)| dot(r, c)).collect();
            let mut j = a.clone();
            j.join(&b);
            let u: CausalContext = x.iter().chain(&y).map(|&(r, c)| dot(r, c)).collect();
            prop_assert_eq!(&j, &u);
            prop_assert!(a.is_subset(&j) && b.is_subset(&j));
            prop_assert_eq!(a.is_subset(&b), a.dots().all(|d| b.contains(&d)));
        }
    }
}
