//! Operating a node: the Prometheus metrics, and the peers view.

use deltanode_e2e::{await_convergence, NodeProc, TempDir};
use serde_json::json;
use std::time::Duration;

/// The value of the sample `name` (with its labels, exactly as printed) in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

fn metrics(node: &NodeProc) -> String {
    let resp = ureq::get(format!("{}/metrics", node.api)).call().unwrap();
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    resp.into_body().read_to_string().unwrap()
}

#[test]
fn metrics_cover_the_spec_and_count_what_happened() {
    let dir = TempDir::new("metrics");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    for i in 0..5 {
        a.op("s", json!({"type":"gset","op":"add","value":i}));
    }
    b.op("r", json!({"type":"register","op":"set","value":"b"}));
    a.op("r", json!({"type":"register","op":"set","value":"a"}));
    await_convergence(&[&a, &b], Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let text = metrics(&a);
    for name in [
        "deltanode_sync_messages_sent_total{kind=\"delta\"}",
        "deltanode_sync_messages_sent_total{kind=\"ack\"}",
        "deltanode_sync_messages_sent_total{kind=\"state\"}",
        "deltanode_sync_messages_sent_total{kind=\"digest\"}",
        "deltanode_sync_bytes_sent_total",
        "deltanode_sync_bytes_received_total",
        "deltanode_sync_payload_units_sent_total",
        "deltanode_sync_metadata_units_sent_total",
        "deltanode_delta_buffer_groups",
        "deltanode_neighbours",
        "deltanode_neighbour_down_total",
        "deltanode_objects",
        "deltanode_conflicts",
        "deltanode_updates_total{origin=\"local\"}",
        "deltanode_updates_total{origin=\"remote\"}",
        "deltanode_replication_lag_seconds_count",
        "deltanode_decode_errors_total",
        "deltanode_full_state_sends_total",
    ] {
        sample(&text, name);
    }
    assert_eq!(
        sample(&text, "deltanode_updates_total{origin=\"local\"}"),
        6.0
    );
    assert!(sample(&text, "deltanode_updates_total{origin=\"remote\"}") >= 1.0);
    assert_eq!(sample(&text, "deltanode_neighbours"), 1.0);
    assert_eq!(sample(&text, "deltanode_objects"), 2.0);
    assert!(
        sample(&text, "deltanode_sync_payload_units_sent_total") >= 5.0,
        "a's five elements went to b"
    );
    assert!(sample(&text, "deltanode_sync_bytes_sent_total") > 0.0);
    assert_eq!(
        sample(&text, "deltanode_replication_lag_seconds_count"),
        6.0,
        "every local update was acked by b"
    );
    assert_eq!(
        sample(&text, "deltanode_delta_buffer_groups"),
        0.0,
        "everything acked, the buffer drained"
    );
    assert_eq!(sample(&text, "deltanode_decode_errors_total"), 0.0);
    assert!(text.contains(&format!(
        "deltanode_neighbour_bytes_sent_total{{peer=\"{}\"}}",
        b.peer_id
    )));
    let (_, peers) = a.get("/v1/peers");
    assert_eq!(peers[0]["peer_id"], json!(b.peer_id));
    assert_eq!(peers[0]["connected"], json!(true));
    assert_eq!(peers[0]["pending_groups"], json!(0));
    assert!(peers[0]["last_ack_unix_ms"].as_u64().unwrap() > 0);
}
