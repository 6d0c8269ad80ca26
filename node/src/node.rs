//! [`Node::start`]: builds a node from its [`NodeConfig`] — identity, durable store, swarm, engine
//! — and runs its event loop on the current tokio runtime. The running node is reached through a
//! [`Client`]. How the work is divided:
//!
//! - `replica`: engine, store, durable log, feed — the write path;
//! - `peers`: swarm, connections, redial, frames;
//! - `event_loop`: the task that routes between them and the clients' commands.

pub use crate::client::{Client, Stopped, View};
pub use crate::config::NodeConfig;
pub use crate::views::OwnAddrs;
pub use crate::views::{ApplyError, CheckpointInfo, ObjectView, PeerView, RollbackOutcome};

use crate::clock::unix_ms;
use crate::codec::FrameCodec;
use crate::event_loop::EventLoop;
use crate::feed::{self, Feed};
use crate::identity;
use crate::metrics::PeerCounters;
use crate::network;
use crate::peer_book::PeerBook;
use crate::peers::Peers;
use crate::persist::{self, Durable, Recovered};
use crate::replica::{entry_events, Replica};
use anyhow::Context;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use protocol::{Algorithm, Config, Engine};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Requests waiting for the event loop; beyond this, callers wait (backpressure, not memory).
const COMMAND_QUEUE: usize = 256;

/// A running node.
pub struct Node {
    client: Client,
    replica: crdt::ReplicaId,
    replicas: Vec<crdt::ReplicaId>,
    rekeyed: bool,
    warnings: Vec<String>,
    listen_addrs: Vec<Multiaddr>,
    own_addrs: OwnAddrs,
    task: JoinHandle<()>,
    shutdown: oneshot::Sender<()>,
}

