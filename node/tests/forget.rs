//! `--forget-after`: a peer disconnected for longer leaves `/v1/peers` and the per-peer metrics,
//! while the node's byte totals keep what it sent and received; a peer that comes back is listed
//! again.

use deltanode::node::{Client, Node, NodeConfig};
use std::time::{Duration, Instant};

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn listed(c: &Client) -> usize {
    c.snapshot().await.unwrap().peers.len()
}

fn metrics(snap: &deltanode::snapshot::Snapshot) -> String {
    deltanode::prometheus::render(
        snap,
        &Default::default(),
        false,
        deltanode::prometheus::Format::Text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gone_longer_than_forget_after_is_forgotten_but_its_bytes_are_not() {
    let base = std::env::temp_dir().join(format!("deltanode-forget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let cfg = |name: &str| NodeConfig {
        sync_interval: Duration::from_millis(50),
        forget_after: Duration::from_secs(1),
        ..NodeConfig::local(base.join(name))
    };
    let a = Node::start(cfg("a")).await.unwrap();
    let b = Node::start(NodeConfig {
        peers: a.listen_addrs().to_vec(),
        ..cfg("b")
    })
    .await
    .unwrap();
    let client = a.client();
    wait_for("b listed on a", async || listed(&client).await == 1).await;
    b.client()
        .apply(vec![("k".into(), crdt::Op::CounterAdd(1))])
        .await
        .unwrap()
        .unwrap();
    wait_for("b's write on a", async || {
        client
            .read(|v| v.engine.state().get("k").is_some())
            .await
            .unwrap()
    })
    .await;
    let before = client.snapshot().await.unwrap();
    let received = before.peers[0].bytes_received;
    assert!(received > 0);
    let b_id = b.peer_id().to_string();
    assert!(
        metrics(&before).contains(&b_id),
        "a per-peer row while connected"
    );
    drop(b);
    wait_for("b forgotten", async || listed(&client).await == 0).await;
    let after = client.snapshot().await.unwrap();
    let text = metrics(&after);
    assert!(!text.contains(&b_id), "no per-peer row once forgotten");
    assert!(text.contains("deltanode_forgotten_peers_total 1"), "{text}");
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("deltanode_sync_bytes_received_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap();
    assert!(
        total >= received,
        "the total keeps the forgotten peer's bytes"
    );
    let _ = std::fs::remove_dir_all(&base);
}
