//! Range-based set reconciliation (Meyer, "Range-Based Set Reconciliation", 2023; the scheme of
//! `negentropy`) over the join-decomposition of a state: two replicas find which irreducibles
//! each lacks at a cost that grows with the difference, not with the state.
//!
//! The "irreducibles" here are the state's *pieces* ([`Decompose::for_each_piece`]): its
//! join-irreducibles, except that a run of removed dots in a causal context is one piece (so
//! indexing costs what a state holds, not the dots its contexts claim). Every piece is named by a
//! 128-bit hash of its canonical encoding. A side sends
//! *parts*: ranges of the hash space with either a fingerprint (the sum of its hashes mod 2¹²⁸ and
//! their count) or, for a small range, the hashes themselves. The other side answers each part:
//! equal fingerprints close the range; a small range is answered with its own hashes; a large one
//! is split in [`BRANCH`] sub-ranges with their fingerprints; a list of hashes is answered with the
//! irreducibles the sender lacks and a bitmap of the ones this side has, so the sender can send
//! back the rest. Irreducibles travel as one joined delta, so the receiver merges them as
//! any group (RR keeps only what is new; the buffer tags them with their origin, for BP). Equal
//! states cost one fingerprint each way.
//!
//! A mismatch of the whole space is first answered with *coded symbols* of a rateless IBLT
//! ([`coded`]): from about 1.35 symbols (13 bytes each) per differing irreducible, the other side
//! decodes which hashes differ, asks for the ones it lacks ([`Says::Want`]) and sends the ones
//! the coder lacks, in chunks. Should decoding need more symbols than [`MAX_CODED`], the
//! exchange falls back to narrowing ranges.
//!
//! Bounds: a reply holds at most [`MAX_PARTS`] parts and [`MAX_ITEMS`] irreducibles (fewer if they
//! are large: at most [`MAX_ITEM_BYTES`] of them); what does not
//! fit is left as a fingerprint part, which the next round narrows again, so every round makes
//! progress and every message stays small. This module is pure: the engine keeps the session.

mod by_ranges;
mod by_sketches;
mod by_symbols;
pub mod coded;
pub mod pinsketch;
pub mod strata;

use crdt::{codec, Decompose};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The name of an irreducible: the first 16 bytes of the SHA-256 of its encoding.
pub type Hash = u128;

/// Sub-ranges a mismatched range is split into.
pub const BRANCH: usize = 8;
/// Ranges this small (in the answering side's hashes) are answered with their hashes.
pub const IDS_THRESHOLD: usize = 32;
/// Hashes in an opening's sketch.
pub const SKETCH: usize = 64;
/// The share of irreducibles that must differ (estimated from the sketches) for a catch-up by
/// state to cost less than reconciliation: about a quarter (BENCHMARKS.md, "Catch-up").
pub const DENSE: f64 = 0.25;
/// The most parts in one message.
pub const MAX_PARTS: usize = 1024;
/// The most coded symbols in one message (13 bytes each: under 1 MiB).
pub const MAX_SYMBOLS: usize = 1 << 16;
/// The most coded symbols one exchange decodes from (27 MiB held by the decoding side) before it
/// falls back to narrowing ranges.
pub const MAX_CODED: usize = 1 << 21;
/// The most ids asked for in one message.
pub const MAX_WANTS: usize = 1 << 14;
/// The most irreducibles sent in one message.
pub const MAX_ITEMS: usize = 1 << 16;
/// The most bytes of irreducibles sent in one message (half the default frame limit): a state of
/// large irreducibles (big register values) sends fewer per message.
pub const MAX_ITEM_BYTES: usize = 8 << 20;

/// A range of the hash space and what the sender has in it. The parts of a message tile the space
/// in order: each range starts where the one before ended (the first at 0), and ends before
/// `upper` (the last at the end of the space).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// First hash past the range.
    pub upper: Bound,
    /// What the sender has in it.
    pub says: Says,
}

/// A range's end: a hash, or the end of the space. On the wire, the hash's big-endian bytes
/// without their trailing zeros (split points are chosen with as few significant bytes as
/// separate the hashes either side, so a bound is a few bytes, not sixteen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bound(pub Option<Hash>);

