//! Catching a neighbour up: opening a reconciliation ([`crate::reconcile`]), answering its rounds,
//! and choosing, from the opening's counts and sketch, between a whole state, coded symbols and
//! narrowing ranges.

use super::{Engine, Event, IndexAt, Output};
use crate::message::Message;
use crate::peer::PeerId;
use crate::reconcile::{self, Index};
use crdt::{Decompose, Measure};
use std::sync::Arc;

impl<P: PeerId, L: Decompose + Measure + serde::Serialize> Engine<P, L> {
    /// Catches `to` up: opens a reconciliation, or (when it is off, or `to` was cut off from it)
    /// sends the whole state.
    pub(super) fn start_catch_up(&mut self, to: P, out: &mut Vec<Output<P, L>>) {
        let by_state =
            !self.config.reconcile || self.neighbours.get(&to).is_none_or(|n| n.full_state);
        let msg = if by_state {
            self.whole_state()
        } else {
            let (seq, index) = self.fresh_index();
            let sum = index.whole().sum().unwrap_or_default();
            // Unique per opening (a retry opens a new exchange; the old one's messages are stale).
            self.openings += 1;
            let session = seq.rotate_left(32)
                ^ (sum as u64)
                ^ ((sum >> 64) as u64)
                ^ self.openings.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let msg = Self::opening(session, seq, &index);
            let n = self.neighbours.get_mut(&to).expect("a neighbour");
            n.end_reconciliation();
            n.next_round = 1;
            n.session = Some(session);
            n.opened = Some((session, sum, seq));
            n.reconcile_seq = Some(seq);
            n.index = Some(index);
            msg
        };
        out.push(Output::Send { to, msg });
    }

    /// A catch-up by state: the whole state, as of the next sequence number.
    pub(super) fn whole_state(&self) -> Message<L> {
        Message::CatchUp {
            seq: self.buffer.next_seq(),
            state: self.state.clone(),
        }
    }

    /// The message that opens reconciliation `session` from `index` (taken at `seq`): the
    /// fingerprint of everything and a sketch.
    pub(super) fn opening(session: u64, seq: u64, index: &Index) -> Message<L> {
        Message::Reconcile {
            session,
            round: 0,
            seq,
            parts: vec![index.whole()],
            items: L::bottom(),
            sketch: index.sketch(),
        }
    }

    /// The reconciliation index of the current state and its sequence number, rebuilt if the
    /// state changed since it was last taken. An exchange keeps the index it started with: what
    /// changed since is in the buffer, above the index's sequence number, and reaches the peer as
    /// delta-groups once the exchange ends.
    pub(super) fn fresh_index(&mut self) -> (u64, Arc<Index>) {
        if self
            .index
            .as_ref()
            .is_none_or(|i| i.version != self.version)
        {
            let taken_of = self.index.take().map(|i| i.taken_of).unwrap_or_default();
            self.index = Some(Box::new(IndexAt {
                version: self.version,
                seq: self.buffer.next_seq(),
                index: Arc::new(Index::of(&self.state)),
                taken_of,
            }));
        }
        // The caller's exchange will hold it: keep the state it was taken of (the state now).
        self.drop_unheld_snapshots();
        let at = self.index.as_mut().expect("just built");
        let (seq, index) = (at.seq, at.index.clone());
        if !at.taken_of.iter().any(|(i, _)| Arc::ptr_eq(i, &index)) {
            at.taken_of.push((index.clone(), self.state.clone()));
        }
        (seq, index)
    }

    /// Forgets the snapshots of indexes no exchange holds. A snapshot shares the objects of a
    /// store (`crdt::Shared`), so it costs little to take, but a write to an object it shares
    /// copies that object once: they go as soon as their exchanges end.
    pub(super) fn drop_unheld_snapshots(&mut self) {
        let neighbours = &self.neighbours;
        let Some(at) = self.index.as_mut() else {
            return;
        };
        at.taken_of.retain(|(i, _)| {
            neighbours
                .values()
                .any(|n| n.index.as_ref().is_some_and(|held| Arc::ptr_eq(held, i)))
        });
    }

