//! The event loop: the one task that owns the libp2p swarm, the sync engine and the store. It
//! carries out the engine's outputs on the wire, feeds it what arrives, commits every delta before
//! anyone is told of it, and answers the [`crate::node::Client`]'s commands in order.
//!
//! Mapping the engine onto request-response: every engine message goes out as a request; the answer
//! to a request carries the receiver's `Ack` when it has one (else it is empty), so an ack costs no
//! extra stream. Anything else the receiver wants to say (a catch-up's reply) is a request of its own.

use crate::codec::PROTOCOL;
use crate::feed::Feed;
use crate::metrics::Metrics;
use crate::network::{Behaviour, BehaviourEvent};
use crate::node::{
    unix_ms, ApplyError, ApplyReply, CheckpointInfo, Command, NodeConfig, ObjectView, PeerView,
    RollbackOutcome, View,
};
use crate::persist::{Checkpoint, Durable};
use anyhow::Context;
use crdt::{codec, Op, ReplicaId, Store, Writer};
use futures::StreamExt;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{mdns, Multiaddr, PeerId, Swarm};
use protocol::{wire, Engine, Input, Message, Output};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Requests in flight to one neighbour; beyond it, the engine's next tick resends what is unacked.
const MAX_IN_FLIGHT: usize = 8;
/// The first wait before redialling a peer that went down (it doubles on each failure).
const FIRST_REDIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between redials of a peer that is down.
const MAX_REDIAL_BACKOFF: Duration = Duration::from_secs(8);
/// Consecutive failed sync requests after which a neighbour's connection is taken for dead and
/// closed (a partition that drops packets without a FIN leaves it open otherwise); the redial
/// loop then reconnects once the link is back.
const MAX_FAILED_REQUESTS: u32 = 2;
/// Writes committed together with one fsync, at most.
const MAX_GROUP_COMMIT: usize = 256;

/// A peer to keep connected (a `--peer`, or one mDNS found) and when to dial it next.
struct Redial {
    addr: Multiaddr,
    backoff: Duration,
    /// `None` while connected or dialling.
    due: Option<Instant>,
}

/// What the loop tracks per peer: the counters it shows, and its requests in flight.
#[derive(Default)]
pub(crate) struct PeerState {
    /// Everything `GET /v1/peers` shows but `pending_groups`, which is derived when asked.
    pub(crate) view: PeerView,
    in_flight: usize,
    /// Sync requests failed in a row (reset by any response).
    failed: u32,
}

pub(crate) struct EventLoop {
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
    /// A loop over a built swarm and engine; `statics` are the `--peer`s, dialled at once.
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        engine: Engine<PeerId, Store>,
        replica: ReplicaId,
        durable: Durable,
        cfg: &NodeConfig,
        statics: HashMap<PeerId, Multiaddr>,
        feed: Arc<Feed>,
    ) -> Self {
        let statics = statics
            .into_iter()
            .map(|(p, addr)| {
                (
                    p,
                    Redial {
                        addr,
                        backoff: FIRST_REDIAL_BACKOFF,
                        due: Some(Instant::now()),
                    },
                )
            })
            .collect();
        EventLoop {
            peer_id: *swarm.local_peer_id(),
            swarm,
            engine,
            replica,
            durable,
            failed: false,
            feed,
            allowed: (!cfg.neighbours.is_empty()).then(|| cfg.neighbours.iter().copied().collect()),
            statics,
            connections: HashMap::new(),
            peers: BTreeMap::new(),
            metrics: Metrics::default(),
            max_frame: cfg.max_frame,
        }
    }

    /// Starts from `metrics` (which may share counters with the swarm's codec).
    pub(crate) fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub(crate) async fn run(
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
            Command::Read(f) => f(&View {
                peer_id: self.peer_id,
                engine: &self.engine,
                known_peers: &self.peers,
                metrics: &self.metrics,
            }),
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
        self.answer_empty(answering.map(|(_, channel)| channel));
    }

    /// Answers a request that has nothing to say back (no ack), so its sender is not left waiting.
    fn answer_empty(&mut self, answering: Option<ResponseChannel<Vec<u8>>>) {
        if let Some(channel) = answering {
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
            self.answer_empty(answering);
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
                self.answer_empty(answering);
            }
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if peer == self.peer_id || !self.allowed(&peer) {
                        continue;
                    }
                    // Remembered at its latest address, so a lost connection is redialled like a
                    // `--peer`'s. Only the smaller PeerId dials at discovery, so a pair that
                    // discovers each other makes one connection.
                    let r = self.statics.entry(peer).or_insert_with(|| Redial {
                        addr: addr.clone(),
                        backoff: FIRST_REDIAL_BACKOFF,
                        due: None,
                    });
                    r.addr = addr;
                    if self.peer_id < peer {
                        r.due = Some(Instant::now());
                    }
                }
                self.redial();
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
                    *self
                        .metrics
                        .rejected_connections
                        .entry("not_neighbour")
                        .or_default() += 1;
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
                    r.backoff = FIRST_REDIAL_BACKOFF;
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
                *self
                    .metrics
                    .rejected_connections
                    .entry("handshake")
                    .or_default() += 1;
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
                        p.failed = 0;
                    }
                    self.on_frame(peer, &response, None);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::warn!(%peer, %error, "sync request failed; the next tick resends");
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                    p.failed += 1;
                    if p.failed >= MAX_FAILED_REQUESTS && self.swarm.is_connected(&peer) {
                        p.failed = 0;
                        tracing::warn!(%peer, "neighbour unresponsive; closing its connection to redial");
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                self.metrics.inbound_failures += 1;
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
