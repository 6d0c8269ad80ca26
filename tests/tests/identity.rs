//! Copied data dirs (a restored backup, a container image, a directory copied beside the
//! original): two copies of one node's data dir run beside a third node, each takes 200
//! acknowledged increments and set additions, and every node ends with all of them — each start
//! writes under a fresh replica id, so the copies never share a dot or a counter entry, and the
//! copy, found away from its home, takes a new network identity (logged, in `/health` and in
//! `/metrics`), so its peers do not take the two for one node.

use deltanode_e2e::{await_convergence, local_args, metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::{Duration, Instant};

const WRITES: u64 = 200;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_copies_of_a_data_dir_lose_no_acknowledged_write() {
    let dir = TempDir::new("copied");
    let original = NodeProc::start(&dir.join("a"), &[]);
    original.op("n", json!({"type": "gcounter", "op": "inc"}));
    original.op("s", json!({"type": "set", "op": "add", "value": "before"}));
    let original_id = original.peer_id.clone();
    assert!(original.terminate());
    copy_dir(&dir.join("a"), &dir.join("a-copy"));

    let c = NodeProc::start(&dir.join("c"), &[]);
    let peer = ["--peer".to_string(), c.addr()];
    let a = NodeProc::start(&dir.join("a"), &peer);
    let copy = NodeProc::start(&dir.join("a-copy"), &peer);
    assert_ne!(
        a.get("/v1/node").1["replica"],
        copy.get("/v1/node").1["replica"],
        "each copy writes as a replica of its own"
    );
    assert_ne!(
        a.peer_id, copy.peer_id,
        "the copy has a network identity of its own"
    );
    assert_eq!(original_id, a.peer_id, "the original keeps its identity");
    let warnings = copy.get("/health").1["warnings"].to_string();
    assert!(
        warnings.contains("copied or moved") && warnings.contains(&a.peer_id),
        "{warnings}"
    );
    assert_eq!(a.get("/health").1["warnings"], json!([]));
    assert_eq!(sample(&metrics(&copy), "deltanode_identity_rekeyed"), 1.0);
    assert_eq!(sample(&metrics(&a), "deltanode_identity_rekeyed"), 0.0);
    for i in 0..WRITES {
        for (who, node) in [("a", &a), ("copy", &copy)] {
            let body = json!({"ops": [
                {"key": "n", "type": "gcounter", "op": "inc"},
                {"key": "s", "type": "set", "op": "add", "value": format!("{who}-{i}")},
            ]});
            assert_eq!(node.post_raw("/v1/batch", &body.to_string()).0, 200);
        }
    }
    await_convergence(&[&a, &copy, &c], Duration::from_secs(60));
    for node in [&a, &copy, &c] {
        assert_eq!(
            node.get("/v1/objects/n").1["value"],
            json!(2 * WRITES + 1),
            "every acknowledged increment counted"
        );
        let set = node.get("/v1/objects/s?limit=1000").1;
        assert_eq!(
            set["value"].as_array().map(Vec::len),
            Some(2 * WRITES as usize + 1),
            "every acknowledged element kept"
        );
    }
}

/// A copy that looks like the original in every way — the same machine, host name and path (as a
/// VM clone would be; here a private mount namespace puts the copy at the original's path) — keeps
/// the identity at start, so two processes run as one PeerId. Their neighbour sees the replica ids
/// they answer with alternate, says so, and tells them; each says so too, and takes a new identity
/// at its next start. Needs root (`DELTANODE_SKIP_NETNS=1` skips).
#[test]
fn a_clone_at_the_same_path_is_found_by_its_neighbours_and_rekeyed_at_its_next_start() {
    if deltanode_e2e::netns::skipped() {
        return;
    }
    let dir = TempDir::new("vm-clone");
    let original = NodeProc::start(&dir.join("a"), &[]);
    let id = original.peer_id.clone();
    assert!(original.terminate());
    copy_dir(&dir.join("a"), &dir.join("clone"));
    let c = NodeProc::start(&dir.join("c"), &[]);
    let a = NodeProc::start(&dir.join("a"), &["--peer".to_string(), c.addr()]);
    let path = dir.join("a").display().to_string();
    let script = format!(
        "mount --bind {} {path} && exec \"$0\" \"$@\"",
        dir.join("clone").display()
    );
    let args = local_args(&dir.join("a"), &["--peer".to_string(), c.addr()]);
    let clone = NodeProc::start_with(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        &args,
        None,
    );
    assert_eq!(clone.peer_id, id, "the clone keeps the identity at start");
    assert_eq!(a.peer_id, id);
    let deadline = Instant::now() + Duration::from_secs(150);
    let told = |n: &NodeProc| {
        n.get("/health").1["warnings"]
            .to_string()
            .contains("another process answers with this node's identity")
    };
    loop {
        let seen = c.get("/health").1["warnings"]
            .to_string()
            .contains(&format!("two processes answer with neighbour {id}"));
        if seen && (told(&a) || told(&clone)) {
            break;
        }
        assert!(Instant::now() < deadline, "the clone was never found");
        std::thread::sleep(Duration::from_millis(500));
    }
    // The one told takes a new identity at its next start.
    let (told_dir, proc) = if told(&a) {
        (dir.join("a"), a)
    } else {
        (dir.join("clone"), clone)
    };
    assert!(told_dir.join("identity.rekey").exists());
    assert!(proc.terminate());
    let again = NodeProc::start(&told_dir, &[]);
    assert_ne!(again.peer_id, id, "a new identity");
    let warnings = again.get("/health").1["warnings"].to_string();
    assert!(warnings.contains("another process answering"), "{warnings}");
}
