//! Last-writer-wins register: the write with the greatest `(time, replica)` stamp wins; the value
//! itself breaks the (impossible in practice) tie of equal stamps, so join stays a total order.
//! Irreducible: the register itself.

use crate::dot::ReplicaId;
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// When a write happened: a hybrid clock reading and the writer, compared in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    /// Milliseconds, never behind the register's previous write (see [`LwwRegister::set`]).
    pub time: u64,
    /// The writer: breaks ties deterministically.
    pub replica: ReplicaId,
}

/// A last-writer-wins register; ⊥ holds nothing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    write: Option<(Stamp, T)>,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister { write: None }
    }
}

impl<T: Clone + Ord + Debug> LwwRegister<T> {
    /// The current value.
    pub fn get(&self) -> Option<&T> {
        self.write.as_ref().map(|(_, v)| v)
    }

    /// The current write's stamp.
    pub fn stamp(&self) -> Option<Stamp> {
        self.write.as_ref().map(|(s, _)| *s)
    }

    /// Delta-mutator: write `value` at `now_ms` (wall clock). The stamp is pushed past the current
    /// one when the clock is behind it, so a local write always wins over what this replica saw.
    pub fn set(&self, replica: ReplicaId, now_ms: u64, value: T) -> Self {
        let time = match self.stamp() {
            Some(s) => now_ms.max(s.time.saturating_add(1)),
            None => now_ms,
        };
        LwwRegister {
            write: Some((Stamp { time, replica }, value)),
        }
    }
}

impl<T: Clone + Ord + Debug> Lattice for LwwRegister<T> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.write.is_none()
    }

    fn join(&mut self, other: &Self) {
        if other.write > self.write {
            self.write = other.write.clone();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.write <= other.write
    }
}

impl<T: Clone + Ord + Debug> Decompose for LwwRegister<T> {
    fn decompose(&self) -> Vec<Self> {
        if self.is_bottom() {
            vec![]
        } else {
            vec![self.clone()]
        }
    }

    fn delta(&self, base: &Self) -> Self {
        if self.leq(base) {
            Self::default()
        } else {
            self.clone()
        }
    }
}

impl<T> Measure for LwwRegister<T> {
    /// One register value; its stamp travels with it and is counted as part of it.
    fn payload_units(&self) -> u64 {
        u64::from(self.write.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::laws::lattice_laws!(LwwRegister<u8>, |s: &LwwRegister<u8>, r, what, arg| s.set(
        r,
        u64::from(what % 4),
        arg
    ));

    #[test]
    fn later_stamp_wins_and_ties_break_by_replica() {
        let a = LwwRegister::default().set(ReplicaId(1), 10, "a");
        let b = LwwRegister::default().set(ReplicaId(2), 10, "b");
        assert_eq!(a.clone().joined(&b).get(), Some(&"b"));
        assert_eq!(b.clone().joined(&a).get(), Some(&"b"));
        // A local write after seeing a later stamp still wins, whatever the local clock says.
        let seen = a
            .clone()
            .joined(&LwwRegister::default().set(ReplicaId(2), 50, "future"));
        let mine = seen.set(ReplicaId(1), 20, "mine");
        assert_eq!(seen.joined(&mine).get(), Some(&"mine"));
    }
}