impl Bound {
    /// The end of the space.
    pub const END: Bound = Bound(None);

    fn includes(self, h: Hash) -> bool {
        self.0.is_none_or(|u| h < u)
    }
}

impl Serialize for Bound {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = self.0.map_or([0; 16], u128::to_be_bytes);
        let len = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        s.collect_seq(bytes[..len].iter())
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = Vec::deserialize(d)?;
        if bytes.len() > 16 {
            return Err(serde::de::Error::custom("a bound longer than 16 bytes"));
        }
        if bytes.is_empty() {
            return Ok(Bound::END);
        }
        let mut full = [0u8; 16];
        full[..bytes.len()].copy_from_slice(&bytes);
        Ok(Bound(Some(u128::from_be_bytes(full))))
    }
}

/// What a part says about the sender's hashes in its range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Says {
    /// Nothing to do here (the ranges agree, or were settled).
    Skip,
    /// Their sum (mod 2¹²⁸) and count.
    Fingerprint {
        /// Wrapping sum of the hashes.
        sum: Hash,
        /// How many.
        count: u64,
    },
    /// All of them, sorted, each by its first 64 bits (enough to tell a few dozen apart). The
    /// receiver sends those of its own the list lacks, and answers with [`Says::Have`] when it
    /// lacks some of the list.
    Ids {
        /// The hashes' first 64 bits.
        ids: Vec<u64>,
    },
    /// Answering an [`Says::Ids`] list: bit i (of byte i / 8, least significant first) says
    /// whether the sender has the list's i-th hash. The receiver sends the ones it lacks.
    Have {
        /// The bitmap.
        bits: Vec<u8>,
    },
    /// The sender's coded symbols `[from, from + symbols.len())` of its hashes in the range
    /// (by their first 64 bits). Only over the whole space, alone in its message.
    Coded {
        /// Index of the first symbol.
        from: u64,
        /// The symbols.
        symbols: Vec<coded::Symbol>,
    },
    /// Decoding needs more symbols: `count` from `from`.
    More {
        /// The first symbol wanted.
        from: u64,
        /// How many.
        count: u32,
    },
    /// The difference is known: send the irreducibles whose hashes begin with these 32 bits.
    /// `done`: the sender has nothing more to send or ask for after this message.
    Want {
        /// First 32 bits of the wanted hashes (big-endian).
        ids: Vec<[u8; 4]>,
        /// Nothing more comes from the sender.
        done: bool,
    },
    /// The sender's strata ([`strata`]): the receiver estimates the difference's size and
    /// answers with sketches, or coded symbols when it is small. Alone in its message.
    Strata {
        /// [`strata::STRATA`] · [`strata::CELLS`] 16-bit cells, two to a word.
        cells: Words,
    },
    /// A PinSketch of the sender's keys in the range ([`by_sketches`]): its words from `from`
    /// on (more than 0: an extension the receiver asked for with [`Says::Extend`]).
    Sketch {
        /// Index of the first word.
        from: u32,
        /// Odd power sums.
        words: Words,
    },
    /// Answering a [`Says::Sketch`] over its capacity: send `count` more words from `from`.
    Extend {
        /// The first word wanted (the words received so far).
        from: u32,
        /// How many.
        count: u32,
    },
    /// Answering a [`Says::Sketch`]: the polynomial whose roots are the keys the sender lacks
    /// in the range (monic, highest power first, the leading one left out), and the wrapping sum
    /// of the low 32 bits of the hashes the sender found both sides hold.
    Roots {
        /// The polynomial.
        poly: Words,
        /// The check.
        shared: u32,
    },
}

/// 32-bit words, on the wire as 4 bytes each (a varint spends 5 on most field elements).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Words(pub Vec<u32>);

