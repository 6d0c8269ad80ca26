//! The live writes of a kernel, each held once: a slab of `(dot, key, value)` slots, found by dot
//! through a [`DotIndex`] and by key through a [`KeyOrder`] (key, then dot).
//!
//! Two `BTreeMap`s (by dot and by key) held every key twice and cost ~113 heap bytes per element
//! of an add-wins set of `u64`; slots and two indexes of 4-byte slot ids cost ~35.

use super::dot_index::DotIndex;
use super::key_order::{KeyOrder, Pos};
use crate::dot::{Dot, ReplicaId};
use std::cmp::Ordering;

/// Slots per slab chunk: the slab grows a chunk at a time, never by copying a large buffer.
const SLAB: usize = 1024;

#[derive(Clone, Debug)]
struct Slot<K, V> {
    dot: Dot,
    key: K,
    value: V,
}

/// Live writes by dot and by key. See the module docs.
#[derive(Clone, Debug)]
pub(super) struct LiveWrites<K, V> {
    /// Dense: a removal moves the last slot into the hole, so ids stay below `len()`; every
    /// chunk but the last holds exactly [`SLAB`] slots.
    slots: Vec<Vec<Slot<K, V>>>,
    by_dot: DotIndex,
    by_key: KeyOrder,
    /// Distinct keys with a live write.
    keys: usize,
}

impl<K, V> Default for LiveWrites<K, V> {
    fn default() -> Self {
        LiveWrites {
            slots: Vec::new(),
            by_dot: DotIndex::default(),
            by_key: KeyOrder::default(),
            keys: 0,
        }
    }
}

impl<K: Ord, V> LiveWrites<K, V> {
    fn slot(&self, id: u32) -> &Slot<K, V> {
        let id = id as usize;
        &self.slots[id / SLAB][id % SLAB]
    }

    fn key_of(&self, id: Option<u32>) -> Option<&K> {
        id.map(|id| &self.slot(id).key)
    }

    /// Number of live writes: every chunk but the last is full (writes go into the last chunk,
    /// a new one starts when it holds [`SLAB`], and removals take from the last).
    pub(super) fn len(&self) -> usize {
        self.slots
            .last()
            .map_or(0, |last| (self.slots.len() - 1) * SLAB + last.len())
    }

    /// Number of distinct keys with a live write.
    pub(super) fn key_count(&self) -> usize {
        self.keys
    }

    /// The key and value of live `dot`.
    pub(super) fn get(&self, dot: &Dot) -> Option<(&K, &V)> {
        let s = self.slot(self.by_dot.get(dot)?);
        Some((&s.key, &s.value))
    }

    /// Whether `dot` is live.
    pub(super) fn contains(&self, dot: &Dot) -> bool {
        self.by_dot.get(dot).is_some()
    }

    /// Where `(key, dot)` is, or would be, in key order.
    fn position(&self, key: &K, dot: &Dot) -> super::key_order::Pos {
        self.by_key.lower_bound(|id| {
            let s = self.slot(id);
            s.key.cmp(key).then(s.dot.cmp(dot)) == Ordering::Less
        })
    }

    /// Adds a live write; nothing when `dot` is already live.
    pub(super) fn insert(&mut self, dot: Dot, key: K, value: V) {
        if self.contains(&dot) {
            return;
        }
        let pos = self.position(&key, &dot);
        let new_key = self.key_of(self.by_key.before(pos)) != Some(&key)
            && self.key_of(self.by_key.get(pos)) != Some(&key);
        let id = u32::try_from(self.len()).expect("fewer than 2^32 live writes in one object");
        match self.slots.last_mut() {
            Some(chunk) if chunk.len() < SLAB => chunk.push(Slot { dot, key, value }),
            _ => {
                let mut chunk = Vec::with_capacity(if self.slots.is_empty() { 1 } else { SLAB });
                chunk.push(Slot { dot, key, value });
                self.slots.push(chunk);
            }
        }
        self.by_key.insert(pos, id);
        self.by_dot.set(dot, id);
        self.keys += usize::from(new_key);
    }

    /// Removes live write `dot`; its key and value, if it was live.
    pub(super) fn remove(&mut self, dot: &Dot) -> Option<(K, V)> {
        let id = self.by_dot.remove(dot)?;
        let pos = self.position(&self.slot(id).key, dot);
        let next = self.by_key.remove(pos);
        let s = self.slot(id);
        if self.key_of(self.by_key.before(next)) != Some(&s.key)
            && self.key_of(self.by_key.get(next)) != Some(&s.key)
        {
            self.keys -= 1;
        }
        let last = u32::try_from(self.len() - 1).expect("ids fit in u32");
        if id != last {
            let moved = self.slot(last);
            let pos = self.position(&moved.key, &moved.dot);
            let moved_dot = moved.dot;
            self.by_key.set(pos, id);
            self.by_dot.set(moved_dot, id);
        }
        let only_chunk = self.slots.len() == 1;
        let chunk = self.slots.last_mut().expect("a live write is in a chunk");
        let tail = chunk.pop().expect("chunks are never empty");
        if chunk.is_empty() {
            self.slots.pop();
        } else if only_chunk && chunk.len() < chunk.capacity() / 4 {
            chunk.shrink_to(chunk.len() * 2);
        }
        let removed = if id == last {
            tail
        } else {
            let id = id as usize;
            std::mem::replace(&mut self.slots[id / SLAB][id % SLAB], tail)
        };
        Some((removed.key, removed.value))
    }

