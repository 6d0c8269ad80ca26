//! [`Shared`]: a lattice behind an `Arc`, copied on write. The store keeps every object in one, so
//! a copy of the whole store (a snapshot for a reader, a checkpoint) costs a pointer per object,
//! and a write copies only the object it changes, and only while a snapshot still holds it.

use crate::lattice::{Decompose, Lattice, Measure};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::Deref;
use std::sync::Arc;

/// A lattice shared between copies until one of them changes (see the module docs). It encodes
/// exactly as the value it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(value))
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::new(value)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::new)
    }
}

impl<T: Lattice> Lattice for Shared<T> {
    fn bottom() -> Self {
        Shared::new(T::bottom())
    }
    fn is_bottom(&self) -> bool {
        self.0.is_bottom()
    }
    fn join(&mut self, other: &Self) {
        if Arc::ptr_eq(&self.0, &other.0) {
            return;
        }
        if let Some(mine) = Arc::get_mut(&mut self.0) {
            mine.join(&other.0);
        } else if !other.0.leq(&self.0) {
            // Shared with a snapshot: copied, and only because the join changes something.
            Arc::make_mut(&mut self.0).join(&other.0);
        }
    }
    fn leq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.leq(&other.0)
    }
}

impl<T: Decompose> Decompose for Shared<T> {
    fn decompose(&self) -> Vec<Self> {
        self.0.decompose().into_iter().map(Shared::new).collect()
    }
    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        self.0.for_each_irreducible(&mut |y| f(Shared::new(y)));
    }
    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        self.0.for_each_piece(&mut |y| f(Shared::new(y)));
    }
    fn delta(&self, base: &Self) -> Self {
        Shared::new(self.0.delta(&base.0))
    }
    fn delta_and_merge(&mut self, received: &Self) -> Self {
        if let Some(mine) = Arc::get_mut(&mut self.0) {
            return Shared::new(mine.delta_and_merge(&received.0));
        }
        // Shared with a snapshot: copy only if something is new.
        let new = received.0.delta(&self.0);
        if !new.is_bottom() {
            Arc::make_mut(&mut self.0).join(&new);
        }
        Shared::new(new)
    }
}

impl<T: Measure> Measure for Shared<T> {
    fn payload_units(&self) -> u64 {
        self.0.payload_units()
    }
    fn metadata_units(&self) -> u64 {
        self.0.metadata_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GSet;

    #[test]
    fn a_copy_is_untouched_by_a_join_into_the_original() {
        let mut a: Shared<GSet<u8>> = Shared::new([1, 2].into_iter().collect());
        let snapshot = a.clone();
        a.join(&Shared::new([3].into_iter().collect()));
        assert_eq!(snapshot.len(), 2);
        assert_eq!(a.len(), 3);
        let d = a.delta_and_merge(&Shared::new([3, 4].into_iter().collect()));
        assert_eq!((d.len(), a.len(), snapshot.len()), (1, 4, 2));
    }

    #[test]
    fn it_encodes_as_the_value_it_holds() {
        let s: GSet<u8> = [5, 6].into_iter().collect();
        let bytes = crate::codec::encode(&s).unwrap();
        assert_eq!(
            crate::codec::encode(&Shared::new(s.clone())).unwrap(),
            bytes
        );
        let back: Shared<GSet<u8>> = crate::codec::decode(&bytes).unwrap();
        assert_eq!(*back, s);
    }
}
