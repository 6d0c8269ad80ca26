//! Add-wins observed-remove set, as a dot kernel keyed by element: an add tags the element with a
//! fresh dot and overwrites the element's dots it saw; a remove moves the element's dots into the
//! context. A concurrent add has a dot the remove never saw, so it survives: add wins.

use crate::dot::ReplicaId;
use crate::kernel::{DotKernel, KernelItem};
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};

/// An add-wins set (OR-Set without per-element tombstones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "T: KernelItem + Serialize",
        deserialize = "T: KernelItem + Deserialize<'de>"
    )
)]
pub struct AwSet<T: KernelItem> {
    kernel: DotKernel<T, ()>,
}

impl<T: KernelItem> Default for AwSet<T> {
    fn default() -> Self {
        AwSet {
            kernel: DotKernel::default(),
        }
    }
}

impl<T: KernelItem> AwSet<T> {
    /// Whether `x` is in.
    pub fn contains(&self, x: &T) -> bool {
        self.kernel.contains_key(x)
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.kernel.keys()
    }

    /// How many elements are in.
    pub fn len(&self) -> usize {
        self.kernel.key_count()
    }

    /// Whether no element is in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delta-mutator: add `x` with a fresh dot of `replica`.
    pub fn add(&self, replica: ReplicaId, x: T) -> Self {
        AwSet {
            kernel: self.kernel.write(replica, x, (), false),
        }
    }

    /// Delta-mutator: add every element of `xs` (distinct, none in yet), as that many `add`s.
    pub fn add_all(&self, replica: ReplicaId, xs: Vec<T>) -> Self {
        AwSet {
            kernel: self
                .kernel
                .write_many(replica, xs.into_iter().map(|x| (x, ())).collect()),
        }
    }

    /// Delta-mutator: remove `x` as observed here.
    pub fn remove(&self, x: &T) -> Self {
        AwSet {
            kernel: self.kernel.remove_key(x),
        }
    }

    /// The underlying kernel.
    pub fn kernel(&self) -> &DotKernel<T, ()> {
        &self.kernel
    }
}

crate::kernel::delegate_lattice!(AwSet<T>, kernel);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    crate::laws::lattice_laws!(AwSet<u8>, |s: &AwSet<u8>, r, what, arg| if what % 3 == 0 {
        s.remove(&(arg % 6))
    } else {
        s.add(r, arg % 6)
    });

    proptest! {
        #[test]
        fn agrees_with_a_sequential_model(ops in prop::collection::vec((any::<bool>(), 0u8..8), 0..30)) {
            let (mut s, mut model) = (AwSet::default(), BTreeSet::new());
            for &(add, x) in &ops {
                let d = if add { model.insert(x); s.add(ReplicaId(1), x) } else { model.remove(&x); s.remove(&x) };
                s.join(&d);
            }
            prop_assert_eq!(s.iter().copied().collect::<BTreeSet<_>>(), model);
        }
    }

    #[test]
    fn concurrent_add_wins_over_remove_and_removes_keep_no_tombstones() {
        let base = AwSet::default().add(ReplicaId(1), "x");
        let removed = base.clone().joined(&base.remove(&"x"));
        let readded = base.clone().joined(&base.add(ReplicaId(2), "x"));
        assert!(removed.clone().joined(&readded).contains(&"x"));
        assert!(!removed.contains(&"x"));
        // The removal is held by the context's version vector alone.
        assert_eq!(removed.kernel().len(), 0);
        assert_eq!(removed.kernel().context().units(), 1);
    }
}