impl Node {
    /// Starts a node: loads or creates its identity, listens, dials its `--peer`s, and runs the
    /// event loop on the current tokio runtime. Returns once it is listening.
    pub async fn start(cfg: NodeConfig) -> anyhow::Result<Node> {
        anyhow::ensure!(
            Algorithm::ON_THE_WIRE.contains(&cfg.algorithm),
            "{} runs in the simulator only",
            cfg.algorithm
        );
        let known = cfg.data_dir.join(identity::KEY_FILE).exists();
        let stored =
            std::fs::metadata(cfg.data_dir.join(persist::DB_FILE)).is_ok_and(|m| m.len() > 0);
        let identity::Identity { key, rekeyed } = identity::load_or_create(&cfg.data_dir)?;
        let mut warnings = Vec::new();
        if let Some(r) = &rekeyed {
            warnings.push(r.describe());
        }
        if known && !stored {
            warnings.push(format!(
                "{} has an identity but no stored state (deleted or emptied): starting empty; \
                 the neighbours catch the node up",
                cfg.data_dir.display()
            ));
        }
        let (feed, replayed, recovered) = match open_store(&cfg.data_dir) {
            Err(e) if cfg.recover_from_peers && e.downcast_ref::<persist::Damaged>().is_some() => {
                let aside = persist::set_aside(&cfg.data_dir)?;
                warnings.push(format!(
                    "{e}; --recover-from-peers: it is now {}, and the node started empty: the \
                     neighbours catch it up",
                    aside.display()
                ));
                open_store(&cfg.data_dir)?
            }
            opened => opened?,
        };
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let Recovered {
            durable,
            replica: writer,
            replicas,
            state,
            first_index,
            next_index,
        } = recovered;
        // Ids of entries before the first replayed one are gone.
        feed.restored(replayed.unwrap_or(first_index), next_index);
        let psk = cfg
            .swarm_key
            .as_deref()
            .map(identity::load_swarm_key)
            .transpose()?;
        let peer_id = key.public().to_peer_id();
        let codec = FrameCodec::new(cfg.max_frame);
        let counters = PeerCounters {
            oversized_frames: codec.oversized.clone(),
            ..PeerCounters::default()
        };
        let mut swarm = network::build(key, psk, cfg.mdns, codec)?;
        let mut listeners = HashSet::new();
        for addr in &cfg.listen {
            listeners.insert(
                swarm
                    .listen_on(addr.clone())
                    .with_context(|| format!("listening on {addr}"))?,
            );
        }
        // Wait until every listener has an address, so the caller can announce them. A wildcard
        // listener (0.0.0.0, ::) reports one address per interface: those that come within a
        // short grace are announced too. Other events meanwhile (a peer dialling in early) are
        // kept for the event loop.
        let mut listen_addrs = Vec::new();
        let mut early = Vec::new();
        let wildcard = cfg.listen.iter().any(|a| {
            a.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_unspecified(),
                _ => false,
            })
        });
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            if listeners.is_empty() && grace.is_none() {
                if !wildcard {
                    break;
                }
                grace = Some(Box::pin(tokio::time::sleep(Duration::from_millis(150))));
            }
            let in_grace = async {
                match grace.as_mut() {
                    Some(g) => g.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        listeners.remove(&listener_id);
                        listen_addrs.push(address.with(Protocol::P2p(peer_id)));
                    }
                    SwarmEvent::ListenerClosed { reason: Err(e), .. } | SwarmEvent::ListenerError { error: e, .. } => {
                        anyhow::bail!("listener failed: {e}");
                    }
                    other => early.push(other),
                },
                _ = in_grace => break,
                _ = &mut deadline => anyhow::bail!("no listen address after 10 s"),
            }
        }
        let own_addrs = OwnAddrs::new(listen_addrs.iter().map(ToString::to_string).collect());
        let mut statics = HashMap::new();
        for addr in &cfg.peers {
            let peer = addr
                .iter()
                .find_map(|p| {
                    if let Protocol::P2p(id) = p {
                        Some(id)
                    } else {
                        None
                    }
                })
                .with_context(|| format!("--peer {addr} has no /p2p/PEER_ID"))?;
            statics.insert(peer, addr.clone());
        }
        // Sequence numbers start above any an earlier run of this node used (see `Engine::new`).
        let now_us = unix_ms() * 1000;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let config = Config {
            rank: rank_of(&peer_id),
            // An exchange waits ~10 s for the other side (which may be indexing a large state)
            // before starting over, whatever the sync interval.
            reconcile_retry_ticks: (10_000 / cfg.sync_interval.as_millis().max(1) as u64).max(10),
            ..Config::new(cfg.algorithm)
        };
        let engine = Engine::new(config, state, now_us);
        let mut event_loop = EventLoop {
            replica: Replica::new(engine, writer, durable, feed.clone())
                .with_max_clock_skew(cfg.max_clock_skew),
            peers: Peers::new(
                (swarm, own_addrs.clone()),
                &cfg.neighbours,
                statics,
                PeerBook::load(&cfg.data_dir),
                (
                    counters,
                    cfg.max_frame,
                    cfg.forget_after,
                    cfg.max_neighbours,
                ),
            ),
            peer_id,
            early,
        };
        event_loop
            .peers
            .set_identity(writer.0, cfg.data_dir.join(identity::REKEY_FILE));
        let task = tokio::spawn(event_loop.run(rx, shutdown_rx, cfg.sync_interval));
        Ok(Node {
            client: Client::new(tx, peer_id, feed),
            replica: writer,
            replicas,
            rekeyed: rekeyed.is_some(),
            warnings,
            listen_addrs,
            own_addrs,
            task,
            shutdown,
        })
    }

    /// The replica id its writes carry (drawn afresh at every start): what
    /// `GET /v1/conflicts` names as a value's origin.
    pub fn replica_id(&self) -> crdt::ReplicaId {
        self.replica
    }

    /// Every replica id this node's starts wrote under, oldest first (the current one last): the
    /// origins `GET /v1/conflicts` may name for this node.
    pub fn replica_ids(&self) -> &[crdt::ReplicaId] {
        &self.replicas
    }

    /// Whether this start found the data dir copied or moved and gave the node a new network
    /// identity.
    pub fn rekeyed(&self) -> bool {
        self.rekeyed
    }

    /// What this start found that an operator should know (logged too): a new identity, a
    /// store found missing or damaged and set aside.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A client for this node.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.client.peer_id()
    }

    /// The addresses it listened on at start, each ending in `/p2p/ID`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Its addresses as they change (interfaces, confirmed external addresses).
    pub fn own_addrs(&self) -> OwnAddrs {
        self.own_addrs.clone()
    }

    /// Stops the event loop and waits for it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Opens the store in `data_dir`, rebuilding the change feed from its log (so a reader resuming
