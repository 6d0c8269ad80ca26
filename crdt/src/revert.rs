//! Rollback by compensating updates: given the store as it was at a checkpoint and as it is now, the
//! operations that bring every changed object's visible value back, as ordinary writes that replicate
//! and stick cluster-wide. Grow-only objects cannot go back; they are reported instead.
//!
//! Per type: a counter gets the opposite increment; an add-wins set removes what was added and
//! re-adds what was removed; a two-phase set removes what was added (what it removed is gone for
//! good); a last-writer-wins or multi-value register is written with its old value; a map removes
//! fields added and rewrites fields changed; a document deletes top-level fields added and writes
//! back, whole, each one changed or deleted. An object created after the checkpoint is brought back
//! to its type's empty value (0, [], {}, null). A register or map field that held concurrent values
//! at the checkpoint cannot be recreated by a write, so it is reported too.

use crate::doc::Step;
use crate::kind::Kind;
use crate::store::{Object, Op, Store};
use crate::value::Value;
use serde_json::Value as Json;
use std::collections::BTreeSet;

/// What a rollback to a checkpoint needs.
#[derive(Debug, Default, PartialEq)]
pub struct Revert {
    /// The compensating operations, as one batch.
    pub ops: Vec<(String, Op)>,
    /// Keys whose objects changed and cannot be reverted (grow-only, or a conflict to recreate).
    pub irreversible: Vec<String>,
    /// Keys the operations revert.
    pub reverted: Vec<String>,
}

/// The fields of an object's value (a map's or a document's) that differ between `then` (absent:
/// the object did not exist) and `now`: each with its value then — `None` for a field added since
/// (to remove), else the value to write back — fields of `now` first, then those gone since.
fn field_changes<'a>(then: Option<&'a Json>, now: &'a Json) -> Vec<(&'a String, Option<&'a Json>)> {
    let fields = |v: Option<&'a Json>| v.and_then(Json::as_object).into_iter().flatten();
    let was = |f: &String| then.and_then(Json::as_object).and_then(|m| m.get(f));
    let mut out = Vec::new();
    for (f, v) in fields(Some(now)) {
        match was(f) {
            None => out.push((f, None)),
            Some(old) if old != v => out.push((f, Some(old))),
            Some(_) => {}
        }
    }
    let is = now.as_object();
    for (f, old) in fields(then) {
        if !is.is_some_and(|m| m.contains_key(f)) {
            out.push((f, Some(old)));
        }
    }
    out
}

fn elements(o: Option<Object<'_>>) -> BTreeSet<Value> {
    let Some(o) = o else { return BTreeSet::new() };
    match o.value() {
        Json::Array(items) => items.iter().map(Value::new).collect(),
        _ => BTreeSet::new(),
    }
}

