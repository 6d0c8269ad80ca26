//! Peer exchange on the peers layer: samples of the peer book offered to neighbours, and what
//! arrives booked and dialled (the format and bounds are `crate::peer_exchange`'s).

use super::{Peers, Redial, BOOK_JITTER};
use crate::peer_exchange;
use libp2p::request_response;
use libp2p::{Multiaddr, PeerId};
use std::time::Instant;

impl Peers {
    /// A sample of the peer book for `to`, encoded (and counted as sent).
    fn sample_for(&mut self, to: &PeerId) -> Vec<u8> {
        *self.counters.peer_samples.entry("sent").or_default() += 1;
        peer_exchange::encode(&self.book.sample(to, peer_exchange::MAX_SAMPLE))
    }

    /// Sends `to` a sample of the peer book (peer exchange); its answer is its own sample.
    pub(super) fn offer_sample(&mut self, to: PeerId) {
        let frame = self.sample_for(&to);
        self.swarm.behaviour_mut().exchange.send_request(&to, frame);
    }

    /// Sends a sample to one neighbour at random (every [`peer_exchange::EXCHANGE_EVERY`]), so
    /// what one node learns reaches the others.
    pub(crate) fn exchange(&mut self) {
        let up = self.neighbours_up();
        if !up.is_empty() {
            let to = up[rand::random::<u64>() as usize % up.len()];
            self.offer_sample(to);
        }
    }

    /// A sample from `from`: its peers go in the book and those not met yet are dialled (within
    /// `--forget-after`: a peer that never answers is given up). A malformed one is counted.
    fn learn(&mut self, from: PeerId, frame: &[u8]) {
        let peers = match peer_exchange::decode(frame) {
            Ok(peers) => peers,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "dropped a peer sample");
                *self.counters.peer_samples.entry("malformed").or_default() += 1;
                return;
            }
        };
        *self.counters.peer_samples.entry("received").or_default() += 1;
        let peers: Vec<(PeerId, Vec<Multiaddr>)> = peers
            .into_iter()
            .filter(|(p, addrs)| {
                *p != self.local
                    && !addrs.is_empty()
                    && self.allowed(p)
                    && !self.strangers.contains(p)
            })
            .collect();
        self.book.heard(&peers);
        if self.views.is_some() {
            // Candidates for the bounded views, dialled when the protocol asks one.
            for (peer, addrs) in peers {
                self.candidate_found(peer, addrs);
            }
            return;
        }
        let now = Instant::now();
        for (peer, addrs) in peers {
            if self.swarm.is_connected(&peer) || self.redials.contains_key(&peer) {
                continue;
            }
            tracing::debug!(%peer, via = %from, "heard of a peer; dialling it");
            let jitter = BOOK_JITTER.mul_f64(rand::random::<f64>());
            self.redials.insert(
                peer,
                Redial::at(addrs, Some(now + jitter)).until(now + self.forget_after),
            );
        }
    }

    /// A sample asked for (answered with ours, then learnt from) or answered.
    pub(super) fn on_exchange_event(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let frame = self.sample_for(&peer);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .exchange
                        .send_response(channel, frame);
                    self.learn(peer, &request);
                }
                request_response::Message::Response { response, .. } => self.learn(peer, &response),
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "peer sample not answered");
            }
            _ => {}
        }
    }
}
