//! The HTTP API (SPEC "HTTP API"): JSON in and out; every error is `{"error": …}` with a 4xx/5xx
//! status. Bodies are parsed by hand from bytes, so malformed JSON gets that same shape too.

use crate::client::{Client, Stopped};
use crate::ops;
use crate::snapshot::Snapshot;
use crate::views::{ApplyError, Return, RollbackOutcome};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crdt::CrdtError;
use futures::stream::StreamExt;
use serde_json::{json, Value as Json_};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub mod browser;
mod events;
mod objects;
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
            CrdtError::Overflow { .. } => StatusCode::UNPROCESSABLE_ENTITY,
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
    };
    let page = Router::new().route("/", get(|| async { axum::response::Html(DASHBOARD) }));
    let router = Router::new()
        .route("/health", get(health))
        .route("/v1/node", get(node_info))
        .route("/metrics", get(metrics))
        .route("/v1/objects", get(list))
        .route(
            "/v1/objects/{key}",
            get(objects::get_object).post(objects::post_op),
        )
        .route("/v1/batch", post(batch))
        .route("/v1/state", get(state::state))
        .route("/v1/peers", get(peers))
        .route("/v1/conflicts", get(conflicts))
        .route("/v1/sync", post(sync))
        .route("/v1/events", get(events::events))
        .route("/v1/ws", get(ws::ws))
        .route(
            "/v1/checkpoints",
            get(list_checkpoints).post(create_checkpoint),
        )
        .route("/v1/checkpoints/{label}", get(get_checkpoint))
        .route("/v1/rollback", post(rollback))
        .route("/v1/backup", get(backup))
        .route(
            "/v1/tokens",
            post(|State(api): State<Api>| async move { browser::issue(&api.tokens).await }),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(middleware::from_fn_with_state(api.clone(), auth))
        .merge(page)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(refuse_oversized))
        .with_state(api.clone());
    browser::wrap(router, cors).layer(middleware::from_fn_with_state(api, count_errors))
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

async fn peers(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let peers = off_loop(&api, |snap| {
        serde_json::to_value(snap.peers).unwrap_or_default()
    })
    .await?;
    Ok(Json(peers))
}

/// `GET /v1/conflicts`: every type clash, and every register or map field holding concurrent
/// values, with the values and the replicas that wrote them.
async fn conflicts(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let list = off_loop(&api, |snap| {
        serde_json::to_value(snap.state.conflict_list()).unwrap_or_default()
    })
    .await?;
    Ok(Json(list))
}

async fn sync(State(api): State<Api>) -> ApiResult<(StatusCode, Json<Json_>)> {
    api.client.sync().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "sync started"})),
    ))
}

fn internal(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

fn label_of(json: &Json_) -> ApiResult<String> {
    match json.get("label").and_then(Json_::as_str) {
        Some(l) if !l.is_empty() && l.len() <= 200 => Ok(l.to_string()),
        _ => Err(bad(
            "expected {\"label\": \"a non-empty name of at most 200 bytes\"}",
        )),
    }
}

async fn create_checkpoint(
    State(api): State<Api>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Json_>)> {
    let label = label_of(&body)?;
    match api
        .client
        .checkpoint(label.clone())
        .await?
        .map_err(internal)?
    {
        Some(info) => Ok((
            StatusCode::CREATED,
            Json(serde_json::to_value(info).unwrap_or_default()),
        )),
        None => Err(ApiError(
            StatusCode::CONFLICT,
            format!("checkpoint {label:?} exists"),
        )),
    }
}

/// `GET /v1/backup`: the state and every checkpoint as of one moment, as a backup file
/// (`deltanode restore` reads it).
async fn backup(State(api): State<Api>) -> ApiResult<Response> {
    let backup = api.client.backup().await?.map_err(internal)?;
    let bytes = tokio::task::spawn_blocking(move || backup.encode())
        .await
        .map_err(|e| internal(e.into()))?
        .map_err(internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"deltanode.backup\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn list_checkpoints(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let all = api.client.checkpoints().await?.map_err(internal)?;
    Ok(Json(serde_json::to_value(all).unwrap_or_default()))
}

async fn get_checkpoint(
    State(api): State<Api>,
    Path(label): Path<String>,
) -> ApiResult<Json<Json_>> {
    let c = api
        .client
        .checkpoint_state(label.clone())
        .await?
        .map_err(internal)?;
    let c = c.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no checkpoint {label:?}")))?;
    let objects = objects_json(&c.state);
    Ok(Json(
        json!({"label": label, "digest": c.digest, "created_unix_ms": c.created_unix_ms, "objects": objects}),
    ))
}

async fn rollback(State(api): State<Api>, JsonBody(body): JsonBody) -> ApiResult<Response> {
    let json = body;
    let label = label_of(&json)?;
    let partial = match json.get("partial") {
        None => false,
        Some(Json_::Bool(b)) => *b,
        Some(_) => return Err(bad("\"partial\" must be a boolean")),
    };
    match api.client.rollback(label.clone(), partial).await?.map_err(internal)? {
        RollbackOutcome::NoSuchCheckpoint => Err(ApiError(StatusCode::NOT_FOUND, format!("no checkpoint {label:?}"))),
        RollbackOutcome::Refused { irreversible } => Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!("{} changed objects cannot be reverted (grow-only, or a past conflict); nothing changed; send \"partial\": true to revert the rest", irreversible.len()),
                "irreversible": irreversible,
            })),
        )
            .into_response()),
        RollbackOutcome::Done { reverted, irreversible } => {
            Ok(Json(json!({"label": label, "reverted": reverted, "irreversible": irreversible})).into_response())
        }
    }
}
