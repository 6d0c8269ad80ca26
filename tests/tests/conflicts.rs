//! Conflicts on real processes: two nodes write one key with two types while apart, then meet.
//! Every read path on both nodes agrees on what the key shows, `/v1/conflicts` lists the clash,
//! the feed carries a `conflict` event, the metric counts it, and a `resolve` settles it
//! cluster-wide. Concurrent register values are listed with their origins and resolved by a write.

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, SseReader, TempDir};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What every read path of `node` says about `key`: (get's type, the listing's type, the state's
/// type, /health objects, /v1/objects count).
fn read_paths(node: &NodeProc, key: &str) -> (Value, Value, Value, Value, usize) {
    let (_, one) = node.get(&format!("/v1/objects/{key}"));
    let (_, list) = node.get("/v1/objects");
    let list = list.as_array().unwrap().clone();
    let listed = list
        .iter()
        .find(|o| o["key"] == key)
        .map(|o| o["type"].clone())
        .unwrap_or_default();
    let (_, state) = node.get("/v1/state");
    let (_, health) = node.get("/health");
    (
        one["type"].clone(),
        listed,
        state["objects"][key]["type"].clone(),
        health["objects"].clone(),
        list.len(),
    )
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_type_clash_reads_the_same_everywhere_is_listed_and_resolved() {
    let dir = TempDir::new("conflicts");
    // Apart: a makes "k" a counter, b makes it a set; both write a register concurrently.
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &[]);
    a.op("k", json!({"type":"counter","op":"inc","by":5}));
    b.op("k", json!({"type":"set","op":"add","value":"x"}));
    a.op("r", json!({"type":"register","op":"set","value":"from a"}));
    b.op("r", json!({"type":"register","op":"set","value":"from b"}));
    b.op("other", json!({"type":"gset","op":"add","value":1}));
    let feed = SseReader::open(&a, None);
    // b restarts pointing at a: they meet.
    let b_dir = dir.join("b");
    drop(b);
    let b = NodeProc::start(&b_dir, &["--peer".into(), a.addr()]);
    await_convergence(&[&a, &b], Duration::from_secs(20));

    let expected = (
        json!("counter"),
        json!("counter"),
        json!("counter"),
        json!(3),
        3,
    );
    assert_eq!(read_paths(&a, "k"), expected, "a's read paths");
    assert_eq!(read_paths(&b, "k"), expected, "b's read paths");

    let (_, conflicts) = a.get("/v1/conflicts");
    let conflicts = conflicts.as_array().unwrap().clone();
    let clash = conflicts
        .iter()
        .find(|c| c["key"] == "k")
        .expect("the clash is listed");
    assert_eq!(clash["reason"], "type_clash");
    let values: Vec<(Value, Value)> = clash["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["type"].clone(), v["value"].clone()))
        .collect();
    assert_eq!(
        values,
        vec![(json!("counter"), json!(5)), (json!("set"), json!(["x"]))]
    );
    let register = conflicts
        .iter()
        .find(|c| c["key"] == "r")
        .expect("the register is listed");
    assert_eq!(register["reason"], "concurrent_values");
    assert_eq!(register["values"].as_array().unwrap().len(), 2);
    let origins: Vec<Value> = register["values"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["origins"].as_array().unwrap().clone())
        .collect();
    // Each start writes under a replica id of its own: b wrote before its restart.
    let ids = |n: &NodeProc| n.get("/v1/node").1["replicas"].as_array().unwrap().clone();
    let (a_ids, b_ids) = (ids(&a), ids(&b));
    assert_eq!(origins.len(), 2);
    assert!(
        origins.iter().any(|o| a_ids.contains(o)) && origins.iter().any(|o| b_ids.contains(o)),
        "{origins:?}"
    );
    assert_eq!(b_ids.len(), 2, "b started twice");
    assert_eq!(b_ids.last(), Some(&b.get("/v1/node").1["replica"]));
    assert_eq!(b.get("/v1/conflicts").1.as_array().unwrap().len(), 2);
    assert_eq!(sample(&metrics(&a), "deltanode_conflicts"), 2.0);

    // The feed told a's watcher: a conflict event for "k" among the events b's update caused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_conflict = false;
    while !saw_conflict && Instant::now() < deadline {
        let ev = feed.next(Duration::from_secs(10));
        saw_conflict = ev.event == "conflict" && ev.data["key"] == "k";
    }
    assert!(saw_conflict, "a conflict event for k");

    // Writes resolve: b keeps the set, a rewrites the register.
    let (status, kept) = b.post_raw("/v1/objects/k", r#"{"type":"set","op":"resolve"}"#);
    assert_eq!(
        (status, kept["type"].clone(), kept["value"].clone()),
        (200, json!("set"), json!(["x"]))
    );
    a.op("r", json!({"type":"register","op":"set","value":"agreed"}));
    let (status, _) = a.post_raw("/v1/objects/k", r#"{"type":"map","op":"resolve"}"#);
    assert_eq!(status, 400, "a type the key does not have cannot be kept");
    wait_until("both settle", || {
        [&a, &b]
            .iter()
            .all(|n| n.get("/v1/conflicts").1 == json!([]))
            && [&a, &b]
                .iter()
                .all(|n| n.get("/v1/objects/k").1["type"] == "set")
    });
    await_convergence(&[&a, &b], Duration::from_secs(20));
    assert_eq!(sample(&metrics(&b), "deltanode_conflicts"), 0.0);
    let (status, err) = a.post_raw("/v1/objects/k", r#"{"type":"counter","op":"inc"}"#);
    assert_eq!(status, 409, "the retired type refuses writes: {err}");
    assert_eq!(
        read_paths(&a, "k"),
        (json!("set"), json!("set"), json!("set"), json!(3), 3)
    );
}
