//! How a person resolves a type clash: a `resolve` write picks the type a key keeps. The choice
//! is itself replicated data — a last-writer-wins register under a reserved key, `"\0resolve:"`
//! followed by the key — so it persists, travels and converges like any write, and needs no
//! change to the store's encoding. Reserved keys are invisible to every read path and refused to
//! every write but `resolve`.
//!
//! With a resolution, a key shows the kept type (if present) and its clash is no longer listed,
//! unless a type the resolver had not seen turned up since (a write made concurrently elsewhere).

use crate::kind::Kind;
use crate::value::Value;
use serde_json::json;

const PREFIX: &str = "\0resolve:";

/// Whether `key` is reserved (holds a resolution, not user data).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with('\0')
}

/// The reserved key holding `key`'s resolution.
pub fn key_of(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// The user key a reserved key resolves.
pub fn target_of(reserved: &str) -> Option<&str> {
    reserved.strip_prefix(PREFIX)
}

/// A resolution: the type kept, and the types present when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The type the key keeps.
    pub keep: Kind,
    /// The types the key had when the resolution was made.
    pub seen: Vec<Kind>,
}

impl Resolution {
    /// As stored in its register.
    pub fn to_value(&self) -> Value {
        let seen: Vec<&str> = self.seen.iter().map(|k| k.name()).collect();
        Value::from(json!({"keep": self.keep.name(), "seen": seen}))
    }

    /// From its register's value; `None` if it is not one (it can only have come from a peer).
    pub fn from_value(v: &Value) -> Option<Resolution> {
        let j = v.to_json();
        let keep = Kind::from_name(j.get("keep")?.as_str()?)?;
        let seen = j
            .get("seen")?
            .as_array()?
            .iter()
            .map(|k| k.as_str().and_then(Kind::from_name))
            .collect::<Option<Vec<Kind>>>()?;
        Some(Resolution { keep, seen })
    }

    /// Whether it settles a key that has the types `present` (none of them unseen).
    pub fn settles(&self, present: &[Kind]) -> bool {
        present.contains(&self.keep) && present.iter().all(|k| self.seen.contains(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_round_trip_and_settle_only_what_they_saw() {
        let r = Resolution {
            keep: Kind::Set,
            seen: vec![Kind::Counter, Kind::Set],
        };
        assert_eq!(Resolution::from_value(&r.to_value()), Some(r.clone()));
        assert!(r.settles(&[Kind::Counter, Kind::Set]));
        assert!(
            !r.settles(&[Kind::Counter, Kind::Set, Kind::Map]),
            "a type it never saw"
        );
        assert!(!r.settles(&[Kind::Counter]), "the kept type is gone");
        assert_eq!(target_of(&key_of("k")), Some("k"));
        assert!(is_reserved(&key_of("k")) && !is_reserved("k"));
    }
}
