//! Writes from neighbours stamped too far ahead of this node's clock (`--max-clock-skew`). A
//! last-writer-wins stamp is a wall-clock reading: a node whose clock runs an hour fast would win
//! every concurrent write for that hour. Such writes are held out of the state — acknowledged to
//! their sender, counted and shown per peer — until this node's clock is within the skew of their
//! stamp; then they are joined like any neighbour's delta. (Should the node stop first, they come
//! back with the next catch-up.)

use crdt::{Lattice, Store};
use libp2p::PeerId;
use protocol::Message;
use std::collections::BTreeMap;

/// The most distinct release times held; past it, further writes ahead are dropped (and counted):
/// a neighbour flooding far-future writes cannot fill memory.
const MAX_HELD: usize = 10_000;

/// What a neighbour's clock looked like from here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skewed {
    /// How far its latest write held here was stamped ahead of this node's clock (ms).
    pub ahead_ms: u64,
    /// Messages from it that carried writes held here.
    pub held: u64,
}

/// The writes held, and what was seen of each neighbour.
#[derive(Debug)]
pub struct Quarantine {
    max_skew_ms: u64,
    /// Held writes by the time they may join the state (their latest stamp less the skew).
    held: BTreeMap<u64, Store>,
    per_peer: BTreeMap<PeerId, Skewed>,
    /// Writes dropped because [`MAX_HELD`] release times were already held.
    pub dropped: u64,
}

impl Quarantine {
    /// Holds writes stamped more than `max_skew_ms` ahead.
    pub fn new(max_skew_ms: u64) -> Self {
        Quarantine {
            max_skew_ms,
            held: BTreeMap::new(),
            per_peer: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Takes out of `msg` (from `from`) the writes stamped more than the skew ahead of `now_ms`,
    /// and holds them.
    pub fn admit(&mut self, from: PeerId, msg: &mut Message<Store>, now_ms: u64) {
        let limit = now_ms.saturating_add(self.max_skew_ms);
        let Some(payload) = msg.payload_mut() else {
            return;
        };
        let Some((rest, ahead, latest)) = payload.split_ahead(limit) else {
            return;
        };
        *payload = rest;
        let seen = self.per_peer.entry(from).or_default();
        seen.ahead_ms = latest - now_ms;
        seen.held += 1;
        let release = latest - self.max_skew_ms;
        let new = !self.held.contains_key(&release);
        if self.held.len() >= MAX_HELD && new {
            self.dropped += 1;
            return;
        }
        self.held.entry(release).or_default().join(&ahead);
        if !new {
            return; // Sent again (a state-based round, a catch-up): already said.
        }
        tracing::warn!(
            peer = %from,
            ahead_s = (latest - now_ms) / 1000,
            "writes stamped ahead of this node's clock by more than --max-clock-skew: held until the clock is within it"
        );
    }

    /// The held writes whose time has come (their stamp within the skew of `now_ms`), joined.
    pub fn due(&mut self, now_ms: u64) -> Option<Store> {
        let later = self.held.split_off(&now_ms.saturating_add(1));
        let due = std::mem::replace(&mut self.held, later);
        due.into_values().reduce(|mut a, b| {
            a.join(&b);
            a
        })
    }

    /// What was seen of each neighbour whose writes were held.
    pub fn per_peer(&self) -> &BTreeMap<PeerId, Skewed> {
        &self.per_peer
    }

    /// Release times held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::{Op, ReplicaId, Value, Writer};
    use serde_json::json;

    fn lww(key: &str, now_ms: u64) -> Store {
        let w = Writer {
            replica: ReplicaId(7),
            now_ms,
        };
        Store::default()
            .apply(key, Op::LwwSet(Value::from(json!(key))), &w)
            .unwrap()
    }

    #[test]
    fn writes_far_ahead_are_held_until_the_clock_is_within_the_skew() {
        let peer = PeerId::random();
        let mut q = Quarantine::new(30_000);
        let now = 1_000_000;
        let mut group = lww("fine", now + 10_000);
        group.join(&lww("fast", now + 3_600_000));
        let mut msg = Message::Delta { seq: 1, group };
        q.admit(peer, &mut msg, now);
        let Message::Delta { group, .. } = &msg else {
            unreachable!()
        };
        assert!(group.get("fine").is_some() && group.get("fast").is_none());
        assert_eq!(
            q.per_peer()[&peer],
            Skewed {
                ahead_ms: 3_600_000,
                held: 1
            }
        );
        assert!(q.due(now + 60_000).is_none(), "not yet");
        let released = q.due(now + 3_600_000 - 30_000).expect("released");
        assert!(released.get("fast").is_some());
        assert_eq!(q.held(), 0);
        // The same write sent again (a state-based round) is held once.
        for _ in 0..3 {
            let mut again = Message::State {
                state: lww("fast", now + 3_600_000),
            };
            q.admit(peer, &mut again, now);
        }
        assert_eq!(q.held(), 1);
    }
}
