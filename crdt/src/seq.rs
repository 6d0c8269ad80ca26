//! Sequences — collaborative text, and the lists of the `doc` type: a sequence CRDT after Fugue
//! (Weidner and Kleppmann, "The Art of the Fugue", 2023), as a delta-state lattice. [`Text`] is a
//! sequence of characters.
//!
//! Every element (character) ever inserted is an *item* named by a dot, placed in a tree: it is the right
//! child of the character before it, or — when that one already has right children — the left
//! child of the character after it. The text is the tree read in order (left children, the item,
//! right children; siblings by dot), without the deleted items. The order is a function of the
//! set of items alone, so replicas that hold the same items read the same text, however the items
//! arrived; and characters typed one after another become a chain of right children, so two
//! people typing at the same place never interleave: one run comes whole before the other.
//!
//! The state is two grow-only sets — items by dot, and the dots deleted (a causal context: runs)
//! — so join is union, its irreducibles are single items and single deletions, and Δ is what one
//! has that the other lacks: BP+RR, catch-up, checkpoints and rollback need nothing new. A
//! deleted item keeps its place in the tree but not its element: join drops it (every replica
//! drops the same ones, so states stay canonical), and a deleted item with its deletion is one
//! irreducible. An item whose parent has not arrived (deltas out of order) is held unseen until it
//! does; a deletion of an item not yet seen waits for it the same way.
//!
//! On the wire and on disk a sequence is runs of items ([`form`]): characters typed one after
//! another are one run (its first dot, its place, its length) and the elements that still read,
//! so an encoded text costs about its text plus a few bytes per run. In memory too the items are
//! runs ([`items`]): a run is one entry holding its elements. The reading order is kept beside the
//! lattice ([`order`]) as spans of consecutive dots, built on first read and kept up to date by
//! joins, so an edit costs about the log of the length: 259,778 edits of a real editing trace
//! replay in well under a second, and the text they leave is held in a few bytes a character
//! (BENCHMARKS.md, "Text").

use crate::dot::{CausalContext, Dot, ReplicaId};
use crate::lattice::{Decompose, Lattice, Measure};
mod form;
mod items;
mod order;
mod place;

use items::Items;
use order::Order;
use place::Place;
use std::fmt::Debug;
use std::sync::OnceLock;

/// A replicated sequence of `T`: its items, as runs, each with its place and its element
/// (`None` once deleted — a deleted element is dropped — or where only the item's place has
/// arrived: a deleted item's irreducible does not hold its element), and the dots deleted (the
/// lattice); and its reading order, built when first read and kept up to date by joins
/// ([`order::Order`]; not encoded, not compared). Encoded as runs ([`form`]).
#[derive(Clone)]
pub struct Seq<T> {
    items: Items<T>,
    deleted: CausalContext,
    order: OnceLock<Order>,
}

impl<T: PartialEq> PartialEq for Seq<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items && self.deleted == other.deleted
    }
}

impl<T: Eq> Eq for Seq<T> {}

impl<T: Debug> Debug for Seq<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seq")
            .field("items", &self.items)
            .field("deleted", &self.deleted)
            .finish()
    }
}

/// Collaborative text: a sequence of characters.
pub type Text = Seq<char>;

impl<T> Default for Seq<T> {
    fn default() -> Self {
        Seq {
            items: Items::default(),
            deleted: CausalContext::new(),
            order: OnceLock::new(),
        }
    }
}

impl Text {
    /// The text as it reads.
    pub fn value(&self) -> String {
        self.elements().copied().collect()
    }

    /// Delta-mutator: `text` inserted at character `index` (clamped to the length) by `replica`.
    pub fn insert(&self, replica: ReplicaId, index: usize, text: &str) -> Text {
        self.insert_at(self.next_dot(replica), index, text.chars().collect())
    }
}

