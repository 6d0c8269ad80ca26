//! Conflicts a person may want to see and resolve: keys that concurrent writers gave different
//! types (a *type clash*), and registers, map fields or document fields holding concurrent values.
//!
//! Every read path shows a clashing key as the type that comes first in [`Kind::ALL`] (see
//! [`crate::kind`]); [`Store::conflict_list`] lists what that view hides. A register or map field is
//! resolved by writing it (the write overwrites every value it saw); a type clash by writing the
//! type that should stay with a `resolve` (see [`crate::resolution`]).

use crate::kind::Kind;
use crate::store::{Object, Store};
use crate::ReplicaId;
use serde::Serialize;
use serde_json::Value as Json;

/// What kind of conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Concurrent writes gave the key more than one type.
    TypeClash,
    /// A register (or a map field) holds values written concurrently.
    ConcurrentValues,
}

/// One value of a conflict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The type it has.
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: Kind,
    /// The value, as the API shows it.
    pub value: Json,
    /// Where it came from: the replicas whose writes hold it, where the type records writers
    /// (registers, map fields, add-wins sets, last-writer-wins registers); empty for the others.
    /// Serialised as 16 hex digits each (JSON numbers cannot hold every 64-bit id).
    #[serde(serialize_with = "replica_hex")]
    pub origins: Vec<ReplicaId>,
}

fn kind_name<S: serde::Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

fn replica_hex<S: serde::Serializer>(ids: &[ReplicaId], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(|r| format!("{:016x}", r.0)))
}

/// One conflict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conflict {
    /// The object's key.
    pub key: String,
    /// For concurrent values in a map: the field; in a document: the field's path, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What kind of conflict.
    pub reason: Reason,
    /// The type every read path shows for the key.
    #[serde(rename = "type", serialize_with = "kind_name")]
    pub kind: Kind,
    /// The competing values (for a type clash, the shown type's first).
    pub values: Vec<Candidate>,
}

impl Object<'_> {
    /// The replicas whose live writes make up this object, where the type records them.
    pub fn writers(&self) -> Vec<ReplicaId> {
        let mut who: Vec<ReplicaId> = match self {
            Object::Set(s) => s.kernel().entries().map(|(d, ..)| d.replica).collect(),
            Object::Lww(r) => r.stamp().map(|s| s.replica).into_iter().collect(),
            Object::Register(r) => r
                .values_with_writers()
                .into_iter()
                .flat_map(|(_, w)| w)
                .collect(),
            Object::Map(m) => m
                .fields()
                .flat_map(|f| m.get_with_writers(f))
                .flat_map(|(_, w)| w)
                .collect(),
            Object::Doc(d) => d.writers(),
            _ => vec![],
        };
        who.sort();
        who.dedup();
        who
    }
}

impl Store {
    /// The conflicts at `key`: a type clash first, then the concurrent values of the shown object.
    pub fn conflicts_at(&self, key: &str) -> Vec<Conflict> {
        let mut out = Vec::new();
        let Some(shown) = self.get(key) else {
            return out;
        };
        let kind = shown.kind();
        let kinds = self.kinds(key);
        if self.is_clash(key) {
            out.push(Conflict {
                key: key.to_string(),
                field: None,
                reason: Reason::TypeClash,
                kind,
                values: std::iter::once(kind)
                    .chain(kinds.iter().copied().filter(|k| *k != kind))
                    .filter_map(|k| self.get_kind(key, k))
                    .map(|o| Candidate {
                        kind: o.kind(),
                        value: o.value(),
                        origins: o.writers(),
                    })
                    .collect(),
            });
        }
        let concurrent = |field: Option<String>, values: Vec<(&crate::Value, Vec<ReplicaId>)>| {
            (values.len() > 1).then(|| Conflict {
                key: key.to_string(),
                field,
                reason: Reason::ConcurrentValues,
                kind,
                values: values
                    .into_iter()
                    .map(|(v, origins)| Candidate {
                        kind,
                        value: v.to_json(),
                        origins,
                    })
                    .collect(),
            })
        };
        match shown {
            Object::Register(r) => out.extend(concurrent(None, r.values_with_writers())),
            Object::Map(m) => out.extend(
                m.fields()
                    .filter_map(|f| concurrent(Some(f.clone()), m.get_with_writers(f))),
            ),
            // A document's field: its path as JSON, e.g. `["note","title"]`.
            Object::Doc(d) => {
                out.extend(d.concurrent_fields().into_iter().map(|(path, writes)| {
                    Conflict {
                        key: key.to_string(),
                        field: Some(path.to_string()),
                        reason: Reason::ConcurrentValues,
                        kind,
                        values: writes
                            .into_iter()
                            .map(|(value, who)| Candidate {
                                kind,
                                value,
                                origins: vec![who],
                            })
                            .collect(),
                    }
                }))
            }
            _ => {}
        }
        out
    }

