//! Grow-only counter: one monotonic entry per replica; the value is their sum.
//! Irreducibles: single entries `{r ↦ n}`.

use crate::dot::ReplicaId;
use crate::lattice::{inserts_are_cheaper, merge_sorted, Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A grow-only counter. Zero entries are never stored, so the representation is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<ReplicaId, u64>", into = "BTreeMap<ReplicaId, u64>")]
pub struct GCounter {
    entries: BTreeMap<ReplicaId, u64>,
}

impl From<BTreeMap<ReplicaId, u64>> for GCounter {
    fn from(mut entries: BTreeMap<ReplicaId, u64>) -> Self {
        entries.retain(|_, n| *n > 0);
        GCounter { entries }
    }
}

impl From<GCounter> for BTreeMap<ReplicaId, u64> {
    fn from(c: GCounter) -> Self {
        c.entries
    }
}

impl GCounter {
    /// The sum of all entries (saturating: a hostile peer's huge entries cannot overflow it).
    pub fn value(&self) -> u64 {
        self.entries
            .values()
            .fold(0u64, |s, n| s.saturating_add(*n))
    }

    /// `replica`'s own entry.
    pub fn entry(&self, replica: ReplicaId) -> u64 {
        self.entries.get(&replica).copied().unwrap_or(0)
    }

    /// Delta-mutator: add `by` at `replica`. The delta is the replica's new entry; `None` if the
    /// value would pass `u64::MAX` (nothing changes: a counter never saturates silently).
    pub fn inc(&self, replica: ReplicaId, by: u64) -> Option<Self> {
        let mut d = GCounter::default();
        if by > 0 {
            let sum: u128 = self.entries.values().map(|n| u128::from(*n)).sum();
            if sum + u128::from(by) > u128::from(u64::MAX) {
                return None;
            }
            d.entries.insert(replica, self.entry(replica) + by);
        }
        Some(d)
    }
}

impl Lattice for GCounter {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn join(&mut self, other: &Self) {
        if inserts_are_cheaper(other.entries.len(), self.entries.len()) {
            for (r, n) in &other.entries {
                let e = self.entries.entry(*r).or_insert(0);
                *e = (*e).max(*n);
            }
        } else {
            let ours = std::mem::take(&mut self.entries);
            let theirs = other.entries.iter().map(|(r, n)| (*r, *n));
            self.entries = merge_sorted(ours, theirs, u64::max).into_iter().collect();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.entries.iter().all(|(r, n)| *n <= other.entry(*r))
    }
}

impl Decompose for GCounter {
    fn decompose(&self) -> Vec<Self> {
        self.entries
            .iter()
            .map(|(r, n)| GCounter {
                entries: BTreeMap::from([(*r, *n)]),
            })
            .collect()
    }

    fn delta(&self, base: &Self) -> Self {
        let entries = self
            .entries
            .iter()
            .filter(|(r, n)| **n > base.entry(**r))
            .map(|(r, n)| (*r, *n))
            .collect();
        GCounter { entries }
    }
}

impl Measure for GCounter {
    fn payload_units(&self) -> u64 {
        self.entries.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::laws::lattice_laws!(GCounter, |s: &GCounter, r, _what, arg| s
        .inc(r, u64::from(arg % 4))
        .expect("small increments"));

    proptest! {
        #[test]
        fn value_is_the_sum_of_increments(incs in prop::collection::vec((0u64..3, 0u64..100), 0..30)) {
            let mut c = GCounter::default();
            for &(r, by) in &incs {
                let d = c.inc(ReplicaId(r), by).unwrap();
                c.join(&d);
            }
            prop_assert_eq!(c.value(), incs.iter().map(|x| x.1).sum::<u64>());
        }

        /// Increments near the top: each is applied whole or refused with nothing changed, and
        /// the value is always the exact sum of the applied ones.
        #[test]
        fn an_increment_past_the_top_is_refused_and_changes_nothing(
            incs in prop::collection::vec((0u64..3, prop_oneof![0u64..10, (u64::MAX / 4)..=u64::MAX]), 0..12)
        ) {
            let mut c = GCounter::default();
            let mut applied: u128 = 0;
            for &(r, by) in &incs {
                match c.inc(ReplicaId(r), by) {
                    Some(d) => {
                        applied += u128::from(by);
                        c.join(&d);
                    }
                    None => prop_assert!(applied + u128::from(by) > u128::from(u64::MAX)),
                }
                prop_assert_eq!(u128::from(c.value()), applied);
            }
        }
    }
}
