//! Reconciliation on its own: two replicas exchange parts until neither says anything more.

use super::*;
use crdt::{GSet, Lattice};
use proptest::prelude::*;

/// Runs an exchange between `a` and `b` (a opens), each answering from the index it had when the
/// exchange began (as the engine does); returns (messages, metadata units sent).
fn reconcile(a: &mut GSet<u64>, b: &mut GSet<u64>) -> (usize, usize) {
    let (messages, listed, _) = reconcile_counting_bytes(a, b);
    (messages, listed)
}

/// [`reconcile`], also returning the encoded bytes of every part and irreducible sent.
fn reconcile_counting_bytes(a: &mut GSet<u64>, b: &mut GSet<u64>) -> (usize, usize, usize) {
    let indexes = [Index::of(&*a), Index::of(&*b)];
    let mut ex: [Exchange; 2] = Default::default();
    let mut parts = vec![indexes[0].whole()];
    let (mut messages, mut listed) = (1, 1);
    let mut bytes = crdt::codec::encode(&parts).unwrap().len();
    let sides = [a, b];
    let mut turn = 1;
    loop {
        let ans = answer(&indexes[turn], &parts, &mut ex[turn]).unwrap();
        ex[turn].sent.extend(ans.send.iter().copied());
        let items = collect(&*sides[turn], &ans.send);
        bytes += crdt::codec::encode(&(&ans.parts, &items)).unwrap().len();
        sides[1 - turn].join(&items);
        messages += 1;
        listed += ans.parts.iter().map(Part::metadata_units).sum::<u64>() as usize;
        if ans.parts.is_empty() {
            return (messages, listed, bytes);
        }
        assert!(messages < 200, "the exchange does not end");
        parts = ans.parts;
        turn = 1 - turn;
    }
}

#[test]
fn equal_states_cost_one_fingerprint_each_way() {
    let mut a: GSet<u64> = (0..10_000).collect();
    let mut b = a.clone();
    assert_eq!(reconcile(&mut a, &mut b), (2, 1));
}

#[test]
fn a_small_difference_in_a_large_state_costs_little_and_ends_in_the_join() {
    let shared: Vec<u64> = (0..100_000).collect();
    let mut a: GSet<u64> = shared.iter().copied().chain([1 << 40, 1 << 41]).collect();
    let mut b: GSet<u64> = shared.iter().copied().chain([1 << 42]).collect();
    let join = a.clone().joined(&b);
    let (messages, listed) = reconcile(&mut a, &mut b);
    assert_eq!((&a, &b), (&join, &join));
    assert!(messages <= 12, "{messages} messages");
    assert!(
        listed < 3_000,
        "{listed} fingerprints and ids for 3 differing elements"
    );
}

#[test]
fn a_difference_of_hundreds_is_sketched_at_a_few_bytes_over_its_own_size() {
    let shared: Vec<u64> = (0..20_000).collect();
    let mut a: GSet<u64> = shared
        .iter()
        .copied()
        .chain(1 << 40..(1 << 40) + 300)
        .collect();
    let mut b: GSet<u64> = shared
        .iter()
        .copied()
        .chain(1 << 41..(1 << 41) + 300)
        .collect();
    let join = a.clone().joined(&b);
    let only: GSet<u64> = (1 << 40..(1 << 40) + 300)
        .chain(1 << 41..(1 << 41) + 300)
        .collect();
    let difference = crdt::codec::encode(&only).unwrap().len();
    let (messages, _, bytes) = reconcile_counting_bytes(&mut a, &mut b);
    assert_eq!((&a, &b), (&join, &join));
    assert!(
        bytes <= 3 * difference,
        "{bytes} bytes for a difference of {difference}"
    );
    assert!(messages <= 12, "{messages} messages");
}

#[test]
fn keys_shared_by_two_hashes_are_caught_by_the_check() {
    // Two elements whose hashes share their sketch key (bits 32 to 63) and lie in the first
    // quarter of the space (the first of the four sketched ranges): each side holds one, so their
    // power sums cancel and the sketch does not see them; the range's check does.
    let mut seen = std::collections::HashMap::new();
    let (x, y) = (0u64..)
        .find_map(|e| {
            let h = hash_of(&GSet::from_iter([e]));
            if h >> 126 != 0 {
                return None;
            }
            seen.insert((h >> 32) as u32, e).map(|other| (other, e))
        })
        .expect("a collision within 2¹⁸ or so");
    let shared: Vec<u64> = (1 << 50..(1 << 50) + 5_000).collect();
    let with = |only: u64, one: u64| -> GSet<u64> {
        let only = 1 << only..(1 << only) + 50;
        shared.iter().copied().chain(only).chain([one]).collect()
    };
    let (mut a, mut b) = (with(40, x), with(41, y));
    let join = a.clone().joined(&b);
    reconcile(&mut a, &mut b);
    assert_eq!((&a, &b), (&join, &join));
}

