//! Grow-only map of lattices, joined pointwise; with last-writer-wins registers as values it is the
//! paper's GMap workload. Irreducibles: `{k ↦ y}` for each key and each y in ⇓value.

use crate::lattice::{Decompose, Lattice, Measure};
use crate::lww::LwwRegister;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A map whose keys are never removed and whose values only grow. ⊥ values are never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<K, L>",
    into = "BTreeMap<K, L>",
    bound(
        serialize = "K: Ord + Clone + Serialize, L: Clone + Serialize",
        deserialize = "K: Ord + Clone + Debug + Deserialize<'de>, L: Lattice + Deserialize<'de>"
    )
)]
pub struct GMap<K: Ord, L> {
    entries: BTreeMap<K, L>,
}

impl<K: Ord + Clone + Debug, L: Lattice> From<BTreeMap<K, L>> for GMap<K, L> {
    /// Drops ⊥ values, so a map decoded from a peer is canonical.
    fn from(mut entries: BTreeMap<K, L>) -> Self {
        entries.retain(|_, v| !v.is_bottom());
        GMap { entries }
    }
}

impl<K: Ord, L> From<GMap<K, L>> for BTreeMap<K, L> {
    fn from(m: GMap<K, L>) -> Self {
        m.entries
    }
}

/// A grow-only map of last-writer-wins registers.
pub type LwwMap<K, V> = GMap<K, LwwRegister<V>>;

impl<K: Ord, L> Default for GMap<K, L> {
    fn default() -> Self {
        GMap {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone + Debug, L: Lattice> GMap<K, L> {
    /// The value at `key`, if not ⊥.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&L>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.entries.get(key)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &L)> {
        self.entries.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Delta-mutator: apply the value's delta-mutator `mutate` at `key` (to ⊥ when absent) and
    /// return the map delta `{key ↦ δ}`.
    pub fn update(&self, key: K, mutate: impl FnOnce(&L) -> L) -> Self {
        let delta = match self.entries.get(&key) {
            Some(v) => mutate(v),
            None => mutate(&L::bottom()),
        };
        Self::singleton(key, delta)
    }

    /// `{key ↦ value}`, or ⊥ when `value` is ⊥.
    pub fn singleton(key: K, value: L) -> Self {
        let mut m = Self::default();
        if !value.is_bottom() {
            m.entries.insert(key, value);
        }
        m
    }
}

impl<K: Ord + Clone + Debug, L: Lattice> Lattice for GMap<K, L> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn join(&mut self, other: &Self) {
        for (k, v) in &other.entries {
            match self.entries.get_mut(k) {
                Some(mine) => mine.join(v),
                None => {
                    self.entries.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.entries
            .iter()
            .all(|(k, v)| other.entries.get(k).is_some_and(|o| v.leq(o)))
    }
}

impl<K: Ord + Clone + Debug, L: Decompose> Decompose for GMap<K, L> {
    fn decompose(&self) -> Vec<Self> {
        self.entries
            .iter()
            .flat_map(|(k, v)| {
                v.decompose()
                    .into_iter()
                    .map(|y| Self::singleton(k.clone(), y))
            })
            .collect()
    }

    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        for (k, v) in &self.entries {
            v.for_each_irreducible(&mut |y| f(Self::singleton(k.clone(), y)));
        }
    }

    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        for (k, v) in &self.entries {
            v.for_each_piece(&mut |y| f(Self::singleton(k.clone(), y)));
        }
    }

    fn delta(&self, base: &Self) -> Self {
        let mut d = Self::default();
        for (k, v) in &self.entries {
            let dv = match base.entries.get(k) {
                Some(b) => v.delta(b),
                None => v.clone(),
            };
            if !dv.is_bottom() {
                d.entries.insert(k.clone(), dv);
            }
        }
        d
    }

    fn delta_and_merge(&mut self, received: &Self) -> Self {
        let mut d = Self::default();
        for (k, v) in &received.entries {
            let dv = match self.entries.get_mut(k) {
                Some(mine) => mine.delta_and_merge(v),
                None => {
                    self.entries.insert(k.clone(), v.clone());
                    v.clone()
                }
            };
            if !dv.is_bottom() {
                d.entries.insert(k.clone(), dv);
            }
        }
        d
    }
}

impl<K: Ord, L: Measure> Measure for GMap<K, L> {
    fn payload_units(&self) -> u64 {
        self.entries.values().map(Measure::payload_units).sum()
    }

    fn metadata_units(&self) -> u64 {
        self.entries.values().map(Measure::metadata_units).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::ReplicaId;
    crate::laws::lattice_laws!(LwwMap<u8, u8>, |s: &LwwMap<u8, u8>, r: ReplicaId, what, arg| s.update(arg % 5, |v| v.set(r, u64::from(what % 3), arg)));

    #[test]
    fn decoding_drops_bottom_values() {
        let raw: BTreeMap<u8, LwwRegister<u8>> = BTreeMap::from([(1, LwwRegister::default())]);
        let m: LwwMap<u8, u8> = crate::codec::decode(&crate::codec::encode(&raw).unwrap()).unwrap();
        assert!(m.is_bottom());
    }
}
