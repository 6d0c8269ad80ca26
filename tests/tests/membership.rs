//! Membership across restarts: the first node of a pair (started without `--peer`), killed with -9
//! and restarted on a new port, rejoins — nobody knows its new address, but it remembers its
//! neighbour in its peer book (`DATA_DIR/peers.json`) and dials it.

use deltanode_e2e::{await_convergence, NodeProc, TempDir};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_node_restarted_on_a_new_port_rejoins_from_its_peer_book() {
    let dir = TempDir::new("peer-book");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    a.op("k", json!({"type": "set", "op": "add", "value": 1}));
    await_convergence(&[&a, &b], Duration::from_secs(30));
    let old = a.addr();
    let book = std::fs::read_to_string(dir.join("a").join("peers.json")).expect("a's peer book");
    let b_id = b.addr().rsplit('/').next().unwrap().to_string();
    assert!(book.contains(&b_id), "a's book names b: {book}");
    a.kill();
    // A new port: b's redials go to the old address, and a has no --peer.
    let a = NodeProc::start(&dir.join("a"), &[]);
    assert_ne!(a.addr(), old);
    a.op("k", json!({"type": "set", "op": "add", "value": 2}));
    b.op("k", json!({"type": "set", "op": "add", "value": 3}));
    await_convergence(&[&a, &b], Duration::from_secs(30));
    assert_eq!(b.get("/v1/objects/k").1["value"], json!([1, 2, 3]));
}

#[test]
fn a_rolling_restart_on_new_ports_reforms_the_cluster() {
    // A line a – b – c built with --peer; then every node in turn is killed and restarted on a new
    // port with no --peer at all: each finds its neighbours from its book (and theirs learn its new
    // address through identify when it reconnects), so the line re-forms.
    let dir = TempDir::new("rolling");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    let c = NodeProc::start(&dir.join("c"), &["--peer".into(), b.addr()]);
    a.op("k", json!({"type": "set", "op": "add", "value": "before"}));
    await_convergence(&[&a, &b, &c], Duration::from_secs(30));
    let mut nodes = vec![a, b, c];
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let old = nodes.remove(i);
        let addr = old.addr();
        old.kill();
        let new = NodeProc::start(&dir.join(name), &[]);
        assert_ne!(new.addr(), addr);
        new.op("k", json!({"type": "set", "op": "add", "value": name}));
        nodes.insert(i, new);
        let all: Vec<&NodeProc> = nodes.iter().collect();
        await_convergence(&all, Duration::from_secs(30));
    }
    assert_eq!(
        nodes[2].get("/v1/objects/k").1["value"],
        json!(["a", "b", "before", "c"])
    );
}
