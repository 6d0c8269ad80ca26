//! Stores written by older builds, brought up to this one's encoding once, on open.
//!
//! Records have had four encodings ([`codec::Encoding`]): 1 listed every dot of a causal
//! context beyond a gap; 2 made contexts runs (its stores are marked [`CONTEXT_RUNS`]); 3 made
//! sequences runs of items without deleted elements (marked [`SEQ_RUNS`]); 4, this build's,
//! deflates large sequences (marked [`SEQ_PACKED`]). A store not marked [`SEQ_PACKED`] is
//! rewritten when opened — the snapshot, the log and every checkpoint in one transaction — then
//! marked. Every store this build creates is marked.

use super::{rewrite_records_once, seal, Checkpoint, Damaged, Record, META};
use codec::Encoding;
use crdt::{codec, Store};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Present in the `meta` of a store in encoding 2 (causal contexts as runs).
pub(super) const CONTEXT_RUNS: &str = "context_runs";
/// Present in the `meta` of a store in encoding 3 (sequences as runs too).
pub(super) const SEQ_RUNS: &str = "seq_runs";
/// Present in the `meta` of a store in encoding 4 (large sequences deflated): the current one.
pub(super) const SEQ_PACKED: &str = "seq_packed";

/// The encoding of the store whose `meta` this is.
pub(super) fn encoding_of(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Encoding {
    let marked = |mark| matches!(meta.get(mark), Ok(Some(_)));
    if marked(SEQ_PACKED) {
        Encoding::SeqPacked
    } else if marked(SEQ_RUNS) {
        Encoding::SeqRuns
    } else if marked(CONTEXT_RUNS) {
        Encoding::ItemByItem
    } else {
        Encoding::DotByDot
    }
}

/// A sealed record's value in `encoding`, or what is wrong with it.
pub(super) fn unsealed<T: DeserializeOwned>(
    encoding: Encoding,
    record: &[u8],
) -> Result<T, String> {
    let payload = seal::unseal(record)?;
    codec::decode_stored_in(encoding, payload).map_err(|e| format!("does not decode ({e})"))
}

/// Rewrites the store at `path` (open as `db`) from an older encoding in this one, in one
/// transaction (once). A record that does not decode is a [`Damaged`] naming it, with nothing
/// changed.
pub(super) fn to_current_encoding(db: &Database, path: &Path) -> anyhow::Result<()> {
    let from = {
        let rx = db.begin_read()?;
        match rx.open_table(META) {
            Ok(meta) => encoding_of(&meta),
            Err(redb::TableError::TableDoesNotExist(_)) => Encoding::DotByDot,
            Err(e) => return Err(e.into()),
        }
    };
    let doing = "rewriting the store's records in the current encoding";
    rewrite_records_once(db, SEQ_PACKED, doing, &|record, bytes| {
        match record {
            Record::Checkpoint(_) => reencoded::<Checkpoint>(from, bytes),
            Record::Snapshot | Record::LogEntry(_) => reencoded::<Store>(from, bytes),
        }
        .map_err(|e| Damaged::new(path, format!("{record}: {e}")).into())
    })
}

/// A sealed record of encoding `from`, sealed again in this one.
fn reencoded<T: DeserializeOwned + Serialize>(
    from: Encoding,
    record: &[u8],
) -> Result<Vec<u8>, String> {
    let value: T = unsealed(from, record)?;
    let bytes = codec::encode(&value).map_err(|e| e.to_string())?;
    Ok(seal::seal(&bytes))
}
