//! When to dial a peer that should be connected: a backoff that doubles on each failure, up to a
//! cap, and starts over once connected.

use libp2p::Multiaddr;
use std::time::{Duration, Instant};

/// The first wait before redialling a peer that went down (it doubles on each failure).
const FIRST_REDIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between redials of a peer that is down.
const MAX_REDIAL_BACKOFF: Duration = Duration::from_secs(8);

/// A peer to keep connected (a `--peer`, one mDNS found, or one from the peer book) and when to
/// dial it next.
#[derive(Debug)]
pub(super) struct Redial {
    /// Where to dial it (all are tried).
    pub(super) addrs: Vec<Multiaddr>,
    backoff: Duration,
    /// `None` while connected or dialling.
    pub(super) due: Option<Instant>,
    /// For a peer not reached yet (from the book, or heard of): when to give it up. Reaching it
    /// clears it (a neighbour gone is forgotten by `--forget-after` instead).
    pub(super) until: Option<Instant>,
}

impl Redial {
    pub(super) fn new(addr: Multiaddr, due: Option<Instant>) -> Self {
        Redial::at(vec![addr], due)
    }

    pub(super) fn at(addrs: Vec<Multiaddr>, due: Option<Instant>) -> Self {
        Redial {
            addrs,
            backoff: FIRST_REDIAL_BACKOFF,
            due,
            until: None,
        }
    }

    /// Given up at `t` unless reached before.
    pub(super) fn until(mut self, t: Instant) -> Self {
        self.until = Some(t);
        self
    }

    /// The peer went down or a dial failed: try again after the backoff, which doubles.
    pub(super) fn failed(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_REDIAL_BACKOFF);
        }
    }

    /// Connected: the next failure starts from the first backoff again.
    pub(super) fn connected(&mut self) {
        self.backoff = FIRST_REDIAL_BACKOFF;
        self.due = None;
        self.until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redial_backoff_doubles_up_to_the_cap_and_resets_on_connect() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let mut r = Redial::new(addr, None);
        let t = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..8 {
            r.failed(t);
            waits.push(r.due.unwrap() - t);
            r.failed(t); // already scheduled: no change
            r.due = None; // the dial went out, and failed again
        }
        assert_eq!(waits[0], FIRST_REDIAL_BACKOFF);
        assert_eq!(waits[1], FIRST_REDIAL_BACKOFF * 2);
        assert_eq!(*waits.last().unwrap(), MAX_REDIAL_BACKOFF);
        r.connected();
        r.failed(t);
        assert_eq!(r.due.unwrap() - t, FIRST_REDIAL_BACKOFF);
    }
}
