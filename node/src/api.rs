//! The HTTP API (SPEC "HTTP API"): JSON in and out; every error is `{"error": …}` with a 4xx/5xx
//! status. Bodies are parsed by hand from bytes, so malformed JSON gets that same shape too.

use crate::client::{Client, Stopped};
use crate::ops;
use crate::snapshot::Snapshot;
use crate::views::{ApplyError, Return};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use crdt::CrdtError;
use futures::stream::StreamExt;
use serde_json::{json, Value as Json_};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub mod browser;
mod checkpoints;
mod events;
mod objects;
pub mod openapi;
pub mod serve;
mod state;
mod ws;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// An API error: a status and a message, rendered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<Stopped> for ApiError {
    fn from(e: Stopped) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<CrdtError> for ApiError {
    fn from(e: CrdtError) -> Self {
        let status = match e {
            CrdtError::TypeClash { .. } => StatusCode::CONFLICT,
            CrdtError::Overflow { .. } | CrdtError::Path { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.to_string())
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Crdt(e) => e.into(),
            ApplyError::Unavailable(ref d) | ApplyError::NotStored(ref d) if d.disk_full => {
                ApiError(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
            }
            ApplyError::Unavailable(_) | ApplyError::NotStored(_) => {
                ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

type ApiResult<T> = Result<T, ApiError>;

/// What `GET /v1/node` tells about the running node (the dashboard's header).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The PeerId.
    pub peer_id: String,
    /// The replica id its writes carry (16 hex digits), as `/v1/conflicts` names origins.
    pub replica: String,
    /// Every replica id its starts wrote under, oldest first (each start draws one).
    pub replicas: Vec<String>,
    /// Listen and confirmed external addresses, as they change.
    pub addrs: crate::views::OwnAddrs,
    /// The API's address.
    pub api: String,
    /// The sync algorithm.
    pub algorithm: String,
    /// Milliseconds between sync rounds.
    pub sync_interval_ms: u64,
    /// When the node started.
    pub started: std::time::Instant,
    /// What an operator should know, for `/health` (e.g. the node was re-keyed).
    pub warnings: Vec<String>,
    /// Whether this start gave the node a new network identity (its data dir was copied or moved).
    pub rekeyed: bool,
    /// `--max-clock-skew` in ms (`None`: no bound).
    pub max_clock_skew_ms: Option<u64>,
}

/// The dashboard: one page, its script and style inline, compiled into the binary.
const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(Clone)]
struct Api {
    client: Client,
    info: Arc<NodeInfo>,
    token: Option<Arc<str>>,
    /// Error answers by HTTP status, for `deltanode_api_errors_total`.
    errors: Arc<Mutex<BTreeMap<u16, u64>>>,
    /// Change-feed streams open, and the most allowed at once.
    streams: Arc<std::sync::atomic::AtomicUsize>,
    max_streams: usize,
    /// Turns true when the node stops: every change-feed stream ends at once.
    closing: tokio::sync::watch::Receiver<bool>,
    /// Short-lived access tokens for the streams a browser opens.
    tokens: Arc<browser::Tokens>,
    /// The OpenAPI document, once the router is built.
    doc: Arc<std::sync::OnceLock<Json_>>,
}

/// How many change-feed streams may be open at once, and what ends them all.
pub struct Streams {
    /// The most at once (503 beyond).
    pub max: usize,
    /// Turns true when the node stops.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

/// The router for `client`; with `token`, every request but the dashboard page itself and
/// `OPTIONS` must carry `Authorization: Bearer TOKEN` (the page asks for it), or open a stream
/// with an access token ([`browser`]); with `cors`, the origins it allows may call the API.
pub fn router(
    client: Client,
    token: Option<String>,
    info: NodeInfo,
    streams: Streams,
    cors: Option<tower_http::cors::CorsLayer>,
) -> Router {
    let api = Api {
        client,
        info: Arc::new(info),
        token: token.map(Into::into),
        errors: Arc::default(),
        streams: Arc::default(),
        max_streams: streams.max,
        closing: streams.closing,
        tokens: Arc::default(),
        doc: Arc::default(),
    };
    let doc = api.doc.clone();
    let (routes, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(node_info))
        .routes(routes!(metrics))
        .routes(routes!(list))
        .routes(routes!(objects::get_object, objects::post_op))
        .routes(routes!(batch))
        .routes(routes!(state::state))
        .routes(routes!(peers))
        .routes(routes!(conflicts))
        .routes(routes!(sync))
        .routes(routes!(sync_history))
        .routes(routes!(events::events))
        .routes(routes!(ws::ws))
        .routes(routes!(browser::issue))
        .routes(routes!(
            checkpoints::list_checkpoints,
            checkpoints::create_checkpoint
        ))
        .routes(routes!(checkpoints::get_checkpoint))
        .routes(routes!(checkpoints::rollback))
        .routes(routes!(checkpoints::backup))
        .routes(routes!(openapi_json))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(middleware::from_fn_with_state(api.clone(), auth))
        .merge(OpenApiRouter::new().routes(routes!(dashboard)))
        .split_for_parts();
    let _ = doc.set(serde_json::to_value(&openapi).unwrap_or_default());
    let router = routes
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(refuse_oversized))
        .with_state(api.clone());
    browser::wrap(router, cors).layer(middleware::from_fn_with_state(api, count_errors))
}

/// The dashboard: peers, sync, objects, the notes demo, checkpoints (needs no token itself; it
/// asks for one).
#[utoipa::path(get, path = "/", tag = "node", security(()), responses(
    (status = 200, description = "The dashboard page", content_type = "text/html", body = String),
))]
async fn dashboard() -> axum::response::Html<&'static str> {
    axum::response::Html(DASHBOARD)
}

