//! Grow-only set. Irreducibles: singletons.

use crate::lattice::{inserts_are_cheaper, merge_sorted, Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Debug;

/// A set that only grows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GSet<T: Ord> {
    elements: BTreeSet<T>,
}

impl<T: Ord> Default for GSet<T> {
    fn default() -> Self {
        GSet {
            elements: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> GSet<T> {
    /// The elements from just past `after` (from the first when `None`), in order.
    pub fn iter_after<'a>(&'a self, after: Option<&T>) -> Box<dyn Iterator<Item = &'a T> + 'a> {
        use std::ops::Bound::{Excluded, Unbounded};
        match after {
            Some(a) => Box::new(self.elements.range((Excluded(a), Unbounded))),
            None => Box::new(self.elements.iter()),
        }
    }

    /// Whether `x` was added.
    pub fn contains(&self, x: &T) -> bool {
        self.elements.contains(x)
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.elements.iter()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Delta-mutator: add `x`. The delta is `{x}`, or ⊥ when `x` is already in.
    pub fn add(&self, x: T) -> Self {
        let mut d = GSet::default();
        if !self.elements.contains(&x) {
            d.elements.insert(x);
        }
        d
    }
}

impl<T: Ord + Clone> FromIterator<T> for GSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        GSet {
            elements: iter.into_iter().collect(),
        }
    }
}

impl<T: Ord + Clone + Debug> Lattice for GSet<T> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.elements.is_empty()
    }

    fn join(&mut self, other: &Self) {
        if self.elements.is_empty() {
            self.elements = other.elements.clone();
        } else if inserts_are_cheaper(other.len(), self.len()) {
            self.elements.extend(other.elements.iter().cloned());
        } else {
            let ours = std::mem::take(&mut self.elements)
                .into_iter()
                .map(|x| (x, ()));
            let theirs = other.elements.iter().map(|x| (x.clone(), ()));
            self.elements = merge_sorted(ours, theirs, |(), ()| ())
                .into_iter()
                .map(|(x, ())| x)
                .collect();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.elements.is_subset(&other.elements)
    }
}

impl<T: Ord + Clone + Debug> Decompose for GSet<T> {
    fn decompose(&self) -> Vec<Self> {
        self.elements
            .iter()
            .map(|x| GSet {
                elements: BTreeSet::from([x.clone()]),
            })
            .collect()
    }

    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        for x in &self.elements {
            f(GSet {
                elements: BTreeSet::from([x.clone()]),
            });
        }
    }

    fn delta(&self, base: &Self) -> Self {
        GSet {
            elements: self
                .elements
                .iter()
                .filter(|x| !base.elements.contains(x))
                .cloned()
                .collect(),
        }
    }

    fn delta_and_merge(&mut self, received: &Self) -> Self {
        // `received` is iterated in order, so the new elements come sorted: one bulk build.
        let new: Vec<T> = received
            .elements
            .iter()
            .filter(|x| self.elements.insert((*x).clone()))
            .cloned()
            .collect();
        GSet {
            elements: new.into_iter().collect(),
        }
    }
}

impl<T: Ord> Measure for GSet<T> {
    fn payload_units(&self) -> u64 {
        self.elements.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::laws::lattice_laws!(GSet<u8>, |s: &GSet<u8>, _r, _what, arg| s.add(arg % 16));

    proptest! {
        /// Both ways of joining (entry by entry, or one linear merge) are a set union.
        #[test]
        fn join_is_the_union_at_any_relative_size(
            a in prop::collection::btree_set(0u32..5000, 0..2000),
            b in prop::collection::btree_set(0u32..5000, 0..40),
        ) {
            let union: BTreeSet<u32> = a.union(&b).copied().collect();
            let (ga, gb): (GSet<u32>, GSet<u32>) = (a.iter().copied().collect(), b.iter().copied().collect());
            prop_assert_eq!(&ga.clone().joined(&gb).elements, &union);
            prop_assert_eq!(&gb.joined(&ga).elements, &union);
        }
    }

    #[test]
    fn delta_and_merge_returns_only_the_new_elements() {
        let mut big: GSet<u32> = (0..1000).collect();
        let d = big.delta_and_merge(&(995..1005).collect());
        assert_eq!(
            d.iter().copied().collect::<Vec<_>>(),
            (1000..1005).collect::<Vec<_>>()
        );
        assert_eq!(big.len(), 1005);
    }
}
