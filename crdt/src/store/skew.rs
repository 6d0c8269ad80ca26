//! Writes stamped ahead of the local clock. A last-writer-wins stamp is a wall-clock reading, so
//! a writer whose clock runs fast wins every concurrent write for as long as it is ahead (an
//! hour fast: an hour of other writers' values lost). A node keeps such writes out of its state
//! until its own clock reaches them, less the skew it tolerates: [`Store::split_ahead`] finds them.

use super::Store;
use crate::gmap::GMap;
use std::collections::BTreeMap;

impl Store {
    /// The last-writer-wins writes stamped after `limit_ms`, split off: `(rest, ahead, latest)`,
    /// `latest` the greatest of their stamps; `None` (and nothing copied) when there are none.
    pub fn split_ahead(&self, limit_ms: u64) -> Option<(Store, Store, u64)> {
        let latest = self
            .lwws
            .iter()
            .filter_map(|(_, r)| r.stamp())
            .map(|s| s.time)
            .filter(|t| *t > limit_ms)
            .max()?;
        let (ahead, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = self
            .lwws
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .partition(|(_, r)| r.stamp().is_some_and(|s| s.time > limit_ms));
        let mut rest = self.clone();
        rest.lwws = GMap::from(kept);
        let ahead = Store {
            lwws: GMap::from(ahead),
            ..Store::default()
        };
        Some((rest, ahead, latest))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Lattice, Op, ReplicaId, Store, Value, Writer};
    use serde_json::json;

    fn write(s: &Store, key: &str, op: Op, now_ms: u64) -> Store {
        let w = Writer {
            replica: ReplicaId(1),
            now_ms,
        };
        s.apply(key, op, &w).unwrap()
    }

    #[test]
    fn writes_stamped_ahead_are_split_off_and_the_rest_kept() {
        let mut delta = write(
            &Store::default(),
            "now",
            Op::LwwSet(Value::from(json!(1))),
            1_000,
        );
        delta.join(&write(
            &Store::default(),
            "later",
            Op::LwwSet(Value::from(json!(2))),
            9_000,
        ));
        delta.join(&write(&Store::default(), "n", Op::GCounterInc(3), 9_000));
        assert!(delta.split_ahead(9_000).is_none(), "nothing past the limit");
        let (rest, ahead, latest) = delta.split_ahead(5_000).unwrap();
        assert_eq!(latest, 9_000);
        assert!(rest.get("later").is_none() && ahead.get("later").is_some());
        assert!(rest.get("now").is_some() && rest.get("n").is_some());
        assert_eq!(ahead.len(), 1);
        let mut both = rest.clone();
        both.join(&ahead);
        assert_eq!(both, delta, "the two parts join back to the whole");
    }
}
