//! The delta-buffer: delta-groups waiting to be acked by every neighbour, each tagged with its
//! sequence number and its origin (so BP can keep a group from going back where it came from).

use crdt::{Lattice, Measure};
use std::collections::VecDeque;

/// Where a buffered group came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<P> {
    /// A local update.
    Local,
    /// Received from this neighbour.
    Neighbour(P),
}

/// One buffered delta-group.
#[derive(Clone, Debug)]
pub struct Entry<P, L> {
    /// Its sequence number: entries are numbered consecutively.
    pub seq: u64,
    /// Where it came from.
    pub origin: Origin<P>,
    /// The group.
    pub group: L,
}

/// The buffer. Sequence numbers keep growing across garbage collection, so an ack stays meaningful.
#[derive(Clone, Debug)]
pub struct DeltaBuffer<P, L> {
    entries: VecDeque<Entry<P, L>>,
    /// The sequence number the next entry gets; a `Delta` message carries it as "everything below".
    next_seq: u64,
}

impl<P, L> Default for DeltaBuffer<P, L> {
    fn default() -> Self {
        DeltaBuffer {
            entries: VecDeque::new(),
            next_seq: 0,
        }
    }
}

impl<P: Copy + PartialEq, L: Lattice + Measure> DeltaBuffer<P, L> {
    /// Appends a group; returns its sequence number.
    pub fn push(&mut self, origin: Origin<P>, group: L) -> u64 {
        let seq = self.next_seq;
        self.entries.push_back(Entry { seq, origin, group });
        self.next_seq += 1;
        seq
    }

    /// Starts numbering at `seq` (only forwards): see `Engine::new`'s `seq_base`.
    pub fn advance_to(&mut self, seq: u64) {
        if self.entries.is_empty() {
            self.next_seq = self.next_seq.max(seq);
        }
    }

    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest entry still held (`next_seq` when empty: nothing is missing).
    pub fn oldest_seq(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    /// The join of the entries from `from` on, leaving out those whose origin is `skip` (BP).
    pub fn group_since(&self, from: u64, skip: Option<P>) -> L {
        let start = from.saturating_sub(self.oldest_seq()) as usize;
        let mut group = L::bottom();
        for e in self.entries.iter().skip(start) {
            if skip.is_none_or(|j| e.origin != Origin::Neighbour(j)) {
                group.join(&e.group);
            }
        }
        group
    }

    /// Drops the entries below `seq`.
    pub fn drop_below(&mut self, seq: u64) {
        while self.entries.front().is_some_and(|e| e.seq < seq) {
            self.entries.pop_front();
        }
    }

    /// Drops the oldest entries until at most `max` are left; returns how many went.
    pub fn truncate_to(&mut self, max: usize) -> usize {
        let excess = self.entries.len().saturating_sub(max);
        self.entries.drain(..excess);
        excess
    }

    /// Drops everything (a crash loses the buffer); sequence numbers keep counting.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of groups held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size in units (payload + metadata of every group, plus one sequence number each).
    pub fn units(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| 1 + e.group.payload_units() + e.group.metadata_units())
            .sum()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<P, L>> {
        self.entries.iter()
    }
}
