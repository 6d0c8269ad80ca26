//! Sequences' tests: the lattice laws, the kept order against the tree read afresh, splices by
//! rank against a walk, one writer as a string, no interleaving, out-of-order arrival.

use super::*;
use proptest::collection::vec;

fn edit(s: &Text, r: ReplicaId, what: u8, arg: u8) -> Text {
    let len = s.len();
    if what.is_multiple_of(3) && len > 0 {
        s.delete(usize::from(arg) % len, 1 + usize::from(what) % 2)
    } else {
        let text: String = (0..1 + what % 3)
            .map(|i| char::from(b'a' + arg.wrapping_add(i) % 26))
            .collect();
        s.insert(r, usize::from(arg) % (len + 1), &text)
    }
}

crate::laws::lattice_laws!(Text, edit);

/// The reading order as the index holds it: each dot, and whether it reads.
fn kept(t: &Text) -> Vec<(Dot, bool)> {
    t.order().iter().collect()
}

/// `parts` in an order drawn from `seed` (Fisher–Yates, a linear congruential generator).
fn shuffle<T>(parts: &mut [T], seed: u64) {
    let mut rng = seed;
    for i in (1..parts.len()).rev() {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        parts.swap(i, (rng >> 33) as usize % (i + 1));
    }
}

fn afresh(t: &Text) -> Vec<(Dot, bool)> {
    t.order_afresh()
        .into_iter()
        .map(|d| (d, t.items.element(&d).is_some()))
        .collect()
}

proptest! {
    /// The order kept up to date is the tree read afresh, whatever arrives in whatever order
    /// (items before their parents, deletions before their items), kept from the start or
    /// built at the end.
    #[test]
    fn the_kept_order_is_the_tree_read_afresh(steps in crate::laws::steps(), seed: u64) {
        let (_, deltas) = crate::laws::run_history::<Text>(&steps, 3, &edit)?;
        let mut parts: Vec<Text> = deltas.iter().flat_map(|d| d.decompose()).collect();
        shuffle(&mut parts, seed);
        let mut kept_all_along = Text::default();
        let _ = kept_all_along.len();
        for p in &parts {
            kept_all_along.join(p);
            prop_assert_eq!(kept(&kept_all_along), afresh(&kept_all_along));
        }
        let built_at_the_end = parts.iter().fold(Text::default(), |acc, p| acc.joined(p));
        prop_assert_eq!(kept(&built_at_the_end), afresh(&built_at_the_end));
        prop_assert_eq!(kept_all_along.value(), built_at_the_end.value());
    }
}

proptest! {
    /// The splices a delta made, found by rank, are those a walk of the whole order finds,
    /// for any group of deltas joined into any state.
    #[test]
    fn splices_by_rank_are_the_walks(steps in crate::laws::steps(), split: usize) {
        let (states, deltas) = crate::laws::run_history::<Text>(&steps, 3, &edit)?;
        let split = if deltas.is_empty() { 0 } else { split % deltas.len() };
        let group = deltas[split..].iter().fold(Text::default(), |acc, d| acc.joined(d));
        for state in states {
            let after = state.joined(&group);
            prop_assert_eq!(after.splices(&group), after.splices_walked(&group));
        }
    }
}

fn apply(t: &mut Text, d: &Text) {
    t.join(d);
}

