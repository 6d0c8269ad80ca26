//! The dot kernel: a map from dots to `(key, value)` pairs under a causal context — the one causal
//! store behind the add-wins set (key = element), the multi-value register (key = `()`) and the
//! add-wins map (key = field). Its join, order, decomposition and minimal delta are written once here.
//!
//! A dot in the store is a live write; a dot in the context but not in the store was overwritten or
//! removed. So a remove keeps no tombstone per element: the context's version vector covers it.
//!
//! Irreducibles: `({d ↦ kv}, {d})` for each live dot (a write) and `(∅, {d})` for each dot in the
//! context but not the store (its removal). The context keeps its dots as runs, and everything here
//! costs the live writes and the runs, never the dots a run claims: Δ works on runs, and the
//! pieces a state is indexed by ([`Decompose::for_each_piece`]) are the writes and the runs of
//! removed dots between them.

mod dot_index;
mod key_order;
mod live;

use crate::dot::{gaps, CausalContext, Dot, ReplicaId};
use crate::lattice::{Decompose, Lattice, Measure};
use live::LiveWrites;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Bounds every key and value type of a kernel needs.
pub trait KernelItem: Clone + Ord + Debug {}
impl<T: Clone + Ord + Debug> KernelItem for T {}

/// A causal dot store: its live writes, found by dot and by key, and its causal context. See the
/// module docs.
///
/// Encoded as its live writes `(dot, key, value)` in dot order and its context (the indexes are
/// rebuilt on decoding); encoding borrows, so it costs no copy of the kernel.
#[derive(Clone, Deserialize)]
#[serde(
    from = "KernelRepr<K, V>",
    bound(deserialize = "K: KernelItem + Deserialize<'de>, V: KernelItem + Deserialize<'de>")
)]
pub struct DotKernel<K: KernelItem, V: KernelItem> {
    /// Live writes, each held once, indexed by dot (for joins against a causal context) and by
    /// key (for the writes that overwrite what they saw, and for reads in key order).
    live: LiveWrites<K, V>,
    /// Every dot ever seen, live or not. Invariant: it contains every live dot.
    context: CausalContext,
}

#[derive(Clone, Serialize, Deserialize)]
struct KernelRepr<K, V> {
    entries: Vec<(Dot, K, V)>,
    context: CausalContext,
}

impl<K: KernelItem, V: KernelItem> From<KernelRepr<K, V>> for DotKernel<K, V> {
    /// Rebuilds the index and restores the invariant (store ⊆ context), so a decoded kernel from a
    /// peer is always well formed: a dot it lists twice keeps its first value.
    fn from(r: KernelRepr<K, V>) -> Self {
        let mut k = DotKernel {
            live: LiveWrites::default(),
            context: r.context,
        };
        for (dot, key, value) in r.entries {
            if dot.counter == 0 || k.live.contains(&dot) {
                continue;
            }
            k.context.insert(dot);
            k.live.insert(dot, key, value);
        }
        k
    }
}

impl<K: KernelItem + Serialize, V: KernelItem + Serialize> Serialize for DotKernel<K, V> {
    /// The encoding of a [`KernelRepr`], from borrowed parts.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Entries<'a, K, V>(&'a LiveWrites<K, V>);
        impl<K: KernelItem + Serialize, V: Serialize> Serialize for Entries<'_, K, V> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for write in self.0.iter() {
                    seq.serialize_element(&write)?;
                }
                seq.end()
            }
        }
        let mut st = s.serialize_struct("KernelRepr", 2)?;
        st.serialize_field("entries", &Entries(&self.live))?;
        st.serialize_field("context", &self.context)?;
        st.end()
    }
}

impl<K: KernelItem, V: KernelItem> PartialEq for DotKernel<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.context == other.context && self.live.iter().eq(other.live.iter())
    }
}

impl<K: KernelItem, V: KernelItem> Debug for DotKernel<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DotKernel")
            .field("entries", &self.live.iter().collect::<Vec<_>>())
            .field("context", &self.context)
            .finish()
    }
}

impl<K: KernelItem, V: KernelItem> Default for DotKernel<K, V> {
    fn default() -> Self {
        DotKernel {
            live: LiveWrites::default(),
            context: CausalContext::new(),
        }
    }
}

