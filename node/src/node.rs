//! The running node's public face: its configuration, [`Node::start`], and the [`Client`] through
//! which the HTTP API or an embedding app talks to it. The work happens in
//! [`crate::event_loop`], one task that owns the swarm, the engine and the store; a client reaches it
//! over a bounded command channel, each command carrying a oneshot for its answer.

use crate::codec::FrameCodec;
use crate::event_loop::{EventLoop, PeerState};
use crate::feed::Feed;
use crate::identity;
use crate::metrics::Metrics;
use crate::network;
use crate::persist::{Checkpoint, Durable, Recovered};
use anyhow::Context;
use crdt::{codec, CrdtError, Object, Op, Store};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use protocol::{wire, Algorithm, Config, Engine};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the identity (and, later, the store) lives.
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep redialling, each ending in `/p2p/ID`.
    pub peers: Vec<Multiaddr>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// When not empty, only these peers are neighbours.
    pub neighbours: Vec<PeerId>,
    /// How often each neighbour is sent what it lacks.
    pub sync_interval: Duration,
    /// The sync algorithm (one of `Algorithm::ON_THE_WIRE`).
    pub algorithm: Algorithm,
    /// The private-network pre-shared key file.
    pub swarm_key: Option<PathBuf>,
    /// The largest frame sent or accepted.
    pub max_frame: usize,
}

impl NodeConfig {
    /// Defaults as the CLI has them, for `data_dir`, on loopback with mDNS off (for tests and apps).
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            peers: vec![],
            mdns: false,
            neighbours: vec![],
            sync_interval: Duration::from_millis(500),
            algorithm: Algorithm::BpRr,
            swarm_key: None,
            max_frame: wire::DEFAULT_MAX_FRAME,
        }
    }
}

/// Requests waiting for the event loop; beyond this, callers wait (backpressure, not memory).
const COMMAND_QUEUE: usize = 256;

/// An object as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectView {
    /// Its key.
    pub key: String,
    /// Its type's name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its materialised value.
    pub value: serde_json::Value,
}

impl ObjectView {
    /// The view of `object` at `key`.
    pub fn new(key: &str, object: Object<'_>) -> Self {
        ObjectView {
            key: key.to_string(),
            kind: object.kind().name(),
            value: object.value(),
        }
    }
}

/// What the node knows of one peer (`GET /v1/peers`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PeerView {
    /// Its PeerId.
    pub peer_id: String,
    /// Whether a connection is open.
    pub connected: bool,
    /// Addresses it was reached at.
    pub addrs: Vec<String>,
    /// Frame bytes sent to it.
    pub bytes_sent: u64,
    /// Frame bytes received from it.
    pub bytes_received: u64,
    /// When it last acked a message (ms since the epoch), if ever.
    pub last_ack_unix_ms: Option<u64>,
    /// Buffered groups it has not acked.
    pub pending_groups: u64,
}

/// A read-only look at the node, for [`Client::read`].
pub struct View<'a> {
    /// The node's PeerId.
    pub peer_id: PeerId,
    /// The engine: state, buffer, neighbours, counters.
    pub engine: &'a Engine<PeerId, Store>,
    /// Peers seen, connected or not (read through [`View::peers`]).
    pub(crate) known_peers: &'a BTreeMap<PeerId, PeerState>,
    /// What the shell counts.
    pub metrics: &'a Metrics,
}

impl View<'_> {
    /// Every peer seen, with the groups it has not acked. Computed on demand: it scans the buffer
    /// once per peer, which only `/v1/peers` and `/metrics` need.
    pub fn peers(&self) -> Vec<PeerView> {
        self.known_peers
            .iter()
            .map(|(p, state)| {
                let acked = self
                    .engine
                    .neighbours()
                    .get(p)
                    .and_then(|n| n.acked)
                    .unwrap_or(0);
                let pending_groups = self
                    .engine
                    .buffer()
                    .iter()
                    .filter(|e| e.seq >= acked)
                    .count() as u64;
                PeerView {
                    pending_groups,
                    ..state.view.clone()
                }
            })
            .collect()
    }
}

pub(crate) type Reader = Box<dyn FnOnce(&View<'_>) + Send>;

/// Where a write's outcome goes.
pub(crate) type ApplyReply = oneshot::Sender<Result<Vec<ObjectView>, ApplyError>>;

pub(crate) enum Command {
    Apply {
        ops: Vec<(String, Op)>,
        reply: ApplyReply,
    },
    Read(Reader),
    Sync,
    Checkpoint {
        label: String,
        reply: oneshot::Sender<anyhow::Result<Option<CheckpointInfo>>>,
    },
    Checkpoints {
        reply: oneshot::Sender<anyhow::Result<Vec<CheckpointInfo>>>,
    },
    CheckpointState {
        label: String,
        reply: oneshot::Sender<anyhow::Result<Option<Checkpoint>>>,
    },
    Rollback {
        label: String,
        partial: bool,
        reply: oneshot::Sender<anyhow::Result<RollbackOutcome>>,
    },
}

/// A checkpoint as the API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointInfo {
    /// Its name.
    pub label: String,
    /// The state's digest then.
    pub digest: String,
    /// When it was taken (ms since the epoch).
    pub created_unix_ms: u64,
}

