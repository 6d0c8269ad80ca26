//! The sketch phase: a large difference, once estimated ([`super::strata`]), is cut into ranges
//! of about [`LOAD`] differing irreducibles each, and every range is sent as a PinSketch
//! ([`super::pinsketch`]) of its hashes' 32-bit keys, 4 bytes per unit of capacity: a few more
//! bytes per differing irreducible than the difference itself, where coded symbols cost 13
//! bytes and a third more of them.
//!
//! A [`Says::Sketch`] part is answered with the irreducibles of the range the sender lacks and
//! [`Says::Roots`]: the polynomial whose roots are the keys this side lacks, and a check (the sum
//! of a second slice of every hash both hold, as this side sees it). Its receiver sends the
//! irreducibles whose keys are roots and closes the range if the check agrees; it does not when
//! two hashes of the range share a key, and the range is narrowed by fingerprints instead.
//!
//! Sketches are extensible (more power sums raise the capacity), so a range's sketch starts
//! at about its expected load and one over capacity is answered by [`Says::Extend`]: its sender
//! sends only the words that follow. A range still over [`MAX_CAPACITY`] is listed or split.

use super::by_ranges::send_where;
use super::{pinsketch, Answer, Bound, Exchange, Hash, Index, Malformed, Part, Says, Words};
use super::{IDS_THRESHOLD, MAX_PARTS};

/// Differing irreducibles a sketched range is cut for, at most (at least half as many).
pub const LOAD: f64 = 32.0;
/// The most words in one sketch or polynomial.
pub const MAX_CAPACITY: usize = 256;
/// Differences estimated from this size up are found by sketches (below: coded symbols).
pub const SKETCH_FROM: f64 = 48.0;
/// States of fewer irreducibles go on with coded symbols whatever the difference: there the
/// strata (1.5 KB) and the sketch phase's extra round trips cost more than they save.
pub const INDEX_FROM: usize = 4_096;
/// Differences estimated above this size are left to coded symbols: more ranges than a message
/// holds.
pub const SKETCH_UP_TO: f64 = LOAD * MAX_PARTS as f64;
/// The most sketches one side keeps while their extensions come.
pub const MAX_PENDING: usize = 4 * MAX_PARTS;

/// A hash's key in sketches: bits 32 to 63, independent of the range (the top bits) it is in.
fn key(h: Hash) -> u32 {
    pinsketch::key((h >> 32) as u32)
}

/// A hash's part of a range's check: its low 32 bits.
fn check(h: Hash) -> u32 {
    h as u32
}

/// The hashes of `mine` whose keys are roots of `poly` (each root divided out once found), the
/// check of the others (the wrapping sum of their low 32 bits), and what is left of `poly`.
fn roots_among(mine: &[Hash], mut poly: Vec<u32>) -> (Vec<Hash>, u32, Vec<u32>) {
    let (mut roots, mut check_sum) = (Vec::new(), 0u32);
    for h in mine {
        if !poly.is_empty() && pinsketch::eval(&poly, key(*h)) == 0 {
            poly = pinsketch::divide(&poly, key(*h));
            roots.push(*h);
        } else {
            check_sum = check_sum.wrapping_add(check(*h));
        }
    }
    (roots, check_sum, poly)
}

/// The sketch's capacity for a range expected to hold `load` differing irreducibles: about the
/// load (with the estimate's and the load's spread, a third of the ranges ask for more words;
/// a word of room in every range would cost more than that).
fn capacity(load: f64) -> usize {
    ((load * 1.05 + 2.0) as usize).clamp(2, MAX_CAPACITY)
}

/// This side's sketch of `[lower, upper)`: its words `[from, to)`.
fn sketch_words(index: &Index, (lower, upper): (Hash, Bound), from: usize, to: usize) -> Vec<u32> {
    let (i, j) = index.span(lower, upper);
    let mut all = pinsketch::sketch(index.hashes[i..j].iter().map(|h| key(*h)), to);
    all.drain(..from.min(to));
    all
}

/// The part carrying this side's sketch of `range`, words `[from, to)`.
fn sketch_part(index: &Index, range: (Hash, Bound), from: usize, to: usize) -> Part {
    Part {
        upper: range.1,
        says: Says::Sketch {
            from: from as u32,
            words: Words(sketch_words(index, range, from, to)),
        },
    }
}

/// The parts that open the sketch phase for a difference estimated at `d`: the space cut into
/// ranges of about [`LOAD`] differing irreducibles each (at multiples of 2¹¹², so a bound is two
/// bytes on the wire), each sketched.
pub(super) fn tiling(index: &Index, d: f64) -> Vec<Part> {
    let ranges = ((d / LOAD).ceil() as usize).clamp(1, MAX_PARTS);
    let c = capacity(d / ranges as f64);
    let at = |r: usize| ((r << 16) / ranges) as Hash;
    (0..ranges)
        .map(|r| {
            let upper = if r + 1 == ranges {
                Bound::END
            } else {
                Bound(Some(at(r + 1) << 112))
            };
            sketch_part(index, (at(r) << 112, upper), 0, c)
        })
        .collect()
}