impl<T: Clone + Ord + Debug> Seq<T> {
    /// The elements as they read.
    pub fn elements(&self) -> impl Iterator<Item = &T> + '_ {
        self.visible_dots().filter_map(|d| self.element(&d))
    }

    /// The elements as they read, with their dots.
    pub fn entries(&self) -> Vec<(Dot, &T)> {
        self.visible_dots()
            .filter_map(|d| Some((d, self.element(&d)?)))
            .collect()
    }

    /// The `index`-th element that reads, with its dot.
    pub fn get(&self, index: usize) -> Option<(Dot, &T)> {
        let d = self.order().nth_visible(index)?;
        Some((d, self.element(&d)?))
    }

    /// The element of item `d`, if it is held and not deleted.
    fn element(&self, d: &Dot) -> Option<&T> {
        self.items.element(d)
    }

    /// Elements that read (deleted ones left out).
    pub fn len(&self) -> usize {
        self.order().len_visible()
    }

    /// The reading order, built on first use.
    fn order(&self) -> &Order {
        self.order.get_or_init(|| {
            let mut order = Order::default();
            for (d, place, ch) in self.items.iter() {
                order.add(d, place, ch.is_some());
            }
            order
        })
    }

    fn visible_dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.order()
            .iter()
            .filter(|(_, reads)| *reads)
            .map(|(d, _)| d)
    }

    /// Whether it reads as nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item reachable from the root, in reading order, deleted ones included: the tree
    /// read afresh, what [`Order`] keeps up to date (the reference its tests check it against).
    #[cfg(test)]
    fn order_afresh(&self) -> Vec<Dot> {
        use std::collections::BTreeMap;
        // Children of each node, left and right, each sorted by dot (the maps iterate in order).
        let mut left: BTreeMap<Option<Dot>, Vec<Dot>> = BTreeMap::new();
        let mut right: BTreeMap<Option<Dot>, Vec<Dot>> = BTreeMap::new();
        for (d, place, _) in self.items.iter() {
            let side = if place.right { &mut right } else { &mut left };
            side.entry(place.parent).or_default().push(d);
        }
        // An explicit stack (a chain of typed characters is as deep as it is long): `Visit`
        // expands a node, `Emit` writes it once its left children are out.
        enum Step {
            Visit(Dot),
            Emit(Dot),
        }
        let mut out = Vec::new();
        let mut stack: Vec<Step> = right
            .get(&None)
            .into_iter()
            .flatten()
            .rev()
            .map(|d| Step::Visit(*d))
            .collect();
        while let Some(step) = stack.pop() {
            match step {
                Step::Emit(d) => out.push(d),
                Step::Visit(d) => {
                    for r in right.get(&Some(d)).into_iter().flatten().rev() {
                        stack.push(Step::Visit(*r));
                    }
                    stack.push(Step::Emit(d));
                    for l in left.get(&Some(d)).into_iter().flatten().rev() {
                        stack.push(Step::Visit(*l));
                    }
                }
            }
        }
        out
    }

    /// The dots of its items, deleted or not.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.items.iter().map(|(d, ..)| d)
    }

    /// What `delta` (new items and deletions, as a write or a neighbour's group made them) did
    /// to this sequence, which already holds it: splices `(index, deleted, inserted)` that,
    /// applied in order, turn the elements as they were into the elements as they are. Costs the
    /// delta and, for each element it names, the log of the sequence's length.
    pub fn splices(&self, delta: &Seq<T>) -> Vec<(usize, usize, Vec<&T>)> {
        let order = self.order();
        // What it did, each at its place in the reading order: the elements it inserted that
        // read (one inserted and deleted by one delta was never seen), and the held elements it
        // deleted. `before`: the elements that read before it, now.
        let mut done: Vec<((u32, u64), usize, Option<&T>)> = Vec::new();
        for (d, ..) in delta.items.iter() {
            if let (Some(ch), Some((key, before))) = (self.element(&d), order.rank(&d)) {
                done.push((key, before, Some(ch)));
            }
        }
        for (r, a, b) in delta.deleted.runs() {
            for (d, ch) in self.items.range(r, a, b) {
                if ch.is_none() && !delta.items.contains(&d) {
                    if let Some((key, before)) = order.rank(&d) {
                        done.push((key, before, None));
                    }
                }
            }
        }
        done.sort_unstable_by_key(|(key, ..)| *key);
        let mut out: Vec<(usize, usize, Vec<&T>)> = Vec::new();
        for (_, at, ch) in done {
            // An element deleted just past a splice's insertion is that splice's too (a splice
            // deletes, then inserts).
            let extends = |last: &(usize, usize, Vec<&T>)| last.0 + last.2.len() == at;
            match (out.last_mut(), ch) {
                (Some(last), Some(ch)) if extends(last) => last.2.push(ch),
                (Some(last), None) if extends(last) => last.1 += 1,
                (_, Some(ch)) => out.push((at, 0, vec![ch])),
                (_, None) => out.push((at, 1, Vec::new())),
            }
        }
        out
    }

    /// [`Seq::splices`] by a walk of the whole order, as it was found before ranks: the
    /// reference its tests check it against and its benchmark compares it with
    /// (`crdt/benches/splices.rs`). Costs the sequence.
    #[doc(hidden)]
    pub fn splices_walked(&self, delta: &Seq<T>) -> Vec<(usize, usize, Vec<&T>)> {
        let mut out: Vec<(usize, usize, Vec<&T>)> = Vec::new();
        let mut at = 0;
        for (d, reads) in self.order().iter() {
            let gone = !reads;
            if delta.items.contains(&d) {
                if let Some(ch) = self.element(&d) {
                    match out.last_mut() {
                        Some(last) if last.0 + last.2.len() == at => last.2.push(ch),
                        _ => out.push((at, 0, vec![ch])),
                    }
                    at += 1;
                }
            } else if gone && delta.deleted.contains(&d) {
                match out.last_mut() {
                    Some(last) if last.0 + last.2.len() == at => last.1 += 1,
                    _ => out.push((at, 1, Vec::new())),
                }
            } else if !gone {
                at += 1;
            }
        }
        out
    }

    /// The next dot of `replica`: above every item it made here.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        let last = self.items.last_counter(replica).unwrap_or(0);
        Dot::new(replica, last.saturating_add(1))
    }

    /// Delta-mutator: `elements` inserted at `index` (clamped to the length) as items named
    /// `first`, then the dots of the same replica after it (the caller hands out fresh ones).
    pub fn insert_at(&self, first: Dot, index: usize, elements: Vec<T>) -> Seq<T> {
        let mut delta = Seq::default();
        let mut elements = elements.into_iter();
        let Some(head) = elements.next() else {
            return delta;
        };
        let order = self.order();
        let index = index.min(order.len_visible());
        // `a`: the element before the insertion point (the root at 0); `b`: the one after `a`
        // in the order, deleted or not.
        let a = index.checked_sub(1).and_then(|i| order.nth_visible(i));
        let b = order.next(a);
        let a_has_right_children = order.has_right_children(a);
        let mut dot = first;
        let place = match b {
            Some(b) if a_has_right_children => Place {
                parent: Some(b),
                right: false,
            },
            _ => Place {
                parent: a,
                right: true,
            },
        };
        delta.items.put(dot, place, Some(head));
        for ch in elements {
            let next = Dot::new(dot.replica, dot.counter.saturating_add(1));
            delta.items.put(next, Place::right_of(dot), Some(ch));
            dot = next;
        }
        delta
    }

    /// Delta-mutator: `len` elements deleted from `index` (what lies past the end is left alone).
    pub fn delete(&self, index: usize, len: usize) -> Seq<T> {
        let order = self.order();
        let first = order.nth_visible(index);
        let deleted = first
            .into_iter()
            .flat_map(|first| order.iter_from(first))
            .filter(|(_, reads)| *reads)
            .take(len)
            .map(|(d, _)| d)
            .collect();
        Seq {
            deleted,
            ..Seq::default()
        }
    }
}