#[test]
fn a_large_difference_goes_in_bounded_chunks() {
    let mut a: GSet<u64> = (0..20_000).collect();
    let mut b: GSet<u64> = (10_000..30_000).collect();
    let join = a.clone().joined(&b);
    reconcile(&mut a, &mut b);
    assert_eq!((&a, &b), (&join, &join));
}

#[test]
fn lies_are_refused() {
    let index = Index::of(&(0..100u64).collect::<GSet<u64>>());
    let refused = |parts: &[Part]| answer(&index, parts, &mut Exchange::default()).is_err();
    let fp = |upper| Part {
        upper: Bound(upper),
        says: Says::Fingerprint { sum: 1, count: 1 },
    };
    assert!(
        refused(&[fp(Some(5)), fp(Some(5)), fp(None)]),
        "an empty range"
    );
    assert!(
        refused(&[fp(Some(9)), fp(Some(5)), fp(None)]),
        "out of order"
    );
    assert!(refused(&[fp(None), fp(None)]), "past the end");
    assert!(refused(&[fp(Some(9))]), "short of the end");
    assert!(refused(&[]));
    let many = Part {
        upper: Bound::END,
        says: Says::Ids {
            ids: (0..10_000).collect(),
        },
    };
    assert!(refused(&[many]));
}

#[test]
fn bounds_are_short_on_the_wire_and_round_trip() {
    for b in [
        Bound::END,
        Bound(Some(1 << 127)),
        Bound(Some(0xdead << 100)),
        Bound(Some(7)),
    ] {
        let bytes = crdt::codec::encode(&b).unwrap();
        assert_eq!(crdt::codec::decode::<Bound>(&bytes).unwrap(), b);
    }
    assert_eq!(
        crdt::codec::encode(&Bound(Some(1 << 127))).unwrap().len(),
        2
    );
    assert!(crdt::codec::decode::<Bound>(&crdt::codec::encode(&vec![1u8; 17]).unwrap()).is_err());
    // A separator lies between its two hashes and is as short as it can be.
    let (below, at) = (0x1234_5678u128 << 96, 0x1234_9999u128 << 96);
    let s = by_ranges::separator(below, at);
    assert!(below < s && s <= at);
    assert_eq!(s, 0x1234_8000u128 << 96);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any two replicas end with exactly their join.
    #[test]
    fn reconciling_two_random_replicas_yields_their_join(
        xs in prop::collection::vec(0u64..5_000, 0..3_000),
        ys in prop::collection::vec(0u64..5_000, 0..3_000),
    ) {
        let mut a: GSet<u64> = xs.into_iter().collect();
        let mut b: GSet<u64> = ys.into_iter().collect();
        let join = a.clone().joined(&b);
        reconcile(&mut a, &mut b);
        prop_assert_eq!(&a, &join);
        prop_assert_eq!(&b, &join);
    }
}

/// A part of any kind from raw fuzz input.
fn any_part(
    (upper, kind, sum, count, ids, bits): (Option<u128>, u8, u128, u64, Vec<u64>, Vec<u8>),
) -> Part {
    let symbols = bits
        .chunks(2)
        .map(|c| coded::tests::symbol(sum as u64 ^ c[0] as u64, c[0] as u32, c.len() as u8))
        .collect();
    Part {
        upper: Bound(upper),
        says: match kind {
            0 => Says::Skip,
            1 => Says::Fingerprint { sum, count },
            2 => Says::Ids { ids },
            3 => Says::Have { bits },
            4 => Says::Coded {
                from: count % 3 * 32,
                symbols,
            },
            5 => Says::More {
                from: count,
                count: sum as u32 % 70_000,
            },
            6 => Says::Want {
                ids: ids.iter().map(|i| (*i as u32).to_be_bytes()).collect(),
                done: count % 2 == 0,
            },
            7 => Says::Strata {
                cells: Words(
                    ids.iter()
                        .map(|i| *i as u32)
                        .cycle()
                        .take(if count % 2 == 0 { 384 } else { ids.len() })
                        .collect(),
                ),
            },
            8 => Says::Sketch {
                from: (count % 3) as u32 * 4,
                words: Words(ids.iter().map(|i| *i as u32).collect()),
            },
            9 => Says::Extend {
                from: count as u32,
                count: sum as u32 % 300,
            },
            _ => Says::Roots {
                poly: Words(ids.iter().map(|i| *i as u32).collect()),
                shared: sum as u32,
            },
        },
    }
}