    /// One round of a reconciliation with `from` (see [`Message::Reconcile`]).
    pub(super) fn on_reconcile(
        &mut self,
        from: P,
        (session, round): (u64, u32),
        seq: u64,
        (parts, sketch): (Vec<reconcile::Part>, Vec<u64>),
        items: L,
        out: &mut Vec<Output<P, L>>,
    ) {
        // Irreducibles are data: merging them is right whatever the exchange.
        if !items.is_bottom() {
            self.merge(from, &items, true, out);
        }
        let Some(n) = self.neighbours.get_mut(&from) else {
            return;
        };
        let opening = match &parts[..] {
            [p] if p.upper == reconcile::Bound::END => p.sum(),
            _ => None,
        };
        let ours = n.opened.map(|(id, ..)| id);
        if Some(session) != n.session && Some(session) != ours {
            let Some(theirs) = opening.filter(|_| round == 0) else {
                return; // A message of an exchange that is over: stale.
            };
            // They open an exchange. If we opened one too, the one opened with the smaller
            // (fingerprint, index sequence number) goes on: both sides make the same choice, and
            // it stays the same when either retries with a new session (a tie: both go on).
            if let Some((id, _, at)) = n.opened.filter(|(_, sum, at)| (*sum, *at) < (theirs, seq)) {
                // Ours goes on. Say it again, in case it was lost (a duplicate is ignored there).
                if let Some(index) = &n.index {
                    out.push(Output::Send {
                        to: from,
                        msg: Self::opening(id, at, index),
                    });
                }
                return;
            }
            // Ours, if any, gives way.
            n.end_reconciliation();
            n.session = Some(session);
            n.next_round = 0;
        }
        if round != n.next_round {
            return; // Out of turn: a duplicate, or late.
        }
        if Some(session) == n.session && ours == Some(session) && opening.is_none() {
            n.opened = None; // They answered ours.
        }
        if parts.is_empty() {
            // The exchange is over: they hold ours (as of our lowest index), we hold theirs.
            out.push(Output::Send {
                to: from,
                msg: Message::Ack { seq },
            });
            if let Some(ours) = n.reconcile_seq.take() {
                n.acked = Some(n.acked.map_or(ours, |a| a.max(ours)));
            }
            n.catch_up_sent = None;
            n.end_reconciliation();
            self.stats.reconciliations += 1;
            out.push(Output::Event(Event::Acked(from)));
            out.push(Output::Event(Event::Reconciled(from)));
            return;
        }
        let (index_seq, index) = match (n.reconcile_seq, n.index.clone()) {
            (Some(seq), Some(index)) => (seq, index),
            _ => self.fresh_index(),
        };
        let max_rounds = self.config.max_reconcile_rounds;
        // An opening: what the counts and the sketches say of the difference.
        let (mine, theirs) = (index.len() as u64, their_count(&parts));
        let share = if round == 0 {
            index.difference_share(&sketch)
        } else {
            0.0
        };
        let dense =
            round == 0 && (theirs.is_some_and(|t| is_dense(mine, t)) || share > reconcile::DENSE);
        let theirs = theirs.unwrap_or(0);
        let n = self.neighbours.get_mut(&from).expect("checked above");
        if dense && fits_a_message(&index, theirs) {
            // The counts or the sketches show a large part of a state differing: a whole state
            // costs less than narrowing it down.
            n.end_reconciliation();
            n.catch_up_sent = Some(self.tick);
            let msg = self.whole_state();
            out.push(Output::Send { to: from, msg });
            return;
        }
        if round == 0 {
            let expected = expected_difference(mine, theirs, share);
            if dense && (mine.min(theirs) < 64 || expected > reconcile::MAX_CODED * 2 / 3) {
                // Too large for one message, and one side nearly empty (its empty id lists
                // bring everything at once) or too much to decode: narrow ranges, irreducibles
                // in chunks.
                n.exchange.by_ranges();
            }
            n.exchange.expected = expected;
        }
        let answer = reconcile::answer(&index, &parts, &mut n.exchange);
        n.rounds += 1;
        let answer = match answer {
            Ok(a) if n.rounds <= max_rounds => a,
            _ => {
                // A lie, or an exchange that will not end: cut it off; catch the peer up by state.
                n.end_reconciliation();
                n.catch_up_sent = None;
                n.acked = None;
                n.full_state = true;
                self.stats.reconcile_aborted += 1;
                out.push(Output::Event(Event::ReconcileAborted(from)));
                return;
            }
        };
        n.exchange.sent.extend(answer.send.iter().copied());
        n.next_round = round + 2;
        n.reconcile_seq = Some(index_seq);
        n.index = Some(index.clone());
        n.catch_up_sent = Some(self.tick);
        // From the state the index was taken of: what it names is there.
        let taken_of = self
            .index
            .iter()
            .flat_map(|at| &at.taken_of)
            .find(|(i, _)| Arc::ptr_eq(i, &index))
            .map_or(&self.state, |(_, s)| s);
        let items = reconcile::collect(taken_of, &answer.send);
        out.push(Output::Send {
            to: from,
            msg: Message::Reconcile {
                session,
                round: round + 1,
                seq: index_seq,
                sketch: vec![],
                parts: answer.parts,
                items,
            },
        });
    }
}

/// Whether an opening of `theirs` irreducibles against `mine` shows a dense difference: one side
/// holds less than three quarters of what the other does (narrowing down costs more than the
/// state once a quarter or so of it differs: BENCHMARKS.md, "Catch-up").
fn is_dense(mine: u64, theirs: u64) -> bool {
    let (lo, hi) = (mine.min(theirs), mine.max(theirs));
    hi > 0 && lo * 4 < hi * 3
}

/// How many irreducibles an opening's sender holds (`None` if `parts` is no opening).
fn their_count(parts: &[reconcile::Part]) -> Option<u64> {
    match parts {
        [reconcile::Part {
            says: reconcile::Says::Fingerprint { count, .. },
            ..
        }] => Some(*count),
        _ => None,
    }
}

/// Whether a catch-up by state, and the answer to it (what the opener, holding `theirs`, has
/// that we lack), fit in a message of [`reconcile::MAX_ITEM_BYTES`]: the larger side's count of
/// irreducibles at our average size. Not when we hold too few to tell an average (a new, empty
/// neighbour): narrowing ranges against an empty side costs no more than the state, sent in
/// chunks.
fn fits_a_message(index: &Index, theirs: u64) -> bool {
    let mine = index.len() as u64;
    let average = index.bytes() as f64 / mine.max(1) as f64;
    mine >= 64 && mine.max(theirs) as f64 * average <= reconcile::MAX_ITEM_BYTES as f64
}

/// How many irreducibles differ between our `mine` and their `theirs`, by the sketches' `share`
/// of the union (on the low side), and at least the difference of the counts.
fn expected_difference(mine: u64, theirs: u64, share: f64) -> usize {
    // |A| + |B| = (2 − s)·|A ∪ B| when a share s of the union lies on one side only.
    let union = (mine + theirs) as f64 / (2.0 - share);
    // The sketch counts k = 64·s differing hashes; take k − 2√k, a low estimate: too few symbols
    // cost a round trip (the decoder then estimates the rest closely), too many cost bytes.
    let low = (share - share.sqrt() / 4.0).max(0.0);
    ((low * union) as u64).max(mine.abs_diff(theirs)) as usize
}
