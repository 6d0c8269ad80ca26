//! A sequence's items, held as *runs*: the items `first`, `first + 1`, … of one replica, each
//! after the first the right child of the one before — characters typed one after another — are
//! one entry holding the first item's place and every item's element. Text typed in one go costs
//! its elements and one entry, however long it is.
//!
//! Runs are maximal (a run never ends just before an item that continues it), so states that
//! hold the same items hold the same runs and compare equal as maps.

use super::place::{dot_after, dot_before, Place};
use crate::dot::{Dot, ReplicaId};
use std::collections::BTreeMap;

/// One run: its first item's place, and each item's element (`None`: deleted, or only the
/// item's place held).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run<T> {
    place: Place,
    elements: Vec<Option<T>>,
}

impl<T> Run<T> {
    fn len(&self) -> u64 {
        self.elements.len() as u64
    }

    /// The place of its item at `offset`, `d`: the run's for the first, after the dot before
    /// it for the others.
    fn place_of(&self, offset: usize, d: Dot) -> Place {
        match offset {
            0 => self.place,
            _ => Place::right_of(Dot::new(d.replica, d.counter - 1)),
        }
    }
}

/// See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Items<T> {
    /// Runs by their first dot.
    runs: BTreeMap<Dot, Run<T>>,
    /// Items held.
    count: u64,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items {
            runs: BTreeMap::new(),
            count: 0,
        }
    }
}

impl<T> Items<T> {
    /// Items held.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The run holding `d`: its first dot, and `d`'s offset in it.
    fn run_of(&self, d: &Dot) -> Option<(Dot, usize)> {
        let (first, run) = self.runs.range(..=d).next_back()?;
        let offset = (first.replica == d.replica).then(|| d.counter - first.counter)?;
        (offset < run.len()).then_some((*first, offset as usize))
    }

    /// Item `d`'s place and element, if it is held.
    pub fn get(&self, d: &Dot) -> Option<(Place, Option<&T>)> {
        let (first, offset) = self.run_of(d)?;
        let run = &self.runs[&first];
        Some((run.place_of(offset, *d), run.elements[offset].as_ref()))
    }

    pub fn contains(&self, d: &Dot) -> bool {
        self.run_of(d).is_some()
    }

    /// Item `d`'s element, if it is held and has one.
    pub fn element(&self, d: &Dot) -> Option<&T> {
        self.get(d)?.1
    }

