//! Multi-value register, as a dot kernel with a single key: a write overwrites every value it saw,
//! so concurrent writes all survive until a later write, which saw them all, resolves them.

use crate::dot::ReplicaId;
use crate::kernel::{DotKernel, KernelItem};
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};

/// A multi-value register: more than one value means concurrent writes (a conflict).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "T: KernelItem + Serialize",
        deserialize = "T: KernelItem + Deserialize<'de>"
    )
)]
pub struct MvRegister<T: KernelItem> {
    kernel: DotKernel<(), T>,
}

impl<T: KernelItem> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister {
            kernel: DotKernel::default(),
        }
    }
}

impl<T: KernelItem> MvRegister<T> {
    /// The concurrent values, in order, without duplicates.
    pub fn values(&self) -> Vec<&T> {
        let mut v: Vec<&T> = self.kernel.values_of(&()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The concurrent values, in order, each with the replicas that wrote it.
    pub fn values_with_writers(&self) -> Vec<(&T, Vec<ReplicaId>)> {
        crate::kernel::group_writers(self.kernel.writes_of(&()))
    }

    /// Delta-mutator: write `value`, overwriting every value seen.
    pub fn set(&self, replica: ReplicaId, value: T) -> Self {
        MvRegister {
            kernel: self.kernel.write(replica, (), value, true),
        }
    }
}

crate::kernel::delegate_lattice!(MvRegister<T>, kernel);

#[cfg(test)]
mod tests {
    use super::*;
    crate::laws::lattice_laws!(MvRegister<u8>, |s: &MvRegister<u8>, r, _what, arg| s
        .set(r, arg % 8));

    #[test]
    fn concurrent_writes_are_all_kept_until_a_later_write() {
        let a = MvRegister::default().set(ReplicaId(1), 1);
        let b = MvRegister::default().set(ReplicaId(2), 2);
        let both = a.joined(&b);
        assert_eq!(both.values(), vec![&1, &2]);
        let resolved = both.clone().joined(&both.set(ReplicaId(3), 3));
        assert_eq!(resolved.values(), vec![&3]);
    }
}
