//! A full disk on a real process: the node's data dir on a small tmpfs, most of it taken by a
//! filler file. Writes go until the disk is full; then writes get 507 with a clear message while
//! reads, `/health` (degraded, with the reason) and `/metrics` keep working; once the filler is
//! removed, writes resume by themselves; and after `kill -9` every acknowledged write is there.
//! Needs root to mount the tmpfs (`DELTANODE_SKIP_NETNS=1` skips, as for the namespace tests).

use deltanode_e2e::{metrics, netns, sample, NodeProc, TempDir};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted at a path, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs (needs root)");
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn add(node: &NodeProc, batch: u64) -> u16 {
    let ops: Vec<_> = (0..500)
        .map(|i| json!({"key": "s", "type": "gset", "op": "add", "value": format!("{batch:06}-{i:03}-{}", "x".repeat(40))}))
        .collect();
    node.post_raw("/v1/batch", &json!({ "ops": ops }).to_string())
        .0
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    if netns::skipped() {
        return;
    }
    let dir = TempDir::new("disk-full");
    let disk = Tmpfs::mount(dir.join("disk"), "24m");
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 18 << 20]).unwrap();
    let data = disk.0.join("n");
    let node = NodeProc::start(&data, &[]);
    let mut acked = 0;
    let refused = loop {
        assert!(acked < 2_000, "the disk never filled");
        match add(&node, acked) {
            200 => acked += 1,
            status => break status,
        }
    };
    assert_eq!(refused, 507, "a full disk is 507");
    // Degraded, not stopped: reads, health and metrics answer; writes are refused with a reason.
    let health = node.get("/health").1;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reason"].to_string().contains("No space"),
        "{health}"
    );
    assert_eq!(sample(&metrics(&node), "deltanode_store_degraded"), 1.0);
    let (status, read) = node.get("/v1/objects/s?limit=1");
    assert_eq!(status, 200, "{read}");
    let (status, err) = node.post_raw(
        "/v1/objects/t",
        &json!({"type": "gcounter", "op": "inc"}).to_string(),
    );
    assert_eq!(status, 507);
    assert!(
        err["error"].as_str().unwrap().contains("the disk is full"),
        "{err}"
    );
    // Space back: writes resume by themselves.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while add(&node, acked) != 200 {
        assert!(Instant::now() < deadline, "writes never resumed");
        std::thread::sleep(Duration::from_millis(200));
    }
    acked += 1;
    assert_eq!(node.get("/health").1["status"], "ok");
    // Everything acknowledged is on disk.
    node.kill();
    let node = NodeProc::start(&data, &[]);
    let size = node.get("/v1/objects/s?limit=1").1["size"]
        .as_u64()
        .unwrap();
    assert!(
        size >= acked * 500,
        "{size} elements of {} acknowledged",
        acked * 500
    );
    drop(node);
    drop(disk);
}