/// This document: the API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node", responses(
    (status = 200, description = "The OpenAPI document", body = Object),
))]
async fn openapi_json(State(api): State<Api>) -> Json<Json_> {
    Json(api.doc.get().cloned().unwrap_or_default())
}

/// Counts every error answer (the outermost layer: it sees 401s, 404s and 413s too).
async fn count_errors(State(api): State<Api>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let mut errors = api.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(status.as_u16()).or_default() += 1;
    }
    response
}

/// A body declared over [`MAX_BODY`] is refused with a 413 — after reading what the client sends
/// (up to [`DRAIN_BYTES`], for at most [`DRAIN_TIME`]), so the client is reading when the answer
/// comes instead of seeing the connection reset under its upload.
async fn refuse_oversized(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(len) = declared.filter(|l| *l > MAX_BODY as u64) else {
        return next.run(req).await;
    };
    if len <= DRAIN_BYTES {
        let mut body = req.into_body().into_data_stream();
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(_)) = body.next().await {}
        })
        .await;
    }
    let mut response = ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is {len} bytes, over the length limit of {MAX_BODY} bytes"),
    )
    .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// The most of an over-limit body read before answering 413 (a larger one is answered at once).
const DRAIN_BYTES: u64 = 256 << 20;
/// The longest an over-limit body is read before answering 413.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

async fn auth(State(api): State<Api>, req: Request, next: Next) -> Response {
    // OPTIONS changes nothing and reads nothing; a browser's preflight never carries the token.
    if req.method() == axum::http::Method::OPTIONS || api.tokens.admits(&req) {
        return next.run(req).await;
    }
    if let Some(token) = &api.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token) {
            return ApiError(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token".into(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Every object as the API shows a state: `{key: {"type", "value"}}`.
fn objects_json(state: &crdt::Store) -> serde_json::Map<String, Json_> {
    state
        .objects()
        .into_iter()
        .map(|(k, o)| {
            (
                k.to_string(),
                json!({"type": o.kind().name(), "value": o.value()}),
            )
        })
        .collect()
}

/// Takes a snapshot on the event loop and runs `f` on it on a blocking thread: whole-store reads
/// (serialising, digesting, scanning every object) never hold up the loop or the async workers.
async fn off_loop<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(Snapshot) -> T + Send + 'static,
) -> ApiResult<T> {
    let snap = api.client.snapshot().await?;
    tokio::task::spawn_blocking(move || f(snap))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A request body parsed as JSON. Every way it can fail — too large, unreadable, not JSON — is an
/// `ApiError`, so the answer is always `{"error": …}`.
struct JsonBody(Json_);

impl<S: Send + Sync> axum::extract::FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| bad(format!("malformed JSON: {e}")))
    }
}

