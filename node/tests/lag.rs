//! The replication-lag histogram counts every local update, under every algorithm that runs on
//! the wire: three in-process nodes on a line, 20 writes at one end. The histogram is fed only by
//! the engine's reports (`Event::AckedByAll`), so this checks those reports through real nodes.

use crdt::Op;
use deltanode::node::{Client, Node, NodeConfig};
use protocol::Algorithm;
use std::time::{Duration, Instant};

/// `deltanode_replication_lag_seconds_count` as `/metrics` shows it.
async fn lag_count(c: &Client) -> u64 {
    let snap = c.snapshot().await.unwrap();
    let text = deltanode::prometheus::render(
        &snap,
        &Default::default(),
        false,
        deltanode::prometheus::Format::Text,
    );
    text.lines()
        .find(|l| l.starts_with("deltanode_replication_lag_seconds_count"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .expect("the lag histogram is exported")
}

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_counts_every_local_update_in_the_lag_histogram() {
    const WRITES: u64 = 20;
    for alg in Algorithm::ON_THE_WIRE {
        let base = std::env::temp_dir().join(format!("deltanode-lag-{alg}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..3 {
            let peers = nodes
                .last()
                .map(|n| n.listen_addrs().to_vec())
                .unwrap_or_default();
            nodes.push(
                Node::start(NodeConfig {
                    sync_interval: Duration::from_millis(40),
                    algorithm: alg,
                    peers,
                    ..NodeConfig::local(base.join(i.to_string()))
                })
                .await
                .unwrap(),
            );
        }
        let clients: Vec<Client> = nodes.iter().map(Node::client).collect();
        wait_for("the line to connect", async || {
            clients[1]
                .read(|v| v.engine.neighbours().len())
                .await
                .unwrap()
                == 2
        })
        .await;
        for _ in 0..WRITES {
            clients[0]
                .apply(vec![("hits".into(), Op::CounterAdd(1))])
                .await
                .unwrap()
                .unwrap();
        }
        wait_for(
            &format!("{alg}: the far end to hold every write"),
            async || {
                let (_, state) = clients[2].state().await.unwrap();
                state.get("hits").map(|o| o.value()) == Some(serde_json::json!(WRITES))
            },
        )
        .await;
        wait_for(
            &format!("{alg}: every write in the lag histogram"),
            async || lag_count(&clients[0]).await == WRITES,
        )
        .await;
        for n in nodes {
            n.shutdown().await;
        }
        std::fs::remove_dir_all(base).unwrap();
    }
}
