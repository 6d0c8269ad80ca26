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
//! Frames: a request is the asker's time and replica id (8 + 8 bytes; older nodes send the time
//! alone); an answer echoes the time, then the answerer's time, replica id and a flag byte (bit 0:
//! "another process answers with your identity").

use super::Peers;
use crate::clock::unix_ms;
use crate::codec::FrameCodec;
use libp2p::request_response;
use libp2p::{PeerId, StreamProtocol};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/deltanode/clock/1");

/// Requests are 8 bytes, answers 16.
pub fn codec() -> FrameCodec {
    FrameCodec::new(64)
}

/// `answerer − asker`, in ms, from the asker's send and receive times and the answerer's reading.
pub fn offset(sent: u64, theirs: u64, received: u64) -> i64 {
    let midpoint = sent / 2 + received / 2 + (sent % 2 + received % 2) / 2;
    theirs as i64 - midpoint as i64
}

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

/// The median of `offsets` (`None` if there are none).
pub fn median(mut offsets: Vec<i64>) -> Option<i64> {
    offsets.sort_unstable();
    offsets.get(offsets.len() / 2).copied()
}

impl Peers {
    /// Asks `to` the time.
    pub(super) fn ask_time(&mut self, to: PeerId) {
        let mut request = unix_ms().to_le_bytes().to_vec();
        request.extend_from_slice(&self.identity.replica.to_le_bytes());
        self.swarm.behaviour_mut().clock.send_request(&to, request);
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
                if let Some(id) = request.get(8..16).and_then(|b| b.try_into().ok()) {
                    self.named(peer, u64::from_le_bytes(id));
                }
                let twin = self.peers.get(&peer).is_some_and(|s| s.twin);
                let mut answer = request;
                answer.truncate(8);
                answer.extend_from_slice(&unix_ms().to_le_bytes());
                answer.extend_from_slice(&self.identity.replica.to_le_bytes());
                answer.push(u8::from(twin));
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .clock
                    .send_response(channel, answer);
            }
            request_response::Message::Response { response, .. } => {
                let received = unix_ms();
                let (Some(sent), Some(theirs)) = (
                    response.get(..8).and_then(|b| b.try_into().ok()),
                    response.get(8..16).and_then(|b| b.try_into().ok()),
                ) else {
                    return;
                };
                let (sent, theirs) = (u64::from_le_bytes(sent), u64::from_le_bytes(theirs));
                if let Some(id) = response.get(16..24).and_then(|b| b.try_into().ok()) {
                    self.named(peer, u64::from_le_bytes(id));
                }
                if response.get(24).is_some_and(|f| f & 1 == 1) {
                    self.told_cloned(peer);
                }
                if sent > received {
                    return;
                }
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.view.clock_offset_ms = Some(offset(sent, theirs, received));
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
    fn the_offset_is_taken_halfway_through_the_round_trip_and_the_median_resists_one_liar() {
        assert_eq!(offset(1_000, 1_050, 1_100), 0);
        assert_eq!(offset(1_000, 3_601_050, 1_100), 3_600_000);
        assert_eq!(offset(1_000, 50, 1_100), -1_000);
        assert_eq!(offset(u64::MAX - 2, u64::MAX - 1, u64::MAX), 0);
        assert_eq!(median(vec![3_600_000, 5, -3]), Some(5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_restart_moves_on_and_two_processes_alternate() {
        let mut restarts = Incarnations::default();
        assert!(![1, 1, 2, 2, 3].into_iter().any(|id| restarts.observe(id)));
        let mut twins = Incarnations::default();
        let seen: Vec<bool> = [1, 2, 1].into_iter().map(|id| twins.observe(id)).collect();
        assert_eq!(seen, [false, false, true]);
    }
}
