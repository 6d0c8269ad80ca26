//! Backups on real processes: `deltanode ctl backup` takes one from a running node while a writer
//! keeps writing; `deltanode restore` builds a data dir from it. The restored state is the node's
//! state at one moment (a writer's numbers come back as an unbroken prefix), checkpoints come back
//! too, a store in place is only replaced with `--force` (and kept aside), a damaged backup is
//! refused, and the restored node, back among its peers, catches up and writes as a new replica.

use deltanode_e2e::{await_convergence, binary, NodeProc, TempDir};
use serde_json::json;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn deltanode(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_backup_taken_under_writes_restores_one_moment_of_the_node() {
    let dir = TempDir::new("backup");
    let a = Arc::new(NodeProc::start(&dir.join("a"), &[]));
    a.op("n", json!({"type": "gcounter", "op": "inc", "by": 7}));
    let (status, _) = a.post_raw("/v1/checkpoints", &json!({"label": "first"}).to_string());
    assert_eq!(status, 201);
    // A writer adds 0, 1, 2, … in order while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 50 {
                a.op("seq", json!({"type": "gset", "op": "add", "value": i}));
                i += 1;
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let file = dir.join("a.backup");
    let api = a.api.trim_start_matches("http://").to_string();
    let out = deltanode(&["ctl", "--api", &api, "backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();

    // Restored into a new data dir and started alone: one moment of a.
    let b_dir = dir.join("b");
    let out = deltanode(&[
        "restore",
        "--data-dir",
        b_dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let b = NodeProc::start(&b_dir, &[]);
    assert_eq!(b.get("/v1/objects/n").1["value"], json!(7));
    let mut seq: Vec<u64> =
        serde_json::from_value(b.get("/v1/objects/seq?limit=100000").1["value"].clone()).unwrap();
    seq.sort_unstable();
    assert!(
        !seq.is_empty() && (seq.len() as u64) < written,
        "{} of {written}",
        seq.len()
    );
    assert_eq!(
        seq,
        (0..seq.len() as u64).collect::<Vec<_>>(),
        "an unbroken prefix"
    );
    let checkpoints = b.get("/v1/checkpoints").1.to_string();
    assert!(checkpoints.contains("first"), "{checkpoints}");

    // A store in place is replaced only with --force, and kept aside.
    assert!(b.terminate());
    let out = deltanode(&[
        "restore",
        "--data-dir",
        b_dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && text(&out).contains("--force"),
        "{}",
        text(&out)
    );
    let out = deltanode(&[
        "restore",
        "--force",
        "--data-dir",
        b_dir.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read_dir(&b_dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("state.redb.replaced-")));

    // A damaged backup is refused.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let damaged = dir.join("damaged.backup");
    std::fs::write(&damaged, bytes).unwrap();
    let out = deltanode(&[
        "restore",
        "--data-dir",
        dir.join("c").to_str().unwrap(),
        damaged.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && text(&out).contains("damaged"),
        "{}",
        text(&out)
    );

    // Back among its peers: caught up, and its writes are new to them.
    let b = NodeProc::start(&b_dir, &["--peer".to_string(), a.addr()]);
    b.op("n", json!({"type": "gcounter", "op": "inc", "by": 1}));
    await_convergence(&[&a, &b], Duration::from_secs(30));
    assert_eq!(a.get("/v1/objects/n").1["value"], json!(8));
}
