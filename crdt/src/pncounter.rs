//! Positive-negative counter: a pair of grow-only counters, increments and decrements.
//! Irreducibles: those of either component.

use crate::dot::ReplicaId;
use crate::gcounter::GCounter;
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};

/// A counter that goes up and down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PNCounter {
    inc: GCounter,
    dec: GCounter,
}

impl PNCounter {
    /// Increments minus decrements.
    pub fn value(&self) -> i128 {
        i128::from(self.inc.value()) - i128::from(self.dec.value())
    }

    /// Delta-mutator: add `by` (negative subtracts) at `replica`; `None` if the increments or
    /// the decrements would pass `u64::MAX` in all (nothing changes).
    pub fn add(&self, replica: ReplicaId, by: i64) -> Option<Self> {
        let mut d = PNCounter::default();
        if by >= 0 {
            d.inc = self.inc.inc(replica, by.unsigned_abs())?;
        } else {
            d.dec = self.dec.inc(replica, by.unsigned_abs())?;
        }
        Some(d)
    }
}

impl Lattice for PNCounter {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.inc.is_bottom() && self.dec.is_bottom()
    }

    fn join(&mut self, other: &Self) {
        self.inc.join(&other.inc);
        self.dec.join(&other.dec);
    }

    fn leq(&self, other: &Self) -> bool {
        self.inc.leq(&other.inc) && self.dec.leq(&other.dec)
    }
}

impl Decompose for PNCounter {
    fn decompose(&self) -> Vec<Self> {
        let incs = self.inc.decompose().into_iter().map(|inc| PNCounter {
            inc,
            dec: GCounter::default(),
        });
        let decs = self.dec.decompose().into_iter().map(|dec| PNCounter {
            inc: GCounter::default(),
            dec,
        });
        incs.chain(decs).collect()
    }

    fn delta(&self, base: &Self) -> Self {
        PNCounter {
            inc: self.inc.delta(&base.inc),
            dec: self.dec.delta(&base.dec),
        }
    }
}

impl Measure for PNCounter {
    fn payload_units(&self) -> u64 {
        self.inc.payload_units() + self.dec.payload_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::laws::lattice_laws!(PNCounter, |s: &PNCounter, r, what, arg| s
        .add(r, i64::from(arg % 7) - if what % 2 == 0 { 3 } else { 0 })
        .expect("small additions"));

    proptest! {
        #[test]
        fn value_is_increments_minus_decrements(ops in prop::collection::vec((0u64..3, -50i64..50), 0..30)) {
            let mut c = PNCounter::default();
            for &(r, by) in &ops {
                let d = c.add(ReplicaId(r), by).unwrap();
                c.join(&d);
            }
            prop_assert_eq!(c.value(), ops.iter().map(|x| i128::from(x.1)).sum::<i128>());
        }

        /// Additions near either end: each is applied whole or refused with nothing changed, and
        /// the value is always the exact sum of the applied ones.
        #[test]
        fn an_addition_past_either_end_is_refused_and_changes_nothing(
            ops in prop::collection::vec((0u64..3, prop_oneof![-5i64..5, (i64::MAX / 2)..=i64::MAX, i64::MIN..=(i64::MIN / 2)]), 0..12)
        ) {
            let mut c = PNCounter::default();
            let mut applied: i128 = 0;
            for &(r, by) in &ops {
                let before = c.clone();
                match c.add(ReplicaId(r), by) {
                    Some(d) => {
                        applied += i128::from(by);
                        c.join(&d);
                    }
                    None => prop_assert_eq!(&c, &before),
                }
                prop_assert_eq!(c.value(), applied);
            }
        }
    }
}
