//! Range-based set reconciliation (Meyer, "Range-Based Set Reconciliation", 2023; the scheme of
//! `negentropy`) over the join-decomposition of a state: two replicas find which irreducibles
//! each lacks at a cost that grows with the difference, not with the state.
//!
//! Every irreducible of ⇓state is named by a 128-bit hash of its canonical encoding. A side sends
//! *parts*: ranges of the hash space with either a fingerprint (the sum of its hashes mod 2¹²⁸ and
//! their count) or, for a small range, the hashes themselves. The other side answers each part:
//! equal fingerprints close the range; a small range is answered with its own hashes; a large one
//! is split in [`BRANCH`] sub-ranges with their fingerprints; a list of hashes is answered with the
//! irreducibles the sender lacks and a bitmap of the ones this side has, so the sender can send
//! back the rest. Irreducibles travel as one joined delta, so the receiver merges them as
//! any group (RR keeps only what is new; the buffer tags them with their origin, for BP). Equal
//! states cost one fingerprint each way.
//!
//! Bounds: a reply holds at most [`MAX_PARTS`] parts and [`MAX_ITEMS`] irreducibles (fewer if they
//! are large: at most [`MAX_ITEM_BYTES`] of them); what does not
//! fit is left as a fingerprint part, which the next round narrows again, so every round makes
//! progress and every message stays small. This module is pure: the engine keeps the session.

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
/// The most irreducibles sent in one message.
pub const MAX_ITEMS: usize = 4096;
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
        let mut largest = 1;
        state.for_each_irreducible(&mut |y| {
            let bytes = codec::encode(&y).unwrap_or_default();
            largest = largest.max(bytes.len());
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
        }
    }

    /// Number of irreducibles.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the state is ⊥.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
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

