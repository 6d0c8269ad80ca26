//! The store of named objects, itself one lattice: the product of one grow-only map per object type
//! (key → typed CRDT), joined pointwise.
//!
//! Keeping one map per type makes ill-typed states unrepresentable, so nothing decoded from a peer
//! can put a set where a counter is. A key's type is fixed by its first local write, and a local
//! write of another type is refused ([`CrdtError::TypeClash`]). Two replicas that concurrently give
//! one key two types both keep their object; neither overwrites the other, and [`Store::clashes`]
//! reports the key so the node can surface it.

use crate::awset::AwSet;
use crate::dot::ReplicaId;
use crate::error::CrdtError;
use crate::gcounter::GCounter;
use crate::gmap::GMap;
use crate::gset::GSet;
use crate::lattice::{Decompose, Lattice, Measure};
use crate::lww::LwwRegister;
use crate::mvregister::MvRegister;
use crate::ormap::OrMap;
use crate::pncounter::PNCounter;
use crate::twopset::TwoPSet;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::fmt;

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
        }
    }
}

/// Declares the object types once: the `Kind` enum, the borrowed `Object` view, and the `Store`
/// with one grow-only map per type and its lattice, decomposition and measure, all pointwise.
macro_rules! object_kinds {
    ($( $(#[$doc:meta])* $kind:ident = $name:literal, $field:ident: $ty:ty; )*) => {
        /// The type of an object, fixed by the first write to its key.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $( $(#[$doc])* $kind, )*
        }

        impl Kind {
            /// Every type, in the store's order.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];

            /// The name the API uses (`"gcounter"`, `"set"`, …).
            pub fn name(self) -> &'static str {
                match self { $(Kind::$kind => $name),* }
            }

            /// The type with API name `name`.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name { $($name => Some(Kind::$kind),)* _ => None }
            }
        }

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
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        pub struct Store {
            $( $field: GMap<String, $ty>, )*
        }

        impl Store {
            /// The object of type `kind` at `key`.
            pub fn get_kind(&self, key: &str, kind: Kind) -> Option<Object<'_>> {
                match kind { $(Kind::$kind => self.$field.get(&key.to_string()).map(Object::$kind)),* }
            }

            /// Every `(key, object)`, grouped by type.
            fn all_objects(&self) -> Vec<(&str, Object<'_>)> {
                let mut all = Vec::new();
                $( all.extend(self.$field.iter().map(|(k, v)| (k.as_str(), Object::$kind(v)))); )*
                all
            }

            /// Number of objects (a key with two types after a clash counts twice).
            pub fn len(&self) -> usize {
                0 $( + self.$field.len() )*
            }

            /// Only the objects at `key` (of every type it has).
            fn only(&self, key: &str) -> Store {
                let key = key.to_string();
                Store { $( $field: match self.$field.get(&key) {
                    Some(v) => GMap::singleton(key.clone(), v.clone()),
                    None => GMap::default(),
                }, )* }
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
    GCounter = "gcounter", gcounters: GCounter;
    /// Increment/decrement counter.
    Counter = "counter", counters: PNCounter;
    /// Grow-only set.
    GSet = "gset", gsets: GSet<Value>;
    /// Two-phase set.
    TwoPSet = "twopset", twopsets: TwoPSet<Value>;
    /// Add-wins set.
    Set = "set", sets: AwSet<Value>;
    /// Last-writer-wins register.
    Lww = "lww", lwws: LwwRegister<Value>;
    /// Multi-value register.
    Register = "register", registers: MvRegister<Value>;
    /// Add-wins map of multi-value registers.
    Map = "map", maps: OrMap<String, Value>;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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
        }
    }

    /// Registers (or map fields) holding more than one concurrent value.
    pub fn conflicts(&self) -> usize {
        match self {
            Object::Register(r) => usize::from(r.values().len() > 1),
            Object::Map(m) => m.fields().filter(|f| m.get(f).len() > 1).count(),
            _ => 0,
        }
    }
}

