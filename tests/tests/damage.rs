//! A damaged store on real processes: a node whose `state.redb` has a record changed on disk
//! refuses to start — a clear error naming the file and the ways out, never a panic, never another
//! state, so nothing damaged reaches its peers — and `deltanode repair` or `--recover-from-peers`
//! get it going again, its neighbours bringing back what it lost.

use deltanode_e2e::{await_convergence, binary, NodeProc, TempDir};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MARKER: &str = "a-distinctive-element-0123456789";

/// A node in `data` that took a few writes (one of them `MARKER`) and stopped; a peer `keeper`
/// that holds them too, left running.
fn written(dir: &TempDir, data: &Path) -> NodeProc {
    let keeper = NodeProc::start(&dir.join("keeper"), &[]);
    let node = NodeProc::start(data, &["--peer".to_string(), keeper.addr()]);
    for v in ["one", MARKER, "three"] {
        node.op("s", json!({"type": "set", "op": "add", "value": v}));
    }
    node.op("n", json!({"type": "gcounter", "op": "inc", "by": 5}));
    await_convergence(&[&node, &keeper], Duration::from_secs(30));
    assert!(node.terminate());
    keeper
}

/// Flips a byte inside every copy of `MARKER` in the store: the record holding it no longer
/// matches its checksum.
fn damage(data: &Path) {
    let path = data.join("state.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut hits = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..]
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
    {
        bytes[i + at + 3] ^= 0x20;
        hits += 1;
        i += at + MARKER.len();
    }
    assert!(hits > 0, "the element is in the store");
    std::fs::write(&path, bytes).unwrap();
}

/// `deltanode run` on `data`: its exit status and stderr (it must not start).
fn refused_run(data: &Path) -> (Option<i32>, String) {
    let out = Command::new(binary())
        .args([
            "run",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn set_of(node: &NodeProc) -> serde_json::Value {
    node.get("/v1/objects/s").1["value"].clone()
}

#[test]
fn a_damaged_store_is_refused_then_repaired_from_what_is_intact_and_the_peers() {
    let dir = TempDir::new("damaged-repair");
    let data = dir.join("n");
    let keeper = written(&dir, &data);
    damage(&data);
    let (code, stderr) = refused_run(&data);
    assert_eq!(code, Some(1), "an error, not a panic (101): {stderr}");
    assert!(
        stderr.contains("state.redb is damaged") && stderr.contains("deltanode repair"),
        "{stderr}"
    );
    let out = Command::new(binary())
        .args(["repair", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("log entries kept"),
        "{report}"
    );
    assert!(
        std::fs::read_dir(&data).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("state.redb.damaged-")),
        "the damaged file is kept aside"
    );
    let node = NodeProc::start(&data, &["--peer".to_string(), keeper.addr()]);
    await_convergence(&[&node, &keeper], Duration::from_secs(30));
    assert_eq!(set_of(&node), json!([MARKER, "one", "three"]));
    assert_eq!(node.get("/v1/objects/n").1["value"], json!(5));
}

#[test]
fn recover_from_peers_sets_a_damaged_store_aside_and_starts_empty() {
    let dir = TempDir::new("damaged-recover");
    let data = dir.join("n");
    let keeper = written(&dir, &data);
    let digest = keeper.digest();
    damage(&data);
    let node = NodeProc::start(
        &data,
        &[
            "--recover-from-peers".to_string(),
            "--peer".to_string(),
            keeper.addr(),
        ],
    );
    let warnings = node.get("/health").1["warnings"].to_string();
    assert!(
        warnings.contains("is damaged") && warnings.contains("--recover-from-peers"),
        "{warnings}"
    );
    assert_eq!(
        await_convergence(&[&node, &keeper], Duration::from_secs(30)),
        digest
    );
    assert_eq!(set_of(&node), json!([MARKER, "one", "three"]));
}

#[test]
fn a_lost_store_is_said_and_caught_up_under_a_fresh_replica_id() {
    let dir = TempDir::new("lost-store");
    let data = dir.join("n");
    let keeper = written(&dir, &data);
    std::fs::remove_file(data.join("state.redb")).unwrap();
    let node = NodeProc::start(&data, &["--peer".to_string(), keeper.addr()]);
    let warnings = node.get("/health").1["warnings"].to_string();
    assert!(warnings.contains("no stored state"), "{warnings}");
    await_convergence(&[&node, &keeper], Duration::from_secs(30));
    // Its next write is new to the keeper, which holds everything it wrote before.
    node.op("n", json!({"type": "gcounter", "op": "inc"}));
    await_convergence(&[&node, &keeper], Duration::from_secs(30));
    assert_eq!(keeper.get("/v1/objects/n").1["value"], json!(6));
}