/// What a rollback did.
#[derive(Debug)]
pub enum RollbackOutcome {
    /// No such checkpoint.
    NoSuchCheckpoint,
    /// Some changed objects cannot be reverted and `partial` was not set: nothing changed.
    Refused {
        /// Those objects' keys.
        irreversible: Vec<String>,
    },
    /// The compensating writes are applied (and will replicate).
    Done {
        /// Keys reverted.
        reverted: Vec<String>,
        /// Keys left as they are (only with `partial`).
        irreversible: Vec<String>,
    },
}

/// Why a write was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The write itself was refused (a type clash); nothing changed.
    #[error(transparent)]
    Crdt(#[from] CrdtError),
    /// The store could not commit it; the node stops rather than run ahead of its disk.
    #[error("the store failed ({0}); the node has stopped")]
    Storage(String),
}

/// A handle to a running node: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    feed: Arc<Feed>,
}

/// The node has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

impl Client {
    /// The node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Applies `ops` atomically as one delta, durably (fsynced before this returns); returns the
    /// objects they touched, as they now are.
    pub async fn apply(
        &self,
        ops: Vec<(String, Op)>,
    ) -> anyhow::Result<Result<Vec<ObjectView>, ApplyError>> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Apply { ops, reply })
            .await
            .map_err(|_| Stopped)?;
        Ok(rx.await.map_err(|_| Stopped)?)
    }

    /// Runs `f` on a view of the node and returns its result.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        let reader: Reader = Box::new(move |view| {
            let _ = tx.send(f(view));
        });
        self.commands
            .send(Command::Read(reader))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The change feed.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Saves the current state as checkpoint `label` (durably); `None` if the label is taken.
    pub async fn checkpoint(
        &self,
        label: String,
    ) -> Result<anyhow::Result<Option<CheckpointInfo>>, Stopped> {
        self.ask(|reply| Command::Checkpoint { label, reply }).await
    }

    /// Every checkpoint.
    pub async fn checkpoints(&self) -> Result<anyhow::Result<Vec<CheckpointInfo>>, Stopped> {
        self.ask(|reply| Command::Checkpoints { reply }).await
    }

    /// Checkpoint `label` with its state.
    pub async fn checkpoint_state(
        &self,
        label: String,
    ) -> Result<anyhow::Result<Option<Checkpoint>>, Stopped> {
        self.ask(|reply| Command::CheckpointState { label, reply })
            .await
    }

    /// Reverts every object changed since checkpoint `label` by compensating writes.
    pub async fn rollback(
        &self,
        label: String,
        partial: bool,
    ) -> Result<anyhow::Result<RollbackOutcome>, Stopped> {
        self.ask(|reply| Command::Rollback {
            label,
            partial,
            reply,
        })
        .await
    }

    /// Starts a sync round now.
    pub async fn sync(&self) -> Result<(), Stopped> {
        self.commands.send(Command::Sync).await.map_err(|_| Stopped)
    }

    /// The replicated state and its digest (hex SHA-256 of the canonical encoding).
    pub async fn state(&self) -> Result<(String, Store), Stopped> {
        self.read(|v| {
            let state = v.engine.state().clone();
            (
                codec::hex(&codec::digest(&state).unwrap_or_default()),
                state,
            )
        })
        .await
    }
}

/// A running node.
pub struct Node {
    client: Client,
    listen_addrs: Vec<Multiaddr>,
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
        let key = identity::load_or_create(&cfg.data_dir)?;
        let Recovered {
            durable,
            replica,
            state,
        } = Durable::open(&cfg.data_dir)?;
        let psk = cfg
            .swarm_key
            .as_deref()
            .map(identity::load_swarm_key)
            .transpose()?;
        let peer_id = key.public().to_peer_id();
        let codec = FrameCodec::new(cfg.max_frame);
        let mut metrics = Metrics::default();
        metrics.oversized_frames = codec.oversized.clone();
        let mut swarm = network::build(key, psk, cfg.mdns, codec)?;
        let mut listeners = HashSet::new();
        for addr in &cfg.listen {
            listeners.insert(
                swarm
                    .listen_on(addr.clone())
                    .with_context(|| format!("listening on {addr}"))?,
            );
        }
        // Wait until every listener has an address, so the caller can announce them.
        let mut listen_addrs = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        while !listeners.is_empty() {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { listener_id, address } => {
                        listeners.remove(&listener_id);
                        listen_addrs.push(address.with(Protocol::P2p(peer_id)));
                    }
                    SwarmEvent::ListenerClosed { reason: Err(e), .. } | SwarmEvent::ListenerError { error: e, .. } => {
                        anyhow::bail!("listener failed: {e}");
                    }
                    _ => {}
                },
                _ = &mut deadline => anyhow::bail!("no listen address after 10 s"),
            }
        }
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
        let feed = Arc::new(Feed::default());
        let config = Config {
            rank: rank_of(&peer_id),
            ..Config::new(cfg.algorithm)
        };
        let engine = Engine::new(config, state, now_us);
        let event_loop =
            EventLoop::new(swarm, engine, replica, durable, &cfg, statics, feed.clone())
                .with_metrics(metrics);
        let task = tokio::spawn(event_loop.run(rx, shutdown_rx, cfg.sync_interval));
        Ok(Node {
            client: Client {
                commands: tx,
                peer_id,
                feed,
            },
            listen_addrs,
            task,
            shutdown,
        })
    }

    /// A client for this node.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.client.peer_id
    }

    /// The addresses it listens on, each ending in `/p2p/ID`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Stops the event loop and waits for it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
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
    use crdt::Value;
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
        assert_eq!(views[0].value, json!({"n1": ["hello"]}));
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
