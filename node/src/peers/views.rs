//! Bounded partial views on the peers layer (`--max-neighbours K`): drives the sans-IO
//! membership protocol (`protocol::membership`, HyParView). Its messages travel on
//! `/deltanode/membership/1`; a peer is a neighbour only while it is in the active view (and
//! connected, and speaks sync); mDNS finds, the peer book and sync peers met are candidates
//! (`learn`), dialled only when the protocol asks one to become a neighbour. A peer dropped from
//! the active view is disconnected after a short grace (so its `Disconnect` arrives first),
//! unless it is a `--peer`.

use super::{PeerEvent, Peers};
use crate::codec::FrameCodec;
use libp2p::request_response;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use protocol::membership::{Effect, Membership, MembershipConfig, Msg};
use std::time::{Duration, Instant};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/deltanode/membership/1");
/// The largest membership frame (a shuffle of 64 peer ids is ~2.5 KB).
const MAX_FRAME: usize = 16 * 1024;
/// How long a peer dropped from the active view stays connected.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The codec of membership messages.
pub fn codec() -> FrameCodec {
    FrameCodec::new(MAX_FRAME)
}

/// The membership state of a node with bounded views.
pub(super) struct Views {
    pub(super) membership: Membership<PeerId>,
    /// Whether this node has sent a `Join` (the first sync peer met is its contact).
    joined: bool,
    /// Peers dropped from the active view, and when to close their connections.
    closing: Vec<(PeerId, Instant)>,
}

impl Views {
    /// Views of at most `k` neighbours for `local`.
    pub(super) fn new(local: PeerId, k: usize) -> Views {
        Views {
            membership: Membership::new(local, MembershipConfig::with_active(k), rand::random()),
            joined: false,
            closing: Vec::new(),
        }
    }
}

fn encode(msg: Msg<PeerId>) -> Vec<u8> {
    msg.try_map(|p| Some(p.to_bytes()))
        .and_then(|m| crdt::codec::encode(&m).ok())
        .unwrap_or_default()
}

fn decode(frame: &[u8]) -> Option<Msg<PeerId>> {
    let msg: Msg<Vec<u8>> = crdt::codec::decode(frame).ok()?;
    msg.try_map(|b| PeerId::from_bytes(&b).ok())
}

impl Peers {
    /// Whether `peer` may be a neighbour: always without bounded views, else while it is in the
    /// active view.
    pub(super) fn in_view(&self, peer: &PeerId) -> bool {
        self.views
            .as_ref()
            .is_none_or(|v| v.membership.active().contains(peer))
    }

    /// A sync peer met (identify, or a sync request): the first becomes the contact this node
    /// joins through, the others candidates.
    pub(super) fn member_met(&mut self, peer: PeerId) {
        let Some(v) = self.views.as_mut() else { return };
        if !v.joined && v.membership.active().is_empty() {
            v.joined = true;
            let fx = v.membership.join(peer);
            // A join only sends: no neighbour changes yet.
            let _ = self.apply(fx);
        } else {
            v.membership.learn([peer]);
        }
    }

    /// A candidate found outside the protocol (mDNS, the peer book, peer exchange) at `addrs`:
    /// kept in the swarm's address book, for when the protocol asks it to be a neighbour.
    pub(super) fn candidate_found(
        &mut self,
        peer: PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
    ) {
        if let Some(v) = self.views.as_mut() {
            v.membership.learn([peer]);
            for a in addrs {
                self.swarm.add_peer_address(peer, a);
            }
        }
    }

