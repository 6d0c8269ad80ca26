//! A sequence's reading order, kept up to date as items arrive, so an edit costs about the log of
//! the sequence's length rather than a walk of its whole tree.
//!
//! The order is a list of *spans* — consecutive dots of one replica, next to each other in the
//! order, all reading or none: text typed in one go and never split is one span — in chunks of at
//! most [`CHUNK`] spans, found by dot through a map from each span's first dot to its chunk, and
//! by position through a Fenwick tree of the chunks' visible counts. An item placed inside a span
//! splits it, a deletion inside one splits it around the dot, and spans that come to continue one
//! another merge. Beside it, each item's children (left and right, sorted by dot) — except the
//! item that continues a run, found as the dot after its parent's: an item that arrives is placed
//! by the tree's rule — before the first element of the subtree of its next sibling, or after the
//! last of its previous sibling's, or beside its parent — which gives the order the whole tree
//! read afresh gives (a property test checks it against that). Items whose parent has not arrived
//! wait for it.

use super::place::{dot_after, Place};
use crate::dot::Dot;
use crate::dot::ReplicaId;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

/// Most spans in one chunk.
const CHUNK: usize = 128;

/// Dots `start`, `start + 1`, … (`len` of them) of one replica, next to each other in the
/// reading order, all reading or none.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: Dot,
    len: u64,
    reads: bool,
}

impl Span {
    fn dot(&self, offset: u64) -> Dot {
        Dot::new(self.start.replica, self.start.counter + offset)
    }

    /// Elements that read in it.
    fn visible(&self) -> usize {
        if self.reads {
            self.len as usize
        } else {
            0
        }
    }

    /// Whether `next`, just after it in the order, continues it.
    fn joins(&self, next: &Span) -> bool {
        self.start.replica == next.start.replica
            && self.start.counter.checked_add(self.len) == Some(next.start.counter)
            && self.reads == next.reads
    }
}

#[derive(Clone, Debug, Default)]
struct Chunk {
    spans: Vec<Span>,
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
    /// The chunk of every span, by the span's first dot.
    chunk_of: BTreeMap<Dot, u32>,
    /// Every placed item that does not continue a run, as `(parent, right, dot)`: each item's
    /// children (and the root's, `None`), by side, sorted by dot — one set, no allocation per
    /// parent. An item that continues a run (the right child of the dot before its own) is
    /// not in it: it is found as the dot after its parent's.
    children: BTreeSet<(Option<Dot>, bool, Dot)>,
    /// The dots in `children`.
    hung: HashSet<Dot>,
    /// Items waiting for their parent, by parent.
    waiting: HashMap<Dot, Vec<(Dot, Place, bool)>>,
    /// Dots hidden before they were placed (a deletion that came before its item, or while the
    /// item waited for its parent).
    hidden: HashSet<Dot>,
    visible: usize,
}

impl Order {
    /// Spans held (their count: what the order costs).
    #[cfg(test)]
    pub fn spans(&self) -> usize {
        self.chunk_of.len()
    }

    /// Elements that read.
    pub fn len_visible(&self) -> usize {
        self.visible
    }