/// Live writes grouped by value, in value order, each with its writers (in order, no repeats).
pub(crate) fn group_writers<'a, V: Ord + 'a>(
    writes: impl Iterator<Item = (Dot, &'a V)>,
) -> Vec<(&'a V, Vec<ReplicaId>)> {
    let mut by_value: BTreeMap<&V, Vec<ReplicaId>> = BTreeMap::new();
    for (dot, v) in writes {
        by_value.entry(v).or_default().push(dot.replica);
    }
    by_value
        .into_iter()
        .map(|(v, mut who)| {
            who.sort();
            who.dedup();
            (v, who)
        })
        .collect()
}

impl<K: KernelItem, V: KernelItem> DotKernel<K, V> {
    /// Live `(dot, key, value)` writes in dot order.
    pub fn entries(&self) -> impl Iterator<Item = (Dot, &K, &V)> {
        self.live.iter()
    }

    /// Live writes of one key, in dot order.
    pub fn values_of<'a>(&'a self, key: &K) -> impl Iterator<Item = &'a V> + 'a {
        self.live.of_key(key).map(|(_, v)| v)
    }

    /// Live writes of one key with their dots (whose replica is the writer), in dot order.
    pub fn writes_of<'a>(&'a self, key: &K) -> impl Iterator<Item = (Dot, &'a V)> + 'a {
        self.live.of_key(key)
    }

    /// Keys with at least one live write, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.live.keys_after(None)
    }

    /// Keys with a live write, in order, from just past `after` (from the first when `None`).
    pub fn keys_after<'a>(&'a self, after: Option<&K>) -> Box<dyn Iterator<Item = &'a K> + 'a> {
        Box::new(self.live.keys_after(after))
    }

    /// Keys with a live write, in order, from `from` (included).
    pub fn keys_from<'a>(&'a self, from: &K) -> Box<dyn Iterator<Item = &'a K> + 'a> {
        Box::new(self.live.keys_from(from))
    }

    /// Number of keys with a live write.
    pub fn key_count(&self) -> usize {
        self.live.key_count()
    }

    /// Whether `key` has a live write.
    pub fn contains_key(&self, key: &K) -> bool {
        self.live.contains_key(key)
    }

    /// Number of live writes.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no write is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The causal context.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Delta-mutator: write `value` under `key` with a fresh dot of `replica`, overwriting the
    /// key's live writes (`overwrite_all`: every live write, as a register does).
    pub fn write(&self, replica: ReplicaId, key: K, value: V, overwrite_all: bool) -> Self {
        let dot = self.context.next_dot(replica);
        let mut delta = if overwrite_all {
            self.remove_all()
        } else {
            self.remove_key(&key)
        };
        delta.context.insert(dot);
        delta.live.insert(dot, key, value);
        delta
    }

    /// Delta-mutator: the writes of `items`, in order, as that many [`DotKernel::write`]s (each
    /// overwriting its key's live writes) — in one delta that costs the items, not the kernel.
    /// Keys must be distinct (a later write of the same key would overwrite an earlier one).
    pub fn write_many(&self, replica: ReplicaId, items: Vec<(K, V)>) -> Self {
        let first = self.context.next_dot(replica).counter;
        let mut delta = Self::default();
        for (i, (key, value)) in items.into_iter().enumerate() {
            for (d, _) in self.live.of_key(&key) {
                delta.context.insert(d);
            }
            let dot = Dot::new(replica, first.saturating_add(i as u64));
            delta.context.insert(dot);
            delta.live.insert(dot, key, value);
        }
        delta
    }

    /// Delta-mutator: write `value` under `key` with `dot`, which the caller made fresh (above
    /// everything `self` has seen), overwriting the key's live writes.
    pub(crate) fn write_at(&self, dot: Dot, key: K, value: V) -> Self {
        let mut delta = self.remove_key(&key);
        delta.context.insert(dot);
        delta.live.insert(dot, key, value);
        delta
    }

    /// Records `replica`'s dots `first..=last` as seen, each either a live write here or no write
    /// of this kernel anywhere (a joined context-only delta would remove them as writes): how a
    /// document keeps one dot space for its writes and its sequences' items.
    pub(crate) fn mark_seen(&mut self, replica: ReplicaId, first: u64, last: u64) {
        self.context.insert_run(replica, first, last);
    }

    /// Delta-mutator: remove every live write of `key` (its dots go into the delta's context).
    pub fn remove_key(&self, key: &K) -> Self {
        let mut delta = Self::default();
        for (d, _) in self.live.of_key(key) {
            delta.context.insert(d);
        }
        delta
    }

    /// Delta-mutator: remove every live write.
    pub fn remove_all(&self) -> Self {
        let mut delta = Self::default();
        for (d, ..) in self.live.iter() {
            delta.context.insert(d);
        }
        delta
    }

    /// Live dots of `self` that `context` has seen: in a join with a state of that context, the
    /// ones it lacks are removals. Costs the live dots in the context's ranges, not all of them.
    fn live_dots_seen_by<'a>(
        &'a self,
        context: &'a CausalContext,
    ) -> impl Iterator<Item = Dot> + 'a {
        context
            .runs()
            .flat_map(move |(r, a, b)| self.live.dots_in(r, a, b))
    }

    /// Joins `other` into this kernel, handing `removed` each write the join removes (live here,
    /// seen there, not live there) — what a reader of the change needs and the state no longer
    /// holds.
    pub(crate) fn join_noting(&mut self, other: &Self, removed: &mut dyn FnMut(Dot, K, V)) {
        // Live here, seen there, not live there: removed there.
        let gone: Vec<Dot> = self
            .live_dots_seen_by(&other.context)
            .filter(|d| !other.live.contains(d))
            .collect();
        for d in gone {
            if let Some((k, v)) = self.live.remove(&d) {
                removed(d, k, v);
            }
        }
        // Live there, never seen here: a new write.
        for (d, k, v) in other.live.iter() {
            if !self.context.contains(&d) {
                self.live.insert(d, k.clone(), v.clone());
            }
        }
        self.context.join(&other.context);
    }

    /// The dots of `replica` in `first..=last` that are not live here, as runs: what a context
    /// run says was removed. Costs the live dots in the range.
    fn not_live_in(
        &self,
        replica: ReplicaId,
        first: u64,
        last: u64,
    ) -> impl Iterator<Item = (u64, u64)> + '_ {
        let live = self.live.dots_in(replica, first, last);
        gaps(first, last, live.map(|d| (d.counter, d.counter)))
    }
}

