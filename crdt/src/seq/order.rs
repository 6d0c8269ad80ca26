//! A sequence's reading order, kept up to date as items arrive, so an edit costs about the log of
//! the sequence's length rather than a walk of its whole tree.
//!
//! The order is a list of dots (each with whether it reads) in chunks of at most [`CHUNK`], found
//! by dot through a map to their chunk, and by position through a Fenwick tree of the chunks'
//! visible counts. Beside it, each item's children (left and right, sorted by dot): an item that
//! arrives is placed by the tree's rule — before the first element of the subtree of its next
//! sibling, or after the last of its previous sibling's, or beside its parent — which gives the
//! order the whole tree read afresh gives (a property test checks it against that). Items whose
//! parent has not arrived wait for it.

use crate::dot::Dot;
use crate::dot::ReplicaId;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;

const FIRST: Dot = Dot {
    replica: ReplicaId(0),
    counter: 0,
};
const LAST: Dot = Dot {
    replica: ReplicaId(u64::MAX),
    counter: u64::MAX,
};

/// The children of `parent` on one side, as a range of the children set.
fn side(parent: Option<Dot>, right: bool) -> RangeInclusive<(Option<Dot>, bool, Dot)> {
    (parent, right, FIRST)..=(parent, right, LAST)
}

/// Most dots in one chunk.
const CHUNK: usize = 128;

/// Where an item hangs: what the order needs of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub parent: Option<Dot>,
    pub right: bool,
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    dots: Vec<(Dot, bool)>,
    visible: usize,
}

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct Order {
    /// Chunks by id (an id never changes; `sequence` orders them).
    chunks: Vec<Chunk>,
    /// Chunk ids in reading order.
    sequence: Vec<u32>,
    /// Chunk id → its index in `sequence`.
    position: Vec<u32>,
    /// Fenwick tree over `sequence` of the chunks' visible counts.
    fenwick: Vec<usize>,
    /// The chunk of every placed dot.
    chunk_of: HashMap<Dot, u32>,
    /// Every placed item as `(parent, right, dot)`: each item's children (and the root's,
    /// `None`), by side, sorted by dot — one set, no allocation per parent.
    children: BTreeSet<(Option<Dot>, bool, Dot)>,
    /// Items waiting for their parent, by parent.
    waiting: HashMap<Dot, Vec<(Dot, Place, bool)>>,
    /// Dots hidden before they were placed (a deletion that came before its item, or while the
    /// item waited for its parent).
    hidden: HashSet<Dot>,
    visible: usize,
}

impl Order {
    /// Elements that read.
    pub fn len_visible(&self) -> usize {
        self.visible
    }

