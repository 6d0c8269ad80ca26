//! mDNS against a second implementation (Python `zeroconf`, `scripts/mdns_peer.py`), both ways, in
//! two network namespaces on a bridge this test creates and removes:
//! - a peer announced the way js-libp2p announces (PTR and TXT both among the answers) is
//!   discovered and dialled by the node — it was not before the patched libp2p-mdns
//!   (`vendor/libp2p-mdns/PATCHED.md`), which read TXT records only from the additional section;
//! - a zeroconf query finds the node's `dnsaddr` in its responses.
//!
//! Needs root, iproute2 and python3 with `zeroconf` (`scripts/setup.sh --tests` installs them);
//! `DELTANODE_SKIP_NETNS=1` skips it.

use deltanode_e2e::netns::{self, Lan};
use deltanode_e2e::TempDir;
use std::process::Command;

fn script() -> String {
    format!("{}/../scripts/mdns_peer.py", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn mdns_discovery_works_both_ways_with_a_second_implementation() {
    if netns::skipped() {
        return;
    }
    deltanode_e2e::binary();
    let lan = Lan::create("md", 2);
    let dir = TempDir::new("mdns-interop");
    // Of a pair that discovers each other only the smaller PeerId dials, so the announced peer
    // gets a larger one than the node's (ed25519 ids: equal-length base58, whose order is the
    // bytes' order).
    let id_of = |name: &str| -> String {
        let out = Command::new(deltanode_e2e::binary())
            .args(["id", "--data-dir", &dir.join(name).display().to_string()])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let own = id_of("n0");
    let fake = (0..)
        .map(|i| id_of(&format!("fake{i}")))
        .find(|f| f.len() == own.len() && *f > own)
        .unwrap();
    let fast = ["--sync-interval".to_string(), "100".to_string()];
    let node = lan.start_node(0, &dir, &fast, "interop-token");
    assert_eq!(node.peer_id, own);
    let python = |mode: &str, peer: &str| {
        Command::new("ip")
            .args(["netns", "exec", &lan.ns(1), "python3", &script(), mode])
            .args([&lan.addr(1), peer, "30"])
            .output()
            .expect("running python3 scripts/mdns_peer.py")
    };
    let announce = python("announce", &fake);
    let said = String::from_utf8_lossy(&announce.stdout).to_string()
        + &String::from_utf8_lossy(&announce.stderr);
    assert!(
        announce.status.success() && said.contains(&format!("dialled from {}", lan.addr(0))),
        "the node did not dial a peer announced js-libp2p's way: {said}"
    );
    let query = python("query", &node.peer_id);
    let said = String::from_utf8_lossy(&query.stdout).to_string()
        + &String::from_utf8_lossy(&query.stderr);
    assert!(
        query.status.success()
            && said.contains(&format!("/ip4/{}/tcp/", lan.addr(0)))
            && said.contains(&node.peer_id),
        "zeroconf found no dnsaddr of the node in its responses: {said}"
    );
}