proptest! {
    /// Whatever a peer sends, message after message, answering it is an answer or an error,
    /// never a panic, and what is sent stays within the bounds. Every kind of part comes, so the
    /// coded phase is reached in each of its states (a genuine opening first, half the time).
    #[test]
    fn any_parts_are_answered_or_refused(
        messages in prop::collection::vec(
            prop::collection::vec(
                (any::<Option<u128>>(), 0u8..11, any::<u128>(), 0u64..100, prop::collection::vec(any::<u64>(), 0..40), prop::collection::vec(any::<u8>(), 0..6)),
                0..8,
            ),
            1..6,
        ),
        sorted in any::<bool>(),
        opened in any::<bool>(),
    ) {
        let index = Index::of(&(0..2_000u64).collect::<GSet<u64>>());
        let mut exchange = Exchange::default();
        if opened {
            let other = Index::of(&(10..2_010u64).collect::<GSet<u64>>());
            answer(&index, &[other.whole()], &mut exchange).unwrap();
        }
        for raw in messages {
            let mut parts: Vec<Part> = raw.into_iter().map(any_part).collect();
            if sorted {
                parts.sort_by_key(|p| p.upper.0.map_or(u128::MAX, |u| u));
            }
            if let Ok(a) = answer(&index, &parts, &mut exchange) {
                prop_assert!(a.parts.len() <= MAX_PARTS + 1);
                prop_assert!(a.send.len() <= MAX_ITEMS);
                for p in &a.parts {
                    if let Says::Coded { symbols, .. } = &p.says {
                        prop_assert!(symbols.len() <= MAX_SYMBOLS);
                    }
                }
            }
        }
    }
}

#[test]
fn large_irreducibles_go_fewer_to_a_message() {
    // 48 strings of 512 KiB: 24 MiB in all, more than a frame; each message carries ≤ 8 MiB.
    let big: GSet<String> = (0..48u8)
        .map(|i| format!("{i:02}{}", "x".repeat(512 << 10)))
        .collect();
    let (ia, ib) = (Index::of(&big), Index::of(&GSet::<String>::default()));
    let mut b = GSet::<String>::default();
    let mut parts = vec![ia.whole()];
    let mut turn = 1;
    let mut ex: [Exchange; 2] = Default::default();
    for _ in 0..100 {
        let (index, side) = if turn == 1 { (&ib, &b) } else { (&ia, &big) };
        let ans = answer(index, &parts, &mut ex[turn]).unwrap();
        ex[turn].sent.extend(ans.send.iter().copied());
        let items = collect(side, &ans.send);
        assert!(crdt::codec::encode(&items).unwrap().len() <= MAX_ITEM_BYTES + 1024);
        if turn == 0 {
            b.join(&items);
        }
        if ans.parts.is_empty() {
            break;
        }
        parts = ans.parts;
        turn = 1 - turn;
    }
    assert_eq!(b, big);
}

#[test]
fn sketches_estimate_how_much_differs() {
    let base: Vec<u64> = (0..20_000).collect();
    let a: GSet<u64> = base.iter().copied().collect();
    let share = |b: GSet<u64>| Index::of(&a).difference_share(&Index::of(&b).sketch());
    assert_eq!(share(a.clone()), 0.0, "equal states");
    let few: GSet<u64> = base.iter().copied().chain(100_000..100_010).collect();
    assert!(share(few) < 0.1, "10 in 20,000");
    let half: GSet<u64> = (10_000..30_000).collect();
    let s = share(half);
    assert!(
        (0.4..0.9).contains(&s),
        "two thirds of the union differ: {s}"
    );
    assert_eq!(
        Index::of(&GSet::<u64>::default()).difference_share(&[]),
        0.0
    );
}
