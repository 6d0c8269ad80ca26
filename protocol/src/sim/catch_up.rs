//! Catch-up runs: two replicas of a grow-only set share `shared` elements and differ in
//! `differ` more (on one side, or split between both); they meet as new neighbours and sync until
//! quiet. Elements are integers (a few bytes each), or strings of a given length. Measures what the catch-up costs — bytes, messages, round trips — by reconciliation and
//! by full-state exchange, against the encoded size of the difference itself.

use crate::algorithm::Algorithm;
use crate::engine::{Config, Engine, Input, Output};
use crate::message::Message;
use crate::wire;
use crdt::{codec, GSet, Lattice};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// Where the difference lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Only one replica holds the extra elements.
    One,
    /// Each replica holds half of them.
    Both,
}

/// What one catch-up cost.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpReport {
    /// `reconcile` or `state`.
    pub method: &'static str,
    /// Elements both hold.
    pub shared: u64,
    /// Elements only one side holds.
    pub differ: u64,
    /// Where they lie.
    pub side: Side,
    /// Each element's length as a string (0: integers).
    pub element_bytes: usize,
    /// Frame bytes sent, both ways.
    pub bytes: u64,
    /// Messages sent, both ways.
    pub messages: u64,
    /// Longest chain of messages, each answering the one before (round trips × 2).
    pub chain: u64,
    /// Encoded size of the difference alone: the least any method must send.
    pub difference_bytes: u64,
    /// Encoded size of one replica's whole state.
    pub state_bytes: u64,
    /// CPU time inside the two engines.
    pub cpu: Duration,
    /// Whether both ended with the join.
    pub converged: bool,
}

fn engine<T: Element>(reconcile: bool, state: GSet<T>) -> Engine<u32, GSet<T>> {
    Engine::new(
        Config {
            reconcile,
            ..Config::new(Algorithm::BpRr)
        },
        state,
        0,
    )
}

/// What a set element must be for a catch-up run.
pub trait Element: Ord + Clone + std::fmt::Debug + Serialize + DeserializeOwned + 'static {}
impl<T: Ord + Clone + std::fmt::Debug + Serialize + DeserializeOwned + 'static> Element for T {}

/// Runs one catch-up (see the module docs) with `element_bytes`-long string elements (0:
/// integers); `cpu` reads a clock (zero in tests).
pub fn run(
    reconcile: bool,
    (shared, differ, side): (u64, u64, Side),
    element_bytes: usize,
    cpu: &dyn Fn() -> Duration,
) -> CatchUpReport {
    if element_bytes == 0 {
        run_with(reconcile, (shared, differ, side), 0, |i| i, cpu)
    } else {
        let make = |i: u64| format!("{i:0element_bytes$}");
        run_with(reconcile, (shared, differ, side), element_bytes, make, cpu)
    }
}

fn run_with<T: Element>(
    reconcile: bool,
    (shared, differ, side): (u64, u64, Side),
    element_bytes: usize,
    make: impl Fn(u64) -> T,
    cpu: &dyn Fn() -> Duration,
) -> CatchUpReport {
    let common: GSet<T> = (0..shared).map(&make).collect();
    let (only_a, only_b): (GSet<T>, GSet<T>) = match side {
        Side::One => (
            (shared..shared + differ).map(&make).collect(),
            GSet::default(),
        ),
        Side::Both => (
            (shared..shared + differ / 2).map(&make).collect(),
            (shared + differ / 2..shared + differ).map(&make).collect(),
        ),
    };
    let difference_bytes = (codec::encode(&only_a).map_or(0, |b| b.len())
        + codec::encode(&only_b).map_or(0, |b| b.len())) as u64;
    let a_state = common.clone().joined(&only_a);
    let b_state = common.joined(&only_b);
    let join = a_state.clone().joined(&b_state);
    let state_bytes = codec::encode(&a_state).map_or(0, |b| b.len()) as u64;
    let mut nodes = [engine(reconcile, a_state), engine(reconcile, b_state)];
    let start = cpu();
    nodes[0].handle(Input::NeighbourUp(1));
    nodes[1].handle(Input::NeighbourUp(0));
    let (mut bytes, mut messages, mut chain) = (0u64, 0u64, 0u64);
    // Ticks until quiet: each tick's messages and their answers, in order.
    for _ in 0..50 {
        let mut queue: VecDeque<(u32, u32, Message<GSet<T>>, u64)> = VecDeque::new();
        for i in 0..2u32 {
            for o in nodes[i as usize].handle(Input::Tick) {
                if let Output::Send { to, msg } = o {
                    queue.push_back((i, to, msg, 1));
                }
            }
        }
        if queue.is_empty() {
            break;
        }
        while let Some((from, to, msg, depth)) = queue.pop_front() {
            bytes += wire::encode(&msg).map_or(0, |f| f.len()) as u64;
            messages += 1;
            chain = chain.max(depth);
            for o in nodes[to as usize].handle(Input::Received { from, msg }) {
                if let Output::Send { to: next, msg } = o {
                    queue.push_back((to, next, msg, depth + 1));
                }
            }
        }
    }
    let cpu = cpu().saturating_sub(start);
    CatchUpReport {
        method: if reconcile { "reconcile" } else { "state" },
        shared,
        differ,
        side,
        element_bytes,
        bytes,
        messages,
        chain,
        difference_bytes,
        state_bytes,
        cpu,
        converged: nodes.iter().all(|n| n.state() == &join),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciliation_costs_the_difference_and_state_exchange_the_state() {
        let zero = || Duration::ZERO;
        let r = run(true, (20_000, 10, Side::Both), 0, &zero);
        let s = run(false, (20_000, 10, Side::Both), 0, &zero);
        assert!(r.converged && s.converged);
        assert!(
            s.bytes > r.bytes * 10,
            "state {} vs reconcile {}",
            s.bytes,
            r.bytes
        );
        // Equal states: one fingerprint and a 64-hash sketch each way.
        let equal = run(true, (20_000, 0, Side::One), 0, &zero);
        assert!(
            equal.converged && equal.bytes < 1_500,
            "{} bytes",
            equal.bytes
        );
        // A dense difference, on one side or both, is caught up by state: no worse than that but
        // for the openings (a fingerprint and a sketch each way, a few kilobytes at most).
        for side in [Side::One, Side::Both] {
            let dense = run(true, (10_000, 10_000, side), 0, &zero);
            let full = run(false, (10_000, 10_000, side), 0, &zero);
            assert!(
                dense.converged && dense.bytes <= full.bytes + 4_000,
                "{dense:?} {full:?}"
            );
        }
    }

    #[test]
    fn a_one_percent_difference_of_longer_elements_costs_little_more_than_itself() {
        // 10,000 elements of 32 bytes, 100 differing: the coded symbols (13 bytes each, ≈ 1.4
        // per difference) and the ids asked for (4 bytes) cost less than the elements.
        let r = run(true, (10_000, 100, Side::Both), 32, &|| Duration::ZERO);
        assert!(r.converged && r.element_bytes == 32);
        assert!(
            r.bytes < 3 * r.difference_bytes,
            "{} bytes for a difference of {}",
            r.bytes,
            r.difference_bytes
        );
    }
}
