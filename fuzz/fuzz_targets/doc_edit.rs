//! JSON document edits: sequences of arbitrary API ops (as JSON text) on one `doc` object, by two
//! writers each on its own replica, merged now and then. Never a panic; a refused edit changes
//! nothing; the state only grows; merges commute; every state reads as JSON and round-trips
//! through its encoding.
#![no_main]
use crdt::{codec, Lattice, Op, ReplicaId, Store, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|edits: Vec<(bool, Vec<u8>)>| {
    let mut replicas = [Store::default(), Store::default()];
    for (i, (second, bytes)) in edits.iter().enumerate() {
        let r = usize::from(*second);
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            // Not JSON: merge the two replicas instead, both ways.
            let (a, b) = (replicas[0].clone(), replicas[1].clone());
            let (ab, ba) = (a.clone().joined(&b), b.joined(&a));
            assert_eq!(ab, ba, "merges commute");
            replicas = [ab.clone(), ab];
            continue;
        };
        let Ok(op) = deltanode::ops::parse(&json, &[]) else {
            continue;
        };
        if !matches!(op, Op::DocPut(..) | Op::DocDelete(_) | Op::DocInsert(..) | Op::DocSplice(..)) {
            continue;
        }
        let w = Writer {
            replica: ReplicaId(r as u64 + 1),
            now_ms: i as u64,
        };
        let before = replicas[r].clone();
        match replicas[r].apply("d", op, &w) {
            Ok(delta) => {
                replicas[r].join(&delta);
                assert!(before.leq(&replicas[r]), "the state only grows");
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
    }
});
