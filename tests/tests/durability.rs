//! Durability on real processes: every acknowledged write survives `kill -9` in the middle of a
//! write burst, again and again, and a restarted replica never reuses a dot or a counter entry.

use deltanode_e2e::{await_convergence, NodeProc, TempDir};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn acknowledged_writes_survive_kill_9_in_the_middle_of_a_burst_repeatedly() {
    let dir = TempDir::new("kill9");
    let data = dir.join("n");
    let acked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut acked_incs = 0u64;
    for round in 0..4u64 {
        let node = Arc::new(NodeProc::start(&data, &[]));
        let pid = node.pid().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let incs = Arc::new(Mutex::new(0u64));
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (node, stop, acked, incs) =
                    (node.clone(), stop.clone(), acked.clone(), incs.clone());
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let id = round << 40 | w << 32 | i;
                        let body = json!({"ops":[
                            {"key":"acked","type":"gset","op":"add","value":id},
                            {"key":"incs","type":"gcounter","op":"inc"}
                        ]});
                        match std::panic::catch_unwind(|| {
                            node.post_raw("/v1/batch", &body.to_string())
                        }) {
                            Ok((200, _)) => {
                                acked.lock().unwrap().insert(id);
                                *incs.lock().unwrap() += 1;
                            }
                            _ => break, // the node died under us: this write was never acknowledged
                        }
                    }
                })
            })
            .collect();
        // Kill at a different moment each round, mid-burst.
        std::thread::sleep(Duration::from_millis(150 + 90 * round));
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        acked_incs += *incs.lock().unwrap();
    }
    let node = NodeProc::start(&data, &[]);
    let (_, state) = node.get("/v1/state");
    let stored: BTreeSet<u64> = state["objects"]["acked"]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 100,
        "the bursts wrote something: {}",
        acked.len()
    );
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // Unacknowledged writes may have landed too, so the counter is at least the acknowledged count,
    // and it moves together with the set (one batch, one delta).
    let incs = state["objects"]["incs"]["value"].as_u64().unwrap();
    assert!(incs >= acked_incs, "{incs} < {acked_incs}");
    assert_eq!(
        incs,
        stored.len() as u64,
        "a batch is atomic across crashes"
    );
}

#[test]
fn a_restarted_replica_never_reuses_a_dot_or_a_counter_entry() {
    let dir = TempDir::new("dots");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    a.op("s", json!({"type":"set","op":"add","value":"x"}));
    a.op("c", json!({"type":"gcounter","op":"inc"}));
    a.op("r", json!({"type":"register","op":"set","value":"before"}));
    await_convergence(&[&a, &b], Duration::from_secs(10));
    a.kill();
    let a = NodeProc::start(&dir.join("a"), &["--peer".into(), b.addr()]);
    a.op("s", json!({"type":"set","op":"add","value":"y"}));
    a.op("c", json!({"type":"gcounter","op":"inc"}));
    a.op("r", json!({"type":"register","op":"set","value":"after"}));
    await_convergence(&[&a, &b], Duration::from_secs(20));
    let (_, state) = b.get("/v1/state");
    assert_eq!(
        state["objects"]["s"]["value"],
        json!(["x", "y"]),
        "a reused dot would hide y"
    );
    assert_eq!(
        state["objects"]["c"]["value"],
        json!(2),
        "a reused counter entry would stay at 1"
    );
    assert_eq!(state["objects"]["r"]["value"], json!(["after"]));
}