impl Serialize for Words {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().flat_map(|w| w.to_be_bytes()))
    }
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = Vec::deserialize(d)?;
        if !bytes.len().is_multiple_of(4) {
            return Err(serde::de::Error::custom("words of other than 4 bytes"));
        }
        Ok(Words(
            bytes
                .chunks_exact(4)
                .map(|w| u32::from_be_bytes(w.try_into().expect("4 bytes")))
                .collect(),
        ))
    }
}

impl Words {
    /// 16-bit cells, two to a word.
    pub fn of_cells(cells: &[u16]) -> Words {
        Words(
            cells
                .chunks(2)
                .map(|c| u32::from(c[0]) << 16 | u32::from(*c.get(1).unwrap_or(&0)))
                .collect(),
        )
    }

    /// The 16-bit cells of [`Words::of_cells`].
    pub fn cells(&self) -> Vec<u16> {
        self.0
            .iter()
            .flat_map(|w| [(w >> 16) as u16, *w as u16])
            .collect()
    }
}

/// A hash's first 64 bits: its name in an id list.
fn short(h: Hash) -> u64 {
    (h >> 64) as u64
}

impl Part {
    /// The fingerprint's sum, if it is one.
    pub fn sum(&self) -> Option<Hash> {
        match self.says {
            Says::Fingerprint { sum, .. } => Some(sum),
            _ => None,
        }
    }

    /// Paper units: one per fingerprint or skip, one per hash listed.
    pub fn metadata_units(&self) -> u64 {
        match &self.says {
            Says::Skip | Says::Fingerprint { .. } => 1,
            Says::Ids { ids } => ids.len().max(1) as u64,
            Says::Have { bits } => bits.len().max(1) as u64,
            Says::Coded { symbols, .. } => symbols.len().max(1) as u64,
            Says::More { .. } => 1,
            Says::Want { ids, .. } => ids.len().max(1) as u64,
            Says::Strata { cells } => cells.0.len() as u64,
            Says::Sketch { words, .. } => words.0.len() as u64,
            Says::Extend { .. } => 1,
            Says::Roots { poly, .. } => poly.0.len() as u64 + 1,
        }
    }
}

/// The hash of one irreducible.
pub fn hash_of<L: Serialize>(irreducible: &L) -> Hash {
    hash_bytes(&codec::encode(irreducible).unwrap_or_default())
}

/// The hash of an irreducible's encoding.
fn hash_bytes(encoded: &[u8]) -> Hash {
    let digest = codec::sha256(encoded);
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// A state's irreducibles by hash: sorted, with prefix sums for fingerprints in constant time.
#[derive(Clone)]
pub struct Index {
    hashes: Vec<Hash>,
    /// `prefix[i]` is the wrapping sum of `hashes[..i]`.
    prefix: Vec<Hash>,
    /// Irreducibles one message may carry: [`MAX_ITEMS`], or fewer when the largest irreducible
    /// is so large that they would pass [`MAX_ITEM_BYTES`].
    budget: usize,
    /// The irreducibles' encoded bytes, all told (about the state's own encoded size).
    bytes: u64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Index({} hashes)", self.hashes.len())
    }
}

impl Index {
    /// The index of `state` (streams ⇓state: no irreducible is held but its hash).
    pub fn of<L: Decompose + Serialize>(state: &L) -> Index {
        let mut hashes = Vec::new();
        let (mut largest, mut total) = (1, 0);
        state.for_each_piece(&mut |y| {
            let bytes = codec::encode(&y).unwrap_or_default();
            largest = largest.max(bytes.len());
            total += bytes.len() as u64;
            hashes.push(hash_bytes(&bytes));
        });
        hashes.sort_unstable();
        hashes.dedup();
        let mut prefix = Vec::with_capacity(hashes.len() + 1);
        let mut sum: Hash = 0;
        prefix.push(0);
        for h in &hashes {
            sum = sum.wrapping_add(*h);
            prefix.push(sum);
        }
        Index {
            hashes,
            prefix,
            budget: (MAX_ITEM_BYTES / largest).clamp(1, MAX_ITEMS),
            bytes: total,
        }
    }

