//! Rateless invertible Bloom lookup tables (Yang, Gilad and Alizadeh, "Practical Rateless Set
//! Reconciliation", SIGCOMM 2024): a set of 64-bit ids defines an endless sequence of *coded
//! symbols*; from the first ≈ 1.35·d symbols of the other side's sequence and its own set, a side
//! learns the d ids in which the two sets differ, whatever the sets' size.
//!
//! Symbol i holds the xor of the ids mapped to it, the xor of their checks (a second hash of each
//! id) and their count (mod 256). Every id maps to symbol 0 and to a random sparse run after it:
//! index i with probability about 1/(1 + i/2). Subtracting one's own symbols from the other's
//! leaves the symbols of the difference; a symbol holding one id (count ±1, check matching) is
//! *pure*: its id is read off and removed from every other symbol it maps to, which makes more
//! pure (peeling). Decoding succeeds when every symbol is empty.
//!
//! On the wire a symbol is 13 bytes; this module is pure and knows nothing of messages.

use serde::{Deserialize, Serialize};

/// One coded symbol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    /// Xor of the ids mapped here (big-endian).
    sum: [u8; 8],
    /// Xor of their checks.
    check: [u8; 4],
    /// How many (mod 256; the difference of two counts is ±1 when one id is left).
    count: u8,
}

impl Symbol {
    fn add(&mut self, id: u64, sign: u8) {
        self.sum = (u64::from_be_bytes(self.sum) ^ id).to_be_bytes();
        self.check = (u32::from_be_bytes(self.check) ^ check(id)).to_be_bytes();
        self.count = self.count.wrapping_add(sign);
    }

    fn subtract(&mut self, other: &Symbol) {
        self.sum = (u64::from_be_bytes(self.sum) ^ u64::from_be_bytes(other.sum)).to_be_bytes();
        self.check =
            (u32::from_be_bytes(self.check) ^ u32::from_be_bytes(other.check)).to_be_bytes();
        self.count = self.count.wrapping_sub(other.count);
    }

    fn is_empty(&self) -> bool {
        *self == Symbol::default()
    }

    /// The id it holds alone, and on which side (+1: the sender's, −1: ours), if it is pure.
    fn pure(&self) -> Option<(u64, u8)> {
        let id = u64::from_be_bytes(self.sum);
        let sign = match self.count {
            1 => 1,
            255 => 255,
            _ => return None,
        };
        (u32::from_be_bytes(self.check) == check(id)).then_some((id, sign))
    }
}

/// SplitMix64: a fast, well-mixed step (Steele, Lea and Flood, 2014).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An id's check: independent of the bits the id's symbols are chosen by.
fn check(id: u64) -> u32 {
    (mix(id ^ 0x5bd1_e995_0000_0001) >> 32) as u32
}

/// The indices of the symbols an id maps to, in increasing order: 0, then gaps drawn so that
/// index i is hit with probability about 1/(1 + i/2) (the paper's mapping, α = 0.5). Both sides
/// compute it alike: IEEE-754 square roots and products are exact to the last bit everywhere.
#[derive(Clone, Copy)]
struct Walk {
    id: u64,
    state: u64,
    at: u64,
}

impl Walk {
    fn new(id: u64) -> Walk {
        Walk {
            id,
            state: id,
            at: 0,
        }
    }

    fn advance(&mut self) {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let r = mix(self.state) as f64;
        let gap = (self.at as f64 + 1.5) * (4_294_967_296.0 / (r + 1.0).sqrt() - 1.0);
        // ⌈gap⌉ (`f64::ceil` is a library call on baseline x86-64; this is the same for every
        // gap ≥ 0: below 2⁵³ the cast truncates exactly, above it every f64 is whole). `as`
        // saturates; a gap is at least one.
        let whole = gap as u64;
        let ceil = whole + u64::from((whole as f64) < gap);
        self.at = self.at.saturating_add(ceil.max(1));
    }
}

/// A set's coded symbols, produced as far as asked and kept: each id's walk is kept where it
/// stopped, so asking for more costs only the new symbols (24 bytes per id, 13 per symbol).
#[derive(Clone)]
pub struct Coder {
    walks: Vec<Walk>,
    symbols: Vec<Symbol>,
}

impl std::fmt::Debug for Coder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Coder({} ids, {} symbols)",
            self.walks.len(),
            self.symbols.len()
        )
    }
}