impl Store {
    /// The object at `key`: of its first type when a clash gave it several.
    pub fn get(&self, key: &str) -> Option<Object<'_>> {
        Kind::ALL.iter().find_map(|k| self.get_kind(key, *k))
    }

    /// The types `key` has: one, or several after a clash, or none.
    pub fn kinds(&self, key: &str) -> Vec<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .filter(|k| self.get_kind(key, *k).is_some())
            .collect()
    }

    /// Every object, ordered by key then type.
    pub fn objects(&self) -> Vec<(&str, Object<'_>)> {
        let mut all = self.all_objects();
        all.sort_by(|a, b| (a.0, a.1.kind()).cmp(&(b.0, b.1.kind())));
        all
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.is_bottom()
    }

    /// Keys that concurrent writers gave more than one type.
    pub fn clashes(&self) -> Vec<&str> {
        let mut clashing: Vec<&str> = Vec::new();
        for w in self.objects().windows(2) {
            if w[0].0 == w[1].0 && clashing.last() != Some(&w[0].0) {
                clashing.push(w[0].0);
            }
        }
        clashing
    }

    /// Registers and map fields with concurrent values, over all objects.
    pub fn conflicts(&self) -> usize {
        self.all_objects().iter().map(|(_, o)| o.conflicts()).sum()
    }

    /// Delta-mutator: the delta that `op` on `key` causes. Refuses an op of another type than the key's.
    pub fn apply(&self, key: &str, op: Op, w: &Writer) -> Result<Store, CrdtError> {
        let requested = op.kind();
        let kinds = self.kinds(key);
        if let Some(&existing) = kinds.first().filter(|_| !kinds.contains(&requested)) {
            return Err(CrdtError::TypeClash {
                key: key.to_string(),
                existing,
                requested,
            });
        }
        let k = key.to_string();
        let r = w.replica;
        let mut d = Store::default();
        match op {
            Op::GCounterInc(by) => d.gcounters = self.gcounters.update(k, |c| c.inc(r, by)),
            Op::CounterAdd(by) => d.counters = self.counters.update(k, |c| c.add(r, by)),
            Op::GSetAdd(x) => d.gsets = self.gsets.update(k, |s| s.add(x)),
            Op::TwoPSetAdd(x) => d.twopsets = self.twopsets.update(k, |s| s.add(x)),
            Op::TwoPSetRemove(x) => d.twopsets = self.twopsets.update(k, |s| s.remove(x)),
            Op::SetAdd(x) => d.sets = self.sets.update(k, |s| s.add(r, x)),
            Op::SetRemove(x) => d.sets = self.sets.update(k, |s| s.remove(&x)),
            Op::LwwSet(x) => d.lwws = self.lwws.update(k, |l| l.set(r, w.now_ms, x)),
            Op::RegisterSet(x) => d.registers = self.registers.update(k, |m| m.set(r, x)),
            Op::MapPut(f, x) => d.maps = self.maps.update(k, |m| m.put(r, f, x)),
            Op::MapRemove(f) => d.maps = self.maps.update(k, |m| m.remove(&f)),
        }
        Ok(d)
    }

    /// Delta-mutator for a batch: each op sees the ones before it, and the result is one delta.
    /// Any refused op refuses the whole batch.
    pub fn apply_batch(
        &self,
        ops: impl IntoIterator<Item = (String, Op)>,
        w: &Writer,
    ) -> Result<Store, CrdtError> {
        let mut acc = Store::default();
        for (key, op) in ops {
            let mut view = self.only(&key);
            view.join(&acc.only(&key));
            let d = view.apply(&key, op, w)?;
            acc.join(&d);
        }
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op_for(what: u8, arg: u8) -> (String, Op) {
        let v = Value::from(json!(arg % 3));
        // Keys "k0".."k3", each with a type of its own, and "clash" written with two types.
        let (key, op) = match what % 12 {
            1 => ("k0", Op::GCounterInc(u64::from(arg % 3))),
            2 => ("k0", Op::GCounterInc(1)),
            3 => ("k1", Op::SetAdd(v)),
            4 => ("k1", Op::SetRemove(v)),
            6 => ("k2", Op::MapPut(format!("f{}", arg % 2), v)),
            7 => ("k2", Op::MapRemove(format!("f{}", arg % 2))),
            8 => ("k3", Op::RegisterSet(v)),
            9 => (
                "clash",
                if arg.is_multiple_of(2) {
                    Op::LwwSet(v)
                } else {
                    Op::CounterAdd(-1)
                },
            ),
            11 => (
                "k4",
                if arg.is_multiple_of(2) {
                    Op::TwoPSetAdd(v)
                } else {
                    Op::TwoPSetRemove(v)
                },
            ),
            _ => ("k5", Op::GSetAdd(v)),
        };
        (key.to_string(), op)
    }

    crate::laws::lattice_laws!(Store, |s: &Store, r, what, arg| {
        let (key, op) = op_for(what, arg);
        s.apply(
            &key,
            op,
            &Writer {
                replica: r,
                now_ms: u64::from(what),
            },
        )
        .unwrap_or_default()
    });

    fn w(r: u64) -> Writer {
        Writer {
            replica: ReplicaId(r),
            now_ms: 1,
        }
    }

    #[test]
    fn a_local_write_of_another_type_is_refused() {
        let s = Store::default().joined(
            &Store::default()
                .apply("k", Op::GCounterInc(2), &w(1))
                .unwrap(),
        );
        let err = s
            .apply("k", Op::SetAdd(json!(1).into()), &w(1))
            .unwrap_err();
        assert_eq!(
            err,
            CrdtError::TypeClash {
                key: "k".into(),
                existing: Kind::GCounter,
                requested: Kind::Set
            }
        );
        assert_eq!(s.get("k").unwrap().value(), json!(2));
    }

    #[test]
    fn concurrent_types_for_one_key_both_survive_and_are_reported() {
        let a = Store::default()
            .apply("k", Op::GCounterInc(2), &w(1))
            .unwrap();
        let b = Store::default()
            .apply("k", Op::LwwSet(json!("x").into()), &w(2))
            .unwrap();
        let both = a.joined(&b);
        assert_eq!(both.kinds("k"), vec![Kind::GCounter, Kind::Lww]);
        assert_eq!(both.clashes(), vec!["k"]);
        assert_eq!(both.len(), 2);
    }

    #[test]
    fn materialised_values_follow_the_spec() {
        let ops = vec![
            ("c".to_string(), Op::CounterAdd(5)),
            ("c".to_string(), Op::CounterAdd(-7)),
            ("s".to_string(), Op::SetAdd(json!({"b": 1, "a": 2}).into())),
            ("l".to_string(), Op::LwwSet(json!("v").into())),
            ("m".to_string(), Op::MapPut("f".into(), json!(1).into())),
        ];
        let s = Store::default().apply_batch(ops, &w(1)).unwrap();
        assert_eq!(s.get("c").unwrap().value(), json!(-2));
        assert_eq!(s.get("s").unwrap().value(), json!([{"a": 2, "b": 1}]));
        assert_eq!(s.get("l").unwrap().value(), json!("v"));
        assert_eq!(s.get("m").unwrap().value(), json!({"f": [1]}));
        assert!(s.get("nothing").is_none());
    }

    #[test]
    fn a_batch_with_one_refused_op_is_refused_whole() {
        let ops = vec![
            ("a".to_string(), Op::GCounterInc(1)),
            ("a".to_string(), Op::SetAdd(json!(1).into())),
        ];
        assert!(matches!(
            Store::default().apply_batch(ops, &w(1)),
            Err(CrdtError::TypeClash { .. })
        ));
    }

    #[test]
    fn conflicts_are_counted_and_resolved_by_a_later_write() {
        let a = Store::default()
            .apply("r", Op::RegisterSet(json!(1).into()), &w(1))
            .unwrap();
        let b = Store::default()
            .apply("r", Op::RegisterSet(json!(2).into()), &w(2))
            .unwrap();
        let both = a.joined(&b);
        assert_eq!(
            (both.conflicts(), both.get("r").unwrap().value()),
            (1, json!([1, 2]))
        );
        let resolved = both.clone().joined(
            &both
                .apply("r", Op::RegisterSet(json!(3).into()), &w(1))
                .unwrap(),
        );
        assert_eq!(
            (resolved.conflicts(), resolved.get("r").unwrap().value()),
            (0, json!([3]))
        );
    }

    #[test]
    fn garbage_never_decodes_into_a_store() {
        for bytes in [
            &[0xffu8; 7][..],
            &[1, 2, 3],
            &[],
            &[8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ] {
            assert!(crate::codec::decode::<Store>(bytes).is_err());
        }
    }
}
