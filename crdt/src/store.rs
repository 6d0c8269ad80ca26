//! The store of named objects, itself one lattice: the product of one grow-only map per object type
//! (key → typed CRDT), joined pointwise.
//!
//! Keeping one map per type makes ill-typed states unrepresentable, so nothing decoded from a peer
//! can put a set where a counter is. A key's type is fixed by its first local write, and a local
//! write of another type is refused ([`CrdtError::TypeClash`]). Two replicas that concurrently give
//! one key two types both keep their object; neither overwrites the other, and [`Store::clashes`]
//! reports the key so the node can surface it.

use crate::awset::AwSet;
use crate::doc::{Doc, Step};
use crate::dot::ReplicaId;
use crate::error::CrdtError;
use crate::gcounter::GCounter;
use crate::gmap::GMap;
use crate::gset::GSet;
use crate::kind::Kind;
use crate::lattice::{Decompose, Lattice, Measure};
use crate::lww::LwwRegister;
use crate::mvregister::MvRegister;
use crate::ormap::OrMap;
use crate::pncounter::PNCounter;
use crate::resolution::{self, Resolution};
use crate::shared::Shared;
use crate::twopset::TwoPSet;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;

/// Who writes and when: what a delta-mutator needs beyond the operation.
#[derive(Clone, Copy, Debug)]
pub struct Writer {
    /// The writing replica: the dot and counter-entry owner.
    pub replica: ReplicaId,
    /// Wall-clock milliseconds, for last-writer-wins stamps.
    pub now_ms: u64,
}

/// An operation on one object; its variant fixes the object's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `gcounter`: add a non-negative amount.
    GCounterInc(u64),
    /// `counter`: add an amount (negative to decrement).
    CounterAdd(i64),
    /// `gset`: add an element.
    GSetAdd(Value),
    /// `twopset`: add an element.
    TwoPSetAdd(Value),
    /// `twopset`: remove an element for good.
    TwoPSetRemove(Value),
    /// `set`: add an element.
    SetAdd(Value),
    /// `set`: remove an element as observed.
    SetRemove(Value),
    /// `lww`: write the register.
    LwwSet(Value),
    /// `register`: write the multi-value register.
    RegisterSet(Value),
    /// `map`: write a field.
    MapPut(String, Value),
    /// `map`: remove a field as observed.
    MapRemove(String),
    /// `doc`: write a value at a path (a map's field, or a list's element).
    DocPut(Vec<Step>, Json),
    /// `doc`: delete the field or list element at a path.
    DocDelete(Vec<Step>),
    /// `doc`: insert values into the list at a path, from an index.
    DocInsert(Vec<Step>, usize, Vec<Json>),
    /// `doc`: in the text at a path, delete characters from an index and insert a string there.
    DocSplice(Vec<Step>, usize, usize, String),
    /// Any type: settle a type clash by keeping this type (see [`crate::resolution`]).
    Resolve(Kind),
}

impl Op {
    /// The type of object this operation applies to.
    pub fn kind(&self) -> Kind {
        match self {
            Op::GCounterInc(_) => Kind::GCounter,
            Op::CounterAdd(_) => Kind::Counter,
            Op::GSetAdd(_) => Kind::GSet,
            Op::TwoPSetAdd(_) | Op::TwoPSetRemove(_) => Kind::TwoPSet,
            Op::SetAdd(_) | Op::SetRemove(_) => Kind::Set,
            Op::LwwSet(_) => Kind::Lww,
            Op::RegisterSet(_) => Kind::Register,
            Op::MapPut(..) | Op::MapRemove(_) => Kind::Map,
            Op::DocPut(..) | Op::DocDelete(_) | Op::DocInsert(..) | Op::DocSplice(..) => Kind::Doc,
            Op::Resolve(keep) => *keep,
        }
    }
}