    /// Every item in dot order, with its place and element.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, Place, Option<&T>)> + '_ {
        self.runs.iter().flat_map(|(first, run)| {
            run.elements.iter().enumerate().map(move |(i, ch)| {
                let d = Dot::new(first.replica, first.counter + i as u64);
                (d, run.place_of(i, d), ch.as_ref())
            })
        })
    }

    /// The runs in dot order: first dot, first place, length.
    pub fn runs(&self) -> impl Iterator<Item = (Dot, Place, u64)> + '_ {
        self.runs.iter().map(|(d, run)| (*d, run.place, run.len()))
    }

    /// The elements held, in dot order.
    pub fn elements(&self) -> impl Iterator<Item = &T> + '_ {
        self.runs
            .values()
            .flat_map(|run| run.elements.iter().flatten())
    }

    /// Where the runs that may hold counter `a` of `replica` or later start: the first dot of
    /// the run holding it, or that dot itself.
    fn runs_from(&self, replica: ReplicaId, a: u64) -> Dot {
        let d = Dot::new(replica, a);
        self.run_of(&d).map_or(d, |(first, _)| first)
    }

    /// The items held with counters `a..=b` of `replica`, with their elements, in order.
    pub fn range(
        &self,
        replica: ReplicaId,
        a: u64,
        b: u64,
    ) -> impl Iterator<Item = (Dot, Option<&T>)> + '_ {
        self.runs
            .range(self.runs_from(replica, a)..=Dot::new(replica, b))
            .flat_map(move |(first, run)| {
                let from = a.saturating_sub(first.counter) as usize;
                run.elements
                    .iter()
                    .enumerate()
                    .skip(from)
                    .map(move |(i, ch)| (first.counter + i as u64, ch.as_ref()))
                    .take_while(move |(c, _)| *c <= b)
                    .map(move |(c, ch)| (Dot::new(replica, c), ch))
            })
    }

    /// Drops the elements of the items held with counters `a..=b` of `replica`, calling `f` with
    /// each of those items' dots.
    pub fn drop_elements(&mut self, replica: ReplicaId, a: u64, b: u64, mut f: impl FnMut(Dot)) {
        let from = self.runs_from(replica, a);
        for (first, run) in self.runs.range_mut(from..=Dot::new(replica, b)) {
            let lo = a.saturating_sub(first.counter);
            let hi = (b - first.counter).min(run.len() - 1);
            for i in lo..=hi {
                run.elements[i as usize] = None;
                f(Dot::new(replica, first.counter + i));
            }
        }
    }

    /// The highest counter of `replica` held.
    pub fn last_counter(&self, replica: ReplicaId) -> Option<u64> {
        self.runs
            .range(Dot::new(replica, 0)..=Dot::new(replica, u64::MAX))
            .next_back()
            .map(|(d, run)| d.counter + (run.len() - 1))
    }

    /// Holds item `d`, at `place`, with `element` — in place of any item held under `d`.
    pub fn put(&mut self, d: Dot, place: Place, element: Option<T>) {
        let Some((first, offset)) = self.run_of(&d) else {
            return self.add(d, place, element);
        };
        let run = self.runs.get_mut(&first).expect("held");
        if run.place_of(offset, d) == place {
            run.elements[offset] = element;
        } else {
            self.remove(&d);
            self.add(d, place, element);
        }
    }

    /// Holds item `d`, not held yet (see [`Items::add_run`]).
    fn add(&mut self, d: Dot, place: Place, element: Option<T>) {
        self.add_run(d, place, vec![element]);
    }

    /// Holds the items `first`, `first + 1`, … with `elements`, none of them held yet: the
    /// first at `place`, each after it continuing the one before. They go at the end of the run
    /// before them when they continue that one, and the run after them joins them when it
    /// continues them.
    pub fn add_run(&mut self, first: Dot, place: Place, elements: Vec<Option<T>>) {
        let Some(last) = elements.len().checked_sub(1) else {
            return;
        };
        self.count += elements.len() as u64;
        let last = Dot::new(first.replica, first.counter + last as u64);
        // The run ending just before `first`, when `first` continues it.
        let before = dot_before(first)
            .filter(|_| place.continues(first))
            .and_then(|b| self.run_of(&b))
            .filter(|(f, offset)| *offset as u64 + 1 == self.runs[f].len());
        let key = match before {
            Some((f, _)) => {
                let run = self.runs.get_mut(&f).expect("held");
                run.elements.extend(elements);
                f
            }
            None => {
                self.runs.insert(first, Run { place, elements });
                first
            }
        };
        // The run starting just after `last`, when it continues `last`.
        let Some(next) = dot_after(last) else {
            return;
        };
        if self
            .runs
            .get(&next)
            .is_some_and(|run| run.place.continues(next))
        {
            let tail = self.runs.remove(&next).expect("held").elements;
            let run = self.runs.get_mut(&key).expect("held");
            run.elements.extend(tail);
        }
    }

    /// Lets go of item `d`, held: its run splits around it.
    fn remove(&mut self, d: &Dot) {
        let (first, offset) = self.run_of(d).expect("held");
        let mut run = self.runs.remove(&first).expect("held");
        let tail = run.elements.split_off(offset + 1);
        run.elements.pop();
        if offset > 0 {
            self.runs.insert(first, run);
        }
        if !tail.is_empty() {
            self.runs.insert(
                Dot::new(d.replica, d.counter + 1),
                Run {
                    place: Place::right_of(*d),
                    elements: tail,
                },
            );
        }
        self.count -= 1;
    }
}
