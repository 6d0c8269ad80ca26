//! The fields a document's recent joins removed, so the edits of a change can name a deleted
//! field: a removal's delta holds only the dots it removed, and once joined the state no longer
//! holds their fields. Kept beside the lattice, as the reading order of a sequence is: not part
//! of the state, not encoded, not compared.

use super::ObjId;
use crate::dot::Dot;
use std::collections::VecDeque;

/// The most removed fields a document remembers: a change that removes more fields of one
/// document than this at once names only the last of them.
pub(super) const REMEMBERED: usize = 4_096;

/// See the module docs. Allocates nothing until a join removes a field.
#[derive(Clone, Default)]
pub(super) struct Removed {
    /// `(dot of the removed write, its map, its field)`, oldest first.
    recent: VecDeque<(Dot, ObjId, String)>,
}

impl Removed {
    /// Notes that a join removed `dot`, the write of `field` of map `obj`.
    pub fn note(&mut self, dot: Dot, obj: ObjId, field: String) {
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((dot, obj, field));
    }

    /// The fields whose removed writes `seen` says, newest last.
    pub fn covered_by<'a>(
        &'a self,
        seen: &'a dyn Fn(&Dot) -> bool,
    ) -> impl Iterator<Item = (ObjId, &'a str)> + 'a {
        self.recent
            .iter()
            .filter(move |(d, ..)| seen(d))
            .map(|(_, obj, field)| (*obj, field.as_str()))
    }
}

/// Not part of the state: every two compare equal.
impl PartialEq for Removed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Removed({})", self.recent.len())
    }
}