    /// Every conflict, by key.
    pub fn conflict_list(&self) -> Vec<Conflict> {
        self.objects()
            .into_iter()
            .flat_map(|(k, _)| self.conflicts_at(k))
            .collect()
    }

    /// How many conflicts [`Store::conflict_list`] lists, without building their values.
    pub fn conflicts(&self) -> usize {
        self.objects()
            .into_iter()
            .map(|(k, o)| {
                usize::from(self.is_clash(k))
                    + match o {
                        Object::Register(r) => usize::from(r.values().len() > 1),
                        Object::Map(m) => m.fields().filter(|f| m.get(f).len() > 1).count(),
                        Object::Doc(d) => d.conflicts(),
                        _ => 0,
                    }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::Lattice;
    use crate::store::{Op, Writer};
    use proptest::prelude::*;
    use serde_json::json;

    /// A write that may clash: key `k{key}` written as one of several types, or a resolve.
    fn op(key: u8, what: u8, arg: u8) -> (String, Op) {
        let v = crate::Value::from(json!(arg % 3));
        let op = match what % 7 {
            0 => Op::CounterAdd(i64::from(arg % 4)),
            6 => Op::Resolve(Kind::ALL[usize::from(arg) % Kind::ALL.len()]),
            1 => Op::SetAdd(v),
            2 => Op::RegisterSet(v),
            3 => Op::MapPut(format!("f{}", arg % 2), v),
            4 => Op::LwwSet(v),
            _ => Op::GSetAdd(v),
        };
        (format!("k{}", key % 3), op)
    }

    /// Objects as listed, conflicts, `len`, the conflict count.
    type Reads = (Vec<(String, Kind, Json)>, Vec<Conflict>, usize, usize);

    /// What every read path shows, as the API builds it.
    fn reads(s: &Store) -> Reads {
        let objects: Vec<_> = s
            .objects()
            .into_iter()
            .map(|(k, o)| (k.to_string(), o.kind(), o.value()))
            .collect();
        for (k, kind, value) in &objects {
            let one = s.get(k).expect("listed, so readable");
            assert_eq!(
                (one.kind(), &one.value()),
                (*kind, value),
                "get and objects agree"
            );
        }
        let conflicts = s.conflict_list();
        assert_eq!(
            s.conflicts(),
            conflicts.len(),
            "the count is the list's length"
        );
        assert_eq!(s.len(), objects.len(), "len counts what objects lists");
        if let Some(c) = conflicts.first() {
            let json = serde_json::to_value(c).unwrap();
            assert_eq!(json["type"], c.kind.name(), "API names in the JSON");
        }
        (objects, conflicts, s.len(), s.conflicts())
    }

    proptest! {
        /// Three replicas write (clashing) ops apart, then exchange their deltas in random orders:
        /// every read path on every replica shows the same objects and the same conflicts.
        #[test]
        fn every_read_path_agrees_on_every_replica(
            writes in prop::collection::vec((0u8..3, any::<u8>(), any::<u8>(), any::<u8>()), 1..30),
            orders in prop::collection::vec(Just(()).prop_perturb(|_, mut rng| {
                let mut v: Vec<usize> = (0..30).collect();
                for i in (1..v.len()).rev() { v.swap(i, rng.random_range(0..=i)); }
                v
            }), 3),
        ) {
            let mut replicas = vec![Store::default(); 3];
            let mut deltas = Vec::new();
            for (who, key, what, arg) in writes {
                let r = usize::from(who);
                let w = Writer { replica: crate::ReplicaId(u64::from(who) + 1), now_ms: u64::from(arg) };
                // A refused write (the key has another type here) is what a user would see: skip it.
                if let Ok(d) = replicas[r].apply_batch([op(key, what, arg)], &w) {
                    replicas[r].join(&d);
                    deltas.push(d);
                }
            }
            for (r, order) in orders.iter().enumerate() {
                for &i in order.iter().filter(|&&i| i < deltas.len()) {
                    replicas[r].join(&deltas[i]);
                }
                // Deltas past 30 (none here) and any the order skipped: deliver in sequence.
                for d in &deltas {
                    replicas[r].join(d);
                }
            }
            let first = reads(&replicas[0]);
            for r in &replicas[1..] {
                prop_assert_eq!(&reads(r), &first);
            }
        }
    }
}