    /// The irreducibles' encoded bytes, all told.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of irreducibles.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the state is ⊥.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hash whose first 64 bits are `id`, if this side holds one.
    fn by_short(&self, id: u64) -> Option<Hash> {
        let i = self.hashes.partition_point(|h| short(*h) < id);
        self.hashes.get(i).copied().filter(|h| short(*h) == id)
    }

    /// The hashes whose first 32 bits are `prefix`.
    fn by_prefix(&self, prefix: u32) -> &[Hash] {
        let top = |h: &Hash| (h >> 96) as u32;
        let i = self.hashes.partition_point(|h| top(h) < prefix);
        let j = self.hashes.partition_point(|h| top(h) <= prefix);
        &self.hashes[i..j]
    }

    /// The coder of this side's hashes (by their first 64 bits).
    fn coder(&self) -> coded::Coder {
        coded::Coder::new(self.hashes.iter().map(|h| short(*h)))
    }

    /// A bottom-k sketch: the first 64 bits of the [`SKETCH`] smallest hashes.
    pub fn sketch(&self) -> Vec<u64> {
        self.hashes.iter().take(SKETCH).map(|h| short(*h)).collect()
    }

    /// From the other side's sketch, the share of the union of both states that only one side
    /// holds (0 when both are empty). The [`SKETCH`] smallest hashes of the union are a uniform
    /// sample of it; those both sides hold estimate the shared share.
    pub fn difference_share(&self, theirs: &[u64]) -> f64 {
        let mine = self.sketch();
        let mut union: Vec<u64> = mine.iter().chain(theirs).copied().collect();
        union.sort_unstable();
        union.dedup();
        // Below the larger of the two sketches' last hashes, one side's sample is incomplete.
        let bound = match (mine.len() < SKETCH, theirs.len() < SKETCH) {
            (true, true) => u64::MAX,
            (true, false) => *theirs.last().expect("full"),
            (false, true) => *mine.last().expect("full"),
            (false, false) => (*mine.last().expect("full")).min(*theirs.last().expect("full")),
        };
        let sample: Vec<u64> = union
            .into_iter()
            .filter(|h| *h <= bound)
            .take(SKETCH)
            .collect();
        if sample.is_empty() {
            return 0.0;
        }
        let both = sample
            .iter()
            .filter(|h| mine.binary_search(h).is_ok() && theirs.contains(h))
            .count();
        1.0 - both as f64 / sample.len() as f64
    }

    /// The part that opens an exchange: the fingerprint of everything.
    pub fn whole(&self) -> Part {
        self.fingerprint(0, Bound::END)
    }

    /// Indices `[i, j)` of the hashes in `[lower, upper)`.
    fn span(&self, lower: Hash, upper: Bound) -> (usize, usize) {
        let i = self.hashes.partition_point(|h| *h < lower);
        let j = self.hashes.partition_point(|h| upper.includes(*h));
        (i, j.max(i))
    }

    fn fingerprint(&self, lower: Hash, upper: Bound) -> Part {
        let (i, j) = self.span(lower, upper);
        Part {
            upper,
            says: Says::Fingerprint {
                sum: self.prefix[j].wrapping_sub(self.prefix[i]),
                count: (j - i) as u64,
            },
        }
    }
}

/// The input broke the protocol (ranges out of order, oversized lists): the peer is cut off.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed reconciliation message: {0}")]
pub struct Malformed(pub &'static str);

/// What to say back: parts for the next round (none: the exchange is over on this side) and the
/// hashes of the irreducibles to send.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// Parts to send.
    pub parts: Vec<Part>,
    /// Irreducibles the other side lacks, by hash (at most [`MAX_ITEMS`]).
    pub send: HashSet<Hash>,
}

