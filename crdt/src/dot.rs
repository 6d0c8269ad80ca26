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

/// The set of dots a replica has seen, kept compact as *runs*: per replica, maximal ranges of
/// consecutive counters `a..=b`. The run starting at 1 is the replica's contiguous prefix (its
/// version-vector entry); the others lie beyond a gap. Runs of one replica are disjoint and never
/// adjacent, so two contexts holding the same dots are equal as values.
///
/// Every operation costs the runs it touches, never the dots they hold: a context that claims
/// 2⁶⁴ dots in one run is as cheap as one that claims ten (a peer's claims are data, not work).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CausalContext {
    /// First dot of each run → the last counter in it.
    runs: BTreeMap<Dot, u64>,
}

/// Wire form of a context: the prefixes as a version vector, then the other runs as a first dot
/// and how many counters follow it (0 for a lone dot). Decoding recompacts it, so a peer cannot
/// plant a non-canonical one.
#[derive(Clone, Serialize, Deserialize)]
struct ContextRepr {
    vv: BTreeMap<ReplicaId, u64>,
    cloud: Vec<(Dot, u64)>,
}

/// The form in encoding 1 (stores written by older builds): the prefixes and every dot beyond a
/// gap, one by one. See [`crate::codec::Encoding`].
#[derive(Clone, Serialize, Deserialize)]
struct ContextReprV1 {
    vv: BTreeMap<ReplicaId, u64>,
    cloud: BTreeSet<Dot>,
}

impl From<ContextRepr> for CausalContext {
    fn from(r: ContextRepr) -> Self {
        let mut c = CausalContext::new();
        for (replica, n) in r.vv {
            c.insert_run(replica, 1, n);
        }
        for (d, more) in r.cloud {
            c.insert_run(d.replica, d.counter, d.counter.saturating_add(more));
        }
        c
    }
}

impl From<&CausalContext> for ContextRepr {
    fn from(c: &CausalContext) -> Self {
        let mut repr = ContextRepr {
            vv: BTreeMap::new(),
            cloud: Vec::new(),
        };
        for (r, a, b) in c.runs() {
            if a == 1 {
                repr.vv.insert(r, b);
            } else {
                repr.cloud.push((Dot::new(r, a), b - a));
            }
        }
        repr
    }
}

impl From<ContextReprV1> for CausalContext {
    fn from(r: ContextReprV1) -> Self {
        let mut c = CausalContext::new();
        for (replica, n) in r.vv {
            c.insert_run(replica, 1, n);
        }
        for d in r.cloud {
            c.insert(d);
        }
        c
    }
}

impl Serialize for CausalContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if crate::codec::encoding() == crate::codec::Encoding::DotByDot {
            // Enumerates the dots beyond a gap: only ever used to write a store the way older
            // builds did, for tests of the upgrade path.
            let v1 = ContextReprV1 {
                vv: self.prefixes().collect(),
                cloud: self
                    .runs()
                    .filter(|&(_, a, _)| a > 1)
                    .flat_map(|(r, a, b)| (a..=b).map(move |c| Dot::new(r, c)))
                    .collect(),
            };
            return v1.serialize(s);
        }
        ContextRepr::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for CausalContext {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if crate::codec::encoding() == crate::codec::Encoding::DotByDot {
            return ContextReprV1::deserialize(d).map(Self::from);
        }
        ContextRepr::deserialize(d).map(Self::from)
    }
}

/// `replica`'s dots as a key range of the runs map.
fn all_of(replica: ReplicaId) -> std::ops::RangeInclusive<Dot> {
    Dot::new(replica, 0)..=Dot::new(replica, u64::MAX)
}

impl CausalContext {
    /// The empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no dot has been seen.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The run holding `dot`, as `(first, last)` counters.
    fn run_of(&self, dot: &Dot) -> Option<(u64, u64)> {
        let (start, &end) = self
            .runs
            .range(Dot::new(dot.replica, 0)..=*dot)
            .next_back()?;
        (dot.counter <= end).then_some((start.counter, end))
    }

