//! The object types and their API names.
//!
//! A key's type is fixed by its first write. Two replicas that write one key with two types
//! concurrently both keep their object (a *type clash*); every read path then shows the key as the
//! type that comes first in [`Kind::ALL`] — the same choice on every replica, whatever order the
//! writes arrived in — and lists the others as conflicts.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of an object, fixed by the first write to its key. The order of the variants is the
/// type-clash rule: the first wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Grow-only counter.
    GCounter,
    /// Increment/decrement counter.
    Counter,
    /// Grow-only set.
    GSet,
    /// Two-phase set.
    TwoPSet,
    /// Add-wins set.
    Set,
    /// Last-writer-wins register.
    Lww,
    /// Multi-value register.
    Register,
    /// Add-wins map of multi-value registers.
    Map,
    /// JSON document: nested maps, lists and collaborative text.
    Doc,
}

impl Kind {
    /// Every type, in the store's order (which is also the type-clash rule's).
    pub const ALL: &'static [Kind] = &[
        Kind::GCounter,
        Kind::Counter,
        Kind::GSet,
        Kind::TwoPSet,
        Kind::Set,
        Kind::Lww,
        Kind::Register,
        Kind::Map,
        Kind::Doc,
    ];

    /// The name the API uses (`"gcounter"`, `"set"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::GCounter => "gcounter",
            Kind::Counter => "counter",
            Kind::GSet => "gset",
            Kind::TwoPSet => "twopset",
            Kind::Set => "set",
            Kind::Lww => "lww",
            Kind::Register => "register",
            Kind::Map => "map",
            Kind::Doc => "doc",
        }
    }

    /// The type with API name `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_all_is_in_declaration_order() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(Kind::from_name(k.name()), Some(*k));
            assert!(i == 0 || Kind::ALL[i - 1] < *k, "ALL must follow Ord");
        }
        assert_eq!(Kind::from_name("nope"), None);
    }
}