/// after a restart gets what it missed: ids come from log indexes); returns the feed, the first
/// index replayed into it, and what was recovered.
fn open_store(data_dir: &std::path::Path) -> anyhow::Result<(Arc<Feed>, Option<u64>, Recovered)> {
    let feed = Arc::new(Feed::default());
    let mut replayed = None;
    let recovered = Durable::open_replaying(data_dir, &mut |entry| {
        // Each entry makes one event or more and the feed keeps the newest `RING`: the older
        // entries would be dropped at once, so their events are not built.
        if entry.later >= feed::RING as u64 {
            return;
        }
        replayed.get_or_insert(entry.index);
        let (views, conflicts) = entry_events(entry.state, entry.delta, entry.remote);
        let origin = if entry.remote { "remote" } else { "local" };
        feed.publish(entry.index, &views, &conflicts, origin);
    })?;
    Ok((feed, replayed, recovered))
}

/// `bp-rr-tree`'s rank of a node: the last 8 bytes of its PeerId, which end in its public key, so
/// every node computes the same rank for it and ranks differ between nodes.
fn rank_of(peer: &PeerId) -> u64 {
    let bytes = peer.to_bytes();
    let tail: [u8; 8] = bytes[bytes.len() - 8..]
        .try_into()
        .expect("a PeerId is longer than 8 bytes");
    u64::from_be_bytes(tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::{CrdtError, Op, Value};
    use serde_json::json;
    use std::time::Instant;

    /// An app can run nodes in-process and use them without HTTP.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_in_process_nodes_converge_through_the_library_api() {
        let base = std::env::temp_dir().join(format!("deltanode-lib-{}", std::process::id()));
        let a = Node::start(NodeConfig {
            sync_interval: Duration::from_millis(50),
            ..NodeConfig::local(base.join("a"))
        })
        .await
        .unwrap();
        let b = Node::start(NodeConfig {
            sync_interval: Duration::from_millis(50),
            peers: a.listen_addrs().to_vec(),
            ..NodeConfig::local(base.join("b"))
        })
        .await
        .unwrap();
        let (ca, cb) = (a.client(), b.client());
        let views = ca
            .apply(vec![(
                "notes".into(),
                Op::MapPut("n1".into(), Value::from(json!("hello"))),
            )])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(views[0].value, Some(json!({"n1": ["hello"]})));
        cb.apply(vec![("hits".into(), Op::GCounterInc(3))])
            .await
            .unwrap()
            .unwrap();
        let clash = cb
            .apply(vec![("hits".into(), Op::SetAdd(Value::from(json!(1))))])
            .await
            .unwrap();
        assert!(matches!(
            clash,
            Err(ApplyError::Crdt(CrdtError::TypeClash { .. }))
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (da, sa) = ca.state().await.unwrap();
            let (db, _) = cb.state().await.unwrap();
            if da == db && sa.len() == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "no convergence");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(cb.read(|v| v.engine.neighbours().len()).await.unwrap(), 1);
        a.shutdown().await;
        b.shutdown().await;
        assert!(ca.sync().await.is_err(), "a stopped node says so");
        std::fs::remove_dir_all(base).unwrap();
    }
}