proptest! {
    /// One writer: the text reads as a plain string edited the same way.
    #[test]
    fn one_writer_reads_as_a_string(edits in vec((any::<bool>(), 0usize..40, "[a-z]{1,4}"), 0..40)) {
        let (mut t, mut model) = (Text::default(), String::new());
        for (insert, at, s) in &edits {
            if *insert || model.is_empty() {
                let at = at % (model.chars().count() + 1);
                let d = t.insert(ReplicaId(1), at, s);
                apply(&mut t, &d);
                let byte = model.char_indices().nth(at).map_or(model.len(), |(b, _)| b);
                model.insert_str(byte, s);
            } else {
                let at = at % model.chars().count();
                let n = s.len().min(model.chars().count() - at);
                let d = t.delete(at, n);
                apply(&mut t, &d);
                model = model.chars().take(at).chain(model.chars().skip(at + n)).collect();
            }
            prop_assert_eq!(t.value(), model.clone());
        }
    }

    /// Two people typing at the same place at once: each run comes out whole.
    #[test]
    fn concurrent_runs_never_interleave(
        base in "[x-z]{0,8}",
        at in 0usize..9,
        a in "[a-c]{2,6}",
        b in "[A-C]{2,6}",
        typed_one_by_one in any::<bool>(),
    ) {
        let mut t = Text::default();
        let d = t.insert(ReplicaId(9), 0, &base);
        apply(&mut t, &d);
        let at = at % (base.len() + 1);
        let typed = |who: u64, s: &str| {
            let mut mine = t.clone();
            let mut all = Text::default();
            if typed_one_by_one {
                for (i, ch) in s.chars().enumerate() {
                    let d = mine.insert(ReplicaId(who), at + i, &ch.to_string());
                    mine.join(&d);
                    all.join(&d);
                }
            } else {
                all = mine.insert(ReplicaId(who), at, s);
            }
            all
        };
        let (da, db) = (typed(1, &a), typed(2, &b));
        let one = t.clone().joined(&da).joined(&db);
        let other = t.clone().joined(&db).joined(&da);
        prop_assert_eq!(one.value(), other.value());
        let v = one.value();
        prop_assert!(v.contains(&a) && v.contains(&b), "{v}: a run was split");
        let (head, tail) = base.split_at(at);
        prop_assert!(v.starts_with(head) && v.ends_with(tail), "{v}");
    }
}

#[test]
fn a_deletion_that_arrives_first_waits_for_its_item_and_orphans_wait_for_their_parent() {
    let mut a = Text::default();
    let d1 = a.insert(ReplicaId(1), 0, "hello");
    a.join(&d1);
    let d2 = a.delete(1, 3);
    a.join(&d2);
    assert_eq!(a.value(), "ho");
    // Another replica gets the deletion first, then the insertion's last items, then the rest.
    let mut b = Text::default();
    b.join(&d2);
    assert_eq!(b.value(), "");
    let parts = d1.decompose();
    for p in parts.iter().rev() {
        b.join(p);
    }
    assert_eq!(b.value(), "ho");
    assert_eq!(b, a);
}

#[test]
fn a_long_typed_chain_reads_without_recursion() {
    let mut t = Text::default();
    for i in 0..100_000 {
        let d = t.insert(ReplicaId(1), i, "x");
        t.join(&d);
    }
    assert_eq!(t.len(), 100_000);
    assert_eq!(t.order_afresh().len(), 100_000);
}

proptest! {
    /// Text typed in one go is one run in memory, and one span of the reading order, however
    /// its items arrive (one by one, in any order, before or after their deletions).
    #[test]
    fn typed_text_is_one_run_whatever_order_it_arrives_in(
        len in 1usize..60,
        seed: u64,
        delete_first in any::<bool>(),
    ) {
        let typed = Text::default().insert(ReplicaId(1), 0, &"x".repeat(len));
        let mut parts = typed.decompose();
        shuffle(&mut parts, seed);
        let mut t = Text::default();
        let _ = t.len();
        for p in &parts {
            t.join(p);
        }
        prop_assert_eq!(t.items.runs().count(), 1);
        prop_assert_eq!(t.order().spans(), 1);
        prop_assert_eq!(&t, &typed);
        // A block deleted from its middle: three spans, still one run.
        let (from, n) = (len / 3, len / 3);
        let gone = t.delete(from, n);
        let t = if delete_first { gone.joined(&t) } else { t.joined(&gone) };
        prop_assert_eq!(t.items.runs().count(), 1);
        prop_assert_eq!(t.order().spans(), 1 + 2 * usize::from(n > 0 && from + n < len));
    }
}

#[test]
fn an_item_under_a_held_dot_in_another_place_splits_its_run_and_wins_everywhere() {
    // A faulty peer sends another item under a dot that is the middle of a typed run: the
    // smaller place wins on every replica, whatever arrives first, and the runs stay canonical.
    let typed = Text::default().insert(ReplicaId(1), 0, "abcde");
    let middle = Dot::new(ReplicaId(1), 3);
    let mut other = Text::default();
    other.items.put(
        middle,
        Place {
            parent: None,
            right: true,
        },
        Some('Z'),
    );
    let one = typed.clone().joined(&other);
    let two = other.joined(&typed);
    assert_eq!(one, two);
    assert_eq!(one.items.get(&middle).map(|(p, _)| p.parent), Some(None));
    // "ab", and "Zde" hung from the root: the items after it continue it.
    assert_eq!(one.items.runs().count(), 2);
    assert_eq!(one.items.len(), 5);
    assert_eq!(one.value(), "abZde");
}
