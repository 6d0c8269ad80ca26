//! Add-wins map of multi-value registers, as one dot kernel keyed by field: a put overwrites the
//! field's values it saw, a remove moves the field's dots into the shared context, and a put
//! concurrent with a remove survives (add wins). Concurrent puts keep every value.

use crate::dot::ReplicaId;
use crate::kernel::{DotKernel, KernelItem};
use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Serialize};

/// An add-wins map whose fields are multi-value registers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    transparent,
    bound(
        serialize = "F: KernelItem + Serialize, V: KernelItem + Serialize",
        deserialize = "F: KernelItem + Deserialize<'de>, V: KernelItem + Deserialize<'de>"
    )
)]
pub struct OrMap<F: KernelItem, V: KernelItem> {
    kernel: DotKernel<F, V>,
}

impl<F: KernelItem, V: KernelItem> Default for OrMap<F, V> {
    fn default() -> Self {
        OrMap {
            kernel: DotKernel::default(),
        }
    }
}

impl<F: KernelItem, V: KernelItem> OrMap<F, V> {
    /// The concurrent values of `field`, in order, without duplicates; empty when absent.
    pub fn get(&self, field: &F) -> Vec<&V> {
        let mut v: Vec<&V> = self.kernel.values_of(field).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The concurrent values of `field`, in order, each with the replicas that wrote it.
    pub fn get_with_writers(&self, field: &F) -> Vec<(&V, Vec<ReplicaId>)> {
        crate::kernel::group_writers(self.kernel.writes_of(field))
    }

    /// Present fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = &F> {
        self.kernel.keys()
    }

    /// Present fields from just past `after`, in order.
    pub fn fields_after<'a>(&'a self, after: Option<&F>) -> impl Iterator<Item = &'a F> + 'a {
        self.kernel.keys_after(after)
    }

    /// How many fields are present.
    pub fn len(&self) -> usize {
        self.kernel.key_count()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delta-mutator: write `value` to `field`, overwriting the field's values seen.
    pub fn put(&self, replica: ReplicaId, field: F, value: V) -> Self {
        OrMap {
            kernel: self.kernel.write(replica, field, value, false),
        }
    }

    /// Delta-mutator: remove `field` as observed here.
    pub fn remove(&self, field: &F) -> Self {
        OrMap {
            kernel: self.kernel.remove_key(field),
        }
    }
}

crate::kernel::delegate_lattice!(OrMap<F, V>, kernel);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    crate::laws::lattice_laws!(OrMap<u8, u8>, |s: &OrMap<u8, u8>, r, what, arg| if what % 3 == 0 { s.remove(&(arg % 4)) } else { s.put(r, arg % 4, what % 3) });

    proptest! {
        #[test]
        fn agrees_with_a_sequential_model(ops in prop::collection::vec((any::<bool>(), 0u8..4, 0u8..9), 0..30)) {
            let (mut m, mut model) = (OrMap::default(), BTreeMap::new());
            for &(put, f, v) in &ops {
                let d = if put { model.insert(f, v); m.put(ReplicaId(1), f, v) } else { model.remove(&f); m.remove(&f) };
                m.join(&d);
            }
            let got: BTreeMap<u8, u8> = m.fields().map(|f| (*f, *m.get(f)[0])).collect();
            prop_assert_eq!(got, model);
        }
    }

    #[test]
    fn concurrent_puts_conflict_and_put_wins_over_remove() {
        let base = OrMap::default().put(ReplicaId(1), "f", 0);
        let p1 = base.clone().joined(&base.put(ReplicaId(1), "f", 1));
        let p2 = base.clone().joined(&base.put(ReplicaId(2), "f", 2));
        assert_eq!(p1.clone().joined(&p2).get(&"f"), vec![&1, &2]);
        let removed = base.clone().joined(&base.remove(&"f"));
        assert_eq!(removed.joined(&p2).get(&"f"), vec![&2]);
    }
}
