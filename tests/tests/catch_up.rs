//! Catch-up in proportion to the difference, on real processes: two nodes share a 100,000-element
//! set; one restarts after the other took 10 new elements. The bytes each side sends during the
//! catch-up, read from `/metrics`, stay within a few kilobytes (the whole state is ~1 MB), and no
//! full state is sent.

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::Duration;

const ELEMENTS: u64 = 100_000;
const NEW: u64 = 10;

fn sent(node: &NodeProc) -> f64 {
    sample(&metrics(node), "deltanode_sync_bytes_sent_total")
}

#[test]
fn a_restart_after_ten_new_elements_costs_kilobytes_not_the_state() {
    let dir = TempDir::new("catch-up");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    for chunk in 0..ELEMENTS / 5_000 {
        let ops: Vec<_> = (chunk * 5_000..(chunk + 1) * 5_000)
            .map(|i| json!({"key": "big", "type": "gset", "op": "add", "value": i}))
            .collect();
        let (status, _) = a.post_raw("/v1/batch", &json!({ "ops": ops }).to_string());
        assert_eq!(status, 200);
    }
    await_convergence(&[&a, &b], Duration::from_secs(120));
    let state_bytes = a.get("/v1/state").1.to_string().len();

    let b_dir = dir.join("b");
    assert!(b.terminate(), "b stops cleanly");
    for i in 0..NEW {
        a.op(
            "big",
            json!({"type": "gset", "op": "add", "value": ELEMENTS + i}),
        );
    }
    let a_before = sent(&a);
    let a_full_before = sample(&metrics(&a), "deltanode_full_state_sends_total");
    let b = NodeProc::start(&b_dir, &["--peer".into(), a.addr()]);
    await_convergence(&[&a, &b], Duration::from_secs(60));
    // A few more sync rounds: nothing further should flow.
    std::thread::sleep(Duration::from_millis(500));
    let (a_sent, b_sent) = (sent(&a) - a_before, sent(&b));
    let a_metrics = metrics(&a);
    let b_metrics = metrics(&b);
    let count = |m: &str, name: &str| sample(m, name);
    eprintln!(
        "catch-up after a restart: a sent {a_sent} B, b sent {b_sent} B; the state's JSON is {state_bytes} B; \
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
    assert!(a_sent <= 8_192.0, "a sent {a_sent} B");
    assert!(b_sent <= 8_192.0, "b sent {b_sent} B");
    assert_eq!(
        b.get("/v1/objects/big").1["value"]
            .as_array()
            .unwrap()
            .len() as u64,
        ELEMENTS + NEW
    );
}