impl<K: KernelItem, V: KernelItem> Lattice for DotKernel<K, V> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.context.is_empty()
    }

    fn join(&mut self, other: &Self) {
        self.join_noting(other, &mut |_, _, _| {});
    }

    fn leq(&self, other: &Self) -> bool {
        // Everything seen here was seen there, and what is live there and seen here is live here.
        self.context.is_subset(&other.context)
            && other
                .live_dots_seen_by(&self.context)
                .all(|d| self.live.contains(&d))
    }
}

impl<K: KernelItem, V: KernelItem> Decompose for DotKernel<K, V> {
    fn decompose(&self) -> Vec<Self> {
        let mut all = Vec::new();
        self.for_each_irreducible(&mut |y| all.push(y));
        all
    }

    fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
        for d in self.context.dots() {
            let mut y = Self::default();
            y.context.insert(d);
            if let Some((k, v)) = self.live.get(&d) {
                y.live.insert(d, k.clone(), v.clone());
            }
            f(y);
        }
    }

    /// Each live write alone, and each run of removed dots (a context run cut at the live dots
    /// inside it) as one piece: as many pieces as the kernel holds writes and runs, however many
    /// dots its context claims.
    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        for (r, a, b) in self.context.runs() {
            for d in self.live.dots_in(r, a, b) {
                let (k, v) = self.live.get(&d).expect("a live dot has its write");
                let mut y = Self::default();
                y.context.insert(d);
                y.live.insert(d, k.clone(), v.clone());
                f(y);
            }
            for (x, y) in self.not_live_in(r, a, b) {
                let mut removed = Self::default();
                removed.context.insert_run(r, x, y);
                f(removed);
            }
        }
    }

    fn delta(&self, base: &Self) -> Self {
        let mut d = Self::default();
        // Writes: a live dot is news unless base has seen it.
        for (dot, k, v) in self.live.iter() {
            if !base.context.contains(&dot) {
                d.context.insert(dot);
                d.live.insert(dot, k.clone(), v.clone());
            }
        }
        // Removals (dots seen here, not live here): news if base never saw the dot, or still has
        // it live. Costs this context's runs, the runs of base inside them and the live dots of
        // both inside them — never the dots the runs hold.
        for (r, a, b) in self.context.runs() {
            for (x, y) in base.context.missing_in(r, a, b) {
                for (p, q) in self.not_live_in(r, x, y) {
                    d.context.insert_run(r, p, q);
                }
            }
            for dot in base.live.dots_in(r, a, b) {
                if !self.live.contains(&dot) {
                    d.context.insert(dot);
                }
            }
        }
        d
    }
}

impl<K: KernelItem, V: KernelItem> Measure for DotKernel<K, V> {
    fn payload_units(&self) -> u64 {
        self.live.len() as u64
    }

