//! `GET` and `POST /v1/objects/{key}`: reads that cost what they return (a page of elements, one
//! element's membership, one map field), and writes whose reply costs what they changed (RFC
//! 7240 `Prefer: return=minimal | representation`).

use super::{bad, off_loop, Api, ApiError, ApiResult, JsonBody, Stopped};
use crate::ops;
use crate::views::{ObjectView, Return};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value as Json_};

/// The most elements or fields one page holds.
pub const MAX_PAGE: usize = 10_000;

/// What `GET /v1/objects/{key}` may ask for.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// A page of at most this many elements or fields.
    limit: Option<usize>,
    /// The page starts just past this element (its JSON) or field (its name): a page's `next`.
    after: Option<String>,
    /// Only whether a set holds this element (JSON).
    contains: Option<String>,
    /// Only this map field.
    field: Option<String>,
    /// Only the subtree of a document at this path: a JSON array of field names and list
    /// indexes, e.g. `["note","tags",0]`.
    path: Option<String>,
}

fn not_found(key: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no object {key:?}"))
}

/// `GET /v1/objects/{key}`: the whole value (serialised off the event loop), or a page, a
/// membership test or a field (answered on the loop: they cost what they return).
#[utoipa::path(get, path = "/v1/objects/{key}", tag = "objects",
    params(("key" = String, Path, description = "The object's key"), ReadQuery),
    responses(
        (status = 200, description = "The object; a page (`value`, `next`), a membership test (`contains`), a field (`field`, `value`) or a document's subtree (`path`, `value`) when asked", body = super::openapi::ObjectBody),
        (status = 400, description = "A query that does not fit the object", body = super::openapi::ErrorBody),
        (status = 404, description = "No such object (or nothing at the document path asked for)", body = super::openapi::ErrorBody),
    ))]
pub async fn get_object(
    State(api): State<Api>,
    Path(key): Path<String>,
    Query(q): Query<ReadQuery>,
) -> ApiResult<Json<Json_>> {
    let k = key.clone();
    if let Some(element) = q.contains {
        let element: Json_ =
            serde_json::from_str(&element).map_err(|e| bad(format!("contains: not JSON ({e})")))?;
        let found = api
            .client
            .read(move |v| {
                let o = v.engine.state().get(&k)?;
                Some(o.contains(&element).map(|c| (o.kind().name(), o.size(), c)))
            })
            .await?
            .ok_or_else(|| not_found(&key))?;
        let (kind, size, contains) =
            found.ok_or_else(|| bad(format!("{key:?} is not a set: no membership test")))?;
        return Ok(Json(
            json!({"key": key, "type": kind, "size": size, "contains": contains}),
        ));
    }
    if let Some(field) = q.field {
        let f = field.clone();
        let found = api
            .client
            .read(move |v| {
                let o = v.engine.state().get(&k)?;
                Some(o.field(&f).map(|value| (o.size(), value)))
            })
            .await?
            .ok_or_else(|| not_found(&key))?;
        let (size, value) = found.ok_or_else(|| bad(format!("{key:?} is not a map: no fields")))?;
        return Ok(Json(
            json!({"key": key, "type": "map", "size": size, "field": field, "value": value}),
        ));
    }
    if let Some(path) = q.path {
        let steps = serde_json::from_str::<Json_>(&path)
            .map_err(|e| e.to_string())
            .and_then(|p| crdt::doc::parse_path(&p))
            .map_err(|e| bad(format!("path: {e}")))?;
        let found = api
            .client
            .read(move |v| v.engine.state().get(&k).map(|o| o.at_path(&steps)))
            .await?
            .ok_or_else(|| not_found(&key))?;
        let value = found
            .ok_or_else(|| bad(format!("{key:?} is not a doc: no paths")))?
            .ok_or_else(|| {
                ApiError(
                    StatusCode::NOT_FOUND,
                    format!("{key:?} has nothing at {path}"),
                )
            })?;
        let path: Json_ = serde_json::from_str(&path).unwrap_or_default();
        return Ok(Json(
            json!({"key": key, "type": "doc", "path": path, "value": value}),
        ));
    }
    if q.limit.is_some() || q.after.is_some() {
        let limit = q.limit.unwrap_or(1_000).min(MAX_PAGE);
        let after = q.after;
        let found = api
            .client
            .read(move |v| {
                let o = v.engine.state().get(&k)?;
                Some(
                    o.page(after.as_deref(), limit)
                        .map(|p| (o.kind().name(), o.size(), p)),
                )
            })
            .await?
            .ok_or_else(|| not_found(&key))?;
        let (kind, size, page) =
            found.ok_or_else(|| bad("after: not the JSON of an element (use a page's next)"))?;
        return Ok(Json(json!({
            "key": key, "type": kind, "size": size, "value": page.value, "next": page.next,
        })));
    }
    let view = off_loop(&api, move |snap| {
        snap.state.get(&k).map(|o| ObjectView::new(&k, o))
    })
    .await?
    .ok_or_else(|| not_found(&key))?;
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}

/// Applies `op` to `key`; the object after it, its value as `ret` asks.
pub async fn apply_one(api: &Api, key: String, op: crdt::Op, ret: Return) -> ApiResult<ObjectView> {
    let mut views = api
        .client
        .apply_with(vec![(key.clone(), op)], ret)
        .await
        .map_err(|_| Stopped)??;
    // An op that changes nothing on an absent key (say, removing from a set never written)
    // leaves no object.
    views.pop().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no object {key:?} after the op: it changed nothing"),
        )
    })
}

/// The `return` preference of a `Prefer` header (RFC 7240), if it names one.
fn preference(headers: &HeaderMap) -> Option<Return> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_ascii_lowercase())
        .find_map(|p| match p.as_str() {
            "return=minimal" => Some(Return::Minimal),
            "return=representation" => Some(Return::Representation),
            _ => None,
        })
}

/// `POST /v1/objects/{key}`: applies one op; answers with the object's size and what changed,
/// and its value when it is small (up to [`crate::views::SMALL`]) or `Prefer:
/// return=representation` asks; `return=minimal` leaves the value out whatever the size.
#[utoipa::path(post, path = "/v1/objects/{key}", tag = "objects",
    params(
        ("key" = String, Path, description = "The object's key"),
        ("Prefer" = Option<String>, Header, description = "`return=minimal` (no value) or `return=representation` (the value, however large)"),
    ),
    request_body = super::openapi::Operation,
    responses(
        (status = 200, description = "Durable (fsynced) before the answer", body = super::openapi::ObjectBody),
        (status = 400, description = "Malformed", body = super::openapi::ErrorBody),
        (status = 404, description = "The op changed nothing and there is no object", body = super::openapi::ErrorBody),
        (status = 409, description = "The key holds another type", body = super::openapi::ErrorBody),
        (status = 422, description = "A counter past what it holds; nothing written", body = super::openapi::ErrorBody),
        (status = 507, description = "The disk is full; nothing written", body = super::openapi::ErrorBody),
    ))]
pub async fn post_op(
    State(api): State<Api>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let op = ops::parse(&body, &[]).map_err(|e| bad(e.0))?;
    let asked = preference(&headers);
    let view = apply_one(&api, key, op, asked.unwrap_or_default()).await?;
    let mut response = Json(view).into_response();
    if let Some(ret) = asked {
        let applied = match ret {
            Return::Minimal => "return=minimal",
            _ => "return=representation",
        };
        response
            .headers_mut()
            .insert("preference-applied", HeaderValue::from_static(applied));
    }
    Ok(response)
}