    /// Whether `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        self.run_of(dot).is_some()
    }

    /// The length of the contiguous prefix seen from `replica`.
    pub fn prefix(&self, replica: ReplicaId) -> u64 {
        self.runs.get(&Dot::new(replica, 1)).copied().unwrap_or(0)
    }

    /// The next fresh dot for `replica`: above everything seen from it.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        let last = self
            .runs
            .range(all_of(replica))
            .next_back()
            .map_or(0, |(_, &end)| end);
        Dot::new(replica, last.saturating_add(1))
    }

    /// Adds one dot.
    pub fn insert(&mut self, dot: Dot) {
        self.insert_run(dot.replica, dot.counter, dot.counter);
    }

    /// Adds the dots `first..=last` of `replica` (counter 0 is no dot). Costs the runs it merges.
    pub fn insert_run(&mut self, replica: ReplicaId, first: u64, last: u64) {
        let (mut a, mut b) = (first.max(1), last);
        if a > b {
            return;
        }
        // A run before `a` that reaches it (or touches it) absorbs into the new one.
        if let Some((&start, &end)) = self
            .runs
            .range(Dot::new(replica, 0)..=Dot::new(replica, a))
            .next_back()
        {
            if end.saturating_add(1) >= a {
                a = start.counter;
                b = b.max(end);
                self.runs.remove(&start);
            }
        }
        // So does every run starting inside it or just after it.
        while let Some((&start, &end)) = self
            .runs
            .range(Dot::new(replica, a)..=Dot::new(replica, b.saturating_add(1)))
            .next()
        {
            b = b.max(end);
            self.runs.remove(&start);
        }
        self.runs.insert(Dot::new(replica, a), b);
    }

    /// `self ← self ∪ other`. Costs `other`'s runs (and the runs of `self` they merge with).
    pub fn join(&mut self, other: &CausalContext) {
        for (r, a, b) in other.runs() {
            self.insert_run(r, a, b);
        }
    }

    /// Whether every dot of `self` is in `other`: each run lies inside one of `other`'s (runs
    /// are maximal).
    pub fn is_subset(&self, other: &CausalContext) -> bool {
        self.runs().all(|(r, a, b)| {
            other
                .run_of(&Dot::new(r, a))
                .is_some_and(|(_, end)| end >= b)
        })
    }

    /// Every run `(replica, first, last)`, in dot order.
    pub fn runs(&self) -> impl Iterator<Item = (ReplicaId, u64, u64)> + '_ {
        self.runs
            .iter()
            .map(|(d, &end)| (d.replica, d.counter, end))
    }

    /// The parts of `first..=last` (of `replica`) that `self` has not seen, as runs in order.
    /// Costs the runs of `self` inside the range.
    pub fn missing_in(
        &self,
        replica: ReplicaId,
        first: u64,
        last: u64,
    ) -> impl Iterator<Item = (u64, u64)> + '_ {
        // The run holding `first` may start before it; the others start inside the range.
        let holding = self.run_of(&Dot::new(replica, first));
        let inside = self
            .runs
            .range(Dot::new(replica, first)..=Dot::new(replica, last))
            .map(|(d, &end)| (d.counter, end));
        gaps(first, last, holding.into_iter().chain(inside))
    }

    /// Every dot, in order. Costs the number of dots, however compact the context: for tests
    /// and the true irreducible decomposition of small states only.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.runs()
            .flat_map(|(r, a, b)| (a..=b).map(move |c| Dot::new(r, c)))
    }

    /// The contiguous prefixes, per replica.
    pub fn prefixes(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.runs()
            .filter(|&(_, a, _)| a == 1)
            .map(|(r, _, b)| (r, b))
    }

    /// Entries kept: one per run (a prefix is one version-vector entry; a lone dot beyond a gap
    /// is one run): the metadata units.
    pub fn units(&self) -> u64 {
        self.runs.len() as u64
    }
}

