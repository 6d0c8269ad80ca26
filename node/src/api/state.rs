//! `GET /v1/state`: the whole state streamed object by object (values written from their
//! canonical text, in chunks, never held whole), a preview (each object's first elements), or the
//! digest alone.

use super::{objects, off_loop, Api, ApiResult};
use crate::snapshot::Snapshot;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream;
use serde_json::{json, Value as Json_};
use std::convert::Infallible;

/// What `GET /v1/state` may ask for.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// Each object's first N elements or fields only, with its `size` and the page's `next`.
    preview: Option<usize>,
    /// `digest=only`: the digest alone.
    digest: Option<String>,
}

/// The whole state and its digest (equal digests ⇔ equal states), a preview, or the digest alone.
#[utoipa::path(get, path = "/v1/state", tag = "objects", params(StateQuery), responses(
    (status = 200, description = "`{digest, objects: {key: {type, value}}}`", body = Object),
))]
pub async fn state(
    State(api): State<Api>,
    axum::extract::Query(q): axum::extract::Query<StateQuery>,
) -> ApiResult<Response> {
    if q.digest.as_deref() == Some("only") {
        let digest = off_loop(&api, |snap| snap.digest()).await?;
        return Ok(Json(json!({ "digest": digest })).into_response());
    }
    if let Some(n) = q.preview.map(|n| n.min(objects::MAX_PAGE)) {
        let s = off_loop(&api, move |snap| {
            json!({"digest": snap.digest(), "objects": objects_preview(&snap.state, n)})
        })
        .await?;
        return Ok(Json(s).into_response());
    }
    // The whole state, written object by object into chunks as the client reads them: the body
    // is never held whole (a store of 10⁶ elements is tens of megabytes of JSON).
    let snap = api.client.snapshot().await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        // A write fails only when the client went away: then the rest is not needed.
        let _ = write_state(&snap, &mut out).and_then(|()| out.send());
    });
    let body = axum::body::Body::from_stream(stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Bytes per chunk of a streamed body.
const CHUNK: usize = 64 << 10;

/// An `io::Write` that hands its bytes on in chunks of [`CHUNK`].
struct Chunks {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `{"digest":…,"objects":{key:{"type":…,"value":…},…}}`, written to `out`.
fn write_state(snap: &Snapshot, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    write!(out, "{{\"digest\":\"{}\",\"objects\":{{", snap.digest())?;
    for (i, (key, o)) in snap.state.objects().into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key)?;
        write!(out, ":{{\"type\":\"{}\",\"value\":", o.kind().name())?;
        o.write_value(out)?;
        out.write_all(b"}")?;
    }
    out.write_all(b"}}")
}

/// Every object with its first `n` elements or fields (what a dashboard shows at once).
fn objects_preview(state: &crdt::Store, n: usize) -> serde_json::Map<String, Json_> {
    state
        .objects()
        .into_iter()
        .map(|(k, o)| {
            let (value, next) = o
                .page(None, n)
                .map_or_else(|| (o.value(), None), |p| (p.value, p.next));
            let shown =
                json!({"type": o.kind().name(), "value": value, "size": o.size(), "next": next});
            (k.to_string(), shown)
        })
        .collect()
}
