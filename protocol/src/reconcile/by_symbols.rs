//! The coded phase of an exchange: coded symbols answered with requests for more, then, once
//! decoded, irreducibles sent and asked for in chunks until both sides are done.

use super::{batch, by_sketches, coded, strata, strata_of, whole};
use super::{Answer, Exchange, Index, Malformed, Phase, Says};
use super::{MAX_CODED, MAX_SYMBOLS, MAX_WANTS};

/// Answers a part of the coded phase (see [`Says::Coded`]).
pub(super) fn answer(index: &Index, says: &Says, ex: &mut Exchange) -> Result<Answer, Malformed> {
    let mut out = Answer::default();
    match says {
        Says::Coded { from, symbols } => {
            if matches!(ex.phase, Phase::Idle) && *from == 0 {
                ex.phase = Phase::Decoding(Vec::new(), index.coder());
            }
            let Phase::Decoding(received, ours) = &mut ex.phase else {
                return Err(Malformed("coded symbols out of turn"));
            };
            if *from != received.len() as u64 {
                return Err(Malformed("coded symbols out of turn"));
            }
            if symbols.is_empty() || symbols.len() > MAX_SYMBOLS {
                return Err(Malformed("a batch of coded symbols over the bound"));
            }
            received.extend_from_slice(symbols);
            let total = received.len();
            match coded::decode(received, ours, |id| index.by_short(id).is_some()) {
                Ok(found) => {
                    ex.phase = Phase::Over;
                    ex.pending = found
                        .ours
                        .iter()
                        .filter_map(|id| index.by_short(*id))
                        .collect();
                    ex.wants = found
                        .theirs
                        .iter()
                        .map(|id| ((id >> 32) as u32).to_be_bytes())
                        .collect();
                    settle(index, ex, false, &mut out);
                }
                Err(_) if *from == 0 && index.len() >= by_sketches::INDEX_FROM => {
                    // The first batch was too few: measure the difference (the coder then sends
                    // sketches, or as many more symbols as it needs).
                    out.parts.push(strata_of(index));
                }
                Err(estimate) if total < MAX_CODED => out.parts.push(whole(Says::More {
                    from: total as u64,
                    count: more_symbols(total, estimate) as u32,
                })),
                Err(_) => {
                    // Decoding needs more than it may hold: narrow ranges instead.
                    ex.phase = Phase::Over;
                    out.parts.push(index.whole());
                }
            }
        }
        Says::More { from, count } => {
            let Phase::Coding(coder) = &mut ex.phase else {
                return Err(Malformed("coded symbols asked for out of turn"));
            };
            let (from, count) = (*from as usize, *count as usize);
            if count == 0 || count > MAX_SYMBOLS || from > coder.len() || from > MAX_CODED {
                return Err(Malformed("coded symbols asked for over the bound"));
            }
            out.parts.push(batch(coder, from, count));
        }
        Says::Strata { cells } => {
            let cells = cells.cells();
            if cells.len() != strata::STRATA * strata::CELLS {
                return Err(Malformed("strata of another size"));
            }
            let d = strata::estimate(&strata::cells(&index.hashes), &cells);
            if (by_sketches::SKETCH_FROM..=by_sketches::SKETCH_UP_TO).contains(&d) {
                ex.phase = Phase::Over;
                out.parts = by_sketches::tiling(index, d);
                return Ok(out);
            }
            if matches!(ex.phase, Phase::Idle) {
                ex.phase = Phase::Coding(index.coder());
            }
            let Phase::Coding(coder) = &mut ex.phase else {
                return Err(Malformed("strata out of turn"));
            };
            let from = coder.len();
            let count = more_symbols(from, Some(d));
            out.parts.push(batch(coder, from, count));
        }
        Says::Want { ids, done } => {
            if !matches!(ex.phase, Phase::Coding(_) | Phase::Over) {
                return Err(Malformed("irreducibles asked for out of turn"));
            }
            if ids.len() > MAX_WANTS {
                return Err(Malformed("too many irreducibles asked for"));
            }
            ex.phase = Phase::Over;
            for id in ids {
                let wanted = index.by_prefix(u32::from_be_bytes(*id));
                ex.pending
                    .extend(wanted.iter().filter(|h| !ex.sent.contains(h)));
            }
            settle(index, ex, *done, &mut out);
        }
        _ => return Err(Malformed("a range part among coded ones")),
    }
    Ok(out)
}

/// How many more symbols to ask for after `total` did not decode a difference estimated at
/// `estimate`: enough for ≈ 1.4 per differing id (decoding needs ≈ 1.35), at least an eighth
/// more; four times as many when the estimate is off the scale.
fn more_symbols(total: usize, estimate: Option<f64>) -> usize {
    let wanted = match estimate {
        Some(d) => (d * 1.4) as usize + 16,
        None => 4 * total,
    };
    wanted
        .saturating_sub(total)
        .max(total / 8)
        .clamp(32, MAX_SYMBOLS)
}

/// Once the difference is known: sends a chunk of what the other side lacks and asks for a chunk
/// of what this side lacks; ends the exchange once neither side has anything left.
fn settle(index: &Index, ex: &mut Exchange, they_are_done: bool, out: &mut Answer) {
    while out.send.len() < index.budget {
        let Some(h) = ex.pending.pop() else { break };
        if !ex.sent.contains(&h) {
            out.send.insert(h);
        }
    }
    let ids: Vec<[u8; 4]> = ex.wants.drain(..ex.wants.len().min(MAX_WANTS)).collect();
    let done = ex.pending.is_empty() && ex.wants.is_empty() && ids.is_empty();
    if !(done && they_are_done) {
        out.parts.push(whole(Says::Want { ids, done }));
    }
}