impl Coder {
    /// The coder of a set of ids (each once).
    pub fn new(ids: impl Iterator<Item = u64>) -> Coder {
        Coder {
            walks: ids.map(Walk::new).collect(),
            symbols: Vec::new(),
        }
    }

    /// How many symbols it produced so far.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether it produced none yet.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The symbols `[0, end)`.
    pub fn symbols(&mut self, end: usize) -> &[Symbol] {
        if end > self.symbols.len() {
            self.symbols.resize(end, Symbol::default());
            for walk in &mut self.walks {
                while (walk.at as usize) < end {
                    self.symbols[walk.at as usize].add(walk.id, 1);
                    walk.advance();
                }
            }
        }
        &self.symbols[..end]
    }
}

/// What decoding found: the ids only the sender holds, and those only we hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Difference {
    /// Ids the other side holds and we lack.
    pub theirs: Vec<u64>,
    /// Ids we hold and the other side lacks.
    pub ours: Vec<u64>,
}

/// Decodes the difference between the sender's set (`received`: its first symbols) and ours
/// (`ours`: the coder of every id we hold; `has` tells whether we hold one). `Err`: not enough symbols yet,
/// with an estimate of how many ids differ (`None` when every symbol is taken: many more than
/// the symbols).
pub fn decode(
    received: &[Symbol],
    ours: &mut Coder,
    has: impl Fn(u64) -> bool,
) -> Result<Difference, Option<f64>> {
    let mut cells = received.to_vec();
    for (cell, own) in cells.iter_mut().zip(ours.symbols(received.len())) {
        cell.subtract(own);
    }
    let estimate = estimate(&cells);
    let mut found = Difference::default();
    let mut queue: Vec<usize> = (0..cells.len()).collect();
    while let Some(i) = queue.pop() {
        let Some((id, sign)) = cells[i].pure() else {
            continue;
        };
        // Ours if the count says so and we hold it; theirs if we do not: anything else is a
        // false pure symbol (a 2⁻³² chance), and decoding stops short of it.
        match (sign, has(id)) {
            (255, true) => found.ours.push(id),
            (1, false) => found.theirs.push(id),
            _ => continue,
        }
        let mut walk = Walk::new(id);
        while (walk.at as usize) < cells.len() {
            let j = walk.at as usize;
            cells[j].add(id, sign.wrapping_neg());
            if cells[j].pure().is_some() {
                queue.push(j);
            }
            walk.advance();
        }
    }
    if cells.iter().all(Symbol::is_empty) {
        Ok(found)
    } else {
        Err(estimate)
    }
}

