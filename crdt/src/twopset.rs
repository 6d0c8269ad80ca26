//! Two-phase set: a grow-only set of additions and one of removals; a removed element stays removed.
//! Irreducibles: those of either component.

use crate::gset::GSet;
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A set whose removals are final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Ord + Deserialize<'de>"))]
pub struct TwoPSet<T: Ord> {
    added: GSet<T>,
    removed: GSet<T>,
}

impl<T: Ord> Default for TwoPSet<T> {
    fn default() -> Self {
        TwoPSet {
            added: GSet::default(),
            removed: GSet::default(),
        }
    }
}

impl<T: Ord + Clone + Debug> TwoPSet<T> {
    /// Whether `x` is in: added and never removed.
    pub fn contains(&self, x: &T) -> bool {
        self.added.contains(x) && !self.removed.contains(x)
    }

    /// The elements that are in, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.added.iter().filter(|x| !self.removed.contains(x))
    }

    /// The elements that are in from just past `after`, in order.
    pub fn iter_after<'a>(&'a self, after: Option<&T>) -> impl Iterator<Item = &'a T> + 'a {
        self.added
            .iter_after(after)
            .filter(|x| !self.removed.contains(x))
    }

    /// How many elements are in (costs the removals, not the additions).
    pub fn len(&self) -> usize {
        let gone = self
            .removed
            .iter()
            .filter(|x| self.added.contains(x))
            .count();
        self.added.len() - gone
    }

    /// Whether no element is in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Additions (removed ones included).
    pub fn added(&self) -> &GSet<T> {
        &self.added
    }

    /// Removals.
    pub fn removed(&self) -> &GSet<T> {
        &self.removed
    }

    /// Delta-mutator: add `x` (no effect once removed).
    pub fn add(&self, x: T) -> Self {
        TwoPSet {
            added: self.added.add(x),
            removed: GSet::default(),
        }
    }

    /// Delta-mutator: remove `x` for good (even if not yet added here: a concurrent add loses).
    pub fn remove(&self, x: T) -> Self {
        TwoPSet {
            added: GSet::default(),
            removed: self.removed.add(x),
        }
    }
}

impl<T: Ord + Clone + Debug> Lattice for TwoPSet<T> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.added.is_bottom() && self.removed.is_bottom()
    }

    fn join(&mut self, other: &Self) {
        self.added.join(&other.added);
        self.removed.join(&other.removed);
    }

    fn leq(&self, other: &Self) -> bool {
        self.added.leq(&other.added) && self.removed.leq(&other.removed)
    }
}

impl<T: Ord + Clone + Debug> Decompose for TwoPSet<T> {
    fn decompose(&self) -> Vec<Self> {
        let adds = self.added.decompose().into_iter().map(|added| TwoPSet {
            added,
            removed: GSet::default(),
        });
        let rems = self.removed.decompose().into_iter().map(|removed| TwoPSet {
            added: GSet::default(),
            removed,
        });
        adds.chain(rems).collect()
    }

    fn delta(&self, base: &Self) -> Self {
        TwoPSet {
            added: self.added.delta(&base.added),
            removed: self.removed.delta(&base.removed),
        }
    }

    fn delta_and_merge(&mut self, received: &Self) -> Self {
        TwoPSet {
            added: self.added.delta_and_merge(&received.added),
            removed: self.removed.delta_and_merge(&received.removed),
        }
    }
}

impl<T: Ord> Measure for TwoPSet<T> {
    fn payload_units(&self) -> u64 {
        self.added.payload_units() + self.removed.payload_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    crate::laws::lattice_laws!(
        TwoPSet<u8>,
        |s: &TwoPSet<u8>, _r, what, arg| if what % 3 == 0 {
            s.remove(arg % 8)
        } else {
            s.add(arg % 8)
        }
    );

    proptest! {
        #[test]
        fn agrees_with_a_sequential_model(ops in prop::collection::vec((any::<bool>(), 0u8..8), 0..30)) {
            let (mut s, mut added, mut removed) = (TwoPSet::default(), BTreeSet::new(), BTreeSet::new());
            for &(add, x) in &ops {
                let d = if add { added.insert(x); s.add(x) } else { removed.insert(x); s.remove(x) };
                s.join(&d);
            }
            let model: Vec<u8> = added.difference(&removed).copied().collect();
            prop_assert_eq!(s.iter().copied().collect::<Vec<_>>(), model);
        }
    }
}