/// The parts of `first..=last` that `covered` leaves out, as ranges in order. `covered` holds
/// ranges of counters in increasing order, none overlapping another (one may repeat the one
/// before it); costs the ranges read.
pub(crate) fn gaps(
    first: u64,
    last: u64,
    mut covered: impl Iterator<Item = (u64, u64)>,
) -> impl Iterator<Item = (u64, u64)> {
    let mut from = Some(first);
    std::iter::from_fn(move || loop {
        let at = from.filter(|&f| f <= last)?;
        match covered.next() {
            Some((_, end)) if end < at => continue,
            Some((start, end)) => {
                from = end.checked_add(1);
                if start > at {
                    return Some((at, (start - 1).min(last)));
                }
            }
            None => {
                from = None;
                return Some((at, last));
            }
        }
    })
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
        assert_eq!(c.units(), 1);
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

        /// Runs inserted in any order give the context of their dots; what a range lacks, both
        /// encodings and the order agree with the set of dots.
        #[test]
        fn runs_agree_with_the_set_of_their_dots(
            x in prop::collection::vec((0u64..3, 0u64..30, 0u64..6), 0..10),
            y in prop::collection::vec((0u64..3, 0u64..30, 0u64..6), 0..10),
            (first, len) in (1u64..40, 0u64..20),
        ) {
            let build = |runs: &[(u64, u64, u64)]| {
                let mut c = CausalContext::new();
                for &(r, a, n) in runs {
                    c.insert_run(ReplicaId(r), a, a + n);
                }
                c
            };
            let set = |runs: &[(u64, u64, u64)]| -> BTreeSet<Dot> {
                runs.iter().flat_map(|&(r, a, n)| (a.max(1)..=a + n).map(move |c| dot(r, c))).collect()
            };
            let (a, b) = (build(&x), build(&y));
            let mut reversed = x.clone();
            reversed.reverse();
            prop_assert_eq!(&a, &build(&reversed));
            prop_assert_eq!(&a, &set(&x).into_iter().collect::<CausalContext>());
            prop_assert_eq!(a.dots().collect::<BTreeSet<_>>(), set(&x));
            prop_assert_eq!(a.is_subset(&b), set(&x).is_subset(&set(&y)));
            // Runs are maximal: none touches the next of its replica.
            let runs: Vec<_> = a.runs().collect();
            for w in runs.windows(2) {
                prop_assert!(w[0].0 != w[1].0 || w[0].2 + 1 < w[1].1);
            }
            for r in 0..3 {
                let last = first + len;
                let missing: BTreeSet<Dot> = b
                    .missing_in(ReplicaId(r), first, last)
                    .flat_map(|(p, q)| (p..=q).map(move |c| dot(r, c)))
                    .collect();
                let expected: BTreeSet<Dot> =
                    (first..=last).map(|c| dot(r, c)).filter(|d| !b.contains(d)).collect();
                prop_assert_eq!(missing, expected);
            }
            let bytes = crate::codec::encode(&a).unwrap();
            prop_assert_eq!(crate::codec::decode::<CausalContext>(&bytes).unwrap(), a.clone());
            use crate::codec::{decode_stored_in, encode_in, Encoding::DotByDot};
            let v1 = encode_in(DotByDot, &a).unwrap();
            prop_assert_eq!(decode_stored_in::<CausalContext>(DotByDot, &v1).unwrap(), a);
        }
    }

    /// A context claiming every counter of a replica (a hostile peer's, or one reached by a very
    /// old replica) costs one run: joined, compared, searched and encoded without enumerating.
    #[test]
    fn a_run_of_two_to_the_sixty_four_dots_costs_one_entry() {
        let mut c = CausalContext::new();
        c.insert_run(ReplicaId(7), 0, u64::MAX);
        assert_eq!(c.units(), 1);
        assert_eq!(c.prefix(ReplicaId(7)), u64::MAX);
        assert_eq!(c.next_dot(ReplicaId(7)), dot(7, u64::MAX));
        let mut other = CausalContext::new();
        other.insert(dot(7, 3));
        other.insert(dot(7, u64::MAX - 1));
        assert!(other.is_subset(&c) && !c.is_subset(&other));
        let gaps: Vec<_> = other.missing_in(ReplicaId(7), 1, u64::MAX).collect();
        assert_eq!(gaps, vec![(1, 2), (4, u64::MAX - 2), (u64::MAX, u64::MAX)]);
        other.join(&c);
        assert_eq!(other, c);
        let bytes = crate::codec::encode(&c).unwrap();
        assert!(bytes.len() < 16, "{} bytes", bytes.len());
    }
}
