//! Narrowing ranges: a part's range answered by a skip, its own hashes, a split in
//! [`BRANCH`] fingerprinted sub-ranges, a bitmap, or the irreducibles the other side lacks.

use super::{batch, by_sketches, strata_of};
use super::{short, Answer, Bound, Exchange, Hash, Index, Malformed, Part, Phase, Says};
use super::{BRANCH, IDS_THRESHOLD, MAX_SYMBOLS};
use std::collections::HashSet;

/// Appends a skip up to `upper`, merged with a skip before it.
pub(super) fn skip(out: &mut Vec<Part>, upper: Bound) {
    match out.last_mut() {
        Some(p) if p.says == Says::Skip => p.upper = upper,
        _ => out.push(Part {
            upper,
            says: Says::Skip,
        }),
    }
}

/// Answers the part `[lower, part.upper)`.
pub(super) fn answer_part(
    index: &Index,
    lower: Hash,
    part: &Part,
    ex: &mut Exchange,
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
            } else if lower == 0 && part.upper == Bound::END && matches!(ex.phase, Phase::Idle) {
                // The first mismatch of everything: coded symbols find the difference at once;
                // a difference expected large is first measured (strata), then sketched.
                if ex.expected as f64 >= by_sketches::SKETCH_FROM
                    && index.len() >= by_sketches::INDEX_FROM
                {
                    out.parts.push(strata_of(index));
                    return Ok(());
                }
                let mut coder = index.coder();
                let count = (ex.expected.saturating_mul(3) / 2 + 32).min(MAX_SYMBOLS);
                out.parts.push(batch(&mut coder, 0, count));
                ex.phase = Phase::Coding(coder);
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
                |h| !theirs.contains(&short(h)) && !ex.sent.contains(&h),
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
        Says::Coded { .. } | Says::More { .. } | Says::Want { .. } | Says::Strata { .. } => {
            return Err(Malformed("a coded part among ranges"));
        }
        Says::Sketch { from, words } => {
            by_sketches::answer_sketch(index, (lower, part.upper), (*from, &words.0), ex, out)?
        }
        Says::Extend { from, count } => {
            by_sketches::answer_extend(index, (lower, part.upper), (*from, *count), out)?
        }
        Says::Roots { poly, shared } => {
            by_sketches::answer_roots(index, (lower, part.upper), (&poly.0, *shared), ex, out)?
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
                |h| lacking.contains(&h) && !ex.sent.contains(&h),
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
pub(super) fn send_where(
    mine: &[Hash],
    budget: usize,
    pick: impl Fn(Hash) -> bool,
    out: &mut Answer,
) -> bool {
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

/// The shortest bound `b` with `below < b ≤ at` (`below < at`): `at` with every bit under the
/// highest one where they differ cleared.
pub(super) fn separator(below: Hash, at: Hash) -> Hash {
    let d = 127 - (below ^ at).leading_zeros();
    at & !((1u128 << d) - 1)
}
