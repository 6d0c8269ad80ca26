//! Clock readings, `/deltanode/clock/1`: a node asks each neighbour the time when it comes up and
//! every exchange period — the request carries the asker's clock, the answer echoes it with the
//! answerer's — and keeps each neighbour's offset (its clock minus ours, halfway through the round
//! trip, as NTP does). `/v1/peers` shows them; `/health` says when this node's clock is off from
//! its neighbours' by more than `--max-clock-skew` (their median, so one wrong neighbour does not
//! make this one wrong).

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

/// The median of `offsets` (`None` if there are none).
pub fn median(mut offsets: Vec<i64>) -> Option<i64> {
    offsets.sort_unstable();
    offsets.get(offsets.len() / 2).copied()
}

impl Peers {
    /// Asks `to` the time.
    pub(super) fn ask_time(&mut self, to: PeerId) {
        let request = unix_ms().to_le_bytes().to_vec();
        self.swarm.behaviour_mut().clock.send_request(&to, request);
    }

    /// Asks every neighbour the time (each exchange period).
    pub(crate) fn ask_times(&mut self) {
        let up: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.up)
            .map(|(p, _)| *p)
            .collect();
        for p in up {
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
                let mut answer = request;
                answer.truncate(8);
                answer.extend_from_slice(&unix_ms().to_le_bytes());
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
}