/// One side's state in one exchange: what it sent, and where the coded phase stands. Bounded:
/// the symbols received (at most [`MAX_CODED`]) and the hashes still to send or ask for (at most
/// the difference).
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// What this side already sent: the other side has it, even if its index (taken when the
    /// exchange began) does not show it, so it is not sent again.
    pub sent: HashSet<Hash>,
    /// How many irreducibles are expected to differ (from the opening's sketch): sizes the first
    /// batch of coded symbols.
    pub expected: usize,
    phase: Phase,
    /// Hashes to send the other side, once the difference is known.
    pending: Vec<Hash>,
    /// Ids to ask the other side for, once the difference is known.
    wants: Vec<[u8; 4]>,
    /// The other side's sketches that were over capacity, by their range's lower end, until
    /// their extensions come (at most [`by_sketches::MAX_PENDING`]), with how many times each
    /// was extended.
    sketches: std::collections::HashMap<Hash, (Vec<u32>, u32)>,
}

impl Exchange {
    /// Skips the coded phase: the exchange narrows ranges from the start (for a difference too
    /// large to decode within [`MAX_CODED`] symbols, such as a new, empty neighbour's).
    pub fn by_ranges(&mut self) {
        self.phase = Phase::Over;
    }
}

/// Where an exchange's coded phase stands on one side.
#[derive(Clone, Debug, Default)]
enum Phase {
    /// Not begun: the first mismatch of the whole space begins it.
    #[default]
    Idle,
    /// This side sends symbols (its coder).
    Coding(coded::Coder),
    /// This side decodes: the symbols received so far, and its own coder.
    Decoding(Vec<coded::Symbol>, coded::Coder),
    /// The difference is known (or decoding gave up): ranges or wants go on.
    Over,
}

/// Answers `parts` from the other side against `index` (see the module docs), updating this
/// side's `exchange`.
pub fn answer(index: &Index, parts: &[Part], exchange: &mut Exchange) -> Result<Answer, Malformed> {
    if parts.len() > 4 * MAX_PARTS {
        return Err(Malformed("too many parts"));
    }
    if parts.last().is_none_or(|p| p.upper != Bound::END) {
        return Err(Malformed("the parts do not reach the end of the space"));
    }
    if let [Part { says, .. }] = parts {
        if matches!(
            says,
            Says::Coded { .. } | Says::More { .. } | Says::Want { .. } | Says::Strata { .. }
        ) {
            return by_symbols::answer(index, says, exchange);
        }
    }
    if matches!(exchange.phase, Phase::Coding(_) | Phase::Decoding(..)) {
        // Ranges after coded symbols: the coded phase is over (its memory is given back).
        exchange.phase = Phase::Over;
    }
    let mut out = Answer::default();
    let mut lower: Hash = 0;
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        if part.upper.0.is_some_and(|u| u <= lower) || (part.upper == Bound::END && !last) {
            return Err(Malformed("ranges empty, inverted or out of order"));
        }
        if out.parts.len() >= MAX_PARTS {
            // No room: the rest stays one range, to be narrowed in a later round.
            out.parts.push(index.fingerprint(lower, Bound::END));
            break;
        }
        by_ranges::answer_part(index, lower, part, exchange, &mut out)?;
        lower = part.upper.0.unwrap_or(Hash::MAX);
    }
    if out.parts.iter().all(|p| p.says == Says::Skip) {
        out.parts.clear();
    }
    Ok(out)
}

/// The coder's symbols `[from, from + count)`, as the part that carries them.
fn batch(coder: &mut coded::Coder, from: usize, count: usize) -> Part {
    whole(Says::Coded {
        from: from as u64,
        symbols: coder.symbols(from + count)[from..].to_vec(),
    })
}

/// This side's strata over the whole space ([`strata`]).
fn strata_of(index: &Index) -> Part {
    whole(Says::Strata {
        cells: Words::of_cells(&strata::cells(&index.hashes)),
    })
}

/// The part that carries `says` over the whole space.
fn whole(says: Says) -> Part {
    Part {
        upper: Bound::END,
        says,
    }
}

/// The join of the irreducibles of `state` whose hashes are in `wanted`.
pub fn collect<L: Decompose + Serialize>(state: &L, wanted: &HashSet<Hash>) -> L {
    let mut out = L::bottom();
    if wanted.is_empty() {
        return out;
    }
    state.for_each_piece(&mut |y| {
        if wanted.contains(&hash_of(&y)) {
            out.join(&y);
        }
    });
    out
}

#[cfg(test)]
mod tests;