    /// Every placed dot in reading order, with whether it reads.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, bool)> + '_ {
        self.sequence
            .iter()
            .flat_map(|&id| self.chunks[id as usize].spans.iter())
            .flat_map(|span| (0..span.len).map(|i| (span.dot(i), span.reads)))
    }

    /// Placed dots in reading order from `from` (included), with whether they read.
    pub fn iter_from(&self, from: Dot) -> impl Iterator<Item = (Dot, bool)> + '_ {
        let (at, index, offset) = match self.locate(&from) {
            Some((id, index, offset)) => (self.position[id as usize] as usize, index, offset),
            None => (self.sequence.len(), 0, 0),
        };
        // The spans from `from`'s on, each whole but that first one, read from `from` itself.
        self.sequence[at..]
            .iter()
            .enumerate()
            .flat_map(move |(i, &id)| {
                &self.chunks[id as usize].spans[if i == 0 { index } else { 0 }..]
            })
            .enumerate()
            .flat_map(move |(k, span)| {
                let from = if k == 0 { offset } else { 0 };
                (from..span.len).map(|i| (span.dot(i), span.reads))
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
        for span in chunk.spans.iter().filter(|s| s.reads) {
            if left < span.visible() {
                return Some(span.dot(left as u64));
            }
            left -= span.visible();
        }
        None
    }

    /// Where placed `dot` stands: a key that sorts dots in reading order (its chunk's position,
    /// its offset in the chunk) while the order does not change, and how many elements read
    /// before it. Costs the log of the length and a chunk.
    pub fn rank(&self, dot: &Dot) -> Option<((u32, u64), usize)> {
        let (id, index, offset) = self.locate(dot)?;
        let pos = self.position[id as usize];
        let (mut i, mut before) = (pos as usize, 0);
        while i > 0 {
            before += self.fenwick[i - 1];
            i -= i & i.wrapping_neg();
        }
        let spans = &self.chunks[id as usize].spans;
        before += spans[..index].iter().map(Span::visible).sum::<usize>();
        if spans[index].reads {
            before += offset as usize;
        }
        let in_chunk = spans[..index].iter().map(|s| s.len).sum::<u64>() + offset;
        Some(((pos, in_chunk), before))
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
            || dot.is_some_and(|d| self.continued(d).is_some())
    }

    /// The placed item that continues `dot`'s run — the dot after it, hung as its right child —
    /// if there is one.
    fn continued(&self, dot: Dot) -> Option<Dot> {
        dot_after(dot).filter(|n| self.locate(n).is_some() && !self.hung.contains(n))
    }

    fn is_placed(&self, dot: &Dot) -> bool {
        self.locate(dot).is_some()
    }

    /// Places `dot`, hung at `place`, reading or not — once its parent is placed (at once for a
    /// root's right child), with every item that waited for it.
    pub fn add(&mut self, dot: Dot, place: Place, reads: bool) {
        if self.is_placed(&dot) {
            return;
        }
        let mut todo = vec![(dot, place, reads)];
        while let Some((dot, place, reads)) = todo.pop() {
            match place.parent {
                // A root's left child has no place in the order (no edit makes one).
                None if !place.right => continue,
                Some(p) if !self.is_placed(&p) => {
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
        let Some((id, index, offset)) = self.locate(dot) else {
            self.hidden.insert(*dot);
            return;
        };
        let span = self.chunks[id as usize].spans[index];
        if !span.reads {
            return;
        }
        // The span splits around the dot, which stops reading.
        let mut pieces = Vec::with_capacity(3);
        if offset > 0 {
            pieces.push(Span {
                len: offset,
                ..span
            });
        }
        let at = index + pieces.len();
        pieces.push(Span {
            start: *dot,
            len: 1,
            reads: false,
        });
        if offset + 1 < span.len {
            pieces.push(Span {
                start: span.dot(offset + 1),
                len: span.len - offset - 1,
                reads: true,
            });
        }
        for piece in &pieces {
            self.chunk_of.insert(piece.start, id);
        }
        let chunk = &mut self.chunks[id as usize];
        chunk.spans.splice(index..=index, pieces);
        chunk.visible -= 1;
        self.visible -= 1;
        let pos = self.position[id as usize] as usize;
        self.fenwick_sub(pos);
        self.merge_around(id, at);
        self.split_if_full(id);
    }

    /// `dot`'s chunk, the index of its span there, and its offset in the span.
    fn locate(&self, dot: &Dot) -> Option<(u32, usize, u64)> {
        let (start, &id) = self.chunk_of.range(..=dot).next_back()?;
        if start.replica != dot.replica {
            return None;
        }
        let spans = &self.chunks[id as usize].spans;
        let index = spans.iter().position(|s| s.start == *start)?;
        let offset = dot.counter - start.counter;
        (offset < spans[index].len).then_some((id, index, offset))
    }

    /// Places `dot` by the tree's rule; its parent is placed.
    fn place(&mut self, dot: Dot, place: Place, reads: bool) {
        let (parent, right) = (place.parent, place.right);
        let siblings = side(parent, right);
        let mut prev = self
            .children
            .range(*siblings.start()..(parent, right, dot))
            .next_back()
            .map(|c| c.2);
        let mut next = self
            .children
            .range((parent, right, dot)..=*siblings.end())
            .next()
            .map(|c| c.2);
        // The sibling that continues the parent's run, if any, is not in the set.
        if let Some(c) = parent.filter(|_| right).and_then(|p| self.continued(p)) {
            if c < dot {
                prev = prev.max(Some(c));
            } else {
                next = Some(next.map_or(c, |n| n.min(c)));
            }
        }
        if !place.continues(dot) {
            self.children.insert((parent, right, dot));
            self.hung.insert(dot);
        }
        match (next, prev, place.parent) {
            // Before the first element of its next sibling's subtree.
            (Some(n), ..) => {
                let first = self.leftmost(n);
                self.insert_at(first, false, dot, reads);
            }
            // After the last element of its previous sibling's subtree.
            (None, Some(p), _) if place.right => {
                let last = self.rightmost(p);
                self.insert_at(last, true, dot, reads);
            }
            // The last left child: just before its parent.
            (None, _, Some(parent)) if !place.right => self.insert_at(parent, false, dot, reads),
            // The first right child: just after its parent (the root: first of all).
            (None, None, Some(parent)) => self.insert_at(parent, true, dot, reads),
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
        loop {
            let hung = self
                .children
                .range(side(Some(dot), true))
                .next_back()
                .map(|c| c.2);
            match hung.max(self.continued(dot)) {
                Some(last) => dot = last,
                None => return dot,
            }
        }
    }

    /// Inserts `dot` before or after the placed `anchor`.
    fn insert_at(&mut self, anchor: Dot, after: bool, dot: Dot, reads: bool) {
        let (id, index, offset) = self.locate(&anchor).expect("the anchor is placed");
        self.insert_in(id, index, offset + u64::from(after), dot, reads);
    }

    fn insert_first(&mut self, dot: Dot, reads: bool) {
        if self.sequence.is_empty() {
            self.chunks.push(Chunk::default());
            self.sequence.push(0);
            self.reindex();
        }
        let id = self.sequence[0];
        self.insert_in(id, 0, 0, dot, reads);
    }

    /// Inserts `dot` in chunk `id` before the element at `offset` of its span `index` (at its
    /// end when `offset` is the span's length).
    fn insert_in(&mut self, id: u32, index: usize, offset: u64, dot: Dot, reads: bool) {
        let chunk = &mut self.chunks[id as usize];
        let at = match chunk.spans.get(index) {
            None => chunk.spans.len(),
            Some(_) if offset == 0 => index,
            Some(span) if offset >= span.len => index + 1,
            Some(&span) => {
                // Inside a span: it splits.
                let tail = Span {
                    start: span.dot(offset),
                    len: span.len - offset,
                    reads: span.reads,
                };
                chunk.spans[index].len = offset;
                chunk.spans.insert(index + 1, tail);
                self.chunk_of.insert(tail.start, id);
                index + 1
            }
        };
        let chunk = &mut self.chunks[id as usize];
        chunk.spans.insert(
            at,
            Span {
                start: dot,
                len: 1,
                reads,
            },
        );
        self.chunk_of.insert(dot, id);
        if reads {
            chunk.visible += 1;
            self.visible += 1;
            let pos = self.position[id as usize] as usize;
            self.fenwick_add(pos);
        }
        self.merge_around(id, at);
        self.split_if_full(id);
    }

    /// Merges span `at` of chunk `id` with its neighbours where they continue one another.
    fn merge_around(&mut self, id: u32, at: usize) {
        let spans = &mut self.chunks[id as usize].spans;
        if at + 1 < spans.len() && spans[at].joins(&spans[at + 1]) {
            let gone = spans.remove(at + 1);
            spans[at].len += gone.len;
            self.chunk_of.remove(&gone.start);
        }
        if at > 0 && spans[at - 1].joins(&spans[at]) {
            let gone = spans.remove(at);
            spans[at - 1].len += gone.len;
            self.chunk_of.remove(&gone.start);
        }
    }

    /// Splits a full chunk in two: the second half goes to a new chunk just after it.
    fn split_if_full(&mut self, id: u32) {
        let chunk = &mut self.chunks[id as usize];
        if chunk.spans.len() <= CHUNK {
            return;
        }
        let tail: Vec<Span> = chunk.spans.split_off(CHUNK / 2);
        let moved = tail.iter().map(Span::visible).sum();
        chunk.visible -= moved;
        let new = self.chunks.len() as u32;
        for span in &tail {
            self.chunk_of.insert(span.start, new);
        }
        self.chunks.push(Chunk {
            spans: tail,
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
