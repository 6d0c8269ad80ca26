//! Slot ids in key order: a sorted sequence of `u32` split into chunks of at most [`CHUNK`], so
//! an insertion moves at most one chunk. The order itself lives with the caller, which compares
//! a slot against what it looks for; the sequence holds 4 bytes per live write (a B-tree keyed by
//! the key would hold the key a second time).

/// The most ids a chunk holds.
const CHUNK: usize = 1024;

/// A position: chunk, then index within it. Past the end is `(last chunk, its length)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    chunk: usize,
    at: usize,
}

/// Slot ids in the caller's order. See the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct KeyOrder {
    /// Never an empty chunk.
    chunks: Vec<Vec<u32>>,
}

impl KeyOrder {
    /// The first position whose slot does not compare `Less` (`below(id)`: whether slot `id` sorts
    /// before what is sought); past the end when every slot does.
    pub(super) fn lower_bound(&self, below: impl Fn(u32) -> bool) -> Pos {
        let chunk = self
            .chunks
            .partition_point(|c| below(*c.last().expect("chunks are never empty")));
        if chunk == self.chunks.len() {
            return self.end();
        }
        let at = self.chunks[chunk].partition_point(|&id| below(id));
        Pos { chunk, at }
    }

    /// Past the end.
    fn end(&self) -> Pos {
        match self.chunks.len() {
            0 => Pos { chunk: 0, at: 0 },
            n => Pos {
                chunk: n - 1,
                at: self.chunks[n - 1].len(),
            },
        }
    }

    /// The id at `pos`, unless it is past the end.
    pub(super) fn get(&self, pos: Pos) -> Option<u32> {
        self.chunks.get(pos.chunk)?.get(pos.at).copied()
    }

    /// The id just before `pos`, if any.
    pub(super) fn before(&self, pos: Pos) -> Option<u32> {
        match pos.at {
            0 => self.chunks.get(pos.chunk.checked_sub(1)?)?.last().copied(),
            at => self.chunks.get(pos.chunk)?.get(at - 1).copied(),
        }
    }

    /// Replaces the id at `pos` (which must not be past the end).
    pub(super) fn set(&mut self, pos: Pos, id: u32) {
        self.chunks[pos.chunk][pos.at] = id;
    }

    /// Inserts `id` at `pos`, splitting a full chunk (an insertion past the end of a full last
    /// chunk starts a new one, so ids appended in order fill their chunks).
    pub(super) fn insert(&mut self, pos: Pos, id: u32) {
        if self.chunks.is_empty() {
            self.chunks.push(vec![id]);
            return;
        }
        let Pos { chunk, at } = pos;
        if self.chunks[chunk].len() < CHUNK {
            self.chunks[chunk].insert(at, id);
        } else if at == CHUNK && chunk + 1 == self.chunks.len() {
            let mut fresh = Vec::with_capacity(CHUNK);
            fresh.push(id);
            self.chunks.push(fresh);
        } else {
            let mut upper = Vec::with_capacity(CHUNK);
            upper.extend(self.chunks[chunk].drain(CHUNK / 2..));
            if at <= CHUNK / 2 {
                self.chunks[chunk].insert(at, id);
            } else {
                upper.insert(at - CHUNK / 2, id);
            }
            self.chunks.insert(chunk + 1, upper);
        }
    }

    /// Removes the id at `pos` (which must not be past the end); the position of what followed it.
    pub(super) fn remove(&mut self, pos: Pos) -> Pos {
        let Pos { chunk, at } = pos;
        let c = &mut self.chunks[chunk];
        c.remove(at);
        if c.is_empty() {
            self.chunks.remove(chunk);
            return if chunk < self.chunks.len() {
                Pos { chunk, at: 0 }
            } else {
                self.end()
            };
        }
        if c.len() < c.capacity() / 4 {
            c.shrink_to(c.len() * 2);
        }
        if at == c.len() && chunk + 1 < self.chunks.len() {
            Pos {
                chunk: chunk + 1,
                at: 0,
            }
        } else {
            pos
        }
    }

    /// The ids from `pos` on, in order.
    pub(super) fn iter_from(&self, pos: Pos) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .chunks
            .get(pos.chunk)
            .map_or(&[][..], |c| &c[pos.at.min(c.len())..]);
        let rest = self.chunks.get(pos.chunk + 1..).unwrap_or(&[]);
        first.iter().chain(rest.iter().flatten()).copied()
    }

    /// Every id, in order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn insert_sorted(order: &mut KeyOrder, x: u32) {
        let pos = order.lower_bound(|id| id < x);
        order.insert(pos, x);
    }

    proptest! {
        /// Inserting and removing keeps the ids sorted and equal to a sorted vector's, across
        /// chunk splits and removals that empty chunks.
        #[test]
        fn stays_a_sorted_sequence(xs in prop::collection::vec(0u32..5_000, 0..3_000), drop_every in 1usize..5) {
            let mut order = KeyOrder::default();
            let mut model: Vec<u32> = Vec::new();
            for &x in &xs {
                insert_sorted(&mut order, x);
                let i = model.partition_point(|&y| y < x);
                model.insert(i, x);
            }
            prop_assert_eq!(order.iter().collect::<Vec<_>>(), model.clone());
            for &x in xs.iter().step_by(drop_every) {
                let pos = order.lower_bound(|id| id < x);
                prop_assert_eq!(order.get(pos), Some(x));
                let next = order.remove(pos);
                let i = model.partition_point(|&y| y < x);
                model.remove(i);
                prop_assert_eq!(order.get(next), model.get(i).copied());
                prop_assert_eq!(order.before(next), i.checked_sub(1).map(|j| model[j]));
            }
            prop_assert_eq!(order.iter().collect::<Vec<_>>(), model.clone());
            prop_assert!(order.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
            let from = order.lower_bound(|id| id < 2_500);
            let tail: Vec<u32> = model.iter().copied().filter(|&y| y >= 2_500).collect();
            prop_assert_eq!(order.iter_from(from).collect::<Vec<_>>(), tail);
        }
    }

    #[test]
    fn ids_appended_in_order_fill_their_chunks() {
        let mut order = KeyOrder::default();
        for x in 0..(10 * CHUNK as u32) {
            insert_sorted(&mut order, x);
        }
        assert_eq!(order.chunks.len(), 10);
        assert!(order.chunks.iter().all(|c| c.len() == CHUNK));
    }
}
