//! Stores written by older builds, brought up to this one's encoding once, on open.
//!
//! Causal contexts were encoded with every dot beyond a gap listed alone; they are runs now (a
//! context costs its runs, whatever dots they claim). A store whose `meta` lacks [`CONTEXT_RUNS`]
//! holds records in the older encoding: opening it rewrites the snapshot, the log and every
//! checkpoint in one transaction, then marks it. Every store this build creates is marked.

use super::{rewrite_records_once, seal, Checkpoint, Damaged, Record};
use crdt::{codec, Store};
use redb::{Database, ReadableTable};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Present in the `meta` of a store whose records encode causal contexts as runs.
pub(super) const CONTEXT_RUNS: &str = "context_runs";

/// How a store's records encode causal contexts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Each dot beyond a gap alone (builds before runs).
    DotByDot,
    /// Runs.
    Runs,
}

impl Encoding {
    /// The encoding of the store whose `meta` this is.
    pub(super) fn of(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Encoding {
        match meta.get(CONTEXT_RUNS) {
            Ok(Some(_)) => Encoding::Runs,
            _ => Encoding::DotByDot,
        }
    }

    /// A sealed record's value in this encoding, or what is wrong with it.
    pub(super) fn unsealed<T: DeserializeOwned>(self, record: &[u8]) -> Result<T, String> {
        let payload = seal::unseal(record)?;
        match self {
            Encoding::Runs => codec::decode_stored(payload),
            Encoding::DotByDot => codec::decode_stored_v1(payload),
        }
        .map_err(|e| format!("does not decode ({e})"))
    }
}

/// Rewrites the store at `path` (open as `db`) from the older encoding in this one, in one
/// transaction (once). A record that does not decode is a [`Damaged`] naming it, with nothing
/// changed.
pub(super) fn encode_contexts_as_runs(db: &Database, path: &Path) -> anyhow::Result<()> {
    let doing = "rewriting the store's records in the current encoding";
    rewrite_records_once(db, CONTEXT_RUNS, doing, &|record, bytes| {
        match record {
            Record::Checkpoint(_) => reencoded::<Checkpoint>(bytes),
            Record::Snapshot | Record::LogEntry(_) => reencoded::<Store>(bytes),
        }
        .map_err(|e| Damaged::new(path, format!("{record}: {e}")).into())
    })
}

/// A sealed record of the older encoding, sealed again in this one.
fn reencoded<T: DeserializeOwned + Serialize>(record: &[u8]) -> Result<Vec<u8>, String> {
    let value: T = Encoding::DotByDot.unsealed(record)?;
    let bytes = codec::encode(&value).map_err(|e| e.to_string())?;
    Ok(seal::seal(&bytes))
}