impl<T: Clone + Ord + Debug> Lattice for Seq<T> {
    fn bottom() -> Self {
        Self::default()
    }

    fn is_bottom(&self) -> bool {
        self.items.is_empty() && self.deleted.is_empty()
    }

    fn join(&mut self, other: &Self) {
        let Seq {
            items,
            deleted,
            order,
        } = self;
        let mut stale = false;
        // Deletions: each held item a new one covers drops its element and stops reading. Costs
        // the runs and the items they cover, never the dots a run claims.
        for (r, a, b) in other.deleted.runs() {
            let new: Vec<(u64, u64)> = deleted.missing_in(r, a, b).collect();
            for (x, y) in new {
                items.drop_elements(r, x, y, |d| {
                    if let Some(order) = order.get_mut() {
                        order.hide(&d);
                    }
                });
            }
            deleted.insert_run(r, a, b);
        }
        for (d, place, ch) in other.items.iter() {
            let ch = if deleted.contains(&d) { None } else { ch };
            // New here; or covering the item held under its dot — a peer's element for an item
            // held without one, or (should a peer send another item under the same dot) the
            // winner of the two on every replica — and then whether the order must be read
            // afresh (what it holds of the item changed); or nothing new.
            let covering = match items.get(&d) {
                None => {
                    items.put(d, place, ch.cloned());
                    if let Some(order) = order.get_mut() {
                        order.add(d, place, ch.is_some());
                    }
                    continue;
                }
                Some(held) if (place, ch) != held && covers((place, ch), held) => {
                    Some(held.0 != place || held.1.is_some() != ch.is_some())
                }
                Some(_) => None,
            };
            if let Some(reread) = covering {
                stale |= reread;
                items.put(d, place, ch.cloned());
            }
        }
        if stale {
            *order = OnceLock::new();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.items
            .iter()
            .all(|(d, place, ch)| other.holds(&d, (place, ch)))
            && self.deleted.is_subset(&other.deleted)
    }
}

/// Whether item `a` is at or above item `b` (both under one dot): items are a chain — the
/// smaller place above (only a faulty peer sends two), then, in one place, any element above
/// none and the smaller element above the larger.
fn covers<T: Ord>(a: (Place, Option<&T>), b: (Place, Option<&T>)) -> bool {
    if a.0 != b.0 {
        return a.0 < b.0;
    }
    match (a.1, b.1) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(x), Some(y)) => x <= y,
    }
}