/// Declares, for every [`Kind`], the borrowed `Object` view and the `Store`
/// with one grow-only map per type and its lattice, decomposition and measure, all pointwise.
macro_rules! object_kinds {
    ($( $(#[$doc:meta])* $kind:ident, $field:ident: $ty:ty; )*) => {
        /// A borrowed view of one typed object in a store.
        #[derive(Clone, Copy, Debug)]
        pub enum Object<'a> {
            $( $(#[$doc])* $kind(&'a $ty), )*
        }

        impl Object<'_> {
            /// Its type.
            pub fn kind(&self) -> Kind {
                match self { $(Object::$kind(_) => Kind::$kind),* }
            }
        }

        /// The replicated store: every named object, as one lattice. See the module docs.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Store {
            $( $field: GMap<String, Shared<$ty>>, )*
        }

        impl Serialize for Store {
            /// Its maps in order (without `docs` in encoding 1, for tests of the upgrade path).
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let v1 = crate::codec::encoding() == crate::codec::Encoding::DotByDot;
                let mut st = s.serialize_struct("Store", Kind::ALL.len() - usize::from(v1))?;
                $(
                    if !(v1 && Kind::$kind == Kind::Doc) {
                        st.serialize_field(stringify!($field), &self.$field)?;
                    }
                )*
                st.end()
            }
        }

        impl<'de> Deserialize<'de> for Store {
            /// Its maps in order. A store in encoding 1 (older builds; see
            /// [`crate::codec::Encoding`]) predates documents: it ends before `docs`.
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = Store;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a store")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Store, A::Error> {
                        let (mut s, v1, mut i) = (Store::default(), crate::codec::encoding() == crate::codec::Encoding::DotByDot, 0);
                        $(
                            if !(v1 && Kind::$kind == Kind::Doc) {
                                s.$field = seq
                                    .next_element()?
                                    .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                                i += 1;
                            }
                        )*
                        let _ = i;
                        Ok(s)
                    }
                }
                const FIELDS: &[&str] = &[$(stringify!($field)),*];
                let n = FIELDS.len() - usize::from(crate::codec::encoding() == crate::codec::Encoding::DotByDot);
                d.deserialize_struct("Store", &FIELDS[..n], Fields)
            }
        }

        impl Store {
            /// The object of type `kind` at `key`.
            pub fn get_kind(&self, key: &str, kind: Kind) -> Option<Object<'_>> {
                match kind { $(Kind::$kind => self.$field.get(key).map(|v| Object::$kind(v))),* }
            }

            /// Every `(key, object)` of every type, grouped by type, reserved keys included.
            fn every_object(&self) -> Vec<(&str, Object<'_>)> {
                let mut all = Vec::new();
                $( all.extend(self.$field.iter().map(|(k, v)| (k.as_str(), Object::$kind(&**v)))); )*
                all
            }

            /// Number of keys (what [`Store::objects`] lists): each key counts once, without
            /// building the list. Keys are looked up in the other types' maps only past the first
            /// type that has objects, so a store of one type counts in constant time (reserved
            /// keys sort first, and only they are walked).
            #[allow(unused_assignments)] // The flag is also set after the last type.
            pub fn len(&self) -> usize {
                let (mut n, mut earlier) = (0, false);
                $(
                    let m = &self.$field;
                    let reserved = m.iter().take_while(|(k, _)| resolution::is_reserved(k)).count();
                    n += if earlier {
                        m.iter().skip(reserved).filter(|(k, _)| !self.has_earlier_kind(k, Kind::$kind)).count()
                    } else {
                        m.len() - reserved
                    };
                    earlier |= m.len() > reserved;
                )*
                n
            }

            /// Only the objects at `key` (of every type it has), and its resolution.
            fn only(&self, key: &str) -> Store {
                let mut only = Store { $( $field: match self.$field.get(key) {
                    Some(v) => GMap::singleton(key.to_string(), v.clone()),
                    None => GMap::default(),
                }, )* };
                let reserved = resolution::key_of(key);
                if let Some(r) = self.lwws.get(&reserved) {
                    only.lwws.join(&GMap::singleton(reserved, r.clone()));
                }
                only
            }
        }

        impl Lattice for Store {
            fn bottom() -> Self {
                Self::default()
            }
            fn is_bottom(&self) -> bool {
                $( self.$field.is_bottom() )&&*
            }
            fn join(&mut self, other: &Self) {
                $( self.$field.join(&other.$field); )*
            }
            fn leq(&self, other: &Self) -> bool {
                $( self.$field.leq(&other.$field) )&&*
            }
        }

        impl Decompose for Store {
            fn decompose(&self) -> Vec<Self> {
                let mut all = Vec::new();
                $( all.extend(self.$field.decompose().into_iter().map(|$field| Store { $field, ..Store::default() })); )*
                all
            }
            fn for_each_irreducible(&self, f: &mut dyn FnMut(Self)) {
                $( self.$field.for_each_irreducible(&mut |$field| f(Store { $field, ..Store::default() })); )*
            }
            fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
                $( self.$field.for_each_piece(&mut |$field| f(Store { $field, ..Store::default() })); )*
            }
            fn delta(&self, base: &Self) -> Self {
                Store { $( $field: self.$field.delta(&base.$field), )* }
            }
            fn delta_and_merge(&mut self, received: &Self) -> Self {
                Store { $( $field: self.$field.delta_and_merge(&received.$field), )* }
            }
        }

        impl Measure for Store {
            fn payload_units(&self) -> u64 {
                0 $( + self.$field.payload_units() )*
            }
            fn metadata_units(&self) -> u64 {
                0 $( + self.$field.metadata_units() )*
            }
        }
    };
}

