//! The API's OpenAPI 3.1 document, served at `GET /v1/openapi.json`. Each handler carries its
//! own `#[utoipa::path]`, and the router is built from those (utoipa-axum), so the document and
//! the routes cannot drift apart; the shapes of bodies that the handlers build as JSON are
//! described here.

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's fixed parts: what the API is, its tags, and the bearer token.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "deltanode",
        description = "A node of deltanode, a peer-to-peer store of delta-state CRDTs: its \
                       objects, state, change feed, peers, metrics, checkpoints and rollback. \
                       With --api-token every route but `/` and `OPTIONS` needs the bearer \
                       token (`/v1/events` and `/v1/ws` also take an access token from \
                       `POST /v1/tokens` as `?access_token=`). Every error is `{\"error\": …}`."
    ),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "objects", description = "Reading and writing objects"),
        (name = "feed", description = "The change feed"),
        (name = "node", description = "The node, its peers and its health"),
        (name = "checkpoints", description = "Checkpoints, rollback and backups"),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// A write to one object: its `type` (fixed by the key's first write) and an `op` that type
/// takes. Besides those listed, every type takes `{"op": "resolve"}`: keep this type at a key
/// whose writers used several, retiring the others.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Operation {
    /// Grow-only counter.
    Gcounter {
        /// `inc`.
        op: IncOp,
        /// How much (default 1); the value stays at most 2⁶⁴ − 1, else 422.
        by: Option<u64>,
    },
    /// Counter that goes up and down.
    Counter {
        /// `inc` or `dec`.
        op: IncDecOp,
        /// How much (default 1), at most 2⁶³ − 1.
        by: Option<u64>,
    },
    /// Grow-only set.
    Gset {
        /// `add`.
        op: AddOp,
        /// Any JSON value.
        value: Value,
    },
    /// Two-phase set (a removed element stays removed).
    Twopset {
        /// `add` or `remove`.
        op: AddRemoveOp,
        /// Any JSON value.
        value: Value,
    },
    /// Add-wins set.
    Set {
        /// `add` or `remove`.
        op: AddRemoveOp,
        /// Any JSON value.
        value: Value,
    },
    /// Last-writer-wins register.
    Lww {
        /// `set`.
        op: SetOp,
        /// Any JSON value.
        value: Value,
    },
    /// Multi-value register (concurrent writes are all kept).
    Register {
        /// `set`.
        op: SetOp,
        /// Any JSON value.
        value: Value,
    },
    /// Add-wins map of multi-value registers.
    Map {
        /// `put` (with `value`) or `remove`.
        op: PutRemoveOp,
        /// The field.
        field: String,
        /// Any JSON value (for `put`).
        value: Option<Value>,
    },
    /// JSON document: nested maps, lists and collaborative text (every string in a value
    /// becomes a text that `splice` edits, and concurrent edits merge). A path that does not
    /// lead where the op needs is 422.
    Doc {
        /// `put` (`value` at `path`: a map's field, or a list's element — the index one past
        /// the end appends; `[]` with an object writes its fields into the root), `delete` (the
        /// field or element at `path`), `insert` (`values` into the list at `path`, from
        /// `index`) or `splice` (in the text at `path`: `delete` characters from `index`, then
        /// `text` there).
        op: DocOp,
        /// Field names (strings) and list indexes (integers) from the root, e.g.
        /// `["note", "tags", 0]`.
        path: Vec<Value>,
        /// Any JSON value (for `put`).
        value: Option<Value>,
        /// JSON values (for `insert`).
        values: Option<Vec<Value>>,
        /// A list or text position (for `insert` and `splice`).
        index: Option<u64>,
        /// Characters to delete (for `splice`; default 0).
        delete: Option<u64>,
        /// Characters to insert (for `splice`; default none).
        text: Option<String>,
    },
}

/// A document's ops.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocOp {
    /// Write a value at a path.
    Put,
    /// Delete the field or element at a path.
    Delete,
    /// Insert values into a list.
    Insert,
    /// Edit a text.
    Splice,
}

/// `inc`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncOp {
    /// Add.
    Inc,
}

/// `inc` or `dec`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncDecOp {
    /// Add.
    Inc,
    /// Subtract.
    Dec,
}

/// `add`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddOp {
    /// Add an element.
    Add,
}

/// `add` or `remove`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddRemoveOp {
    /// Add an element.
    Add,
    /// Remove an element.
    Remove,
}

/// `set`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetOp {
    /// Write the value.
    Set,
}

/// `put` or `remove`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PutRemoveOp {
    /// Write a field.
    Put,
    /// Remove a field.
    Remove,
}

/// Writes applied atomically as one delta: each an [`Operation`] with its `key`; any bad one
/// refuses them all.
#[derive(Serialize, ToSchema)]
pub struct BatchBody {
    /// The writes, in order (each sees the ones before it).
    #[schema(value_type = Vec<Object>)]
    pub ops: Vec<Value>,
}

/// What a batch did.
#[derive(Serialize, ToSchema)]
pub struct BatchAnswer {
    /// How many writes were applied.
    pub applied: usize,
}

/// An object as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ObjectBody {
    /// Its key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its value; left out of a write's reply for objects over 1,000 elements or fields (or
    /// 64 KiB of JSON) unless `Prefer: return=representation` asks.
    pub value: Option<Value>,
    /// How many elements, fields or values it holds.
    pub size: usize,
    /// What the write changed (write replies only).
    pub change: Option<Value>,
}

/// A key and its type.
#[derive(Serialize, ToSchema)]
pub struct KeyType {
    /// The key.
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A checkpoint to take.
#[derive(Serialize, ToSchema)]
pub struct LabelBody {
    /// Its name: non-empty, at most 200 bytes.
    pub label: String,
}

/// A rollback to ask for.
#[derive(Serialize, ToSchema)]
pub struct RollbackBody {
    /// The checkpoint to go back to.
    pub label: String,
    /// Revert what can be, even if some changed objects cannot (default false: then nothing).
    pub partial: Option<bool>,
}

/// A checkpoint.
#[derive(Serialize, ToSchema)]
pub struct CheckpointBody {
    /// Its name.
    pub label: String,
    /// The state's digest then.
    pub digest: String,
    /// When it was taken (ms since the epoch).
    pub created_unix_ms: u64,
}

/// `/health`.
#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, or `degraded` while the store takes no writes (with `reason`).
    pub status: String,
    /// Why it is degraded.
    pub reason: Option<String>,
    /// The node's PeerId.
    pub peer_id: String,
    /// Connected neighbours.
    pub neighbours: usize,
    /// Objects in the store.
    pub objects: usize,
    /// What an operator should know.
    pub warnings: Vec<String>,
}

/// A short-lived access token.
#[derive(Serialize, ToSchema)]
pub struct AccessToken {
    /// The token, for `?access_token=`.
    pub access_token: String,
    /// For how long it opens a stream.
    pub expires_in_s: u64,
    /// The paths it opens.
    pub opens: Vec<String>,
}
