//! Where an item hangs in a sequence's tree.

use crate::dot::Dot;

/// An item's parent and side: what the tree, and the reading order kept beside it, need of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Place {
    /// Its parent (`None`: the root, before every element).
    pub parent: Option<Dot>,
    /// A right child (after its parent) or a left one (before it).
    pub right: bool,
}

impl Place {
    /// The place of an item typed just after `dot`: its right child.
    pub fn right_of(dot: Dot) -> Place {
        Place {
            parent: Some(dot),
            right: true,
        }
    }

    /// Whether item `dot`, hung here, continues a run: it is the right child of the dot just
    /// before its own (the character typed before it, by the same replica).
    pub fn continues(&self, dot: Dot) -> bool {
        Some(*self) == dot_before(dot).map(Place::right_of)
    }
}

/// The dot just before `dot` (the same replica's previous counter), if any.
pub(super) fn dot_before(dot: Dot) -> Option<Dot> {
    dot.counter.checked_sub(1).map(|c| Dot::new(dot.replica, c))
}

/// The dot just after `dot`, if any.
pub(super) fn dot_after(dot: Dot) -> Option<Dot> {
    dot.counter.checked_add(1).map(|c| Dot::new(dot.replica, c))
}
