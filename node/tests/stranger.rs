//! A libp2p peer that is not a deltanode (identify and ping only, no `/deltanode/sync/1`), given to
//! a node as a `--peer`: the node connects, learns from identify that it does not speak sync, and
//! neither makes it a neighbour nor dials it again. A deltanode given the same way becomes one.

use deltanode::node::{Client, Node, NodeConfig};
use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, Swarm};
use std::time::{Duration, Instant};

#[derive(NetworkBehaviour)]
struct Stranger {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn stranger() -> Swarm<Stranger> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Stranger {
            identify: identify::Behaviour::new(identify::Config::new(
                "/someone-else/1.0.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

async fn neighbours(c: &Client) -> usize {
    c.read(|v| v.engine.neighbours().len()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_speak_sync_is_not_a_neighbour_nor_redialled() {
    let base = std::env::temp_dir().join(format!("deltanode-stranger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let mut other = stranger();
    other
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = other.select_next_some().await {
            break address.with_p2p(*other.local_peer_id()).unwrap();
        }
    };
    let node = Node::start(NodeConfig {
        peers: vec![addr],
        ..NodeConfig::local(base.join("a"))
    })
    .await
    .unwrap();
    let client = node.client();
    // Watch the stranger's side for 8 s: the node connects once, is told what the stranger speaks,
    // hangs up, and does not come back (its redials are 0.25 s doubling: several within 8 s).
    let (mut connections, mut closed) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(8);
    while let Ok(ev) = tokio::time::timeout_at(deadline.into(), other.select_next_some()).await {
        match ev {
            SwarmEvent::ConnectionEstablished { .. } => connections += 1,
            SwarmEvent::ConnectionClosed { .. } => closed += 1,
            _ => {}
        }
        assert_eq!(neighbours(&client).await, 0, "a stranger is no neighbour");
    }
    assert_eq!(
        (connections, closed),
        (1, 1),
        "one connection, closed, never redialled"
    );
    let snap = client.snapshot().await.unwrap();
    assert_eq!(
        snap.peer_counters
            .rejected_connections
            .get("no_sync_protocol"),
        Some(&1)
    );

    // A deltanode given as a --peer the same way is a neighbour (identify says it speaks sync).
    let b = Node::start(NodeConfig {
        peers: node.listen_addrs().to_vec(),
        ..NodeConfig::local(base.join("b"))
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while neighbours(&b.client()).await != 1 || neighbours(&client).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the two nodes never became neighbours"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((node, b));
    let _ = std::fs::remove_dir_all(&base);
}
