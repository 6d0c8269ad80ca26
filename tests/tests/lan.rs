//! A small LAN of network namespaces joined by a bridge, each running a node with mDNS and no
//! `--peer`: they must discover each other and converge, and a listener on 0.0.0.0 follows the
//! interfaces' addresses as they come and go. The only place mDNS runs on the
//! development and CI machines, so its multicast stays on interfaces this test creates and removes.
//! Needs root and iproute2 (`scripts/setup.sh --tests` installs it); `DELTANODE_SKIP_NETNS=1` skips it.

use deltanode_e2e::netns::{self, ip, Lan};
use deltanode_e2e::{await_convergence, NodeProc, TempDir};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const NODES: usize = 3;
const TOKEN: &str = "lan-test-token";

#[test]
fn nodes_on_a_lan_find_each_other_by_mdns_alone_and_converge() {
    if netns::skipped() {
        return;
    }
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    assert_eq!(
        uid.trim(),
        "0",
        "this test creates network namespaces: run it as root (or set DELTANODE_SKIP_NETNS=1)"
    );
    deltanode_e2e::binary();
    let lan = Lan::create("lan", NODES);
    let dir = TempDir::new("lan");
    let fast = ["--sync-interval".to_string(), "100".to_string()];
    let nodes: Vec<NodeProc> = (0..NODES)
        .map(|i| lan.start_node(i, &dir, &fast, TOKEN))
        .collect();
    // Listening on 0.0.0.0, each announces its interfaces' addresses, not only loopback's.
    for (i, node) in nodes.iter().enumerate() {
        let own = format!("/ip4/{}/tcp/", lan.addr(i));
        assert!(
            node.listen.iter().any(|a| a.starts_with(&own)),
            "node {i} announces {:?}",
            node.listen
        );
    }
    nodes[0].op("lan", json!({"type":"gset","op":"add","value":"from-0"}));
    nodes[2].op("lan", json!({"type":"gset","op":"add","value":"from-2"}));
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&refs, Duration::from_secs(30));
    assert_eq!(
        nodes[1].get("/v1/objects/lan").1["value"],
        json!(["from-0", "from-2"])
    );
    // Data can converge through one node before mDNS has connected every pair: wait for discovery.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<u64> = nodes
            .iter()
            .map(|n| n.get("/health").1["neighbours"].as_u64().unwrap())
            .collect();
        if found.iter().all(|&f| f == (NODES - 1) as u64) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mDNS did not find everyone: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Peers saw each node at its LAN address: reported by both others, it is confirmed external.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for (i, node) in nodes.iter().enumerate() {
        let own = format!("/ip4/{}/tcp/", lan.addr(i));
        loop {
            let (_, info) = node.get("/v1/node");
            let external = info["external"].as_array().unwrap().clone();
            if external
                .iter()
                .any(|a| a.as_str().unwrap().starts_with(&own))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {i} has no confirmed external address: {info}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Interfaces that come and go: an address added to node 0's interface is announced (listed
    // in /v1/node, pushed to peers by identify), and dropped again when the address goes.
    let extra = format!("10.214.{}.10", lan.subnet);
    let inner = lan.interface(0);
    let listed = |want: bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, info) = nodes[0].get("/v1/node");
            let has = info["listen"].as_array().unwrap().iter().any(|a| {
                a.as_str()
                    .unwrap()
                    .starts_with(&format!("/ip4/{extra}/tcp/"))
            });
            if has == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the address {extra} {} /v1/node: {info}",
                if want { "never reached" } else { "never left" }
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    ip(&[
        "-n",
        &lan.ns(0),
        "addr",
        "add",
        &format!("{extra}/24"),
        "dev",
        &inner,
    ]);
    listed(true);
    ip(&[
        "-n",
        &lan.ns(0),
        "addr",
        "del",
        &format!("{extra}/24"),
        "dev",
        &inner,
    ]);
    listed(false);
    // The API is not on loopback here, so it wants the token.
    let unauthenticated = ureq::get(format!("{}/health", nodes[0].api))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
}