impl<T: Clone + Ord + Debug> Seq<T> {
    /// Whether joining item `d` into this state changes nothing: an item at or above it is
    /// held, or one in its place whose deletion drops any element.
    fn holds(&self, d: &Dot, item: (Place, Option<&T>)) -> bool {
        self.items.get(d).is_some_and(|held| {
            covers(held, item) || (held.0 == item.0 && self.deleted.contains(d))
        })
    }

    /// The state holding only item `d`: one irreducible (a deleted item's deletion is another).
    fn item_alone(d: Dot, place: Place, ch: Option<&T>) -> Self {
        let mut alone = Seq::default();
        alone.items.put(d, place, ch.cloned());
        alone
    }
}

impl<T: Clone + Ord + Debug> Decompose for Seq<T> {
    /// Each item alone (a deleted one without its element) and each deleted dot alone.
    fn decompose(&self) -> Vec<Self> {
        let items = self
            .items
            .iter()
            .map(|(d, place, ch)| Self::item_alone(d, place, ch));
        let deleted = self.deleted.dots().map(|d| Seq {
            deleted: CausalContext::from_iter([d]),
            ..Seq::default()
        });
        items.chain(deleted).collect()
    }

    /// Items one by one, and each run of deleted dots as one piece: costs what the state holds.
    fn for_each_piece(&self, f: &mut dyn FnMut(Self)) {
        for (d, place, ch) in self.items.iter() {
            f(Self::item_alone(d, place, ch));
        }
        for (r, a, b) in self.deleted.runs() {
            let mut piece = Seq::default();
            piece.deleted.insert_run(r, a, b);
            f(piece);
        }
    }

    fn delta(&self, base: &Self) -> Self {
        let mut d = Seq::default();
        for (dot, place, ch) in self.items.iter() {
            if !base.holds(&dot, (place, ch)) {
                d.items.put(dot, place, ch.cloned());
            }
        }
        for (r, a, b) in self.deleted.runs() {
            for (x, y) in base.deleted.missing_in(r, a, b) {
                d.deleted.insert_run(r, x, y);
            }
        }
        d
    }
}

impl<T> Measure for Seq<T> {
    fn payload_units(&self) -> u64 {
        self.items.len() + self.deleted.units()
    }
}

#[cfg(test)]
mod tests;