    /// Every placed dot in reading order, with whether it reads.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, bool)> + '_ {
        self.sequence
            .iter()
            .flat_map(|&id| self.chunks[id as usize].dots.iter().copied())
    }

    /// Placed dots in reading order from `from` (included), with whether they read.
    pub fn iter_from(&self, from: Dot) -> impl Iterator<Item = (Dot, bool)> + '_ {
        let (at, offset) = match self.locate(&from) {
            Some((id, offset)) => (self.position[id as usize] as usize, offset),
            None => (self.sequence.len(), 0),
        };
        self.sequence[at..]
            .iter()
            .enumerate()
            .flat_map(move |(i, &id)| {
                let skip = if i == 0 { offset } else { 0 };
                self.chunks[id as usize].dots[skip..].iter().copied()
            })
    }

    /// The `n`-th element that reads (from 0).
    pub fn nth_visible(&self, n: usize) -> Option<Dot> {
        if n >= self.visible {
            return None;
        }
        // The first chunk position whose running count passes n.
        let (mut pos, mut left) = (0, n);
        let mut step = self.fenwick.len().next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= self.fenwick.len() && self.fenwick[next - 1] <= left {
                pos = next;
                left -= self.fenwick[next - 1];
            }
            step /= 2;
        }
        let chunk = &self.chunks[self.sequence[pos] as usize];
        chunk
            .dots
            .iter()
            .filter(|(_, v)| *v)
            .nth(left)
            .map(|(d, _)| *d)
    }

    /// Where placed `dot` stands: a key that sorts dots in reading order (its chunk's position,
    /// its offset in the chunk) and how many elements read before it. Costs the log of the
    /// length and a chunk.
    pub fn rank(&self, dot: &Dot) -> Option<((u32, usize), usize)> {
        let (id, offset) = self.locate(dot)?;
        let pos = self.position[id as usize];
        let (mut i, mut before) = (pos as usize, 0);
        while i > 0 {
            before += self.fenwick[i - 1];
            i -= i & i.wrapping_neg();
        }
        let chunk = &self.chunks[id as usize].dots[..offset];
        before += chunk.iter().filter(|(_, reads)| *reads).count();
        Some(((pos, offset), before))
    }

    /// The dot after `dot` in reading order (read or not); the first when `None`.
    pub fn next(&self, dot: Option<Dot>) -> Option<Dot> {
        match dot {
            None => self.iter().next().map(|(d, _)| d),
            Some(d) => self.iter_from(d).nth(1).map(|(d, _)| d),
        }
    }

    /// Whether `dot` (the root: `None`) has right children placed.
    pub fn has_right_children(&self, dot: Option<Dot>) -> bool {
        self.children.range(side(dot, true)).next().is_some()
    }

    /// Places `dot`, hung at `place`, reading or not — once its parent is placed (at once for a
    /// root's right child), with every item that waited for it.
    pub fn add(&mut self, dot: Dot, place: Place, reads: bool) {
        if self.chunk_of.contains_key(&dot) {
            return;
        }
        let mut todo = vec![(dot, place, reads)];
        while let Some((dot, place, reads)) = todo.pop() {
            match place.parent {
                // A root's left child has no place in the order (no edit makes one).
                None if !place.right => continue,
                Some(p) if !self.chunk_of.contains_key(&p) => {
                    self.waiting.entry(p).or_default().push((dot, place, reads));
                    continue;
                }
                _ => {}
            }
            let reads = reads && !self.hidden.remove(&dot);
            self.place(dot, place, reads);
            if let Some(kids) = self.waiting.remove(&dot) {
                todo.extend(kids);
            }
        }
    }

    /// Marks `dot` as not reading (now, or when it is placed).
    pub fn hide(&mut self, dot: &Dot) {
        let Some((id, offset)) = self.locate(dot) else {
            self.hidden.insert(*dot);
            return;
        };
        let chunk = &mut self.chunks[id as usize];
        if std::mem::replace(&mut chunk.dots[offset].1, false) {
            chunk.visible -= 1;
            self.visible -= 1;
            let pos = self.position[id as usize] as usize;
            self.fenwick_sub(pos);
        }
    }

    /// `dot`'s chunk and its offset in it.
    fn locate(&self, dot: &Dot) -> Option<(u32, usize)> {
        let id = *self.chunk_of.get(dot)?;
        let offset = self.chunks[id as usize]
            .dots
            .iter()
            .position(|(d, _)| d == dot)?;
        Some((id, offset))
    }

    /// Places `dot` by the tree's rule; its parent is placed.
    fn place(&mut self, dot: Dot, place: Place, reads: bool) {
        let (parent, right) = (place.parent, place.right);
        let siblings = side(parent, right);
        let prev = self
            .children
            .range(*siblings.start()..(parent, right, dot))
            .next_back()
            .map(|c| c.2);
        let next = self
            .children
            .range((parent, right, dot)..=*siblings.end())
            .next()
            .map(|c| c.2);
        self.children.insert((parent, right, dot));
        match (next, prev, place.parent) {
            // Before the first element of its next sibling's subtree.
            (Some(n), ..) => {
                let first = self.leftmost(n);
                self.insert_at(first, 0, dot, reads);
            }
            // After the last element of its previous sibling's subtree.
            (None, Some(p), _) if place.right => {
                let last = self.rightmost(p);
                self.insert_at(last, 1, dot, reads);
            }
            // The last left child: just before its parent.
            (None, _, Some(parent)) if !place.right => self.insert_at(parent, 0, dot, reads),
            // The first right child: just after its parent (the root: first of all).
            (None, None, Some(parent)) => self.insert_at(parent, 1, dot, reads),
            _ => self.insert_first(dot, reads),
        }
    }

    /// The first element of `dot`'s subtree: down its first left children.
    fn leftmost(&self, mut dot: Dot) -> Dot {
        while let Some(first) = self.children.range(side(Some(dot), false)).next() {
            dot = first.2;
        }
        dot
    }

    /// The last element of `dot`'s subtree: down its last right children.
    fn rightmost(&self, mut dot: Dot) -> Dot {
        while let Some(last) = self.children.range(side(Some(dot), true)).next_back() {
            dot = last.2;
        }
        dot
    }

    /// Inserts `dot` before (`after` = 0) or after (1) the placed `anchor`.
    fn insert_at(&mut self, anchor: Dot, after: usize, dot: Dot, reads: bool) {
        let (id, offset) = self.locate(&anchor).expect("the anchor is placed");
        self.insert_in(id, offset + after, dot, reads);
    }

    fn insert_first(&mut self, dot: Dot, reads: bool) {
        if self.sequence.is_empty() {
            self.chunks.push(Chunk::default());
            self.sequence.push(0);
            self.reindex();
        }
        let id = self.sequence[0];
        self.insert_in(id, 0, dot, reads);
    }

    fn insert_in(&mut self, id: u32, offset: usize, dot: Dot, reads: bool) {
        let chunk = &mut self.chunks[id as usize];
        chunk.dots.insert(offset, (dot, reads));
        self.chunk_of.insert(dot, id);
        if reads {
            chunk.visible += 1;
            self.visible += 1;
            let pos = self.position[id as usize] as usize;
            self.fenwick_add(pos);
        }
        if self.chunks[id as usize].dots.len() > CHUNK {
            self.split(id);
        }
    }

    /// Splits a full chunk in two: the second half goes to a new chunk just after it.
    fn split(&mut self, id: u32) {
        let chunk = &mut self.chunks[id as usize];
        let tail: Vec<(Dot, bool)> = chunk.dots.split_off(CHUNK / 2);
        let moved = tail.iter().filter(|(_, v)| *v).count();
        chunk.visible -= moved;
        let new = self.chunks.len() as u32;
        for (d, _) in &tail {
            self.chunk_of.insert(*d, new);
        }
        self.chunks.push(Chunk {
            dots: tail,
            visible: moved,
        });
        let pos = self.position[id as usize] as usize;
        self.sequence.insert(pos + 1, new);
        self.reindex();
    }

    /// Rebuilds the chunk positions and the Fenwick tree (after a split: once every CHUNK / 2
    /// insertions at most).
    fn reindex(&mut self) {
        self.position.resize(self.chunks.len(), 0);
        for (i, &id) in self.sequence.iter().enumerate() {
            self.position[id as usize] = i as u32;
        }
        let n = self.sequence.len();
        self.fenwick = self
            .sequence
            .iter()
            .map(|&id| self.chunks[id as usize].visible)
            .collect();
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                self.fenwick[parent - 1] += self.fenwick[i - 1];
            }
        }
    }

    fn fenwick_add(&mut self, pos: usize) {
        let mut i = pos + 1;
        while i <= self.fenwick.len() {
            self.fenwick[i - 1] += 1;
            i += i & i.wrapping_neg();
        }
    }

    fn fenwick_sub(&mut self, pos: usize) {
        let mut i = pos + 1;
        while i <= self.fenwick.len() {
            self.fenwick[i - 1] -= 1;
            i += i & i.wrapping_neg();
        }
    }
}
