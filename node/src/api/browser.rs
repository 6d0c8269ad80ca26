//! What browser apps need from the API: CORS for the origins `--cors-origin` names, `OPTIONS`
//! answered on every route, and short-lived access tokens for the two streams a browser cannot
//! give a bearer header (`EventSource` and `WebSocket`).
//!
//! An app holding the bearer token asks `POST /v1/tokens` for an access token and opens
//! `/v1/events?access_token=…` or `/v1/ws?access_token=…` with it within [`TOKEN_TTL`]; the token
//! opens those two streams only (a stream already open stays open after it expires).

use super::{ApiError, ApiResult};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long an access token may be used to open a stream.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// Access tokens alive at once at most (each is 32 hex digits and an instant).
const MAX_TOKENS: usize = 4096;

/// The paths an access token opens.
const STREAMS: [&str; 2] = ["/v1/events", "/v1/ws"];

/// The CORS layer for `origins` (`None` when there are none: no cross-origin access).
/// Preflights are answered for any route; the bearer header, `Content-Type`, `Last-Event-ID` and
/// `Prefer` may be sent, and answers may be read.
pub fn cors(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| {
            HeaderValue::from_str(o.trim_end_matches('/'))
                .map_err(|_| anyhow::anyhow!("--cors-origin {o:?} is not a valid origin"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let any = origins.iter().any(|o| o == "*");
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
            header::HeaderName::from_static("prefer"),
        ])
        .max_age(Duration::from_secs(600));
    Ok(Some(if any {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(origins))
    }))
}

/// `routes` under [`methods`] and, with `cors`, the CORS layer — which answers every `OPTIONS`
/// itself, so a plain `OPTIONS` (no `Access-Control-Request-Method`: not a preflight) goes around
/// it. Each wraps the whole router, not each route, so it sees the `Allow` header the router sets.
pub fn wrap(routes: Router, cors: Option<CorsLayer>) -> Router {
    let plain = Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(methods));
    let Some(cors) = cors else {
        return plain;
    };
    let with_cors = Router::new().fallback_service(plain.clone()).layer(cors);
    Router::new().fallback_service(tower::service_fn(move |req: Request| {
        let preflight_or_other = req.method() != Method::OPTIONS
            || req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let service = if preflight_or_other {
            with_cors.clone()
        } else {
            plain.clone()
        };
        service.oneshot(req)
    }))
}

/// `OPTIONS` on a route answers 204 with the methods it takes in `Allow` (a CORS preflight from
/// an allowed origin is answered before this, by the CORS layer); another method a route does
/// not take gets 405 with `Allow` and a JSON error.
pub async fn methods(req: Request, next: Next) -> Response {
    let options = req.method() == Method::OPTIONS;
    let response = next.run(req).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let allow = response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let allow = if allow.is_empty() {
        "OPTIONS".to_string()
    } else {
        format!("{allow},OPTIONS")
    };
    let allow = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("OPTIONS"));
    let mut answer = if options {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ApiError(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method not allowed; this route takes {}",
                allow.to_str().unwrap_or("")
            ),
        )
        .into_response()
    };
    answer.headers_mut().insert(header::ALLOW, allow);
    answer
}

/// Access tokens and when each expires.
#[derive(Default)]
pub struct Tokens(Mutex<HashMap<String, Instant>>);

impl Tokens {
    /// A new token, or `None` if [`MAX_TOKENS`] are alive.
    fn issue(&self) -> Option<String> {
        let mut tokens = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        tokens.retain(|_, expires| *expires > now);
        if tokens.len() >= MAX_TOKENS {
            return None;
        }
        let token = format!("{:032x}", rand::random::<u128>());
        tokens.insert(token.clone(), now + TOKEN_TTL);
        Some(token)
    }

    /// Whether `req` opens a stream with a live access token.
    pub fn admits(&self, req: &Request) -> bool {
        if !STREAMS.contains(&req.uri().path()) {
            return false;
        }
        let Some(given) = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
        else {
            return false;
        };
        let tokens = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tokens.get(given).is_some_and(|e| *e > Instant::now())
    }
}

/// An access token that opens `/v1/events` and `/v1/ws` (as `?access_token=`) for 60 s, for
/// browsers, which cannot send the bearer header there.
#[utoipa::path(post, path = "/v1/tokens", tag = "feed", responses(
    (status = 201, body = super::openapi::AccessToken),
    (status = 503, description = "Too many alive", body = super::openapi::ErrorBody),
))]
pub(super) async fn issue(State(api): State<super::Api>) -> ApiResult<(StatusCode, Json<Value>)> {
    let tokens = &api.tokens;
    let token = tokens.issue().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_TOKENS} access tokens are alive; try again in a minute"),
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "access_token": token,
            "expires_in_s": TOKEN_TTL.as_secs(),
            "opens": STREAMS,
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn an_access_token_opens_the_streams_only_and_only_itself() {
        let tokens = Tokens::default();
        let t = tokens.issue().unwrap();
        assert_eq!(t.len(), 32);
        assert!(tokens.admits(&get(&format!("/v1/events?access_token={t}"))));
        assert!(tokens.admits(&get(&format!("/v1/ws?values=full&access_token={t}"))));
        assert!(!tokens.admits(&get(&format!("/v1/state?access_token={t}"))));
        assert!(!tokens.admits(&get("/v1/events?access_token=0000")));
        assert!(!tokens.admits(&get("/v1/events")));
    }

    #[test]
    fn an_expired_token_opens_nothing() {
        let tokens = Tokens::default();
        let t = tokens.issue().unwrap();
        tokens
            .0
            .lock()
            .unwrap()
            .insert(t.clone(), Instant::now() - Duration::from_secs(1));
        assert!(!tokens.admits(&get(&format!("/v1/events?access_token={t}"))));
    }

    #[test]
    fn origins_must_be_header_values() {
        assert!(cors(&[]).unwrap().is_none());
        assert!(cors(&["https://app.example".into()]).unwrap().is_some());
        assert!(cors(&["https://bad\norigin".into()]).is_err());
    }
}
