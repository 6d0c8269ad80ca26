//! The store's tests: typed operations, clashes, conflicts, encodings.

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
    // Every read path shows the rule's type (the first in `Kind::ALL`) and counts the key once.
    assert_eq!(both.len(), 1);
    let objects = both.objects();
    assert_eq!((objects.len(), objects[0].1.kind()), (1, Kind::GCounter));
    assert_eq!(both.get("k").unwrap().kind(), Kind::GCounter);
    let listed = both.conflict_list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].values.len(), 2);
    assert_eq!(listed[0].values[1].value, json!("x"));
    assert_eq!(both.conflicts(), 1);
}

#[test]
fn writes_that_change_nothing_are_bottom_and_others_are_not() {
    let mut s = Store::default();
    for (key, op) in [
        ("s", Op::SetAdd(json!(1).into())),
        ("l", Op::LwwSet(json!("v").into())),
        ("r", Op::RegisterSet(json!(2).into())),
        ("m", Op::MapPut("f".into(), json!(3).into())),
        ("g", Op::GSetAdd(json!(4).into())),
    ] {
        let d = s.apply(key, op.clone(), &w(1)).unwrap();
        assert!(!d.is_bottom(), "{key}: the first write changes something");
        s.join(&d);
        assert!(
            s.apply(key, op, &w(2)).unwrap().is_bottom(),
            "{key}: the same write again"
        );
    }
    assert!(!s
        .apply("s", Op::SetAdd(json!(9).into()), &w(1))
        .unwrap()
        .is_bottom());
    assert!(!s
        .apply("m", Op::MapPut("f".into(), json!(9).into()), &w(1))
        .unwrap()
        .is_bottom());
    // Writing one of two concurrent values resolves the conflict: not a no-op.
    let other = Store::default()
        .apply("r", Op::RegisterSet(json!(5).into()), &w(3))
        .unwrap();
    s.join(&other);
    assert!(!s
        .apply("r", Op::RegisterSet(json!(2).into()), &w(1))
        .unwrap()
        .is_bottom());
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

#[test]
fn a_resolve_settles_a_clash_everywhere_and_retires_the_other_types() {
    let a = Store::default()
        .apply("k", Op::GCounterInc(2), &w(1))
        .unwrap();
    let b = Store::default()
        .apply("k", Op::SetAdd(json!("x").into()), &w(2))
        .unwrap();
    let both = a.joined(&b);
    assert_eq!(
        both.get("k").unwrap().kind(),
        Kind::GCounter,
        "the rule before any resolve"
    );
    assert!(matches!(
        both.apply("k", Op::Resolve(Kind::Map), &w(1)),
        Err(CrdtError::NothingToKeep { .. })
    ));
    let resolve = both.apply("k", Op::Resolve(Kind::Set), &w(2)).unwrap();
    let settled = both.joined(&resolve);
    assert_eq!(settled.get("k").unwrap().value(), json!(["x"]));
    assert_eq!(
        (settled.conflicts(), settled.clashes().len(), settled.len()),
        (0, 0, 1)
    );
    assert_eq!(settled.objects().len(), 1, "the reserved key is invisible");
    assert_eq!(resolve.keys_touched(), vec!["k"]);
    assert!(settled
        .apply("k", Op::Resolve(Kind::Set), &w(2))
        .unwrap()
        .is_bottom());
    // The retired type refuses writes; the kept one takes them.
    assert!(matches!(
        settled.apply("k", Op::GCounterInc(1), &w(1)),
        Err(CrdtError::TypeClash {
            existing: Kind::Set,
            ..
        })
    ));
    assert!(settled
        .apply("k", Op::SetAdd(json!("y").into()), &w(1))
        .is_ok());
    // A type the resolver never saw, written concurrently, brings the clash back into view.
    let late = Store::default()
        .apply("k", Op::LwwSet(json!(1).into()), &w(3))
        .unwrap();
    let again = settled.clone().joined(&late);
    assert_eq!(again.clashes(), vec!["k"]);
    assert_eq!(
        again.get("k").unwrap().kind(),
        Kind::Set,
        "still the kept type"
    );
    // Reserved keys cannot be written directly.
    let reserved = crate::resolution::key_of("k");
    assert!(matches!(
        settled.apply(&reserved, Op::LwwSet(json!(1).into()), &w(1)),
        Err(CrdtError::ReservedKey(_))
    ));
}

proptest::proptest! {
    /// A batch's delta, joined into the store, gives what its ops applied one by one give, and
    /// the same refusal: runs of plain adds (the bulk path) and mixed runs alike. The store starts
    /// with some of the elements in.
    #[test]
    fn a_batch_equals_its_ops_one_by_one(
        before in proptest::collection::vec((0u8..24, 0u8..6), 0..12),
        batch in proptest::collection::vec((0u8..24, 0u8..6), 0..40),
    ) {
        let writer = w(1);
        // Plain adds on "a", "g", "t" (one set type each), anything on the rest.
        let op = |(what, arg): (u8, u8)| -> (String, Op) {
            let v = Value::from(json!(arg));
            match what {
                0..=5 => ("a".to_string(), Op::SetAdd(v)),
                6..=8 => ("g".to_string(), Op::GSetAdd(v)),
                9..=11 => ("t".to_string(), Op::TwoPSetAdd(v)),
                12 => ("a".to_string(), Op::SetRemove(v)),
                13 => ("g".to_string(), Op::CounterAdd(1)),
                _ => op_for(what, arg),
            }
        };
        let mut base = Store::default();
        for o in before.into_iter().map(op) {
            if let Ok(d) = base.apply(&o.0, o.1, &writer) {
                base.join(&d);
            }
        }
        let ops: Vec<(String, Op)> = batch.into_iter().map(op).collect();
        let mut one_by_one: Result<Store, CrdtError> = Ok(base.clone());
        for (k, o) in ops.clone() {
            one_by_one = one_by_one.and_then(|mut s| {
                let d = s.apply(&k, o, &writer)?;
                s.join(&d);
                Ok(s)
            });
        }
        match (base.apply_batch(ops, &writer), one_by_one) {
            (Ok(d), Ok(expected)) => {
                let mut got = base.clone();
                got.join(&d);
                proptest::prop_assert_eq!(got, expected);
            }
            (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => proptest::prop_assert!(false, "batch {:?}, one by one {:?}", a.map(|_| ()), b.map(|_| ())),
        }
    }
}
