//! Membership across restarts: the first node of a pair (started without `--peer`), killed with -9
//! and restarted on a new port, rejoins — nobody knows its new address, but it remembers its
//! neighbour in its peer book (`DATA_DIR/peers.json`) and dials it; neighbours tell each other of
//! the peers they know (peer exchange).

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::{Duration, Instant};

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

#[test]
fn neighbours_exchange_peers_so_a_cluster_outlives_the_node_that_joined_it() {
    // A star built with --peer to one hub: a and c know only b. Peer exchange tells each of the
    // other, and they connect directly; with b killed they still sync.
    let dir = TempDir::new("exchange");
    let b = NodeProc::start(&dir.join("b"), &[]);
    let a = NodeProc::start(&dir.join("a"), &["--peer".into(), b.addr()]);
    let c = NodeProc::start(&dir.join("c"), &["--peer".into(), b.addr()]);
    let c_id = c.addr().rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, peers) = a.get("/v1/peers");
        let linked = peers
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer_id"] == json!(c_id) && p["connected"] == json!(true));
        if linked {
            break;
        }
        assert!(Instant::now() < deadline, "a never connected to c: {peers}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        sample(
            &metrics(&a),
            "deltanode_peer_samples_total{result=\"received\"}"
        ) >= 1.0
    );
    b.kill();
    a.op(
        "k",
        json!({"type": "set", "op": "add", "value": "without b"}),
    );
    await_convergence(&[&a, &c], Duration::from_secs(30));
    assert_eq!(c.get("/v1/objects/k").1["value"], json!(["without b"]));
}
