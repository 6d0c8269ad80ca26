//! The change feed behind `GET /v1/events`: one event per object a delta changed, local or remote,
//! and a `conflict` event when a delta from a neighbour leaves an object in conflict.
//!
//! Ids come from the durable log: the events of log entry i (one per object it changed, then its
//! conflicts) are `i · 2²⁴ + n`. A restart replays the log into the feed, so a reader resuming
//! with `Last-Event-ID` after a restart gets what it missed, for as long as the log holds it (a
//! compaction folds the log into the snapshot; older ids then get a `reset`).
//!
//! Memory is bounded twice over: the node keeps the last [`RING`] events, and at most
//! [`RING_BYTES`] of their values, for readers that resume with `Last-Event-ID` (an older id gets a
//! `reset` event with the full state instead), and live readers share a broadcast channel of
//! [`LIVE`] events, so a reader that falls that far behind is cut off with a `lagged` event rather
//! than buffered without bound. Events are shared (`Arc`) between the two, and each holds its
//! object's value as compact JSON text: an event of a large map costs its JSON size, once. (The soak
//! run found the count bound alone let ten thousand values of a 1000-field map hold ~650 MB.)

use crate::views::ObjectView;
use serde::Serialize;
use std::collections::VecDeque;
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
    /// Increasing: `log index · 2²⁴ + n` ([`event_id`]).
    pub id: u64,
    /// The object's key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its value after the change, as compact JSON (for a `conflict` event: the conflicts, as
    /// `GET /v1/conflicts` lists them); left out for objects over [`crate::views::SMALL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<serde_json::value::RawValue>>,
    /// Its size after the change (none on a `conflict` event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// What changed ([`crdt::Object::change`]; none on a `conflict` event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<serde_json::value::RawValue>>,
    /// `local` (a write here) or `remote` (from a neighbour).
    pub origin: &'static str,
    /// `change`, or `conflict` (sent as the SSE event name; a change has none).
    pub event: &'static str,
}

impl FeedEvent {
    /// The bytes of JSON it holds.
    fn bytes(&self) -> usize {
        let len =
            |v: &Option<Box<serde_json::value::RawValue>>| v.as_ref().map_or(0, |r| r.get().len());
        len(&self.value) + len(&self.change)
    }
}

/// What an event shows of its object.
struct Shown<'a> {
    value: Option<&'a serde_json::Value>,
    size: Option<usize>,
    change: Option<&'a serde_json::Value>,
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

/// The newest id, the highest id no longer held (a reader resuming from below it may have
/// missed events), the events held and the bytes of their values.
struct Ring {
    newest: u64,
    floor: u64,
    events: VecDeque<Arc<FeedEvent>>,
    bytes: usize,
}

/// Bits of an id that number the events of one log entry.
const ORDINAL_BITS: u32 = 24;

/// The id of the `n`-th event of log entry `index`.
pub fn event_id(index: u64, n: usize) -> u64 {
    (index << ORDINAL_BITS) | (n as u64).min((1 << ORDINAL_BITS) - 1)
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            ring: Mutex::new(Ring {
                newest: 0,
                floor: 0,
                events: VecDeque::new(),
                bytes: 0,
            }),
            live: broadcast::channel(LIVE).0,
        }
    }
}

impl Feed {
    /// After replaying the log (entries `first..next`): ids of entries before `first` are gone
    /// (compacted), and the next entry is `next`.
    pub fn restored(&self, first: u64, next: u64) {
        let mut guard = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        guard.floor = guard.floor.max(event_id(first, 0).saturating_sub(1));
        guard.newest = guard.newest.max(event_id(next, 0).saturating_sub(1));
    }