/// Answers a [`Says::Sketch`] of `[lower, upper)` (its words from `from` on).
pub(super) fn answer_sketch(
    index: &Index,
    (lower, upper): (Hash, Bound),
    (from, words): (u32, &[u32]),
    ex: &mut Exchange,
    out: &mut Answer,
) -> Result<(), Malformed> {
    let (mut theirs, extended) = if from == 0 {
        (Vec::new(), 0)
    } else {
        ex.sketches
            .remove(&lower)
            .filter(|(w, _)| w.len() == from as usize)
            .ok_or(Malformed("a sketch's extension that extends nothing"))?
    };
    theirs.extend_from_slice(words);
    if words.is_empty() || theirs.len() > MAX_CAPACITY {
        return Err(Malformed("a sketch over the bound"));
    }
    let (i, j) = index.span(lower, upper);
    let mine = &index.hashes[i..j];
    let ours = sketch_words(index, (lower, upper), 0, theirs.len());
    let both: Vec<u32> = theirs.iter().zip(&ours).map(|(a, b)| a ^ b).collect();
    let Some(poly) = pinsketch::decode(&both) else {
        let c = theirs.len();
        if c < MAX_CAPACITY && ex.sketches.len() < MAX_PENDING {
            ex.sketches.insert(lower, (theirs, extended + 1));
            // A quarter more, then half, then as much again: a range barely over its capacity
            // costs a few words, one far over it (a difference bunched in one range) few rounds.
            let more = ((c / 4).max(4) << extended.min(2)).min(MAX_CAPACITY - c);
            out.parts.push(Part {
                upper,
                says: Says::Extend {
                    from: c as u32,
                    count: more as u32,
                },
            });
        } else {
            over_capacity(index, (lower, upper), c, mine, out);
        }
        return Ok(());
    };
    let (lacking, shared, poly) = roots_among(mine, poly);
    if send_where(&lacking, index.budget, |h| !ex.sent.contains(&h), out) {
        // No room for all of them: the range is narrowed again later.
        out.parts.push(index.fingerprint(lower, upper));
    } else {
        out.parts.push(Part {
            upper,
            says: Says::Roots {
                poly: Words(poly),
                shared,
            },
        });
    }
    Ok(())
}

/// Answers a [`Says::Extend`] of `[lower, upper)`: the words asked for.
pub(super) fn answer_extend(
    index: &Index,
    range: (Hash, Bound),
    (from, count): (u32, u32),
    out: &mut Answer,
) -> Result<(), Malformed> {
    let (from, count) = (from as usize, count as usize);
    if count == 0 || from + count > MAX_CAPACITY {
        return Err(Malformed("a sketch's extension over the bound"));
    }
    out.parts
        .push(sketch_part(index, range, from, from + count));
    Ok(())
}

/// A sketch at [`MAX_CAPACITY`] that still does not decode: a small range is listed; a larger
/// one is sketched again in two halves, each with three quarters of the capacity.
fn over_capacity(
    index: &Index,
    (lower, upper): (Hash, Bound),
    c: usize,
    mine: &[Hash],
    out: &mut Answer,
) {
    let width = upper.0.unwrap_or(0).wrapping_sub(lower);
    if mine.len() <= IDS_THRESHOLD || (width != 0 && width < 2) {
        out.parts.push(Part {
            upper,
            says: Says::Ids {
                ids: mine.iter().map(|h| super::short(*h)).collect(),
            },
        });
        return;
    }
    // The width of the whole space (2¹²⁸) wraps to zero: its half is 2¹²⁷.
    let half = if width == 0 { 1 << 127 } else { width / 2 };
    let mid = lower + half;
    let c = (c * 3 / 4 + 1).clamp(2, MAX_CAPACITY);
    for range in [(lower, Bound(Some(mid))), (mid, upper)] {
        out.parts.push(sketch_part(index, range, 0, c));
    }
}

/// Answers a [`Says::Roots`] of `[lower, upper)`: sends what the other side lacks, and closes
/// the range if the checks agree.
pub(super) fn answer_roots(
    index: &Index,
    (lower, upper): (Hash, Bound),
    (poly, shared): (&[u32], u32),
    ex: &Exchange,
    out: &mut Answer,
) -> Result<(), Malformed> {
    if poly.len() > MAX_CAPACITY {
        return Err(Malformed("a polynomial over the bound"));
    }
    let (i, j) = index.span(lower, upper);
    let mine = &index.hashes[i..j];
    let (lacking, ours, poly) = roots_among(mine, poly.to_vec());
    let agreed = poly.is_empty() && ours == shared;
    if !agreed || send_where(&lacking, index.budget, |h| !ex.sent.contains(&h), out) {
        // Keys shared by two hashes hid part of the difference (or not all fits): fingerprints
        // narrow the range.
        out.parts.push(index.fingerprint(lower, upper));
    } else {
        super::by_ranges::skip(&mut out.parts, upper);
    }
    Ok(())
}