/// The compensating operations that take `now` back to `then`.
pub fn revert(then: &Store, now: &Store) -> Revert {
    let mut out = Revert::default();
    for (key, current) in now.typed_objects() {
        let kind = current.kind();
        let past = then.get_kind(key, kind);
        let past_value = past.map(|p| p.value());
        if past_value.as_ref() == Some(&current.value()) {
            continue;
        }
        let before = out.ops.len();
        let ok = match kind {
            Kind::GCounter | Kind::GSet => false,
            Kind::Counter => {
                let (was, is) = (
                    past_value.and_then(|v| v.as_i64()).unwrap_or(0),
                    current.value().as_i64().unwrap_or(0),
                );
                if let Some(by) = was.checked_sub(is) {
                    out.ops.push((key.to_string(), Op::CounterAdd(by)));
                }
                true
            }
            Kind::Set => {
                let (was, is) = (elements(past), elements(Some(current)));
                out.ops.extend(
                    is.difference(&was)
                        .map(|x| (key.to_string(), Op::SetRemove(x.clone()))),
                );
                out.ops.extend(
                    was.difference(&is)
                        .map(|x| (key.to_string(), Op::SetAdd(x.clone()))),
                );
                true
            }
            Kind::TwoPSet => {
                let (was, is) = (elements(past), elements(Some(current)));
                out.ops.extend(
                    is.difference(&was)
                        .map(|x| (key.to_string(), Op::TwoPSetRemove(x.clone()))),
                );
                was.is_subset(&is)
            }
            Kind::Lww => {
                let old = past_value.unwrap_or(Json::Null);
                out.ops
                    .push((key.to_string(), Op::LwwSet(Value::new(&old))));
                true
            }
            Kind::Register => match past_value
                .as_ref()
                .and_then(Json::as_array)
                .map(Vec::as_slice)
            {
                None | Some([]) => {
                    out.ops
                        .push((key.to_string(), Op::RegisterSet(Value::new(&Json::Null))));
                    true
                }
                Some([one]) => {
                    out.ops
                        .push((key.to_string(), Op::RegisterSet(Value::new(one))));
                    true
                }
                Some(_) => false,
            },
            Kind::Map => {
                let now = current.value();
                let mut ok = true;
                for (field, then) in field_changes(past_value.as_ref(), &now) {
                    match then.map(|v| v.as_array().map(Vec::as_slice)) {
                        None => out
                            .ops
                            .push((key.to_string(), Op::MapRemove(field.clone()))),
                        Some(Some([one])) => out
                            .ops
                            .push((key.to_string(), Op::MapPut(field.clone(), Value::new(one)))),
                        // Concurrent values then: no write recreates them.
                        Some(_) => ok = false,
                    }
                }
                ok
            }
            Kind::Doc => {
                // Each top-level field that changed is written back whole (or deleted).
                let now = current.value();
                for (field, then) in field_changes(past_value.as_ref(), &now) {
                    let path = vec![Step::Field(field.clone())];
                    let op = match then {
                        None => Op::DocDelete(path),
                        Some(v) => Op::DocPut(path, v.clone()),
                    };
                    out.ops.push((key.to_string(), op));
                }
                true
            }
        };
        if ok {
            out.reverted.push(key.to_string());
        } else {
            out.ops.truncate(before);
            out.irreversible.push(key.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dot::ReplicaId;
    use crate::lattice::Lattice;
    use crate::store::Writer;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use serde_json::json;

    /// A revertible op on one of a few keys, from two numbers.
    fn op(what: u8, arg: u8) -> (String, Op) {
        let v = Value::from(json!(arg % 4));
        let f = format!("f{}", arg % 3);
        let path = vec![Step::Field(f.clone())];
        match what % 12 {
            0 => ("c".into(), Op::CounterAdd(i64::from(arg % 7) - 3)),
            1 => ("s".into(), Op::SetAdd(v)),
            2 => ("s".into(), Op::SetRemove(v)),
            3 => ("l".into(), Op::LwwSet(v)),
            4 => ("r".into(), Op::RegisterSet(v)),
            5 => ("m".into(), Op::MapPut(f, v)),
            6 => ("m".into(), Op::MapRemove(f)),
            7 => ("t".into(), Op::TwoPSetAdd(v)),
            8 => ("g".into(), Op::GCounterInc(1)),
            9 => (
                "d".into(),
                Op::DocPut(path, json!({"n": arg % 4, "s": "ab"})),
            ),
            10 => (
                "d".into(),
                Op::DocSplice(
                    vec![Step::Field(f), Step::Field("s".into())],
                    1,
                    1,
                    "x".into(),
                ),
            ),
            _ => ("d".into(), Op::DocDelete(path)),
        }
    }

    fn run(
        state: &mut Store,
        ops: &[(u8, u8)],
        replica: u64,
        t: &mut u64,
    ) -> Result<(), TestCaseError> {
        for &(what, arg) in ops {
            *t += 1;
            let (k, o) = op(what, arg);
            let w = Writer {
                replica: ReplicaId(replica),
                now_ms: *t,
            };
            match state.apply(&k, o, &w) {
                Ok(d) => state.join(&d),
                // A document edit whose path is not there (yet): refused, nothing written.
                Err(e) => prop_assert!(k == "d", "{e}"),
            }
        }
        Ok(())
    }

    fn empty_of(kind: Kind) -> Json {
        match kind {
            Kind::Counter | Kind::GCounter => json!(0),
            Kind::Map | Kind::Doc => json!({}),
            Kind::Lww => Json::Null,
            Kind::Register => json!([null]),
            _ => json!([]),
        }
    }

    proptest! {
        #[test]
        fn applying_the_revert_restores_every_revertible_value(before in prop::collection::vec((any::<u8>(), any::<u8>()), 0..20), after in prop::collection::vec((any::<u8>(), any::<u8>()), 0..20)) {
            let (mut state, mut t) = (Store::default(), 0);
            run(&mut state, &before, 1, &mut t)?;
            let checkpoint = state.clone();
            // Changes after the checkpoint come from two replicas.
            run(&mut state, &after, 2, &mut t)?;
            run(&mut state, &after[..after.len() / 2], 1, &mut t)?;
            let r = revert(&checkpoint, &state);
            let batch = state.apply_batch(r.ops.clone(), &Writer { replica: ReplicaId(1), now_ms: t + 1 }).unwrap();
            let reverted = state.clone().joined(&batch);
            for (key, obj) in reverted.objects() {
                let want = checkpoint.get_kind(key, obj.kind()).map_or_else(|| empty_of(obj.kind()), |o| o.value());
                if r.irreversible.iter().any(|k| k == key) {
                    prop_assert_ne!(state.get_kind(key, obj.kind()).unwrap().value(), want.clone(), "{} is reported irreversible but did not change", key);
                } else {
                    prop_assert_eq!(obj.value(), want, "{} was not reverted", key);
                }
            }
            // Grow-only objects that changed are always reported.
            if checkpoint.get("g").map(|o| o.value()) != state.get("g").map(|o| o.value()) {
                prop_assert!(r.irreversible.contains(&"g".to_string()));
            }
        }
    }

    #[test]
    fn a_past_conflict_cannot_be_recreated_and_is_reported() {
        let w = |r| Writer {
            replica: ReplicaId(r),
            now_ms: 1,
        };
        let a = Store::default()
            .apply("r", Op::RegisterSet(json!(1).into()), &w(1))
            .unwrap();
        let b = Store::default()
            .apply("r", Op::RegisterSet(json!(2).into()), &w(2))
            .unwrap();
        let then = a.joined(&b);
        let now = then.clone().joined(
            &then
                .apply("r", Op::RegisterSet(json!(3).into()), &w(1))
                .unwrap(),
        );
        assert_eq!(revert(&then, &now).irreversible, vec!["r".to_string()]);
        assert_eq!(revert(&now, &now), Revert::default());
    }
}
