//! The change feed over HTTP: what a reader gets after the id it resumes from (the backlog, or a
//! `reset` with the whole state when that id is no longer held), then live events until it falls
//! [`crate::feed::LIVE`] behind (a `lagged` event, and the end) or the node stops (the end, at
//! once). `GET /v1/events` carries it as Server-Sent Events; `/v1/ws` ([`super::ws`]) as
//! WebSocket messages.

use super::{objects_json, off_loop, Api, ApiError, ApiResult};
use crate::feed::{Backlog, FeedEvent};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long an `EventSource` waits before it reconnects (sent as `retry:`).
pub const RETRY: Duration = Duration::from_secs(1);

/// What a reader is sent.
pub enum Item {
    /// A change, or a conflict.
    Change(Arc<FeedEvent>),
    /// The whole state, as of event `id`: the id the reader resumed from is no longer held.
    Reset {
        /// The newest event the state includes.
        id: u64,
        /// Every object: `{key: {"type", "value"}}`.
        objects: serde_json::Map<String, Value>,
    },
    /// The reader fell too far behind and is cut off; it may resume after `seen`.
    Lagged {
        /// The last event it was sent.
        seen: u64,
        /// How many it missed.
        missed: u64,
    },
}

impl Item {
    /// The message of a `lagged` item.
    fn lagged(seen: u64, missed: u64) -> String {
        format!(
            "this reader fell {missed} events behind and was cut off; reconnect with Last-Event-ID {seen}"
        )
    }

    /// The item as one JSON object: its fields, with `event` naming what it is.
    pub fn to_json(&self) -> Value {
        match self {
            Item::Change(ev) => serde_json::to_value(&**ev).unwrap_or_default(),
            Item::Reset { id, objects } => json!({"event": "reset", "id": id, "objects": objects}),
            Item::Lagged { seen, missed } => json!({
                "event": "lagged", "error": Item::lagged(*seen, *missed), "last_event_id": seen,
            }),
        }
    }

    fn to_sse(&self) -> Event {
        match self {
            Item::Change(ev) => {
                let e = Event::default().id(ev.id.to_string());
                let e = if ev.event == "change" {
                    e
                } else {
                    e.event(ev.event)
                };
                e.json_data(&**ev).unwrap_or_default()
            }
            Item::Reset { id, objects } => Event::default()
                .event("reset")
                .id(id.to_string())
                .json_data(json!({"objects": objects}))
                .unwrap_or_default(),
            Item::Lagged { seen, missed } => Event::default()
                .event("lagged")
                .json_data(json!({"error": Item::lagged(*seen, *missed)}))
                .unwrap_or_default(),
        }
    }
}

/// One open change-feed stream (SSE or WebSocket), counted against `max_streams` while it lives.
pub struct StreamSlot(Arc<std::sync::atomic::AtomicUsize>);

impl StreamSlot {
    /// A slot, or a 503 if `max_streams` are open.
    pub fn take(api: &Api) -> Result<StreamSlot, ApiError> {
        use std::sync::atomic::Ordering::SeqCst;
        let open = api.streams.fetch_add(1, SeqCst);
        let slot = StreamSlot(api.streams.clone());
        if open >= api.max_streams {
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{open} change-feed streams are open, the most this node serves"),
            ));
        }
        Ok(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The feed after `last` (all of it held, with `None`); with `full`, change events of large
/// objects carry their value too. Ends when the node stops.
pub async fn subscribe(
    api: &Api,
    last: Option<u64>,
    full: bool,
) -> ApiResult<impl Stream<Item = Item> + Send + 'static> {
    let (rx, backlog, newest) = api.client.feed().subscribe(last);
    // The backlog (or the reset) covers everything up to `newest`; live events at or below it are
    // ones published while subscribing, already covered.
    let first: Vec<Item> = match backlog {
        Backlog::Events(evs) => evs.into_iter().map(Item::Change).collect(),
        Backlog::Reset => {
            let objects = off_loop(api, |snap| objects_json(&snap.state)).await?;
            vec![Item::Reset {
                id: newest,
                objects,
            }]
        }
    };
    let live = stream::unfold((rx, newest, false), |(mut rx, seen, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(ev) if ev.id <= seen => continue,
                Ok(ev) => {
                    let id = ev.id;
                    return Some((Item::Change(ev), (rx, id, false)));
                }
                Err(RecvError::Lagged(missed)) => {
                    return Some((Item::Lagged { seen, missed }, (rx, seen, true)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let mut closing = api.closing.clone();
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let api = api.clone();
    Ok(stream::iter(first)
        .chain(live)
        .then(move |item| {
            let api = api.clone();
            async move {
                match item {
                    Item::Change(ev) if full => Item::Change(with_value(&api, ev).await),
                    other => other,
                }
            }
        })
        .take_until(closed))
}

/// What `GET /v1/events` and `/v1/ws` may ask for.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// `values=full`: change events of large objects carry the whole value too (read when the
    /// event is sent, so it may include later changes; it costs the object, each time).
    pub values: Option<String>,
    /// The id to resume after (for clients that cannot send `Last-Event-ID`).
    pub last_event_id: Option<u64>,
    /// An access token from `POST /v1/tokens` (read by the auth layer).
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

/// `GET /v1/events`: the change feed as Server-Sent Events, resuming after `Last-Event-ID` (or
/// `?last_event_id=`). The stream opens with `retry:` ([`RETRY`]) and sends a keep-alive comment
/// every 15 s of quiet.
#[utoipa::path(get, path = "/v1/events", tag = "feed",
    params(FeedQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this id")),
    responses(
        (status = 200, description = "Server-Sent Events: `change` (default name), `conflict`, `reset`, `lagged`", content_type = "text/event-stream", body = String),
        (status = 503, description = "Too many streams open", body = super::openapi::ErrorBody),
    ))]
pub async fn events(
    State(api): State<Api>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.last_event_id);
    let slot = StreamSlot::take(&api)?;
    let items = subscribe(&api, last, q.values.as_deref() == Some("full")).await?;
    let retry = stream::once(async { Ok(Event::default().retry(RETRY)) });
    let events = items.map(move |item| {
        let _slot = &slot;
        Ok(item.to_sse())
    });
    Ok(Sse::new(retry.chain(events)).keep_alive(KeepAlive::default()))
}

/// `ev` with its object's current value, if it is a change event that left it out.
async fn with_value(api: &Api, ev: Arc<FeedEvent>) -> Arc<FeedEvent> {
    if ev.value.is_some() || ev.event != "change" {
        return ev;
    }
    let key = ev.key.clone();
    let value = off_loop(api, move |snap| {
        let mut out = Vec::new();
        let o = snap.state.get(&key)?;
        o.write_value(&mut out).ok()?;
        serde_json::value::RawValue::from_string(String::from_utf8(out).ok()?).ok()
    })
    .await
    .ok()
    .flatten();
    let mut with = (*ev).clone();
    with.value = value;
    Arc::new(with)
}
