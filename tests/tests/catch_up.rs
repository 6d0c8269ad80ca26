//! Catch-up in proportion to the difference, on real processes: two nodes share a large state;
//! one restarts after the other took a few new elements. The bytes each side sends during the
//! catch-up, read from `/metrics`, stay within kilobytes (the whole state is ~1 MB), and no full
//! state is sent. Two shapes: one 100,000-element set with 10 new; 100 sets of 1,000 and one of
//! 20,000 with 20 new across two of them.

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, TempDir};
use serde_json::{json, Value};
use std::time::Duration;

fn sent(node: &NodeProc) -> f64 {
    sample(&metrics(node), "deltanode_sync_bytes_sent_total")
}

fn add(key: &str, i: u64) -> Value {
    json!({"key": key, "type": "gset", "op": "add", "value": i})
}

/// Loads `load` into a (b syncs it), stops b, writes `new` on a, restarts b; returns the bytes
/// a and b sent from b's restart until both converged.
fn catch_up_after_restart(tag: &str, load: Vec<Value>, new: Vec<Value>) -> (f64, f64) {
    let dir = TempDir::new(tag);
    // BP+RR: a restart is then always caught up by reconciliation, which this test measures
    // (under bp-rr-tree a short absence may be caught up with the deltas b had not acked).
    let alg = || ["--algorithm".to_string(), "bp-rr".to_string()];
    let a = NodeProc::start(&dir.join("a"), &alg());
    let b = NodeProc::start(
        &dir.join("b"),
        &[&["--peer".into(), a.addr()][..], &alg()].concat(),
    );
    let elements = load.len() + new.len();
    for ops in load.chunks(5_000) {
        let (status, _) = a.post_raw("/v1/batch", &json!({ "ops": ops }).to_string());
        assert_eq!(status, 200);
    }
    await_convergence(&[&a, &b], Duration::from_secs(120));
    let state_bytes = a.get("/v1/state").1.to_string().len();

    let b_dir = dir.join("b");
    assert!(b.terminate(), "b stops cleanly");
    let (status, _) = a.post_raw("/v1/batch", &json!({ "ops": new }).to_string());
    assert_eq!(status, 200);
    let a_before = sent(&a);
    let a_full_before = sample(&metrics(&a), "deltanode_full_state_sends_total");
    let b = NodeProc::start(&b_dir, &[&["--peer".into(), a.addr()][..], &alg()].concat());
    await_convergence(&[&a, &b], Duration::from_secs(60));
    // A few more sync rounds: nothing further should flow.
    std::thread::sleep(Duration::from_millis(500));
    let (a_sent, b_sent) = (sent(&a) - a_before, sent(&b));
    let (a_metrics, b_metrics) = (metrics(&a), metrics(&b));
    let count = |m: &str, name: &str| sample(m, name);
    eprintln!(
        "{tag}: after a restart a sent {a_sent} B, b sent {b_sent} B; the state's JSON is {state_bytes} B; \
         reconciliation rounds sent a {} b {}, ended a {} b {}, deltas a {} b {}",
        count(&a_metrics, "deltanode_sync_messages_sent_total{kind=\"digest\"}"),
        count(&b_metrics, "deltanode_sync_messages_sent_total{kind=\"digest\"}"),
        count(&a_metrics, "deltanode_reconciliations_total"),
        count(&b_metrics, "deltanode_reconciliations_total"),
        count(&a_metrics, "deltanode_sync_messages_sent_total{kind=\"delta\"}"),
        count(&b_metrics, "deltanode_sync_messages_sent_total{kind=\"delta\"}"),
    );
    // (Before the restart a full state may have gone out: b met a while a was loading, a dense
    // difference. The restart itself sends none.)
    assert_eq!(
        sample(&a_metrics, "deltanode_full_state_sends_total"),
        a_full_before
    );
    assert_eq!(sample(&b_metrics, "deltanode_full_state_sends_total"), 0.0);
    assert!(
        sample(&a_metrics, "deltanode_reconciliations_total")
            + sample(&b_metrics, "deltanode_reconciliations_total")
            >= 1.0
    );
    let keys: std::collections::BTreeSet<&str> =
        load.iter().filter_map(|op| op["key"].as_str()).collect();
    let held: usize = keys
        .iter()
        .map(|k| {
            b.get(&format!("/v1/objects/{k}")).1["value"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(held, elements, "b holds every element");
    (a_sent, b_sent)
}

#[test]
fn a_restart_after_ten_new_elements_costs_kilobytes_not_the_state() {
    let load = (0..100_000).map(|i| add("big", i)).collect();
    let new = (0..10).map(|i| add("big", 100_000 + i)).collect();
    let (a_sent, b_sent) = catch_up_after_restart("one-set", load, new);
    assert!(a_sent <= 8_192.0, "a sent {a_sent} B");
    assert!(b_sent <= 8_192.0, "b sent {b_sent} B");
}

#[test]
fn many_objects_with_twenty_new_elements_in_two_cost_kilobytes() {
    let load = (0..100)
        .flat_map(|k| (0..1_000).map(move |i| add(&format!("set-{k}"), i)))
        .chain((0..20_000).map(|i| add("big", i)))
        .collect();
    let new = (0..10)
        .flat_map(|i| [add("set-7", 5_000 + i), add("big", 50_000 + i)])
        .collect();
    let (a_sent, b_sent) = catch_up_after_restart("many-objects", load, new);
    assert!(a_sent + b_sent <= 16_384.0, "{a_sent} + {b_sent} B");
}

#[test]
fn a_state_larger_than_a_frame_reaches_a_new_node() {
    // 24 MiB of 512 KiB strings, more than the 16 MiB frame limit: a new node gets it all, in
    // messages under the limit (none refused as oversized), and no full state is sent.
    let dir = TempDir::new("over-a-frame");
    let a = NodeProc::start(&dir.join("a"), &[]);
    for i in 0..48 {
        let value = format!("{i:02}{}", "x".repeat(512 << 10));
        a.op("big", json!({"type": "gset", "op": "add", "value": value}));
    }
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    await_convergence(&[&a, &b], Duration::from_secs(120));
    for node in [&a, &b] {
        let m = metrics(node);
        assert_eq!(sample(&m, "deltanode_full_state_sends_total"), 0.0);
        assert_eq!(sample(&m, "deltanode_oversized_frames_total"), 0.0);
    }
    let (_, page) = b.get("/v1/objects/big?limit=1");
    assert_eq!(page["size"], json!(48));
}
