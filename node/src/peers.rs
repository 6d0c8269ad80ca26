//! [`Peers`]: the libp2p swarm and everything about connections — which peers are neighbours
//! (`--neighbour`), one connection per pair, redialling `--peer`s and mDNS finds with backoff,
//! closing links that stop answering, requests in flight — and the frames on them. It turns swarm
//! events into [`PeerEvent`]s for the event loop and sends the engine's messages; it knows no
//! protocol fact (what to send, when a neighbour is synced): those come from the engine.
//!
//! Mapping the engine onto request-response: every engine message goes out as a request; the answer
//! to a request carries the receiver's `Ack` when it has one (else it is empty), so an ack costs no
//! extra stream. Anything else the receiver wants to say (a catch-up's reply) is a request of its own.

use crate::codec::PROTOCOL;
use crate::metrics::PeerCounters;
use crate::network::{Behaviour, BehaviourEvent};
use crate::peer_book::PeerBook;
use crate::views::{OwnAddrs, PeerView};
use crdt::Store;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, ping};
use libp2p::{mdns, Multiaddr, PeerId, Swarm};
use protocol::{wire, Message, ProtocolError};
use redial::Redial;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

pub(crate) mod clock;
mod exchange;
mod own_addrs;
mod redial;
pub(crate) mod views;

/// External-address candidates remembered at most.
const MAX_CANDIDATES: usize = 64;
/// Requests in flight to one neighbour; beyond it, the engine's next tick resends what is unacked.
const MAX_IN_FLIGHT: usize = 8;
/// The longest random wait before dialling a peer from the book at start.
pub(crate) const BOOK_JITTER: Duration = Duration::from_millis(500);

/// Consecutive failed sync requests after which a neighbour's connection is taken for dead and
/// closed (a partition that drops packets without a FIN leaves it open otherwise); the redial
/// loop then reconnects once the link is back.
const MAX_FAILED_REQUESTS: u32 = 2;

/// What the event loop hears from the peers layer.
pub(crate) enum PeerEvent {
    /// The first connection to a neighbour opened.
    Up(PeerId),
    /// The last connection to a neighbour closed.
    Down(PeerId),
    /// A decoded message; `answer` is the request's response channel (none for a response).
    Message {
        from: PeerId,
        msg: Box<Message<Store>>,
        answer: Option<ResponseChannel<Vec<u8>>>,
    },
}

/// Per peer: the counters it shows, and its requests in flight.
#[derive(Default)]
struct PeerState {
    /// Everything `GET /v1/peers` shows but what the engine knows (`pending_groups`, and when it
    /// last acked: filled in by the replica).
    view: PeerView,
    in_flight: usize,
    /// Sync requests failed in a row (reset by any response).
    failed: u32,
    /// It speaks `/deltanode/sync/1` (identify said so, or it sent a sync request): a neighbour
    /// while connected. Kept across reconnections.
    speaks_sync: bool,
    /// The engine was told it is up (and must be told when it goes down).
    up: bool,
    /// When its last connection closed (`None` while connected, or never connected).
    gone_since: Option<Instant>,
    /// The replica ids it named (`/deltanode/clock/1`).
    incarnations: clock::Incarnations,
    /// Two processes answer with its identity.
    twin: bool,
}

/// Open connections to one peer, each with whether it has the preferred orientation (dialled by
/// the smaller PeerId). Both ends close the others, so a pair keeps exactly one.
#[derive(Default)]
struct Connections(Vec<(ConnectionId, bool)>);

impl Connections {
    /// Adds a connection; returns those to close (every non-preferred one once a preferred exists).
    fn add(&mut self, id: ConnectionId, preferred: bool) -> Vec<ConnectionId> {
        self.0.push((id, preferred));
        if self.0.iter().any(|(_, p)| *p) {
            self.0
                .iter()
                .filter(|(_, p)| !*p)
                .map(|(c, _)| *c)
                .collect()
        } else {
            Vec::new()
        }
    }
}