    /// Carries out the membership's effects; returns the neighbour changes.
    fn apply(&mut self, effects: Vec<Effect<PeerId>>) -> Vec<PeerEvent> {
        let mut out = Vec::new();
        for e in effects {
            match e {
                Effect::Send { to, msg } => {
                    let frame = encode(msg);
                    self.swarm
                        .behaviour_mut()
                        .membership
                        .send_request(&to, frame);
                }
                Effect::Up(p) => {
                    if let Some(v) = self.views.as_mut() {
                        v.closing.retain(|(c, _)| *c != p);
                    }
                    out.extend(self.up_if_ready(p));
                }
                Effect::Down(p) => {
                    if let Some(state) = self.peers.get_mut(&p) {
                        if std::mem::take(&mut state.up) {
                            out.push(PeerEvent::Down(p));
                        }
                    }
                    if let Some(v) = self.views.as_mut() {
                        v.closing.push((p, Instant::now() + CLOSE_GRACE));
                    }
                }
            }
        }
        out
    }

    /// A membership request or its failure. Every request is answered (empty) and decoded here;
    /// a node without bounded views only answers joins (`answer_as_fixed_view`).
    pub(super) fn on_membership_event(
        &mut self,
        ev: request_response::Event<Vec<u8>, Vec<u8>>,
    ) -> Vec<PeerEvent> {
        let effects = match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .membership
                    .send_response(channel, Vec::new());
                let Some(msg) = decode(&request) else {
                    self.counters.decode_errors += 1;
                    tracing::warn!(%peer, "dropped a malformed membership message");
                    return Vec::new();
                };
                let Some(v) = self.views.as_mut() else {
                    self.answer_as_fixed_view(peer, msg);
                    return Vec::new();
                };
                let fx = v.membership.on_message(peer, msg);
                self.counters.membership_bad_input = v.membership.bad_input();
                fx
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                let Some(v) = self.views.as_mut() else {
                    return Vec::new();
                };
                tracing::debug!(%peer, %error, "membership message not delivered: peer unreachable");
                v.membership.on_unreachable(peer)
            }
            _ => return Vec::new(),
        };
        self.apply(effects)
    }

    /// Without bounded views (`--max-neighbours 0`, or `--neighbour`), this node's neighbours are
    /// fixed by the sync layer; it still answers a bounded peer's `Join` or `Neighbor` with
    /// `Joined` when that peer may be its neighbour, so the bounded peer links it too (else
    /// neither side would ever count the other as a neighbour).
    fn answer_as_fixed_view(&mut self, peer: PeerId, msg: Msg<PeerId>) {
        if matches!(msg, Msg::Join | Msg::Neighbor { .. }) && self.allowed(&peer) {
            self.swarm
                .behaviour_mut()
                .membership
                .send_request(&peer, encode(Msg::Joined));
        }
    }

    /// The active view's neighbour was lost with its last connection.
    pub(super) fn neighbour_lost(&mut self, peer: PeerId) -> Vec<PeerEvent> {
        let effects = match self.views.as_mut() {
            Some(v) if v.membership.active().contains(&peer) => v.membership.on_unreachable(peer),
            _ => return Vec::new(),
        };
        self.apply(effects)
    }

    /// A tick of the membership (repair, shuffle, rotation), and the connections whose grace
    /// ended closed.
    pub(crate) fn views_tick(&mut self) -> Vec<PeerEvent> {
        let Some(v) = self.views.as_mut() else {
            return Vec::new();
        };
        let effects = v.membership.tick();
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut v.closing)
            .into_iter()
            .partition(|(_, t)| *t <= now);
        v.closing = later;
        let active: Vec<PeerId> = v.membership.active().to_vec();
        for (p, _) in due {
            if !active.contains(&p) && !self.statics.contains(&p) {
                let _ = self.swarm.disconnect_peer_id(p);
            }
        }
        self.apply(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let msg = Msg::Shuffle {
            origin: a,
            ttl: 3,
            peers: vec![a, b],
        };
        assert_eq!(decode(&encode(msg.clone())), Some(msg));
        assert_eq!(decode(&encode(Msg::Joined)), Some(Msg::Joined));
        assert_eq!(decode(b"\x07\x01\x02"), None);
        let bad: Msg<Vec<u8>> = Msg::ForwardJoin {
            joiner: vec![1, 2, 3],
            ttl: 1,
        };
        assert_eq!(decode(&crdt::codec::encode(&bad).unwrap()), None);
    }
}
