//! Interoperability with js-libp2p (`interop/js/peer.mjs`: TCP, Noise, Yamux and the
//! private-network key): a js peer with the node's swarm key connects, identify works both ways
//! (each side learns the other's agent and protocols) and so does ping (the js peer pings the
//! node; the node's pings of the js peer show as its `rtt_ms` in `/v1/peers`); a js peer with
//! another key never gets a connection. Needs Node.js 20+ with npm (`scripts/setup.sh --tests`
//! runs `npm ci` in `interop/js`; this test does too when it is missing).

use deltanode_e2e::{metrics, sample, NodeProc, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/js")
}

fn swarm_key(path: &Path, byte: u8) {
    let hex: String = (0..32)
        .map(|i| format!("{:02x}", byte.wrapping_add(i)))
        .collect();
    std::fs::write(path, format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n")).unwrap();
}

/// `node peer.mjs ADDR KEY`, with stdin held open (closing it stops the peer).
fn js_peer(addr: &str, key: &Path) -> Child {
    Command::new("node")
        .arg(js().join("peer.mjs"))
        .arg(addr)
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js; scripts/setup.sh --tests installs it)")
}

#[test]
fn a_js_libp2p_peer_with_the_swarm_key_identifies_and_pings_both_ways() {
    if !js().join("node_modules/libp2p").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(js())
            .output()
            .expect("npm");
        assert!(
            out.status.success(),
            "npm ci in interop/js: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = TempDir::new("interop-js");
    let key = dir.join("swarm.key");
    swarm_key(&key, 7);
    let node = NodeProc::start(
        &dir.join("n"),
        &["--swarm-key".into(), key.display().to_string()],
    );
    let addr = node.addr();

    // The js peer's view: the node's identify and a ping.
    let mut peer = js_peer(&addr, &key);
    let mut line = String::new();
    BufReader::new(peer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let seen: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(peer.stderr.as_mut().unwrap(), &mut err);
        panic!("the js peer printed {line:?} ({e}):\n{err}")
    });
    assert!(
        seen["remote_agent"]
            .as_str()
            .unwrap()
            .starts_with("deltanode/"),
        "{seen}"
    );
    let protocols: Vec<&str> = seen["remote_protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in ["/deltanode/sync/1", "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"] {
        assert!(protocols.contains(&p), "{p} not in {protocols:?}");
    }
    assert!(seen["rtt_ms"].as_f64().unwrap() >= 0.0);

    // The node's view: the js peer connected, identified and pinged.
    let js_id = seen["peer_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, peers) = node.get("/v1/peers");
        let found = peers
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer_id"] == js_id.as_str())
            .cloned();
        if let Some(p) = found.filter(|p| p["rtt_ms"].is_number() && p["agent_version"].is_string())
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the node never pinged or identified the js peer: {peers}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(view["connected"], Value::Bool(true), "{view}");
    assert!(
        view["agent_version"]
            .as_str()
            .unwrap()
            .starts_with("js-libp2p/"),
        "{view}"
    );

    drop(peer.stdin.take());
    let status = peer.wait().unwrap();
    assert!(status.success(), "the js peer stops when told");

    // Another key: no connection at all.
    let other = dir.join("other.key");
    swarm_key(&other, 99);
    let mut stranger = js_peer(&addr, &other);
    let mut out = String::new();
    BufReader::new(stranger.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    assert!(out.is_empty(), "a peer with another key got through: {out}");
    assert!(!stranger.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(
        &metrics(&node),
        r#"deltanode_rejected_connections_total{reason="handshake"}"#,
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the wrong key's handshake was not counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