/// The node: its PeerId, the replica id it writes under, addresses, algorithm, version.
#[utoipa::path(get, path = "/v1/node", tag = "node", responses(
    (status = 200, description = "`{peer_id, replica, replicas, listen, external, api, algorithm, sync_interval_ms, uptime_s, version}`", body = Object),
))]
async fn node_info(State(api): State<Api>) -> Json<Json_> {
    let i = &api.info;
    Json(json!({
        "peer_id": i.peer_id,
        "replica": i.replica,
        "replicas": i.replicas,
        "listen": i.addrs.listen(),
        "external": i.addrs.external(),
        "api": i.api,
        "algorithm": i.algorithm,
        "sync_interval_ms": i.sync_interval_ms,
        "uptime_s": i.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Whether the node is healthy, and what an operator should know.
#[utoipa::path(get, path = "/health", tag = "node", responses(
    (status = 200, body = openapi::HealthBody),
))]
async fn health(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let mut warnings = api.info.warnings.clone();
    let (mut h, skewed, median, n) = api
        .client
        .read(|v| {
            // `objects` counts what `GET /v1/objects` lists (a key with a type clash once).
            let mut h = json!({
                "status": "ok",
                "peer_id": v.peer_id.to_string(),
                "neighbours": v.engine.neighbours().len(),
                "objects": v.engine.state().len(),
            });
            if let Some(reason) = v.degraded {
                h["status"] = json!("degraded");
                h["reason"] = json!(format!(
                    "the store takes no writes (writes refused, sync paused): {reason}"
                ));
            }
            let skewed: Vec<String> = v
                .quarantine
                .into_iter()
                .flat_map(|q| q.per_peer().iter())
                .map(|(p, s)| {
                    format!(
                        "neighbour {p} stamped writes {} s ahead of this node's clock, past \
                         --max-clock-skew: they are held until the clock catches up",
                        (s.ahead_ms + 500) / 1000
                    )
                })
                .collect();
            let n = v.clock_offsets.len();
            let skewed: Vec<String> = skewed
                .into_iter()
                .chain(v.identity_warnings.iter().cloned())
                .chain(v.behind.iter().map(|p| {
                    format!(
                        "neighbour {p} is not up to date: a message to it was larger than a \
                         frame (it is being caught up by reconciliation, in bounded messages)"
                    )
                }))
                .collect();
            (
                h,
                skewed,
                crate::clock_frames::median(v.clock_offsets.clone()),
                n,
            )
        })
        .await?;
    warnings.extend(skewed);
    if let (Some(median), Some(skew)) = (median, api.info.max_clock_skew_ms) {
        if median.unsigned_abs() > skew {
            let way = if median < 0 { "ahead of" } else { "behind" };
            warnings.push(format!(
                "this node's clock is {} s {way} its neighbours' (the median of {n}): past \
                 --max-clock-skew, so register writes on the side that is ahead are held by the \
                 other; check time synchronisation (with few neighbours either side may be off)",
                (median.unsigned_abs() + 500) / 1000
            ));
        }
    }
    h["warnings"] = json!(warnings);
    Ok(Json(h))
}

/// Every metric, in the Prometheus text format, or OpenMetrics when `Accept` prefers
/// `application/openmetrics-text`.
#[utoipa::path(get, path = "/metrics", tag = "node", responses(
    (status = 200, description = "The metrics", content(
        (String = "text/plain; version=0.0.4"),
        (String = "application/openmetrics-text; version=1.0.0"),
    )),
))]
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Response> {
    let errors = api.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let rekeyed = api.info.rekeyed;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::prometheus::Format::negotiate(accept);
    let text: String = off_loop(&api, move |snap| {
        crate::prometheus::render(&snap, &errors, rekeyed, format)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
}

/// Every object's key and type.
#[utoipa::path(get, path = "/v1/objects", tag = "objects", responses(
    (status = 200, body = Vec<openapi::KeyType>),
))]
async fn list(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let objects = off_loop(&api, |snap| {
        snap.state
            .objects()
            .into_iter()
            .map(|(k, o)| json!({"key": k, "type": o.kind().name()}))
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(Json_::Array(objects)))
}

/// Writes applied atomically as one delta (each sees the ones before it); any bad one refuses
/// them all.
#[utoipa::path(post, path = "/v1/batch", tag = "objects", request_body = openapi::BatchBody, responses(
    (status = 200, body = openapi::BatchAnswer),
    (status = 400, description = "Malformed", body = openapi::ErrorBody),
    (status = 409, description = "A type clash", body = openapi::ErrorBody),
    (status = 422, description = "A counter past what it holds", body = openapi::ErrorBody),
    (status = 507, description = "The disk is full", body = openapi::ErrorBody),
))]
async fn batch(State(api): State<Api>, JsonBody(body): JsonBody) -> ApiResult<Json<Json_>> {
    let ops = batch_ops(&body)?;
    let applied = ops.len();
    // The answer is a count: no object views are built.
    api.client
        .apply_with(ops, Return::Nothing)
        .await
        .map_err(|_| Stopped)??;
    Ok(Json(json!({ "applied": applied })))
}