    fn metadata_units(&self) -> u64 {
        self.live.len() as u64 + self.context.units()
    }
}

/// Implements `Lattice`, `Decompose` and `Measure` for a newtype over a kernel by delegating to it.
macro_rules! delegate_lattice {
    ($ty:ident < $($p:ident),+ >, $field:ident) => {
        impl<$($p: KernelItem),+> Lattice for $ty<$($p),+> {
            fn bottom() -> Self {
                Self::default()
            }
            fn is_bottom(&self) -> bool {
                self.$field.is_bottom()
            }
            fn join(&mut self, other: &Self) {
                self.$field.join(&other.$field)
            }
            fn leq(&self, other: &Self) -> bool {
                self.$field.leq(&other.$field)
            }
        }

        impl<$($p: KernelItem),+> Decompose for $ty<$($p),+> {
            fn decompose(&self) -> Vec<Self> {
                self.$field.decompose().into_iter().map(|$field| Self { $field }).collect()
            }
            fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
                self.$field.for_each_irreducible(&mut |$field| f(Self { $field }));
            }
            fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
                self.$field.for_each_piece(&mut |$field| f(Self { $field }));
            }
            fn delta(&self, base: &Self) -> Self {
                Self { $field: self.$field.delta(&base.$field) }
            }
        }

        impl<$($p: KernelItem),+> Measure for $ty<$($p),+> {
            fn payload_units(&self) -> u64 {
                self.$field.payload_units()
            }
            fn metadata_units(&self) -> u64 {
                self.$field.metadata_units()
            }
        }
    };
}
pub(crate) use delegate_lattice;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn a_kernel_encodes_as_its_repr_did_and_decodes_back() {
        let mut k: DotKernel<String, u8> = DotKernel::default();
        for (i, key) in ["b", "a", "c", "a"].iter().enumerate() {
            let d = k.write(ReplicaId(1 + i as u64 % 2), key.to_string(), i as u8, false);
            k.join(&d);
        }
        let repr = KernelRepr {
            entries: k
                .entries()
                .map(|(d, key, v)| (d, key.clone(), *v))
                .collect(),
            context: k.context.clone(),
        };
        let bytes = codec::encode(&k).unwrap();
        assert_eq!(
            bytes,
            codec::encode(&repr).unwrap(),
            "the same bytes as before"
        );
        let back: DotKernel<String, u8> = codec::decode(&bytes).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.keys().count(), 3, "the index is rebuilt");
    }

    /// A peer's kernel whose context claims every counter of a replica (the frame the fuzzer found
    /// made catch-up enumerate them: a capacity-overflow panic, or a hang for a large but
    /// allocatable claim) costs its writes and runs: pieces, Δ both ways, join, order, encoding.
    #[test]
    fn a_context_claiming_two_to_the_sixty_four_dots_costs_its_runs() {
        let r = ReplicaId(7);
        let mut hostile: DotKernel<u8, u8> = DotKernel::default();
        hostile.context.insert_run(r, 1, u64::MAX);
        hostile.live.insert(Dot::new(r, 5), 1, 1);
        hostile.live.insert(Dot::new(r, u64::MAX), 2, 2);
        let mut pieces = Vec::new();
        hostile.for_each_piece(&mut |y| pieces.push(y));
        assert_eq!(pieces.len(), 4, "[1, 4], 5, [6, 2⁶⁴ − 2], 2⁶⁴ − 1");
        assert_eq!(
            pieces
                .iter()
                .fold(DotKernel::default(), |acc, y| acc.joined(y)),
            hostile
        );
        // An honest state that saw a few of those dots, and holds one of them live.
        let mut honest: DotKernel<u8, u8> = DotKernel::default();
        let w = honest.write(r, 9, 9, false);
        honest.join(&w);
        let w = honest.write(ReplicaId(1), 3, 3, false);
        honest.join(&w);
        let news = hostile.delta(&honest);
        assert!(news.context.units() <= 4 && news.live.len() == 2);
        assert_eq!(
            honest.clone().joined(&news),
            honest.clone().joined(&hostile)
        );
        let back = honest.delta(&hostile);
        assert_eq!(
            hostile.clone().joined(&back),
            hostile.clone().joined(&honest)
        );
        let mut merged = honest.clone();
        merged.join(&hostile);
        assert!(hostile.leq(&merged) && honest.leq(&merged) && !merged.leq(&honest));
        assert_eq!(
            merged.keys().count(),
            3,
            "dot (7, 1) was removed by the claim"
        );
        assert!(codec::encode(&hostile).unwrap().len() < 64);
    }
}