    /// Every live write `(dot, key, value)`, in dot order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Dot, &K, &V)> + '_ {
        self.by_dot.iter().map(|(dot, id)| {
            let s = self.slot(id);
            (dot, &s.key, &s.value)
        })
    }

    /// Live dots of `replica` with counters in `from..=to`, in order.
    pub(super) fn dots_in(
        &self,
        replica: ReplicaId,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Dot> + '_ {
        self.by_dot.range(replica, from, to).map(|(d, _)| d)
    }

    /// The live writes of `key`, in dot order.
    pub(super) fn of_key<'a>(&'a self, key: &K) -> impl Iterator<Item = (Dot, &'a V)> + 'a {
        let pos = self.by_key.lower_bound(|id| self.slot(id).key < *key);
        let n = self
            .by_key
            .iter_from(pos)
            .take_while(|&id| self.slot(id).key == *key)
            .count();
        self.by_key
            .iter_from(pos)
            .take(n)
            .map(|id| self.slot(id))
            .map(|s| (s.dot, &s.value))
    }

    /// Whether `key` has a live write.
    pub(super) fn contains_key(&self, key: &K) -> bool {
        let pos = self.by_key.lower_bound(|id| self.slot(id).key < *key);
        self.key_of(self.by_key.get(pos)) == Some(key)
    }

    /// Distinct keys with a live write, in order, from just past `after` (from the first when
    /// `None`).
    pub(super) fn keys_after<'a>(&'a self, after: Option<&K>) -> impl Iterator<Item = &'a K> + 'a {
        let pos = match after {
            Some(a) => self.by_key.lower_bound(|id| self.slot(id).key <= *a),
            None => self.by_key.lower_bound(|_| false),
        };
        self.keys_at(pos)
    }

    /// Keys with a live write, in order, from `from` (included).
    pub(super) fn keys_from<'a>(&'a self, from: &K) -> impl Iterator<Item = &'a K> + 'a {
        self.keys_at(self.by_key.lower_bound(|id| self.slot(id).key < *from))
    }

    /// Keys with a live write, in order, from position `pos` of the key order (each once).
    fn keys_at(&self, pos: Pos) -> impl Iterator<Item = &K> + '_ {
        let mut last: Option<&K> = None;
        self.by_key
            .iter_from(pos)
            .map(|id| &self.slot(id).key)
            .filter(move |k| {
                let fresh = last != Some(*k);
                last = Some(*k);
                fresh
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    proptest! {
        /// The slab and its two indexes answer as a map from dots to `(key, value)` would,
        /// through insertions and removals (each removal moving the last slot).
        #[test]
        fn behaves_as_a_map_of_dots(ops in prop::collection::vec((0u64..3, 1u64..200, 0u8..20, any::<bool>()), 0..300)) {
            let mut live: LiveWrites<u8, u64> = LiveWrites::default();
            let mut model: BTreeMap<Dot, (u8, u64)> = BTreeMap::new();
            for (r, c, key, remove) in ops {
                let dot = Dot::new(ReplicaId(r), c);
                if remove {
                    prop_assert_eq!(live.remove(&dot), model.remove(&dot));
                } else if let std::collections::btree_map::Entry::Vacant(e) = model.entry(dot) {
                    live.insert(dot, key, c);
                    e.insert((key, c));
                }
                prop_assert_eq!(live.len(), model.len());
            }
            let all: Vec<(Dot, u8, u64)> = model.iter().map(|(d, (k, v))| (*d, *k, *v)).collect();
            prop_assert_eq!(live.iter().map(|(d, k, v)| (d, *k, *v)).collect::<Vec<_>>(), all);
            let keys: BTreeSet<u8> = model.values().map(|(k, _)| *k).collect();
            prop_assert_eq!(live.key_count(), keys.len());
            prop_assert_eq!(live.keys_after(None).copied().collect::<Vec<_>>(), keys.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(live.keys_after(Some(&9)).copied().collect::<Vec<_>>(), keys.range(10..).copied().collect::<Vec<_>>());
            prop_assert_eq!(live.keys_from(&9).copied().collect::<Vec<_>>(), keys.range(9..).copied().collect::<Vec<_>>());
            for k in 0..20u8 {
                let writes: Vec<(Dot, u64)> = model.iter().filter(|(_, (key, _))| *key == k).map(|(d, (_, v))| (*d, *v)).collect();
                prop_assert_eq!(live.of_key(&k).map(|(d, v)| (d, *v)).collect::<Vec<_>>(), writes);
                prop_assert_eq!(live.contains_key(&k), keys.contains(&k));
            }
            for (d, (k, v)) in &model {
                prop_assert_eq!(live.get(d), Some((k, v)));
            }
        }
    }

    #[test]
    fn a_slab_of_many_chunks_stays_dense() {
        let mut live: LiveWrites<u32, ()> = LiveWrites::default();
        let n = 3 * SLAB as u64 + 5;
        for c in 1..=n {
            live.insert(Dot::new(ReplicaId(1), c), c as u32, ());
        }
        for c in (1..=n).step_by(2) {
            assert!(live.remove(&Dot::new(ReplicaId(1), c)).is_some());
        }
        assert_eq!(live.len(), (n / 2) as usize);
        assert_eq!(live.slots.len(), 2, "emptied chunks are given back");
        assert_eq!(
            live.slots[0].len(),
            SLAB,
            "every chunk but the last is full"
        );
        assert!(live
            .iter()
            .all(|(d, k, _)| u64::from(*k) == d.counter && d.counter % 2 == 0));
    }
}
