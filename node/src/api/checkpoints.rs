//! Checkpoints, rollback and backups: `POST`/`GET /v1/checkpoints`, `GET
//! /v1/checkpoints/{label}`, `POST /v1/rollback`, `GET /v1/backup`.

use super::openapi::{ErrorBody, LabelBody, RollbackBody};
use super::{bad, objects_json, Api, ApiError, ApiResult, JsonBody};
use crate::views::RollbackOutcome;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value as Json_};

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

/// Takes a checkpoint: a named snapshot of the state, kept in this node's store.
#[utoipa::path(post, path = "/v1/checkpoints", tag = "checkpoints", request_body = LabelBody, responses(
    (status = 201, body = super::openapi::CheckpointBody),
    (status = 409, description = "The label exists", body = ErrorBody),
))]
pub async fn create_checkpoint(
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
#[utoipa::path(get, path = "/v1/backup", tag = "checkpoints", responses(
    (status = 200, description = "The backup file", content_type = "application/octet-stream", body = Vec<u8>),
))]
pub async fn backup(State(api): State<Api>) -> ApiResult<Response> {
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

/// Every checkpoint.
#[utoipa::path(get, path = "/v1/checkpoints", tag = "checkpoints", responses(
    (status = 200, body = Vec<super::openapi::CheckpointBody>),
))]
pub async fn list_checkpoints(State(api): State<Api>) -> ApiResult<Json<Json_>> {
    let all = api.client.checkpoints().await?.map_err(internal)?;
    Ok(Json(serde_json::to_value(all).unwrap_or_default()))
}

/// A checkpoint and the state then.
#[utoipa::path(get, path = "/v1/checkpoints/{label}", tag = "checkpoints",
    params(("label" = String, Path, description = "The checkpoint")),
    responses(
        (status = 200, description = "`{label, digest, created_unix_ms, objects}`", body = Object),
        (status = 404, description = "No such checkpoint", body = ErrorBody),
    ))]
pub async fn get_checkpoint(
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

/// Reverts every object changed since the checkpoint by compensating writes, which replicate.
#[utoipa::path(post, path = "/v1/rollback", tag = "checkpoints", request_body = RollbackBody, responses(
    (status = 200, description = "`{label, reverted, irreversible}`", body = Object),
    (status = 404, description = "No such checkpoint", body = ErrorBody),
    (status = 409, description = "Some changed objects cannot be reverted and `partial` is not set: nothing changed (`irreversible` lists them)", body = ErrorBody),
))]
pub async fn rollback(State(api): State<Api>, JsonBody(body): JsonBody) -> ApiResult<Response> {
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
