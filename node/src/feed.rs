//! The change feed behind `GET /v1/events`: one event per object a delta changed, local or remote.
//!
//! Memory is bounded twice over: the node keeps the last [`RING`] events, and at most
//! [`RING_BYTES`] of their values, for readers that resume with `Last-Event-ID` (an older id gets a
//! `reset` event with the full state instead), and live readers share a broadcast channel of
//! [`LIVE`] events, so a reader that falls that far behind is cut off with a `lagged` event rather
//! than buffered without bound. Events are shared (`Arc`) between the two, and each holds its
//! object's value as compact JSON text: an event of a large map costs its JSON size, once. (The soak
//! run found the count bound alone let ten thousand values of a 1000-field map hold ~650 MB.)

use crate::node::unix_ms;
use crdt::Store;
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for resuming.
pub const RING: usize = 10_000;

/// Bytes of values kept for resuming (the oldest events go first past it).
pub const RING_BYTES: usize = 16 << 20;

/// Events a live reader may fall behind before it is cut off.
pub const LIVE: usize = 1024;

/// One change.
#[derive(Clone, Debug, Serialize)]
pub struct FeedEvent {
    /// Increasing; starts above every id of earlier runs (it is seeded from the clock).
    pub id: u64,
    /// The object's key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its value after the change, as compact JSON.
    pub value: Box<serde_json::value::RawValue>,
    /// `local` (a write here) or `remote` (from a neighbour).
    pub origin: &'static str,
}

/// What a reader resuming from an id gets first.
pub enum Backlog {
    /// The events after that id, still held.
    Events(Vec<Arc<FeedEvent>>),
    /// The id is gone (or was never given to this run): start over from the full state.
    Reset,
}

/// The feed.
pub struct Feed {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<FeedEvent>>,
}

/// The newest id, the events held and the bytes of their values.
struct Ring {
    newest: u64,
    events: VecDeque<Arc<FeedEvent>>,
    bytes: usize,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            ring: Mutex::new(Ring {
                newest: unix_ms() * 1000,
                events: VecDeque::new(),
                bytes: 0,
            }),
            live: broadcast::channel(LIVE).0,
        }
    }
}

impl Feed {
    /// Publishes one event per object `delta` touched, with its value in `state` (which includes it).
    pub fn publish(&self, delta: &Store, state: &Store, origin: &'static str) {
        let mut guard = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let touched: BTreeSet<(&str, crdt::Kind)> = delta
            .objects()
            .into_iter()
            .map(|(k, o)| (k, o.kind()))
            .collect();
        for (key, kind) in touched {
            let Some(object) = state.get_kind(key, kind) else {
                continue;
            };
            let Ok(value) = serde_json::value::to_raw_value(&object.value()) else {
                continue;
            };
            guard.newest += 1;
            let ev = Arc::new(FeedEvent {
                id: guard.newest,
                key: key.to_string(),
                kind: kind.name(),
                value,
                origin,
            });
            guard.bytes += ev.value.get().len();
            guard.events.push_back(ev.clone());
            while guard.events.len() > RING || (guard.bytes > RING_BYTES && guard.events.len() > 1)
            {
                let old = guard.events.pop_front().expect("not empty");
                guard.bytes -= old.value.get().len();
            }
            // No live reader is fine: the ring keeps it for resumers.
            let _ = self.live.send(ev);
        }
    }

    /// Subscribes to live events, then returns what a reader resuming after `last` must see first.
    /// Subscribing first means nothing published in between is missed (duplicates are skipped by id).
    pub fn subscribe(
        &self,
        last: Option<u64>,
    ) -> (broadcast::Receiver<Arc<FeedEvent>>, Backlog, u64) {
        let rx = self.live.subscribe();
        let guard = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let newest = guard.newest;
        let backlog = match last {
            None => Backlog::Events(vec![]),
            Some(id) if id == newest => Backlog::Events(vec![]),
            Some(id) if id < newest && guard.events.front().is_some_and(|e| e.id <= id + 1) => {
                Backlog::Events(guard.events.iter().filter(|e| e.id > id).cloned().collect())
            }
            Some(_) => Backlog::Reset,
        };
        (rx, backlog, newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::{Lattice, Op, ReplicaId, Writer};

    fn write(state: &mut Store, key: &str, x: i64) -> Store {
        let d = state
            .apply(
                key,
                Op::CounterAdd(x),
                &Writer {
                    replica: ReplicaId(1),
                    now_ms: 0,
                },
            )
            .unwrap();
        state.join(&d);
        d
    }

    #[test]
    fn resuming_replays_what_is_held_and_resets_when_it_is_gone() {
        let feed = Feed::default();
        let mut state = Store::default();
        let d = write(&mut state, "a", 1);
        feed.publish(&d, &state, "local");
        let (_, _, first) = feed.subscribe(None);
        let d = write(&mut state, "b", 2);
        feed.publish(&d, &state, "remote");
        let Backlog::Events(evs) = feed.subscribe(Some(first)).1 else {
            panic!("expected a replay")
        };
        assert_eq!(
            (evs.len(), evs[0].key.as_str(), evs[0].origin),
            (1, "b", "remote")
        );
        assert!(
            matches!(feed.subscribe(Some(first - 5)).1, Backlog::Reset),
            "an id older than the ring"
        );
        assert!(
            matches!(feed.subscribe(Some(first + 100)).1, Backlog::Reset),
            "an id this run never gave"
        );
    }

    #[test]
    fn the_ring_is_bounded() {
        let feed = Feed::default();
        let mut state = Store::default();
        let (_, _, start) = feed.subscribe(None);
        for i in 0..RING + 10 {
            let d = write(&mut state, &format!("k{}", i % 50), 1);
            feed.publish(&d, &state, "local");
        }
        assert_eq!(feed.ring.lock().unwrap().events.len(), RING);
        assert!(matches!(feed.subscribe(Some(start)).1, Backlog::Reset));
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_for_large_objects() {
        let feed = Feed::default();
        let mut state = Store::default();
        let w = Writer {
            replica: ReplicaId(1),
            now_ms: 0,
        };
        // A map of 1000 fields of ~40 bytes: each event's value is ~50 kB of JSON.
        for i in 0..1000 {
            let d = state
                .apply(
                    "big",
                    Op::MapPut(
                        format!("field-{i:04}"),
                        serde_json::json!("x".repeat(30)).into(),
                    ),
                    &w,
                )
                .unwrap();
            state.join(&d);
        }
        let d = write(&mut state, "small", 1);
        for _ in 0..1000 {
            let d = state
                .apply(
                    "big",
                    Op::MapPut("field-0000".into(), serde_json::json!(1).into()),
                    &w,
                )
                .unwrap();
            state.join(&d);
            feed.publish(&d, &state, "local");
        }
        feed.publish(&d, &state, "local");
        let ring = feed.ring.lock().unwrap();
        let held: usize = ring.events.iter().map(|e| e.value.get().len()).sum();
        assert_eq!(held, ring.bytes, "the byte count is exact");
        assert!(ring.bytes <= RING_BYTES, "{} bytes held", ring.bytes);
        assert!(ring.events.len() < 1000, "old large events were dropped");
        assert_eq!(
            ring.events.back().unwrap().key,
            "small",
            "the newest is kept"
        );
    }
}
