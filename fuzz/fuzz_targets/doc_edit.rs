//! JSON document edits: arbitrary sequences of `doc` ops (put, delete, insert, splice, with paths
//! over a few field names and small indexes, and nested values) on one object by two writers, each
//! on its own replica, merged both ways now and then. Never a panic; a refused edit changes
//! nothing; the state only grows; merges commute; every state reads as JSON (and its conflicts)
//! and round-trips through its encoding. (Parsing the ops' JSON is `api_op`'s.)
#![no_main]
use crdt::doc::Step;
use crdt::{codec, Lattice, Op, ReplicaId, Store, Writer};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value as Json};

const FIELDS: [&str; 4] = ["a", "b", "c", ""];

#[derive(Arbitrary, Debug)]
enum S {
    Field(u8),
    Index(u8),
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Num(i16),
    Str(String),
}

#[derive(Arbitrary, Debug)]
enum V {
    Scalar(Scalar),
    List(Vec<Scalar>),
    Map(Vec<(u8, Scalar)>),
    Nested(u8, Vec<Scalar>),
}

#[derive(Arbitrary, Debug)]
enum E {
    Put(Vec<S>, V),
    Delete(Vec<S>),
    Insert(Vec<S>, u8, Vec<V>),
    Splice(Vec<S>, u8, u8, String),
    Merge,
}

fn path(steps: &[S]) -> Vec<Step> {
    steps
        .iter()
        .take(6)
        .map(|s| match s {
            S::Field(f) => Step::Field(FIELDS[usize::from(*f) % FIELDS.len()].to_string()),
            S::Index(i) => Step::Index(usize::from(*i % 8)),
        })
        .collect()
}

fn scalar(s: &Scalar) -> Json {
    match s {
        Scalar::Null => Json::Null,
        Scalar::Bool(b) => json!(b),
        Scalar::Num(n) => json!(n),
        Scalar::Str(s) => json!(s),
    }
}

fn value(v: &V) -> Json {
    let field = |f: &u8| FIELDS[usize::from(*f) % FIELDS.len()].to_string();
    match v {
        V::Scalar(s) => scalar(s),
        V::List(xs) => Json::Array(xs.iter().map(scalar).collect()),
        V::Map(fs) => Json::Object(fs.iter().map(|(f, s)| (field(f), scalar(s))).collect()),
        V::Nested(f, xs) => json!({ field(f): { "l": xs.iter().map(scalar).collect::<Vec<_>>() } }),
    }
}

fuzz_target!(|edits: Vec<(bool, E)>| {
    let mut replicas = [Store::default(), Store::default()];
    for (i, (second, edit)) in edits.iter().enumerate() {
        let r = usize::from(*second);
        let op = match edit {
            E::Merge => {
                let (a, b) = (replicas[0].clone(), replicas[1].clone());
                let (ab, ba) = (a.clone().joined(&b), b.joined(&a));
                assert_eq!(ab, ba, "merges commute");
                replicas = [ab.clone(), ab];
                continue;
            }
            E::Put(p, v) => Op::DocPut(path(p), value(v)),
            E::Delete(p) => Op::DocDelete(path(p)),
            E::Insert(p, at, vs) => {
                Op::DocInsert(path(p), usize::from(*at % 16), vs.iter().map(value).collect())
            }
            E::Splice(p, at, n, text) => {
                Op::DocSplice(path(p), usize::from(*at), usize::from(*n % 16), text.clone())
            }
        };
        let w = Writer {
            replica: ReplicaId(r as u64 + 1),
            now_ms: i as u64,
        };
        let before = replicas[r].clone();
        match replicas[r].apply("d", op, &w) {
            Ok(delta) => {
                replicas[r].join(&delta);
                assert!(before.leq(&replicas[r]), "the state only grows");
                if let (Some(o), Some(d)) = (replicas[r].get("d"), delta.get("d")) {
                    let _ = o.change(&d, 1_000);
                }
            }
            Err(_) => assert_eq!(replicas[r], before, "a refused edit changes nothing"),
        }
        if let Some(o) = replicas[r].get("d") {
            let _ = o.value().to_string();
            let _ = o.conflicts();
        }
    }
    for s in &replicas {
        let bytes = codec::encode(s).expect("encodes");
        assert_eq!(&codec::decode::<Store>(&bytes).expect("decodes"), s);
        let _ = s.conflict_list();
    }
});