/// The ops of a batch, `{"ops": [{"key", "type", "op", …}, …]}` (with `extra` fields allowed
/// besides the top-level `ops`).
fn batch_ops(json: &Json_) -> ApiResult<Vec<(String, crdt::Op)>> {
    let items = json
        .get("ops")
        .and_then(Json_::as_array)
        .ok_or_else(|| bad("expected {\"ops\": [...]}"))?;
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = item
            .get("key")
            .and_then(Json_::as_str)
            .ok_or_else(|| bad(format!("ops[{i}]: missing string field \"key\"")))?;
        let op = ops::parse(item, &["key"]).map_err(|e| bad(format!("ops[{i}]: {}", e.0)))?;
        ops.push((key.to_string(), op));
    }
    Ok(ops)
}

/// The peers this node syncs with, with their traffic, acks and clock offsets.
#[utoipa::path(get, path = "/v1/peers", tag = "node", responses(
    (status = 200, description = "`[{peer_id, connected, addrs, bytes_sent, bytes_received, last_ack_unix_ms, pending_groups, oversized_sends, held_ahead, clock_offset_ms?, clock_ahead_ms?, rtt_ms?, agent_version?}]`", body = Vec<Object>),
))]
async fn peers(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let peers = off_loop(&api, |snap| {
        serde_json::to_value(snap.peers).unwrap_or_default()
    })
    .await?;
    Ok(Json(peers))
}

/// `GET /v1/conflicts`: every type clash, and every register or map field holding concurrent
/// values, with the values and the replicas that wrote them.
#[utoipa::path(get, path = "/v1/conflicts", tag = "objects", responses(
    (status = 200, description = "`[{key, field?, reason: type_clash|concurrent_values, type, values: [{type, value, origins}]}]`", body = Vec<Object>),
))]
async fn conflicts(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let list = off_loop(&api, |snap| {
        serde_json::to_value(snap.state.conflict_list()).unwrap_or_default()
    })
    .await?;
    Ok(Json(list))
}

/// What the node sent since it started (cumulative frame bytes, payload and metadata units),
/// a sample a step apart: 1 s, doubling as the history grows past 3,600 samples, so it always
/// reaches back to the start. The dashboard's sync chart draws it.
#[utoipa::path(get, path = "/v1/sync/history", tag = "node", params(HistoryQuery), responses(
    (status = 200, description = "`{started_unix_ms, step_ms, samples: [{t_unix_ms, bytes, payload, metadata}]}`", body = Object),
))]
async fn sync_history(
    State(api): State<Api>,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> ApiResult<Json<Json_>> {
    let since = q.since.unwrap_or(0);
    let history = api
        .client
        .read(move |v| {
            let newer: Vec<_> = v
                .history
                .samples
                .iter()
                .filter(|s| s.t_unix_ms > since)
                .collect();
            json!({
                "started_unix_ms": v.history.started_unix_ms,
                "step_ms": v.history.step_ms,
                "samples": newer,
            })
        })
        .await?;
    Ok(Json(history))
}

/// What `GET /v1/sync/history` may ask for.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Only the samples after this time (ms since the epoch), for a chart that has the rest.
    since: Option<u64>,
}

/// Starts a sync round now.
#[utoipa::path(post, path = "/v1/sync", tag = "node", responses(
    (status = 202, description = "`{\"status\": \"sync started\"}`", body = Object),
))]
async fn sync(State(api): State<Api>) -> ApiResult<(StatusCode, Json<Json_>)> {
    api.client.sync().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "sync started"})),
    ))
}
