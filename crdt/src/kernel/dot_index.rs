//! Which slot holds each live dot: per replica, pages of 64 counters, each a bitmask of the live
//! counters and their slot ids in counter order.
//!
//! A replica's counters are dense in practice (it numbers its writes 1, 2, 3, …), so a page
//! costs ~4 bytes per live dot plus ~45 bytes per page; a `BTreeMap<Dot, u32>` costs ~22 bytes
//! per dot. A page holding a single live dot (the sparse worst case) costs ~70 bytes.

use crate::dot::{Dot, ReplicaId};
use std::collections::BTreeMap;

/// Counters per page.
const PAGE: u64 = 64;

/// The live counters `PAGE · n .. PAGE · (n + 1)` of one replica.
#[derive(Clone, Debug)]
struct Page {
    /// Bit `c % PAGE` is set when counter `c` is live.
    live: u64,
    /// The slot ids of the live counters, in counter order (one per set bit).
    ids: Box<[u32]>,
}

impl Page {
    /// Position in `ids` of `bit`'s id: the number of live counters below it.
    fn rank(&self, bit: u64) -> usize {
        (self.live & ((1u64 << bit) - 1)).count_ones() as usize
    }
}

/// Slot ids of live dots, by dot. See the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct DotIndex {
    pages: BTreeMap<ReplicaId, BTreeMap<u64, Page>>,
}

fn split(dot: &Dot) -> (u64, u64) {
    (dot.counter / PAGE, dot.counter % PAGE)
}

impl DotIndex {
    /// The slot of `dot`, if it is live.
    pub(super) fn get(&self, dot: &Dot) -> Option<u32> {
        let (page, bit) = split(dot);
        let p = self.pages.get(&dot.replica)?.get(&page)?;
        (p.live & (1 << bit) != 0).then(|| p.ids[p.rank(bit)])
    }

    /// Records `dot` as live in slot `id`, or moves it there if it was already live.
    pub(super) fn set(&mut self, dot: Dot, id: u32) {
        let (page, bit) = split(&dot);
        let p = self
            .pages
            .entry(dot.replica)
            .or_default()
            .entry(page)
            .or_insert_with(|| Page {
                live: 0,
                ids: Box::new([]),
            });
        let at = p.rank(bit);
        if p.live & (1 << bit) != 0 {
            p.ids[at] = id;
            return;
        }
        let mut ids = Vec::with_capacity(p.ids.len() + 1);
        ids.extend_from_slice(&p.ids[..at]);
        ids.push(id);
        ids.extend_from_slice(&p.ids[at..]);
        p.ids = ids.into_boxed_slice();
        p.live |= 1 << bit;
    }

    /// Forgets `dot`; its slot, if it was live.
    pub(super) fn remove(&mut self, dot: &Dot) -> Option<u32> {
        let (page, bit) = split(dot);
        let pages = self.pages.get_mut(&dot.replica)?;
        let p = pages.get_mut(&page)?;
        if p.live & (1 << bit) == 0 {
            return None;
        }
        let at = p.rank(bit);
        let id = p.ids[at];
        p.live &= !(1 << bit);
        if p.live == 0 {
            pages.remove(&page);
            if pages.is_empty() {
                self.pages.remove(&dot.replica);
            }
        } else {
            let mut ids = p.ids.to_vec();
            ids.remove(at);
            p.ids = ids.into_boxed_slice();
        }
        Some(id)
    }

    /// Live dots of `replica` with counters in `from..=to`, in order, with their slots.
    pub(super) fn range(
        &self,
        replica: ReplicaId,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = (Dot, u32)> + '_ {
        let pages = (from <= to)
            .then(|| self.pages.get(&replica))
            .flatten()
            .map(|pages| pages.range(from / PAGE..=to / PAGE));
        pages
            .into_iter()
            .flatten()
            .flat_map(move |(&n, p)| page_dots(replica, n, p))
            .filter(move |(d, _)| (from..=to).contains(&d.counter))
    }

    /// Every live dot, in dot order, with its slot.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Dot, u32)> + '_ {
        self.pages.iter().flat_map(|(&replica, pages)| {
            pages
                .iter()
                .flat_map(move |(&n, p)| page_dots(replica, n, p))
        })
    }
}

/// The live dots of page `n` of `replica`, in order, with their slots.
fn page_dots(replica: ReplicaId, n: u64, p: &Page) -> impl Iterator<Item = (Dot, u32)> + '_ {
    let mut live = p.live;
    p.ids.iter().map(move |&id| {
        let bit = u64::from(live.trailing_zeros());
        live &= live - 1;
        (Dot::new(replica, n * PAGE + bit), id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// The index answers as a plain map from dots to ids would, through sets, moves and removals.
        #[test]
        fn behaves_as_a_map(ops in prop::collection::vec((0u64..3, 0u64..300, 0u32..50, any::<bool>()), 0..200)) {
            let mut index = DotIndex::default();
            let mut model: BTreeMap<Dot, u32> = BTreeMap::new();
            for (r, c, id, remove) in ops {
                let dot = Dot::new(ReplicaId(r), c);
                if remove {
                    prop_assert_eq!(index.remove(&dot), model.remove(&dot));
                } else {
                    index.set(dot, id);
                    model.insert(dot, id);
                }
                prop_assert_eq!(index.get(&dot), model.get(&dot).copied());
            }
            let all: Vec<(Dot, u32)> = model.iter().map(|(d, i)| (*d, *i)).collect();
            prop_assert_eq!(index.iter().collect::<Vec<_>>(), all);
            let some: Vec<(Dot, u32)> = model
                .range(Dot::new(ReplicaId(1), 60)..=Dot::new(ReplicaId(1), 130))
                .map(|(d, i)| (*d, *i))
                .collect();
            prop_assert_eq!(index.range(ReplicaId(1), 60, 130).collect::<Vec<_>>(), some);
            prop_assert_eq!(index.range(ReplicaId(1), 5, 4).count(), 0);
        }
    }

    #[test]
    fn counters_near_the_top_fit() {
        let mut index = DotIndex::default();
        let top = Dot::new(ReplicaId(7), u64::MAX);
        index.set(top, 3);
        assert_eq!(index.get(&top), Some(3));
        assert_eq!(index.range(ReplicaId(7), 1, u64::MAX).count(), 1);
        assert_eq!(index.remove(&top), Some(3));
        assert_eq!(index.iter().count(), 0);
    }
}