object_kinds! {
    /// Grow-only counter.
    GCounter, gcounters: GCounter;
    /// Increment/decrement counter.
    Counter, counters: PNCounter;
    /// Grow-only set.
    GSet, gsets: GSet<Value>;
    /// Two-phase set.
    TwoPSet, twopsets: TwoPSet<Value>;
    /// Add-wins set.
    Set, sets: AwSet<Value>;
    /// Last-writer-wins register.
    Lww, lwws: LwwRegister<Value>;
    /// Multi-value register.
    Register, registers: MvRegister<Value>;
    /// Add-wins map of multi-value registers.
    Map, maps: OrMap<String, Value>;
    /// JSON document (the last type: stores encoded before it have no `docs`).
    Doc, docs: Doc;
}

impl Object<'_> {
    /// The materialised value users see (SPEC: integer, array, value or null, object of arrays).
    pub fn value(&self) -> Json {
        let all =
            |it: &mut dyn Iterator<Item = &Value>| Json::Array(it.map(Value::to_json).collect());
        match self {
            Object::GCounter(c) => Json::from(c.value()),
            Object::Counter(c) => {
                i64::try_from(c.value()).map_or_else(|_| Json::from(c.value() as f64), Json::from)
            }
            Object::GSet(s) => all(&mut s.iter()),
            Object::TwoPSet(s) => all(&mut s.iter()),
            Object::Set(s) => all(&mut s.iter()),
            Object::Lww(r) => r.get().map_or(Json::Null, Value::to_json),
            Object::Register(r) => all(&mut r.values().into_iter()),
            Object::Map(m) => Json::Object(
                m.fields()
                    .map(|f| (f.clone(), all(&mut m.get(f).into_iter())))
                    .collect(),
            ),
            Object::Doc(d) => d.value(),
        }
    }

    /// Registers (or map fields) holding more than one concurrent value.
    pub fn conflicts(&self) -> usize {
        match self {
            Object::Register(r) => usize::from(r.values().len() > 1),
            Object::Map(m) => m.fields().filter(|f| m.get(f).len() > 1).count(),
            Object::Doc(d) => d.conflicts(),
            _ => 0,
        }
    }
}