/// How many ids the difference `cells` hold, from how many are empty: symbol i is empty with
/// probability about e^(−d/(1 + i/2)), so the count of the non-empty ones fixes d (by
/// bisection; over the last 4,096 symbols at most, which bounds the work). `None` when none is
/// empty.
fn estimate(cells: &[Symbol]) -> Option<f64> {
    let from = cells.len().saturating_sub(4_096).max(1);
    let sample = &cells[from.min(cells.len())..];
    let taken = sample.iter().filter(|c| !c.is_empty()).count();
    if taken == sample.len() {
        return None;
    }
    let expected = |d: f64| -> f64 {
        (from..cells.len())
            .map(|i| 1.0 - (-d / (1.0 + i as f64 / 2.0)).exp())
            .sum()
    };
    let taken = taken as f64;
    let (mut lo, mut hi) = (0.0, 1.0);
    while expected(hi) < taken && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..50 {
        let mid = (lo + hi) / 2.0;
        if expected(mid) < taken {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A symbol with these fields (for hostile-input tests).
    pub(crate) fn symbol(sum: u64, check: u32, count: u8) -> Symbol {
        Symbol {
            sum: sum.to_be_bytes(),
            check: check.to_be_bytes(),
            count,
        }
    }

    fn run(a: &[u64], b: &[u64], count: usize) -> Option<Difference> {
        let sent = encode(a.iter().copied(), count);
        decode(&sent, &mut Coder::new(b.iter().copied()), |id| {
            b.contains(&id)
        })
        .ok()
    }

    fn encode(ids: impl Iterator<Item = u64>, count: usize) -> Vec<Symbol> {
        Coder::new(ids).symbols(count).to_vec()
    }

    #[test]
    fn a_coder_goes_on_where_it_stopped_and_symbol_0_holds_everything() {
        let ids: Vec<u64> = (0..500).map(mix).collect();
        // Each symbol, id by id, from a fresh walk.
        let mut naive = vec![Symbol::default(); 300];
        for id in &ids {
            let mut walk = Walk::new(*id);
            while walk.at < 300 {
                naive[walk.at as usize].add(*id, 1);
                walk.advance();
            }
        }
        let mut coder = Coder::new(ids.iter().copied());
        assert_eq!(coder.symbols(100), &naive[..100]);
        assert_eq!(coder.symbols(300), &naive[..]);
        assert_eq!(
            naive[0].count,
            (500 % 256) as u8,
            "every id maps to symbol 0"
        );
        let hits = naive.iter().filter(|s| !s.is_empty()).count();
        assert!(hits > 290, "500 ids reach most of 300 symbols: {hits}");
    }

    #[test]
    fn equal_sets_decode_from_one_symbol() {
        let ids: Vec<u64> = (0..1_000).map(mix).collect();
        assert_eq!(run(&ids, &ids, 1), Some(Difference::default()));
        assert_eq!(
            run(&ids, &ids[1..], 1).map(|d| d.theirs),
            Some(vec![ids[0]])
        );
    }

    #[test]
    fn a_difference_needs_about_one_and_a_half_symbols_per_id() {
        let shared: Vec<u64> = (0..50_000).map(mix).collect();
        let a: Vec<u64> = shared
            .iter()
            .copied()
            .chain((1..=500).map(|i| mix(!i)))
            .collect();
        let b: Vec<u64> = shared
            .iter()
            .copied()
            .chain((1..=500).map(|i| mix(i << 40)))
            .collect();
        let b_sorted = {
            let mut s = b.clone();
            s.sort_unstable();
            s
        };
        let decode_with = |count| {
            let sent = encode(a.iter().copied(), count);
            let mut ours = Coder::new(b.iter().copied());
            decode(&sent, &mut ours, |id| b_sorted.binary_search(&id).is_ok())
        };
        let Err(Some(estimate)) = decode_with(500) else {
            panic!("fewer symbols than differences decode");
        };
        assert!(
            (700.0..1_400.0).contains(&estimate),
            "1,000 differ; estimated {estimate}"
        );
        let d = decode_with(1_700).expect("1.7 symbols per difference decode");
        assert_eq!(decode_with(50), Err(None), "a few symbols: all taken");
        let (mut theirs, mut ours) = (d.theirs, d.ours);
        theirs.sort_unstable();
        ours.sort_unstable();
        let mut want_theirs: Vec<u64> = (1..=500).map(|i| mix(!i)).collect();
        let mut want_ours: Vec<u64> = (1..=500).map(|i| mix(i << 40)).collect();
        want_theirs.sort_unstable();
        want_ours.sort_unstable();
        assert_eq!((theirs, ours), (want_theirs, want_ours));
    }

    proptest! {
        /// Given enough symbols, decoding finds exactly the difference; never a wrong id.
        #[test]
        fn decoding_finds_exactly_the_difference(
            shared in prop::collection::hash_set(any::<u64>(), 0..300),
            only_a in prop::collection::hash_set(any::<u64>(), 0..40),
            only_b in prop::collection::hash_set(any::<u64>(), 0..40),
            count in 1usize..200,
        ) {
            let set_a: std::collections::HashSet<u64> = shared.union(&only_a).copied().collect();
            let set_b: std::collections::HashSet<u64> = shared.union(&only_b).copied().collect();
            let (a, b): (Vec<u64>, Vec<u64>) = (set_a.iter().copied().collect(), set_b.iter().copied().collect());
            if let Some(d) = run(&a, &b, count) {
                let theirs: std::collections::HashSet<u64> = d.theirs.into_iter().collect();
                let ours: std::collections::HashSet<u64> = d.ours.into_iter().collect();
                prop_assert_eq!(theirs, set_a.difference(&set_b).copied().collect());
                prop_assert_eq!(ours, set_b.difference(&set_a).copied().collect());
            } else {
                prop_assert!(count < 8 * (set_a.symmetric_difference(&set_b).count() + 2));
            }
        }
    }
}
