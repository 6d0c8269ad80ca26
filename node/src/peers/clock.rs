//! Clock readings, `/deltanode/clock/1`: a node asks each neighbour the time when it comes up and
//! every exchange period — the request carries the asker's clock, the answer echoes it with the
//! answerer's — and keeps each neighbour's offset (its clock minus ours, halfway through the round
//! trip, as NTP does). `/v1/peers` shows them; `/health` says when this node's clock is off from
//! its neighbours' by more than `--max-clock-skew` (their median, so one wrong neighbour does not
//! make this one wrong).
//!
//! Both sides also name the replica id they write under: each start draws a new one, so a peer's
//! ids move on at a restart and never come back — unless two processes share its identity (a data
//! dir copied whole, a VM clone), whose answers alternate. A node that sees a peer's id come back
//! says so, and tells that peer in its answers; the peer then says so too and takes a new
//! identity at its next start (`identity.rekey`).
//!
//! The frames are in [`crate::clock_frames`].

use super::Peers;
use crate::clock::unix_ms;
use crate::clock_frames::{offset, Answer, Request};
use libp2p::request_response;
use libp2p::PeerId;

/// The replica ids a peer named, in order, repeats folded (the last few).
#[derive(Clone, Debug, Default)]
pub struct Incarnations(Vec<u64>);

impl Incarnations {
    /// `id` named; whether it shows two processes behind the peer's identity: an id seen before
    /// came back after another (a restart moves on for good).
    pub fn observe(&mut self, id: u64) -> bool {
        if self.0.last() == Some(&id) {
            return false;
        }
        let back = self.0.contains(&id);
        self.0.push(id);
        if self.0.len() > 4 {
            self.0.remove(0);
        }
        back
    }
}

impl Peers {
    /// Asks `to` the time.
    pub(super) fn ask_time(&mut self, to: PeerId) {
        let request = Request {
            time: unix_ms(),
            replica: Some(self.identity.replica),
        };
        self.swarm
            .behaviour_mut()
            .clock
            .send_request(&to, request.encode());
    }

    /// `peer` named replica id `id`: notes it, and whether that shows a twin.
    fn named(&mut self, peer: PeerId, id: u64) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if state.incarnations.observe(id) && !state.twin {
            state.twin = true;
            self.counters.twins_seen += 1;
            tracing::warn!(%peer, "two processes answer with this peer's identity (a copied data dir or a VM clone); they are told");
        }
    }

    /// What this layer has found that an operator should know: peers whose identity two
    /// processes share, and this node's own.
    pub(crate) fn identity_warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, s)| s.twin)
            .map(|(p, _)| {
                format!(
                    "two processes answer with neighbour {p}'s identity (a copied data dir or a \
                     VM clone): they are told, and take a new identity at their next start"
                )
            })
            .collect();
        if self.identity.cloned {
            out.push(
                "another process answers with this node's identity (a copy of its data dir, e.g. \
                 a VM clone): restart this node to give it a new one (it will on its next start)"
                    .to_string(),
            );
        }
        out
    }

    /// Asks every neighbour the time (each exchange period).
    pub(crate) fn ask_times(&mut self) {
        for p in self.neighbours_up() {
            self.ask_time(p);
        }
    }

    /// The neighbours' clock offsets (their clock minus ours, ms), for those measured.
    pub(crate) fn clock_offsets(&self) -> Vec<i64> {
        self.peers
            .values()
            .filter(|s| s.up)
            .filter_map(|s| s.view.clock_offset_ms)
            .collect()
    }

    /// Connected neighbours a message could not be sent to (over the frame limit), with when the
    /// last such message was (ms since the epoch).
    pub(crate) fn oversized(&self) -> Vec<(PeerId, u64)> {
        self.peers
            .iter()
            .filter(|(_, s)| s.up)
            .filter_map(|(p, s)| s.view.last_oversized_unix_ms.map(|t| (*p, t)))
            .collect()
    }

    pub(super) fn on_clock_event(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        let request_response::Event::Message { peer, message, .. } = ev else {
            return;
        };
        match message {
            request_response::Message::Request {
                request, channel, ..
            } => {
                let request = match Request::decode(&request) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "clock request dropped");
                        return;
                    }
                };
                if let Some(id) = request.replica {
                    self.named(peer, id);
                }
                let answer = Answer {
                    echoed: request.time,
                    time: unix_ms(),
                    replica: Some(self.identity.replica),
                    twin: self.peers.get(&peer).is_some_and(|s| s.twin),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .clock
                    .send_response(channel, answer.encode());
            }
            request_response::Message::Response { response, .. } => {
                let received = unix_ms();
                let answer = match Answer::decode(&response) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "clock answer dropped");
                        return;
                    }
                };
                if let Some(id) = answer.replica {
                    self.named(peer, id);
                }
                if answer.twin {
                    self.told_cloned(peer);
                }
                if answer.echoed > received {
                    return;
                }
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.view.clock_offset_ms = Some(offset(answer.echoed, answer.time, received));
                }
            }
        }
    }
}

impl Peers {
    /// `by` says another process answers with this node's identity.
    fn told_cloned(&mut self, by: PeerId) {
        if self.identity.cloned {
            return;
        }
        self.identity.cloned = true;
        self.counters.cloned = true;
        tracing::warn!(%by, "another process answers with this node's identity (a copied data dir or a VM clone): it takes a new identity at its next start");
        if let Some(marker) = &self.identity.rekey_marker {
            if let Err(e) = std::fs::write(marker, b"") {
                tracing::error!(error = %e, "could not mark the identity for re-keying");
            }
        }
    }
}

/// This node's side of the clock protocol: the replica id it writes under, whether it was told
/// another process shares its identity, and the file that asks for a new key at the next start.
#[derive(Debug, Default)]
pub(crate) struct OwnIdentity {
    pub replica: u64,
    pub cloned: bool,
    pub rekey_marker: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_moves_on_and_two_processes_alternate() {
        let mut restarts = Incarnations::default();
        assert!(![1, 1, 2, 2, 3].into_iter().any(|id| restarts.observe(id)));
        let mut twins = Incarnations::default();
        let seen: Vec<bool> = [1, 2, 1].into_iter().map(|id| twins.observe(id)).collect();
        assert_eq!(seen, [false, false, true]);
    }
}
