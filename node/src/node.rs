//! The running node: one event-loop task owns the libp2p swarm and the sync engine; everything else
//! (the HTTP API, an app embedding the node) talks to it through a [`Client`] over a bounded channel.
//!
//! Mapping the engine onto request-response: every engine message goes out as a request; the answer
//! to a request carries the receiver's `Ack` when it has one (else it is empty), so an ack costs no
//! extra stream. Anything else the receiver wants to say (a catch-up's reply) is a request of its own.

use crate::codec::PROTOCOL;
use crate::feed::Feed;
use crate::identity;
use crate::metrics::Metrics;
use crate::network::{self, Behaviour, BehaviourEvent};
use crate::persist::{Checkpoint, Durable, Recovered};
use anyhow::Context;
use crdt::{codec, CrdtError, Object, Op, ReplicaId, Store, Writer};
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{mdns, Multiaddr, PeerId, Swarm};
use protocol::{wire, Algorithm, Config, Engine, Input, Message, Output};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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

/// Requests in flight to one neighbour; beyond it, the engine's next tick resends what is unacked.
const MAX_IN_FLIGHT: usize = 8;

/// The longest wait between redials of a `--peer` that is down.
const MAX_REDIAL_BACKOFF: Duration = Duration::from_secs(30);

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
    /// Peers seen, connected or not.
    pub peers: Vec<PeerView>,
    /// What the shell counts.
    pub metrics: &'a Metrics,
}