/// The peers layer. See the module docs.
pub(crate) struct Peers {
    swarm: Swarm<Behaviour>,
    local: PeerId,
    /// This node's side of the clock protocol (its replica id, whether it has a twin).
    identity: clock::OwnIdentity,
    /// `--neighbour`: when set, every other peer is disconnected on sight.
    allowed: Option<HashSet<PeerId>>,
    redials: HashMap<PeerId, Redial>,
    connections: HashMap<PeerId, Connections>,
    peers: BTreeMap<PeerId, PeerState>,
    /// Peers whose identify shows no `/deltanode/sync/1` (another libp2p app on the same network
    /// key): never neighbours, never redialled.
    strangers: HashSet<PeerId>,
    /// Every sync-speaking peer met, with its listen addresses: dialled on start.
    book: PeerBook,
    /// The `--peer`s: redialled for ever.
    statics: HashSet<PeerId>,
    /// How long a disconnected peer is remembered (`--forget-after`).
    forget_after: Duration,
    counters: PeerCounters,
    max_frame: usize,
    /// This node's addresses, as the API shows them.
    own: OwnAddrs,
    /// External-address candidates (an address a peer saw us at, translated to our listen
    /// port by identify), with how many times one was reported: the second report confirms it.
    candidates: HashMap<Multiaddr, u32>,
    /// Bounded partial views (`--max-neighbours`), if on.
    views: Option<views::Views>,
}

impl Peers {
    /// The layer over `swarm`; `statics` (the `--peer`s) are dialled at once, and the peers of
    /// `book` too, each after a random wait of up to [`BOOK_JITTER`] (a cluster restarting at
    /// once does not dial in lockstep).
    pub(crate) fn new(
        (swarm, own): (Swarm<Behaviour>, OwnAddrs),
        allowed: &[PeerId],
        statics: HashMap<PeerId, Multiaddr>,
        book: PeerBook,
        (counters, max_frame, forget_after, max_neighbours): (
            PeerCounters,
            usize,
            Duration,
            Option<usize>,
        ),
    ) -> Self {
        let now = Instant::now();
        let local = *swarm.local_peer_id();
        let views = max_neighbours.map(|k| views::Views::new(local, k));
        let allowed: Option<HashSet<PeerId>> =
            (!allowed.is_empty()).then(|| allowed.iter().copied().collect());
        let booked: Vec<(PeerId, Vec<Multiaddr>)> = book
            .entries()
            .filter(|(p, e)| **p != local && !e.addrs.is_empty())
            .filter(|(p, _)| allowed.as_ref().is_none_or(|a| a.contains(p)))
            .map(|(p, e)| (*p, e.addrs.clone()))
            .collect();
        // With bounded views the book holds candidates (below), dialled when the protocol asks.
        let mut redials: HashMap<PeerId, Redial> = booked
            .iter()
            .filter(|_| views.is_none())
            .map(|(p, addrs)| {
                let jitter = BOOK_JITTER.mul_f64(rand::random::<f64>());
                let redial = Redial::at(addrs.clone(), Some(now + jitter));
                (*p, redial.until(now + forget_after))
            })
            .collect();
        let static_ids = statics.keys().copied().collect();
        for (p, addr) in statics {
            redials.insert(p, Redial::new(addr, Some(now)));
        }
        let mut peers = Peers {
            local,
            identity: clock::OwnIdentity::default(),
            swarm,
            allowed,
            redials,
            connections: HashMap::new(),
            peers: BTreeMap::new(),
            strangers: HashSet::new(),
            book,
            statics: static_ids,
            forget_after,
            counters,
            max_frame,
            own,
            candidates: HashMap::new(),
            views,
        };
        for (p, addrs) in booked {
            peers.candidate_found(p, addrs);
        }
        peers
    }

    /// The next swarm event (cancel-safe: for `select!`).
    pub(crate) async fn next(&mut self) -> SwarmEvent<BehaviourEvent> {
        use futures::StreamExt;
        self.swarm.select_next_some().await
    }

    /// This node's replica id (named in clock readings) and the file that asks for a new key at the
    /// next start, should another process turn out to share its identity.
    pub(crate) fn set_identity(&mut self, replica: u64, rekey_marker: std::path::PathBuf) {
        self.identity.replica = replica;
        self.identity.rekey_marker = Some(rekey_marker);
    }

