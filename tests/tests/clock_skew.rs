//! A fast clock on real processes: a node an hour ahead (its clock shifted by fault injection)
//! writes a last-writer-wins register; a normal node writes it a second later. The normal node
//! holds the fast write back (`--max-clock-skew`, 30 s by default) instead of letting it win for
//! the hour, says so per peer, in `/health` and in `/metrics`, and still takes the fast node's
//! other writes; the fast node, reading its neighbour's clock, says in its own `/health` that its
//! clock is the one off.

use deltanode_e2e::{metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::{Duration, Instant};

/// A node whose clock runs an hour ahead, having written "fast" to the register `colour`.
fn fast_node(dir: &TempDir) -> NodeProc {
    let fast = NodeProc::start_env(
        &dir.join("fast"),
        &[],
        &[("DELTANODE_FAULT_CLOCK_OFFSET_MS", "3600000")],
    );
    fast.op(
        "colour",
        json!({"type": "lww", "op": "set", "value": "fast"}),
    );
    fast
}

#[test]
fn a_write_stamped_an_hour_ahead_is_held_not_taken() {
    let dir = TempDir::new("clock-skew");
    let fast = fast_node(&dir);
    fast.op("visits", json!({"type": "gcounter", "op": "inc", "by": 2}));
    std::thread::sleep(Duration::from_secs(1));
    let normal = NodeProc::start(&dir.join("normal"), &["--peer".to_string(), fast.addr()]);
    normal.op(
        "colour",
        json!({"type": "lww", "op": "set", "value": "normal"}),
    );
    // The fast node's counter arrives; its register write does not.
    let deadline = Instant::now() + Duration::from_secs(30);
    while normal.get("/v1/objects/visits").1["value"] != json!(2) {
        assert!(
            Instant::now() < deadline,
            "the fast node's other writes never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(normal.get("/v1/objects/colour").1["value"], json!("normal"));
    let peers = normal.get("/v1/peers").1;
    let ahead = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == fast.peer_id.as_str())
        .and_then(|p| p["clock_ahead_ms"].as_u64())
        .expect("the fast peer's lead is shown");
    assert!((3_500_000..3_700_000).contains(&ahead), "{ahead}");
    let warnings = normal.get("/health").1["warnings"].to_string();
    assert!(
        warnings.contains(&fast.peer_id) && warnings.contains("ahead"),
        "{warnings}"
    );
    assert_eq!(
        sample(&metrics(&normal), "deltanode_writes_held_ahead"),
        1.0
    );
    // The fast node learns it is the one off: its neighbour's clock reads an hour behind.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let warnings = fast.get("/health").1["warnings"].to_string();
        if warnings.contains("this node's clock is 3600 s ahead") {
            break;
        }
        assert!(Instant::now() < deadline, "{warnings}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let offset = normal.get("/v1/peers").1[0]["clock_offset_ms"]
        .as_i64()
        .expect("measured");
    assert!((3_590_000..3_610_000).contains(&offset), "{offset}");
    // With one neighbour, the normal node cannot tell which side is off, and says so too.
    let warnings = normal.get("/health").1["warnings"].to_string();
    assert!(
        warnings.contains("this node's clock is 3600 s behind its neighbours' (the median of 1)"),
        "{warnings}"
    );
}

#[test]
fn without_the_bound_the_fast_write_wins() {
    let dir = TempDir::new("clock-skew-off");
    let fast = fast_node(&dir);
    let normal = NodeProc::start(
        &dir.join("normal"),
        &[
            "--max-clock-skew".to_string(),
            "0".to_string(),
            "--peer".to_string(),
            fast.addr(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while normal.get("/v1/objects/colour").1["value"] != json!("fast") {
        assert!(Instant::now() < deadline, "the fast write never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    normal.op(
        "colour",
        json!({"type": "lww", "op": "set", "value": "normal"}),
    );
    // A write after seeing it is stamped past it (the register's own hybrid clock), so it wins.
    assert_eq!(normal.get("/v1/objects/colour").1["value"], json!("normal"));
}