impl Store {
    /// The object at `key`, of the type every read path shows: the kept type when a resolution
    /// settled a clash, else the first of its types in [`Kind::ALL`].
    pub fn get(&self, key: &str) -> Option<Object<'_>> {
        self.get_kind(key, self.shown_kind(key)?)
    }

    /// The type `key` shows (see [`Store::get`]).
    pub fn shown_kind(&self, key: &str) -> Option<Kind> {
        let kinds = self.kinds(key);
        let first = *kinds.first()?;
        if kinds.len() == 1 {
            return Some(first); // No clash: no resolution to look up.
        }
        Some(
            self.resolution(key)
                .map(|r| r.keep)
                .filter(|k| kinds.contains(k))
                .unwrap_or(first),
        )
    }

    /// The types `key` has: one, or several after a clash, or none (always none for a reserved key).
    pub fn kinds(&self, key: &str) -> Vec<Kind> {
        if resolution::is_reserved(key) {
            return vec![];
        }
        Kind::ALL
            .iter()
            .copied()
            .filter(|k| self.get_kind(key, *k).is_some())
            .collect()
    }

    /// The resolution recorded for `key`'s type clash, if any.
    pub fn resolution(&self, key: &str) -> Option<Resolution> {
        match self.get_kind(&resolution::key_of(key), Kind::Lww)? {
            Object::Lww(r) => r.get().and_then(Resolution::from_value),
            _ => None,
        }
    }

    /// Whether `key` has several types that no resolution settles.
    pub fn is_clash(&self, key: &str) -> bool {
        let kinds = self.kinds(key);
        kinds.len() > 1 && !self.resolution(key).is_some_and(|r| r.settles(&kinds))
    }

    /// Every `(key, object)` of every type: after a type clash a key appears once per type it
    /// has. Read paths use [`Store::objects`] instead.
    pub fn typed_objects(&self) -> Vec<(&str, Object<'_>)> {
        let mut all = self.every_object();
        all.retain(|(k, _)| !resolution::is_reserved(k));
        all
    }

    /// The user keys an update (a delta) touches: a resolution touches the key it resolves.
    pub fn keys_touched(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .every_object()
            .into_iter()
            .filter_map(|(k, _)| {
                if resolution::is_reserved(k) {
                    resolution::target_of(k)
                } else {
                    Some(k)
                }
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every object as read paths show it, ordered by key: one per key, of the type
    /// [`Store::get`] shows.
    pub fn objects(&self) -> Vec<(&str, Object<'_>)> {
        let mut keys: Vec<&str> = self.typed_objects().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| self.get(k).map(|o| (k, o)))
            .collect()
    }

    /// Whether `key` also has a type that comes before `kind`.
    fn has_earlier_kind(&self, key: &str, kind: Kind) -> bool {
        Kind::ALL
            .iter()
            .take_while(|k| **k != kind)
            .any(|k| self.get_kind(key, *k).is_some())
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.is_bottom()
    }

    /// Keys whose type clash no resolution settles.
    pub fn clashes(&self) -> Vec<&str> {
        self.objects()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| self.is_clash(k))
            .collect()
    }

    /// Delta-mutator: the delta that `op` on `key` causes. Refuses an op of another type than the key's.
    pub fn apply(&self, key: &str, op: Op, w: &Writer) -> Result<Store, CrdtError> {
        if resolution::is_reserved(key) {
            return Err(CrdtError::ReservedKey(key.escape_default().to_string()));
        }
        let requested = op.kind();
        let kinds = self.kinds(key);
        if let Op::Resolve(keep) = op {
            return self.resolve(key, keep, kinds, w);
        }
        // A write may go to any type the key has, unless a resolution retired the others.
        let allowed = match self.resolution(key) {
            Some(r) if kinds.contains(&r.keep) => requested == r.keep,
            _ => kinds.is_empty() || kinds.contains(&requested),
        };
        if !allowed {
            return Err(CrdtError::TypeClash {
                key: key.to_string(),
                existing: self.shown_kind(key).expect("the key has a type"),
                requested,
            });
        }
        if self.would_change_nothing(key, &op) {
            return Ok(Store::default());
        }
        let k = key.to_string();
        let r = w.replica;
        let mut d = Store::default();
        match op {
            Op::GCounterInc(by) => {
                let delta = match self.gcounters.get(key) {
                    Some(c) => c.inc(r, by),
                    None => GCounter::default().inc(r, by),
                };
                let delta = delta.ok_or_else(|| overflow(key, by.into()))?;
                d.gcounters = GMap::singleton(k, delta.into());
            }
            Op::CounterAdd(by) => {
                let delta = match self.counters.get(key) {
                    Some(c) => c.add(r, by),
                    None => PNCounter::default().add(r, by),
                };
                let delta = delta.ok_or_else(|| overflow(key, by.into()))?;
                d.counters = GMap::singleton(k, delta.into());
            }
            Op::GSetAdd(x) => d.gsets = self.gsets.update(k, |s| s.add(x).into()),
            Op::TwoPSetAdd(x) => d.twopsets = self.twopsets.update(k, |s| s.add(x).into()),
            Op::TwoPSetRemove(x) => d.twopsets = self.twopsets.update(k, |s| s.remove(x).into()),
            Op::SetAdd(x) => d.sets = self.sets.update(k, |s| s.add(r, x).into()),
            Op::SetRemove(x) => d.sets = self.sets.update(k, |s| s.remove(&x).into()),
            Op::LwwSet(x) => d.lwws = self.lwws.update(k, |l| l.set(r, w.now_ms, x).into()),
            Op::RegisterSet(x) => d.registers = self.registers.update(k, |m| m.set(r, x).into()),
            Op::MapPut(f, x) => d.maps = self.maps.update(k, |m| m.put(r, f, x).into()),
            Op::MapRemove(f) => d.maps = self.maps.update(k, |m| m.remove(&f).into()),
            Op::DocPut(..) | Op::DocDelete(_) | Op::DocInsert(..) | Op::DocSplice(..) => {
                let empty = Doc::default();
                let doc = self.docs.get(key).map_or(&empty, |s| &**s);
                let delta = match op {
                    Op::DocPut(path, v) => doc.put(r, &path, &v),
                    Op::DocDelete(path) => doc.delete(&path),
                    Op::DocInsert(path, at, vs) => doc.insert(r, &path, at, &vs),
                    Op::DocSplice(path, at, n, text) => doc.splice(r, &path, at, n, &text),
                    _ => unreachable!("a doc op"),
                }?;
                d.docs = GMap::singleton(k, delta.into());
            }
            Op::Resolve(_) => unreachable!("handled above"),
        }
        Ok(d)
    }

    /// The delta of a `resolve` keeping `keep` at `key`, whose types are `kinds`.
    fn resolve(
        &self,
        key: &str,
        keep: Kind,
        kinds: Vec<Kind>,
        w: &Writer,
    ) -> Result<Store, CrdtError> {
        if !kinds.contains(&keep) {
            return Err(CrdtError::NothingToKeep {
                key: key.to_string(),
                keep,
            });
        }
        let r = Resolution { keep, seen: kinds };
        if self.resolution(key).as_ref() == Some(&r) {
            return Ok(Store::default());
        }
        Ok(Store {
            lwws: self.lwws.update(resolution::key_of(key), |l| {
                l.set(w.replica, w.now_ms, r.to_value()).into()
            }),
            ..Store::default()
        })
    }

    /// Whether `op` would leave `key` showing what it shows now, with no conflict resolved: adding
    /// an element already there, writing a register or a map field the one value it already
    /// holds. Such a write is ⊥ — nothing to commit or replicate. (A new dot would also win over
    /// removes made concurrently elsewhere; a write that changes nothing here does not.)
    fn would_change_nothing(&self, key: &str, op: &Op) -> bool {
        match (op, self.get_kind(key, op.kind())) {
            (Op::SetAdd(x), Some(Object::Set(s))) => s.contains(x),
            (Op::LwwSet(x), Some(Object::Lww(l))) => l.get() == Some(x),
            (Op::RegisterSet(x), Some(Object::Register(m))) => m.values() == [x],
            (Op::MapPut(f, x), Some(Object::Map(m))) => m.get(f) == [x],
            _ => false,
        }
    }

    /// Delta-mutator for a batch: each op sees the ones before it, and the result is one delta.
    /// Any refused op refuses the whole batch.
    ///
    /// Cost: a key written only by adds of one set type (a bulk load) costs its adds, in one
    /// delta-mutator ([`Store::add_all`]). Any other key gets a view of it (its objects shared
    /// with `self`, not copied) and the delta of the batch's last op on it, joined into the view
    /// only if another op on the key follows — so a key written once costs its op, and one
    /// written k times copies its object once.
    pub fn apply_batch(
        &self,
        ops: impl IntoIterator<Item = (String, Op)>,
        w: &Writer,
    ) -> Result<Store, CrdtError> {
        let ops: Vec<(String, Op)> = ops.into_iter().collect();
        let mut adds: HashMap<&str, Option<Vec<&Op>>> = HashMap::new();
        for (key, op) in &ops {
            let run = adds.entry(key.as_str()).or_insert_with(|| Some(Vec::new()));
            let same = run
                .as_ref()
                .is_some_and(|r| r.first().is_none_or(|f| f.kind() == op.kind()));
            let add = matches!(op, Op::SetAdd(_) | Op::GSetAdd(_) | Op::TwoPSetAdd(_));
            match run {
                Some(r) if add && same => r.push(op),
                _ => *run = None,
            }
        }
        let mut acc = Store::default();
        let mut views: HashMap<String, (Store, Store)> = HashMap::new();
        for (key, op) in &ops {
            if let Some(Some(run)) = adds.get_mut(key.as_str()) {
                if !run.is_empty() {
                    acc.join(&self.add_all(key, std::mem::take(run), w)?);
                }
                continue;
            }
            let (view, last) = views
                .entry(key.clone())
                .or_insert_with(|| (self.only(key), Store::default()));
            if !last.is_bottom() {
                view.join(last);
            }
            let d = view.apply(key, op.clone(), w)?;
            acc.join(&d);
            *last = d;
        }
        Ok(acc)
    }

    /// Delta-mutator: the adds `run` (all of one set type) on `key`, as that many [`Store::apply`]s
    /// in one delta that costs the adds, not the object.
    fn add_all(&self, key: &str, run: Vec<&Op>, w: &Writer) -> Result<Store, CrdtError> {
        // The checks (reserved key, type clash) are the same for every op of the run.
        let kind = run[0].kind();
        self.apply(key, run[0].clone(), w)?;
        // In order, each once: a second add of an element is no change, as `apply` would find
        // (and the dots go out in the order of the ops).
        let mut seen = std::collections::HashSet::new();
        let mut elements: Vec<Value> = run
            .into_iter()
            .filter_map(|op| match op {
                Op::SetAdd(x) | Op::GSetAdd(x) | Op::TwoPSetAdd(x) => Some(x),
                _ => None,
            })
            .filter(|x| seen.insert(*x))
            .cloned()
            .collect();
        let k = key.to_string();
        let mut d = Store::default();
        match kind {
            Kind::GSet => {
                let delta: GSet<Value> = elements.into_iter().collect();
                d.gsets = GMap::singleton(k, delta.into());
            }
            Kind::TwoPSet => {
                let delta =
                    elements
                        .into_iter()
                        .fold(TwoPSet::default(), |mut s: TwoPSet<Value>, x| {
                            s.join(&TwoPSet::default().add(x));
                            s
                        });
                d.twopsets = GMap::singleton(k, delta.into());
            }
            _ => {
                let base = self.sets.get(key);
                // An element already in is no change (as `apply` would find).
                elements.retain(|x| base.is_none_or(|s| !s.contains(x)));
                let delta = match base {
                    Some(s) => s.add_all(w.replica, elements),
                    None => AwSet::default().add_all(w.replica, elements),
                };
                d.sets = GMap::singleton(k, delta.into());
            }
        }
        Ok(d)
    }
}

fn overflow(key: &str, by: i128) -> CrdtError {
    CrdtError::Overflow {
        key: key.to_string(),
        by,
    }
}

mod read;
mod skew;
pub use read::Page;
#[cfg(test)]
mod tests;
