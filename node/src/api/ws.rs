//! `GET /v1/ws`: the change feed and writes over one WebSocket, for browser apps.
//!
//! The node sends every feed item as a text message holding one JSON object whose `event` names
//! it — `change` and `conflict` (the fields of an SSE change event, with its `id`), `reset` (`id`
//! and `objects`), `lagged` (`error` and `last_event_id`; the socket then closes) — from
//! `?last_event_id=` on, as `/v1/events` does. The app sends writes, each a text message:
//! one op as `POST /v1/objects/{key}` takes it, with its `key` (`{"key","type","op",…}`), or a
//! batch as `POST /v1/batch` takes it (`{"ops":[…]}`); either may carry an `id` of its own.
//! Each is answered in order by `{"event":"reply","id",…,"status","body"}`, with the status and
//! body the HTTP endpoint would answer.

use super::events::{subscribe, FeedQuery, StreamSlot};
use super::{bad, batch_ops, Api, ApiError, ApiResult, Stopped, MAX_BODY};
use crate::ops;
use crate::views::Return;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

/// The change feed and writes over one WebSocket (see the module docs of the server for the
/// messages).
#[utoipa::path(get, path = "/v1/ws", tag = "feed", params(FeedQuery), responses(
    (status = 101, description = "Switching to the WebSocket protocol"),
    (status = 503, description = "Too many streams open", body = super::openapi::ErrorBody),
))]
pub async fn ws(
    State(api): State<Api>,
    Query(q): Query<FeedQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let slot = StreamSlot::take(&api)?;
    let full = q.values.as_deref() == Some("full");
    let items = subscribe(&api, q.last_event_id, full).await?;
    Ok(upgrade
        .max_message_size(MAX_BODY)
        .on_upgrade(move |socket| run(api, socket, items, slot)))
}

async fn run(
    api: Api,
    socket: WebSocket,
    items: impl futures::Stream<Item = super::events::Item> + Send + 'static,
    _slot: StreamSlot,
) {
    let (mut tx, mut rx) = socket.split();
    let mut items = std::pin::pin!(items);
    loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else { break };
                let lagged = matches!(item, super::events::Item::Lagged { .. });
                let text = item.to_json().to_string();
                if tx.send(Message::Text(text.into())).await.is_err() || lagged {
                    break;
                }
            }
            message = rx.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let reply = reply(&Value::Null, Err(bad("send writes as text messages of JSON")));
                        if tx.send(Message::Text(reply.to_string().into())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue, // pings are answered by the library
                };
                let answer = write(&api, text.as_str()).await;
                if tx.send(Message::Text(answer.to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

/// Applies the write in `text`; its reply.
async fn write(api: &Api, text: &str) -> Value {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return reply(&Value::Null, Err(bad(format!("not JSON: {e}")))),
    };
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let outcome = if msg.get("ops").is_some() {
        batch(api, &msg).await
    } else {
        one(api, &msg).await
    };
    reply(&id, outcome)
}

async fn batch(api: &Api, msg: &Value) -> ApiResult<Value> {
    let ops = batch_ops(msg)?;
    let applied = ops.len();
    api.client
        .apply_with(ops, Return::Nothing)
        .await
        .map_err(|_| Stopped)??;
    Ok(json!({ "applied": applied }))
}

async fn one(api: &Api, msg: &Value) -> ApiResult<Value> {
    let key = msg
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing string field \"key\" (or \"ops\" for a batch)"))?;
    let op = ops::parse(msg, &["key", "id"]).map_err(|e| bad(e.0))?;
    let view = super::objects::apply_one(api, key.to_string(), op, Return::default()).await?;
    Ok(serde_json::to_value(view).unwrap_or_default())
}

fn reply(id: &Value, outcome: ApiResult<Value>) -> Value {
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(ApiError(status, error)) => (status, json!({ "error": error })),
    };
    json!({"event": "reply", "id": id, "status": status.as_u16(), "body": body})
}