    /// Publishes the events of log entry `index`: a `change` event for each view (the objects its
    /// delta changed, as they now are), then a `conflict` event for each `(key, type, conflicts)`.
    pub fn publish(
        &self,
        index: u64,
        views: &[ObjectView],
        conflicts: &[(String, &'static str, serde_json::Value)],
        origin: &'static str,
    ) {
        for (n, v) in views.iter().enumerate() {
            let event = Shown {
                value: v.value.as_ref(),
                size: Some(v.size),
                change: v.change.as_ref(),
            };
            self.push(event_id(index, n), &v.key, v.kind, event, origin, "change");
        }
        for (n, (key, kind, list)) in conflicts.iter().enumerate() {
            let shown = Shown {
                value: Some(list),
                size: None,
                change: None,
            };
            let id = event_id(index, views.len() + n);
            self.push(id, key, kind, shown, origin, "conflict");
        }
    }

    fn push(
        &self,
        id: u64,
        key: &str,
        kind: &'static str,
        shown: Shown<'_>,
        origin: &'static str,
        event: &'static str,
    ) {
        let raw =
            |v: Option<&serde_json::Value>| v.and_then(|v| serde_json::value::to_raw_value(v).ok());
        let mut guard = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if id <= guard.newest {
            return; // Ids only grow: an entry is never published twice.
        }
        guard.newest = id;
        let ev = Arc::new(FeedEvent {
            id,
            key: key.to_string(),
            kind,
            value: raw(shown.value),
            size: shown.size,
            change: raw(shown.change),
            origin,
            event,
        });
        guard.bytes += ev.bytes();
        guard.events.push_back(ev.clone());
        while guard.events.len() > RING || (guard.bytes > RING_BYTES && guard.events.len() > 1) {
            let old = guard.events.pop_front().expect("not empty");
            guard.bytes -= old.bytes();
            guard.floor = guard.floor.max(old.id);
        }
        // No live reader is fine: the ring keeps it for resumers.
        let _ = self.live.send(ev);
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
        // Every event above `floor` is held: a reader that saw up to an id at or above it
        // missed nothing the ring lacks.
        let backlog = match last {
            None => Backlog::Events(vec![]),
            Some(id) if id > newest || id < guard.floor => Backlog::Reset,
            Some(id) => {
                Backlog::Events(guard.events.iter().filter(|e| e.id > id).cloned().collect())
            }
        };
        (rx, backlog, newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(key: &str, value: serde_json::Value) -> ObjectView {
        ObjectView {
            key: key.into(),
            kind: "counter",
            value: Some(value),
            size: 1,
            change: None,
        }
    }

    #[test]
    fn resuming_replays_what_is_held_and_resets_when_it_is_gone() {
        let feed = Feed::default();
        feed.publish(1, &[view("a", json!(1))], &[], "local");
        let (_, _, first) = feed.subscribe(None);
        assert_eq!(first, event_id(1, 0));
        let conflict = ("b".to_string(), "counter", json!([]));
        feed.publish(2, &[view("b", json!(2))], &[conflict], "remote");
        let Backlog::Events(evs) = feed.subscribe(Some(first)).1 else {
            panic!("expected a replay")
        };
        assert_eq!(
            (evs.len(), evs[0].key.as_str(), evs[0].origin, evs[1].event),
            (2, "b", "remote", "conflict")
        );
        assert_eq!((evs[0].id, evs[1].id), (event_id(2, 0), event_id(2, 1)));
        assert!(
            matches!(feed.subscribe(Some(event_id(9, 0))).1, Backlog::Reset),
            "an id this run never gave"
        );
    }

    #[test]
    fn after_a_restart_ids_go_on_and_compacted_ones_reset() {
        // The log held entries 5..8 (4 and before were compacted); the node replays them.
        let feed = Feed::default();
        for i in 5..8 {
            feed.publish(i, &[view("k", json!(i))], &[], "local");
        }
        feed.restored(5, 8);
        let Backlog::Events(evs) = feed.subscribe(Some(event_id(5, 0))).1 else {
            panic!("a reader of entry 5 resumes")
        };
        assert_eq!(evs.len(), 2);
        assert!(matches!(
            feed.subscribe(Some(event_id(4, 0))).1,
            Backlog::Reset
        ));
        let (_, backlog, newest) = feed.subscribe(Some(event_id(7, 0)));
        assert!(matches!(backlog, Backlog::Events(e) if e.is_empty()));
        assert_eq!(newest, event_id(8, 0) - 1);
        // An entry replayed again (or published twice) is not repeated.
        feed.publish(7, &[view("k", json!(7))], &[], "local");
        feed.publish(8, &[view("k", json!(8))], &[], "local");
        let Backlog::Events(evs) = feed.subscribe(Some(event_id(5, 0))).1 else {
            panic!()
        };
        assert_eq!(evs.len(), 3);
    }

    #[test]
    fn the_ring_is_bounded() {
        let feed = Feed::default();
        feed.publish(1, &[view("first", json!(0))], &[], "local");
        let start = feed.subscribe(None).2;
        for i in 0..RING + 10 {
            let v = view(&format!("k{}", i % 50), json!(i));
            feed.publish(2 + i as u64, &[v], &[], "local");
        }
        assert_eq!(feed.ring.lock().unwrap().events.len(), RING);
        assert!(matches!(feed.subscribe(Some(start)).1, Backlog::Reset));
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_for_large_objects() {
        let feed = Feed::default();
        // A map of 1000 fields of ~40 bytes: each event's value is ~50 kB of JSON.
        let big: serde_json::Map<String, serde_json::Value> = (0..1000)
            .map(|i| (format!("field-{i:04}"), json!(["x".repeat(30)])))
            .collect();
        let big = view("big", serde_json::Value::Object(big));
        for i in 0..1000 {
            feed.publish(1 + i, std::slice::from_ref(&big), &[], "local");
        }
        feed.publish(1001, &[view("small", json!(1))], &[], "local");
        let ring = feed.ring.lock().unwrap();
        let held: usize = ring.events.iter().map(|e| e.bytes()).sum();
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