type Reader = Box<dyn FnOnce(&View<'_>) + Send>;

/// Where a write's outcome goes.
type ApplyReply = oneshot::Sender<Result<Vec<ObjectView>, ApplyError>>;

enum Command {
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

/// Writes committed together with one fsync, at most.
const MAX_GROUP_COMMIT: usize = 256;

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
        let mut swarm = network::build(key, psk, cfg.mdns, cfg.max_frame)?;
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
            statics.insert(
                peer,
                Redial {
                    addr: addr.clone(),
                    backoff: Duration::from_millis(250),
                    due: Some(Instant::now()),
                },
            );
        }
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let (shutdown, shutdown_rx) = oneshot::channel();
        let feed = Arc::new(Feed::default());
        let event_loop = EventLoop {
            feed: feed.clone(),
            swarm,
            engine: Engine::new(Config::new(cfg.algorithm), state, now_us),
            replica,
            durable,
            failed: false,
            peer_id,
            allowed: (!cfg.neighbours.is_empty()).then(|| cfg.neighbours.iter().copied().collect()),
            statics,
            connections: HashMap::new(),
            peers: BTreeMap::new(),
            metrics: Metrics::default(),
            max_frame: cfg.max_frame,
        };
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

/// A `--peer` and when to dial it next.
struct Redial {
    addr: Multiaddr,
    backoff: Duration,
    /// `None` while connected or dialling.
    due: Option<Instant>,
}

#[derive(Default)]
struct PeerState {
    view: PeerView,
    in_flight: usize,
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    engine: Engine<PeerId, Store>,
    replica: ReplicaId,
    /// Every delta is committed here before it is acknowledged to anyone.
    durable: Durable,
    /// The store failed: the loop stops rather than run ahead of its disk.
    failed: bool,
    /// Every committed change, for watchers.
    feed: Arc<Feed>,
    peer_id: PeerId,
    /// `--neighbour`: when set, every other peer is disconnected on sight.
    allowed: Option<HashSet<PeerId>>,
    statics: HashMap<PeerId, Redial>,
    /// Open connections per peer, with whether each has the preferred orientation (dialled by the
    /// smaller PeerId): both ends close the other one, so a pair keeps exactly one.
    connections: HashMap<PeerId, Vec<(ConnectionId, bool)>>,
    peers: BTreeMap<PeerId, PeerState>,
    metrics: Metrics,
    max_frame: usize,
}

impl EventLoop {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: oneshot::Receiver<()>,
        interval: Duration,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => match cmd {
                    Some(Command::Apply { ops, reply }) => {
                        // Group commit: every write already queued shares this one's fsync.
                        let mut group = vec![(ops, reply)];
                        let mut other = None;
                        while group.len() < MAX_GROUP_COMMIT {
                            match commands.try_recv() {
                                Ok(Command::Apply { ops, reply }) => group.push((ops, reply)),
                                Ok(cmd) => {
                                    other = Some(cmd);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        self.apply_group(group);
                        if let Some(cmd) = other {
                            self.on_command(cmd);
                        }
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                _ = tick.tick() => {
                    self.redial();
                    let out = self.engine.handle(Input::Tick);
                    self.dispatch(out, None);
                    self.observe_acks();
                }
                _ = &mut shutdown => break,
            }
            if self.failed {
                tracing::error!("stopping: the store failed");
                break;
            }
        }
        tracing::info!("node stopped");
    }

    fn allowed(&self, peer: &PeerId) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(peer))
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Apply { ops, reply } => self.apply_group(vec![(ops, reply)]),
            Command::Read(f) => {
                let pending = |p: &PeerId| {
                    let acked = self
                        .engine
                        .neighbours()
                        .get(p)
                        .and_then(|n| n.acked)
                        .unwrap_or(0);
                    self.engine
                        .buffer()
                        .iter()
                        .filter(|e| e.seq >= acked)
                        .count() as u64
                };
                let peers = self
                    .peers
                    .iter()
                    .map(|(p, s)| PeerView {
                        pending_groups: pending(p),
                        ..s.view.clone()
                    })
                    .collect();
                f(&View {
                    peer_id: self.peer_id,
                    engine: &self.engine,
                    peers,
                    metrics: &self.metrics,
                });
            }
            Command::Sync => {
                let out = self.engine.handle(Input::Tick);
                self.dispatch(out, None);
            }
            Command::Checkpoint { label, reply } => {
                let state = self.engine.state().clone();
                let digest = codec::hex(&codec::digest(&state).unwrap_or_default());
                let checkpoint = Checkpoint {
                    created_unix_ms: unix_ms(),
                    digest,
                    state,
                };
                let info = CheckpointInfo {
                    label: label.clone(),
                    digest: checkpoint.digest.clone(),
                    created_unix_ms: checkpoint.created_unix_ms,
                };
                let _ = reply.send(
                    self.durable
                        .save_checkpoint(&label, &checkpoint)
                        .map(|saved| saved.then_some(info)),
                );
            }
            Command::Checkpoints { reply } => {
                let all = self.durable.checkpoints().map(|all| {
                    all.into_iter()
                        .map(|(label, digest, created_unix_ms)| CheckpointInfo {
                            label,
                            digest,
                            created_unix_ms,
                        })
                        .collect()
                });
                let _ = reply.send(all);
            }
            Command::CheckpointState { label, reply } => {
                let _ = reply.send(self.durable.checkpoint(&label));
            }
            Command::Rollback {
                label,
                partial,
                reply,
            } => {
                let outcome = self.rollback(&label, partial);
                let _ = reply.send(outcome);
            }
        }
    }

    /// Reverts to checkpoint `label` through the ordinary write path (durable, replicated).
    fn rollback(&mut self, label: &str, partial: bool) -> anyhow::Result<RollbackOutcome> {
        let Some(checkpoint) = self.durable.checkpoint(label)? else {
            return Ok(RollbackOutcome::NoSuchCheckpoint);
        };
        let plan = crdt::revert::revert(&checkpoint.state, self.engine.state());
        if !plan.irreversible.is_empty() && !partial {
            return Ok(RollbackOutcome::Refused {
                irreversible: plan.irreversible,
            });
        }
        if !plan.ops.is_empty() {
            let (tx, mut rx) = oneshot::channel();
            self.apply_group(vec![(plan.ops, tx)]);
            rx.try_recv()
                .context("the rollback's write got no answer")??;
        }
        tracing::info!(%label, reverted = plan.reverted.len(), irreversible = plan.irreversible.len(), "rolled back");
        Ok(RollbackOutcome::Done {
            reverted: plan.reverted,
            irreversible: plan.irreversible,
        })
    }

    /// Applies a group of writes in memory, commits all their deltas with one fsync, then replies.
    /// A write is buffered for neighbours only through the engine, which sends at the next tick,
    /// after this commit: no neighbour ever holds a dot this replica could lose and reuse.
    fn apply_group(&mut self, group: Vec<(Vec<(String, Op)>, ApplyReply)>) {
        let writer = Writer {
            replica: self.replica,
            now_ms: unix_ms(),
        };
        let mut deltas = Vec::new();
        let mut replies = Vec::new();
        for (ops, reply) in group {
            let keys: Vec<String> = ops.iter().map(|(k, _)| k.clone()).collect();
            match self.engine.state().apply_batch(ops, &writer) {
                Ok(delta) => {
                    let seq = self.engine.buffer().next_seq();
                    if !self.engine.handle(Input::Update(delta.clone())).is_empty() {
                        self.metrics.local_update(seq);
                    }
                    deltas.push(delta);
                    let state = self.engine.state();
                    let mut seen = HashSet::new();
                    let views = keys
                        .iter()
                        .filter(|k| seen.insert(k.as_str()))
                        .filter_map(|k| state.get(k).map(|o| ObjectView::new(k, o)))
                        .collect();
                    replies.push((reply, Ok(views)));
                }
                Err(e) => replies.push((reply, Err(ApplyError::Crdt(e)))),
            }
        }
        let committed = self.persist(&deltas);
        if committed.is_ok() {
            for d in &deltas {
                self.feed.publish(d, self.engine.state(), "local");
            }
        }
        for (reply, result) in replies {
            let result = match (&committed, result) {
                (Err(e), Ok(_)) => Err(ApplyError::Storage(e.clone())),
                (_, r) => r,
            };
            let _ = reply.send(result);
        }
    }

    /// Commits `deltas` (one fsync) and compacts when due. A failure stops the node.
    fn persist(&mut self, deltas: &[Store]) -> Result<(), String> {
        if deltas.is_empty() {
            return Ok(());
        }
        let result = self
            .durable
            .append(deltas)
            .and_then(|()| self.durable.maybe_compact(self.engine.state()).map(|_| ()));
        result.map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "store failure");
            self.failed = true;
            format!("{e:#}")
        })
    }

    /// Carries out the engine's outputs. `answering` is the request being handled: an ack to its
    /// sender travels back as that request's response.
    fn dispatch(
        &mut self,
        out: Vec<Output<PeerId, Store>>,
        mut answering: Option<(PeerId, ResponseChannel<Vec<u8>>)>,
    ) {
        for o in out {
            let Output::Send { to, msg } = o else {
                continue;
            };
            let frame = match wire::encode(&msg) {
                Ok(f) if f.len() <= self.max_frame => f,
                Ok(f) => {
                    tracing::warn!(peer = %to, bytes = f.len(), "message exceeds the frame limit; not sent");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "encoding failed");
                    continue;
                }
            };
            let state = self.peers.entry(to).or_default();
            state.view.bytes_sent += frame.len() as u64;
            if matches!(msg, Message::Ack { .. })
                && answering.as_ref().is_some_and(|(p, _)| *p == to)
            {
                let (_, channel) = answering.take().expect("checked");
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, frame);
            } else if state.in_flight < MAX_IN_FLIGHT {
                state.in_flight += 1;
                self.swarm.behaviour_mut().sync.send_request(&to, frame);
            } else {
                tracing::debug!(peer = %to, "in-flight limit reached; the next tick resends");
            }
        }
        if let Some((_, channel)) = answering {
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, Vec::new());
        }
    }

    fn on_frame(
        &mut self,
        from: PeerId,
        frame: &[u8],
        answering: Option<ResponseChannel<Vec<u8>>>,
    ) {
        let peer = self.peers.entry(from).or_default();
        peer.view.bytes_received += frame.len() as u64;
        if frame.is_empty() {
            if let Some(channel) = answering {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, Vec::new());
            }
            return;
        }
        match wire::decode::<Message<Store>>(frame, self.max_frame) {
            Ok(msg) => {
                if matches!(msg, Message::Ack { .. }) {
                    peer.view.last_ack_unix_ms = Some(unix_ms());
                }
                let out = self.engine.handle(Input::Received { from, msg });
                // What was new is on disk before the ack goes back.
                let applied: Vec<Store> = out
                    .iter()
                    .filter_map(|o| {
                        if let Output::Applied { delta, .. } = o {
                            Some(delta.clone())
                        } else {
                            None
                        }
                    })
                    .collect();
                if self.persist(&applied).is_err() {
                    return;
                }
                self.metrics.updates_remote += applied.len() as u64;
                for d in &applied {
                    self.feed.publish(d, self.engine.state(), "remote");
                }
                self.dispatch(out, answering.map(|c| (from, c)));
                self.observe_acks();
            }
            Err(e) => {
                self.metrics.decode_errors += 1;
                tracing::warn!(peer = %from, error = %e, "dropped a malformed frame");
                if let Some(channel) = answering {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, Vec::new());
                }
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    // Only the smaller PeerId dials, so a pair that discovers each other makes one connection.
                    if peer != self.peer_id
                        && self.allowed(&peer)
                        && self.peer_id < peer
                        && !self.swarm.is_connected(&peer)
                    {
                        let opts = DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        if let Err(e) = self.swarm.dial(opts) {
                            tracing::debug!(%peer, error = %e, "mdns dial not started");
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(_)) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if !self.allowed(&peer_id) {
                    tracing::info!(peer = %peer_id, "not a --neighbour; disconnecting");
                    let _ = self.swarm.close_connection(connection_id);
                    return;
                }
                let dialer = if endpoint.is_dialer() {
                    self.peer_id
                } else {
                    peer_id
                };
                let preferred = dialer == self.peer_id.min(peer_id);
                let conns = self.connections.entry(peer_id).or_default();
                conns.push((connection_id, preferred));
                if conns.iter().any(|(_, p)| *p) {
                    for (id, p) in conns.iter() {
                        if !*p {
                            self.swarm.close_connection(*id);
                        }
                    }
                }
                let first = conns.len() == 1;
                let peer = self.peers.entry(peer_id).or_default();
                peer.view.peer_id = peer_id.to_string();
                peer.view.connected = true;
                let addr = endpoint.get_remote_address().to_string();
                if !peer.view.addrs.contains(&addr) {
                    peer.view.addrs.push(addr);
                }
                if let Some(r) = self.statics.get_mut(&peer_id) {
                    r.backoff = Duration::from_millis(250);
                    r.due = None;
                }
                if first {
                    tracing::info!(peer = %peer_id, "neighbour up");
                    self.engine.handle(Input::NeighbourUp(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                let Some(conns) = self.connections.get_mut(&peer_id) else {
                    return;
                };
                conns.retain(|(id, _)| *id != connection_id);
                if num_established == 0 {
                    self.connections.remove(&peer_id);
                    tracing::info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "neighbour down");
                    self.metrics.neighbour_down += 1;
                    self.engine.handle(Input::NeighbourDown(peer_id));
                    if let Some(p) = self.peers.get_mut(&peer_id) {
                        p.view.connected = false;
                        p.in_flight = 0;
                    }
                    self.schedule_redial(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "dial failed");
                if !self.swarm.is_connected(&peer) {
                    self.schedule_redial(peer);
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::info!(from = %send_back_addr, %error, "incoming connection failed (wrong swarm key?)");
            }
            _ => {}
        }
    }

    fn on_sync_event(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.on_frame(peer, &request, Some(channel));
                }
                request_response::Message::Response { response, .. } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.in_flight = p.in_flight.saturating_sub(1);
                    }
                    self.on_frame(peer, &response, None);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                }
                tracing::warn!(%peer, %error, "sync request failed; the next tick resends");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, protocol = %PROTOCOL, "inbound sync stream failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Feeds the lag histogram with the local updates every neighbour has now acked.
    fn observe_acks(&mut self) {
        if let Some(seq) = self
            .engine
            .neighbours()
            .values()
            .map(|n| n.acked.unwrap_or(0))
            .min()
        {
            self.metrics.acked_by_all(seq);
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if let Some(r) = self.statics.get_mut(&peer) {
            if r.due.is_none() {
                r.due = Some(Instant::now() + r.backoff);
                r.backoff = (r.backoff * 2).min(MAX_REDIAL_BACKOFF);
            }
        }
    }

    fn redial(&mut self) {
        let now = Instant::now();
        let due: Vec<(PeerId, Multiaddr)> = self
            .statics
            .iter()
            .filter(|(p, r)| r.due.is_some_and(|d| d <= now) && !self.swarm.is_connected(p))
            .map(|(p, r)| (*p, r.addr.clone()))
            .collect();
        for (peer, addr) in due {
            if let Some(r) = self.statics.get_mut(&peer) {
                r.due = None;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "redial not started");
                self.schedule_redial(peer);
            }
        }
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::Value;
    use serde_json::json;

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