/// The shortest bound `b` with `below < b ≤ at` (`below < at`): `at` with every bit under the
/// highest one where they differ cleared.
fn separator(below: Hash, at: Hash) -> Hash {
    let d = 127 - (below ^ at).leading_zeros();
    at & !((1u128 << d) - 1)
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

/// Answers `parts` from the other side against `index` (see the module docs). `sent` holds what
/// this side already sent in this exchange: the other side has it, even if its index (taken when
/// the exchange began) does not show it, so it is not sent again.
pub fn answer(index: &Index, parts: &[Part], sent: &HashSet<Hash>) -> Result<Answer, Malformed> {
    if parts.len() > 4 * MAX_PARTS {
        return Err(Malformed("too many parts"));
    }
    if parts.last().is_none_or(|p| p.upper != Bound::END) {
        return Err(Malformed("the parts do not reach the end of the space"));
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
        answer_part(index, lower, part, sent, &mut out)?;
        lower = part.upper.0.unwrap_or(Hash::MAX);
    }
    if out.parts.iter().all(|p| p.says == Says::Skip) {
        out.parts.clear();
    }
    Ok(out)
}

/// Appends a skip up to `upper`, merged with a skip before it.
fn skip(out: &mut Vec<Part>, upper: Bound) {
    match out.last_mut() {
        Some(p) if p.says == Says::Skip => p.upper = upper,
        _ => out.push(Part {
            upper,
            says: Says::Skip,
        }),
    }
}

/// Answers the part `[lower, part.upper)`.
fn answer_part(
    index: &Index,
    lower: Hash,
    part: &Part,
    sent: &HashSet<Hash>,
    out: &mut Answer,
) -> Result<(), Malformed> {
    let (i, j) = index.span(lower, part.upper);
    let mine = &index.hashes[i..j];
    match &part.says {
        Says::Skip => skip(&mut out.parts, part.upper),
        Says::Fingerprint { sum, count } => {
            let my_sum = index.prefix[j].wrapping_sub(index.prefix[i]);
            if (my_sum, mine.len() as u64) == (*sum, *count) {
                skip(&mut out.parts, part.upper);
            } else if mine.len() <= IDS_THRESHOLD {
                out.parts.push(Part {
                    upper: part.upper,
                    says: Says::Ids {
                        ids: mine.iter().map(|h| short(*h)).collect(),
                    },
                });
            } else {
                split(index, lower, part.upper, i, j, &mut out.parts);
            }
        }
        Says::Ids { ids } => {
            if ids.len() > 8 * IDS_THRESHOLD {
                return Err(Malformed("an id list over the bound"));
            }
            let theirs: HashSet<u64> = ids.iter().copied().collect();
            let unsent = send_where(
                mine,
                index.budget,
                |h| !theirs.contains(&short(h)) && !sent.contains(&h),
                out,
            );
            let mine_short: HashSet<u64> = mine.iter().map(|h| short(*h)).collect();
            let have: Vec<bool> = ids.iter().map(|id| mine_short.contains(id)).collect();
            if unsent {
                out.parts.push(index.fingerprint(lower, part.upper));
            } else if have.iter().any(|h| !h) {
                let mut bits = vec![0u8; have.len().div_ceil(8)];
                for (i, _) in have.iter().enumerate().filter(|(_, h)| **h) {
                    bits[i / 8] |= 1 << (i % 8);
                }
                out.parts.push(Part {
                    upper: part.upper,
                    says: Says::Have { bits },
                });
            } else {
                skip(&mut out.parts, part.upper);
            }
        }
        Says::Have { bits } => {
            // Answers the list this side sent for this range, from this same index.
            if mine.len() > IDS_THRESHOLD || bits.len() != mine.len().div_ceil(8) {
                return Err(Malformed("a bitmap that answers no list of ours"));
            }
            let has = |i: usize| bits[i / 8] & (1 << (i % 8)) != 0;
            let lacking: HashSet<Hash> = mine
                .iter()
                .enumerate()
                .filter(|(i, _)| !has(*i))
                .map(|(_, h)| *h)
                .collect();
            if send_where(
                mine,
                index.budget,
                |h| lacking.contains(&h) && !sent.contains(&h),
                out,
            ) {
                out.parts.push(index.fingerprint(lower, part.upper));
            } else {
                skip(&mut out.parts, part.upper);
            }
        }
    }
    Ok(())
}

/// Adds the hashes of `mine` that `pick` chooses to what is sent, up to `budget`; returns
/// whether some did not fit.
fn send_where(mine: &[Hash], budget: usize, pick: impl Fn(Hash) -> bool, out: &mut Answer) -> bool {
    let mut unsent = false;
    for h in mine.iter().copied().filter(|h| pick(*h)) {
        if out.send.len() < budget {
            out.send.insert(h);
        } else {
            unsent = true;
        }
    }
    unsent
}

/// Splits `[lower, upper)`, where this side holds `hashes[i..j]`, into [`BRANCH`] fingerprinted
/// sub-ranges cut between this side's own hashes, at the shortest bounds that separate them.
fn split(index: &Index, lower: Hash, upper: Bound, i: usize, j: usize, out: &mut Vec<Part>) {
    let n = j - i;
    let mut from = lower;
    for b in 1..BRANCH {
        let at = i + n * b / BRANCH;
        let cut = separator(index.hashes[at - 1], index.hashes[at]);
        if cut > from {
            out.push(index.fingerprint(from, Bound(Some(cut))));
            from = cut;
        }
    }
    out.push(index.fingerprint(from, upper));
}

/// The join of the irreducibles of `state` whose hashes are in `wanted`.
pub fn collect<L: Decompose + Serialize>(state: &L, wanted: &HashSet<Hash>) -> L {
    let mut out = L::bottom();
    if wanted.is_empty() {
        return out;
    }
    state.for_each_irreducible(&mut |y| {
        if wanted.contains(&hash_of(&y)) {
            out.join(&y);
        }
    });
    out
}

#[cfg(test)]
mod tests;