    /// The peers the engine was told are up: the neighbours.
    fn neighbours_up(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, s)| s.up)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Every peer seen, connected or not (`pending_groups` left for the engine to fill in).
    pub(crate) fn views(&self) -> Vec<(PeerId, PeerView)> {
        self.peers
            .iter()
            .map(|(p, s)| (*p, s.view.clone()))
            .collect()
    }

    /// Sync frame bytes sent since the start, forgotten peers' included.
    pub(crate) fn bytes_sent_total(&self) -> u64 {
        self.counters.forgotten_bytes.0
            + self.peers.values().map(|s| s.view.bytes_sent).sum::<u64>()
    }

    /// What this layer counts.
    pub(crate) fn counters(&self) -> PeerCounters {
        self.counters.clone()
    }

    fn allowed(&self, peer: &PeerId) -> bool {
        self.allowed.as_ref().is_none_or(|a| a.contains(peer))
    }

    /// Sends the engine's messages. `answering` is the request being handled: an ack to its sender
    /// travels back as that request's response; any other request is answered empty. Returns the
    /// peers a message could not be sent to, being larger than a frame (the engine catches them
    /// up another way).
    pub(crate) fn send(
        &mut self,
        sends: Vec<(PeerId, Message<Store>)>,
        mut answering: Option<(PeerId, ResponseChannel<Vec<u8>>)>,
    ) -> Vec<PeerId> {
        let mut undeliverable = Vec::new();
        for (to, msg) in sends {
            let frame = match wire::encode_within(&msg, self.max_frame) {
                Ok(f) => f,
                Err(
                    e @ (ProtocolError::FrameTooLarge { .. } | ProtocolError::TooManyItems { .. }),
                ) => {
                    tracing::warn!(peer = %to, error = %e, kind = msg.kind(), "message too large for a neighbour to take; not sent (catching the peer up by reconciliation instead)");
                    let state = self.peers.entry(to).or_default();
                    state.view.oversized_sends += 1;
                    state.view.last_oversized_unix_ms = Some(crate::clock::unix_ms());
                    undeliverable.push(to);
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
        undeliverable
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

    /// Decodes a frame from `from`; a malformed one is counted, logged and answered empty.
    fn on_frame(
        &mut self,
        from: PeerId,
        frame: &[u8],
        answer: Option<ResponseChannel<Vec<u8>>>,
    ) -> Option<PeerEvent> {
        let peer = self.peers.entry(from).or_default();
        peer.view.bytes_received += frame.len() as u64;
        if frame.is_empty() {
            self.answer_empty(answer);
            return None;
        }
        match wire::decode::<Message<Store>>(frame, self.max_frame) {
            Ok(msg) => Some(PeerEvent::Message {
                from,
                msg: Box::new(msg),
                answer,
            }),
            Err(e) => {
                self.counters.decode_errors += 1;
                tracing::warn!(peer = %from, error = %e, "dropped a malformed frame");
                self.answer_empty(answer);
                None
            }
        }
    }

    /// Turns a swarm event into what the event loop must hear of it, in order.
    pub(crate) fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) -> Vec<PeerEvent> {
        let mut out = Vec::new();
        if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
            peer,
            message: request_response::Message::Request { .. },
            ..
        })) = &ev
        {
            // A sync request proves it speaks sync, whatever identify has said yet.
            out.extend(self.speaks_sync(*peer));
        }
        let lost = match &ev {
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => Some(*peer_id),
            _ => None,
        };
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Membership(e)) => {
                out.extend(self.on_membership_event(e));
            }
            ev => out.extend(self.on_event(ev)),
        }
        if let Some(peer) = lost {
            out.extend(self.neighbour_lost(peer));
        }
        out
    }

    /// `peer` speaks `/deltanode/sync/1`: a neighbour now, if connected and not one yet.
    fn speaks_sync(&mut self, peer: PeerId) -> Option<PeerEvent> {
        self.peers.entry(peer).or_default().speaks_sync = true;
        self.member_met(peer);
        self.up_if_ready(peer)
    }

    /// `Up` for `peer` once it is both connected and known to speak sync, and only once while it
    /// stays connected.
    fn up_if_ready(&mut self, peer: PeerId) -> Option<PeerEvent> {
        let connected = self.connections.contains_key(&peer);
        let in_view = self.in_view(&peer);
        let state = self.peers.get_mut(&peer)?;
        if connected && state.speaks_sync && !state.up && in_view {
            state.up = true;
            self.offer_sample(peer);
            self.ask_time(peer);
            return Some(PeerEvent::Up(peer));
        }
        None
    }

    /// What identify told of `peer`: a neighbour if it speaks sync; else a stranger, disconnected
    /// and forgotten (a libp2p peer of another app on the same network key).
    fn identified(&mut self, peer: PeerId, info: &identify::Info) -> Option<PeerEvent> {
        if let Some(state) = self.peers.get_mut(&peer) {
            // What it runs, as it says (cut: a peer chooses it).
            state.view.agent_version = Some(info.agent_version.chars().take(128).collect());
        }
        if info.protocols.iter().any(|p| p.as_ref() == PROTOCOL) {
            self.book.record(peer, &info.listen_addrs);
            if let Some(r) = self.redials.get_mut(&peer) {
                for a in &info.listen_addrs {
                    if !r.addrs.contains(a) && r.addrs.len() < 8 {
                        r.addrs.push(a.clone());
                    }
                }
            }
            return self.speaks_sync(peer);
        }
        if self.peers.get(&peer).is_some_and(|s| s.speaks_sync) {
            return None; // It spoke sync to us: trust that over an odd identify.
        }
        tracing::info!(%peer, agent = %info.agent_version, "peer does not speak {PROTOCOL}; not a neighbour, not redialled");
        *self
            .counters
            .rejected_connections
            .entry("no_sync_protocol")
            .or_default() += 1;
        self.strangers.insert(peer);
        self.redials.remove(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
        None
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) -> Option<PeerEvent> {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => return self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Exchange(ev)) => self.on_exchange_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Clock(ev)) => self.on_clock_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => return self.identified(peer_id, &info),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Err(e),
                ..
            })) => tracing::debug!(%peer, error = %e, "ping failed"),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.view.rtt_ms = Some((rtt.as_secs_f64() * 10_000.0).round() / 10.0);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    self.discovered(peer, addr);
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
                return self.connected(peer_id, connection_id, endpoint.is_dialer(), || {
                    endpoint.get_remote_address().to_string()
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                let conns = self.connections.get_mut(&peer_id)?;
                conns.0.retain(|(id, _)| *id != connection_id);
                if num_established == 0 {
                    self.connections.remove(&peer_id);
                    tracing::debug!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "last connection closed");
                    self.schedule_redial(peer_id);
                    let p = self.peers.get_mut(&peer_id)?;
                    p.view.connected = false;
                    p.in_flight = 0;
                    p.gone_since = Some(Instant::now());
                    if std::mem::take(&mut p.up) {
                        return Some(PeerEvent::Down(peer_id));
                    }
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
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening on a new address");
                self.own.update(false, self.with_id(address), true);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!(%address, "no longer listening on an address (its interface went)");
                self.own.update(false, self.with_id(address), false);
            }
            SwarmEvent::NewExternalAddrCandidate { address } => self.candidate(address),
            SwarmEvent::ExternalAddrConfirmed { address } => {
                self.own.update(true, self.with_id(address), true);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.own.update(true, self.with_id(address), false);
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::info!(from = %send_back_addr, %error, "incoming connection failed (wrong swarm key?)");
                *self
                    .counters
                    .rejected_connections
                    .entry("handshake")
                    .or_default() += 1;
            }
            _ => {}
        }
        None
    }

    /// mDNS found `peer` at `addr`: remembered at its latest address, so a lost connection is
    /// redialled like a `--peer`'s. Only the smaller PeerId dials at discovery, so a pair that
    /// discovers each other makes one connection.
    fn discovered(&mut self, peer: PeerId, addr: Multiaddr) {
        if peer == self.local || !self.allowed(&peer) || self.strangers.contains(&peer) {
            return;
        }
        if self.views.is_some() {
            self.candidate_found(peer, [addr]);
            return;
        }
        let r = self
            .redials
            .entry(peer)
            .or_insert_with(|| Redial::new(addr.clone(), None));
        r.addrs = vec![addr];
        if self.local < peer {
            r.due = Some(Instant::now());
        }
    }

    fn connected(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        we_dialled: bool,
        remote_addr: impl FnOnce() -> String,
    ) -> Option<PeerEvent> {
        if !self.allowed(&peer) {
            tracing::info!(%peer, "not a --neighbour; disconnecting");
            *self
                .counters
                .rejected_connections
                .entry("not_neighbour")
                .or_default() += 1;
            let _ = self.swarm.close_connection(id);
            return None;
        }
        let dialer = if we_dialled { self.local } else { peer };
        let conns = self.connections.entry(peer).or_default();
        for extra in conns.add(id, dialer == self.local.min(peer)) {
            self.swarm.close_connection(extra);
        }
        let state = self.peers.entry(peer).or_default();
        state.view.peer_id = peer.to_string();
        state.view.connected = true;
        state.gone_since = None;
        let addr = remote_addr();
        if !state.view.addrs.contains(&addr) {
            state.view.addrs.push(addr);
        }
        if let Some(r) = self.redials.get_mut(&peer) {
            r.connected();
        }
        // A neighbour once identify says it speaks sync (at once if it did before).
        self.up_if_ready(peer)
    }

    fn on_sync_event(
        &mut self,
        ev: request_response::Event<Vec<u8>, Vec<u8>>,
    ) -> Option<PeerEvent> {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_frame(peer, &request, Some(channel)),
                request_response::Message::Response { response, .. } => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        p.in_flight = p.in_flight.saturating_sub(1);
                        p.failed = 0;
                    }
                    self.on_frame(peer, &response, None)
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
                None
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                self.counters.inbound_failures += 1;
                tracing::warn!(%peer, %error, protocol = %PROTOCOL, "inbound sync stream failed");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if let Some(r) = self.redials.get_mut(&peer) {
            r.failed(Instant::now());
        }
    }

    /// Forgets the peers disconnected for longer than `--forget-after`: they leave `/v1/peers`
    /// and the per-peer metrics (their bytes stay in the node's totals), and are no longer
    /// redialled unless they are `--peer`s. The peer book keeps them, for restarts.
    pub(crate) fn forget(&mut self) {
        let now = Instant::now();
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.gone_since.is_some_and(|t| now - t > self.forget_after))
            .map(|(p, _)| *p)
            .collect();
        for peer in gone {
            let state = self.peers.remove(&peer).expect("listed");
            self.counters.forgotten_bytes.0 += state.view.bytes_sent;
            self.counters.forgotten_bytes.1 += state.view.bytes_received;
            self.counters.forgotten_peers += 1;
            if !self.statics.contains(&peer) {
                self.redials.remove(&peer);
            }
            tracing::info!(%peer, "forgot a peer gone for longer than --forget-after");
        }
    }

    /// Dials every remembered peer whose redial is due and that is not connected; gives up the
    /// peers heard of (or in the book) that were never reached within `--forget-after`.
    pub(crate) fn redial(&mut self) {
        let now = Instant::now();
        self.redials.retain(|_, r| r.until.is_none_or(|t| t > now));
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .redials
            .iter()
            .filter(|(p, r)| r.due.is_some_and(|d| d <= now) && !self.swarm.is_connected(p))
            .map(|(p, r)| (*p, r.addrs.clone()))
            .collect();
        for (peer, addrs) in due {
            if let Some(r) = self.redials.get_mut(&peer) {
                r.due = None;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "redial not started");
                self.schedule_redial(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_keeps_only_its_preferred_connection() {
        let (a, b, c) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let mut conns = Connections::default();
        assert!(conns.add(a, false).is_empty(), "the only one is kept");
        assert_eq!(conns.add(b, true), vec![a]);
        assert_eq!(conns.add(c, false), vec![a, c]);
    }
}
