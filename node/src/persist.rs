//! Durable storage of the replica in `DATA_DIR/state.redb` (redb: an embedded, crash-safe,
//! copy-on-write B-tree store; a commit returns once it is fsynced).
//!
//! Layout: a log of the deltas this replica applied (local writes and what was new in remote
//! groups), and a snapshot of the state covering the log up to some index. The state is the
//! snapshot joined with the log after it. When the log outgrows the snapshot (or 1 MiB), compaction
//! writes the current state as the new snapshot and drops the log in the same transaction, so the
//! file stays bounded by the state, not by history. Every record is sealed with a checksum
//! ([`seal`]): a damaged file is refused at start ([`Damaged`]), never loaded as another state.
//! Every start draws a fresh replica id, so no two runs — nor two copies of the data dir — ever
//! write under the same dots or counter entries.

mod backup;
mod damage;
mod repair;
mod seal;
mod upgrade;

pub use backup::{restore, Backup, Restored};
pub use damage::{storage_error, Damaged};
pub use repair::{repair, set_aside, Repaired};

use anyhow::Context;
use crdt::{codec, Lattice, ReplicaId, Store};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use std::path::Path;

/// The store's file name inside the data dir.
pub const DB_FILE: &str = "state.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
/// Which log entries came from a neighbour (1) rather than a local write (0): the change feed
/// replays them with their origin after a restart. (Entries without one predate it: local.)
const ORIGINS: TableDefinition<u64, u8> = TableDefinition::new("origin");
/// The next log index, kept across compactions so indexes (and the feed's ids) never repeat.
const NEXT_INDEX: &str = "next_index";
const REPLICA: &str = "replica";
/// Every replica id the store's starts drew, oldest first (8 bytes each, little-endian).
const REPLICAS: &str = "replicas";
const SNAPSHOT: &str = "snapshot";
/// Present once every record is sealed ([`seal`]); older stores are sealed on their first open.
const SEALED: &str = "sealed";

/// Log bytes below which compaction never runs.
const MIN_COMPACT_BYTES: u64 = 1 << 20;

/// redb's page cache.
const CACHE_BYTES: usize = 16 << 20;

/// The open store.
pub struct Durable {
    /// `None` only while [`Durable::compact_reopened`] reopens it.
    db: Option<Database>,
    path: std::path::PathBuf,
    /// The index the next log entry gets.
    next_index: u64,
    /// Bytes in the log since the last compaction.
    log_bytes: u64,
    /// Bytes of the last snapshot.
    snapshot_bytes: u64,
}

/// A named snapshot of the state.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// When it was taken.
    pub created_unix_ms: u64,
    /// The digest of `state`.
    pub digest: String,
    /// The state then.
    pub state: Store,
}

/// What opening the store recovered.
pub struct Recovered {
    /// The store.
    pub durable: Durable,
    /// The replica id this start writes under (drawn afresh at every start).
    pub replica: ReplicaId,
    /// Every replica id this store's starts drew, oldest first, this one last.
    pub replicas: Vec<ReplicaId>,
    /// The state as last committed.
    pub state: Store,
    /// Index of the oldest log entry (entries before it were compacted into the snapshot).
    pub first_index: u64,
    /// Index the next entry gets.
    pub next_index: u64,
}

/// One log entry, as replayed on opening: its index, how many follow it, whether a neighbour
/// sent it, the delta and the state once it is joined.
pub struct Replayed<'a> {
    /// Its index.
    pub index: u64,
    /// Entries after it in the log (a reader that keeps only the newest can skip the rest).
    pub later: u64,
    /// It came from a neighbour.
    pub remote: bool,
    /// The delta.
    pub delta: &'a Store,
    /// The state with it (and every entry before it).
    pub state: &'a Store,
}

impl Durable {
    /// Opens (or creates) the store in `data_dir` and recovers the state.
    pub fn open(data_dir: &Path) -> anyhow::Result<Recovered> {
        Self::open_replaying(data_dir, &mut |_| {})
    }

    /// [`Durable::open`], handing each log entry to `replay` as it is joined into the state.
    ///
    /// A damaged file — a record whose checksum fails or that does not decode, or a store redb
    /// cannot read (even one that makes it panic) — is an error holding a [`Damaged`], with
    /// nothing changed.
    pub fn open_replaying(
        data_dir: &Path,
        replay: &mut dyn FnMut(Replayed<'_>),
    ) -> anyhow::Result<Recovered> {
        let path = data_dir.join(DB_FILE);
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::open_unguarded(&path, replay)
        }));
        match opened {
            Ok(Ok(recovered)) => Ok(recovered),
            Ok(Err(e)) if e.downcast_ref::<Damaged>().is_some() => Err(e),
            Ok(Err(e)) if damage::is_corruption(&e) => {
                Err(Damaged::new(&path, format!("{e:#}")).into())
            }
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Damaged::new(&path, format!("the store could not be read ({why})")).into())
            }
        }
    }

    fn open_unguarded(
        path: &Path,
        replay: &mut dyn FnMut(Replayed<'_>),
    ) -> anyhow::Result<Recovered> {
        let damaged = |what: String| Damaged::new(path, what);
        // The state lives in memory; redb's page cache only speeds up reads of the log and the
        // snapshot, done once at start. Its default (1 GiB) would keep every page written.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(redb::Error::from)
            .with_context(|| format!("opening {}", path.display()))?;
        seal_older_records(&db)?;
        upgrade::to_current_encoding(&db, path)?;
        // Every start draws a fresh replica id (an *incarnation*), committed before any write
        // uses it: two copies of one data dir (a VM clone, a restored backup, a container image)
        // then never write under the same dots or counter entries, and neither does a node whose
        // state was lost. Each start adds one replica to the causal contexts and counters it
        // writes to (8 bytes and a counter each).
        let replica = ReplicaId(rand::random());
        let tx = db.begin_write()?;
        let replicas = {
            let mut meta = tx.open_table(META)?;
            // Stores from before the history was kept start it with the id they had.
            let mut ids = match meta.get(REPLICAS)? {
                Some(v) => v.value().to_vec(),
                None => meta
                    .get(REPLICA)?
                    .map(|v| v.value().to_vec())
                    .unwrap_or_default(),
            };
            ids.extend_from_slice(&replica.0.to_le_bytes());
            meta.insert(REPLICA, replica.0.to_le_bytes().as_slice())?;
            meta.insert(REPLICAS, ids.as_slice())?;
            tx.open_table(LOG)?;
            tx.open_table(CHECKPOINTS)?;
            tx.open_table(ORIGINS)?;
            ids.chunks_exact(8)
                .map(|c| ReplicaId(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
                .collect::<Vec<_>>()
        };
        tx.commit()?;
        let rx = db.begin_read()?;
        let meta = rx.open_table(META)?;
        let (mut state, snapshot_bytes) = match meta.get(SNAPSHOT)? {
            Some(v) => (
                unsealed::<Store>(v.value()).map_err(|e| damaged(format!("the snapshot: {e}")))?,
                v.value().len() as u64,
            ),
            None => (Store::default(), 0),
        };
        // Indexes start at 1 (a feed id of 0 would read as "nothing seen").
        let mut next_index = match meta.get(NEXT_INDEX)? {
            Some(v) => u64::from_le_bytes(v.value().try_into().unwrap_or_default()),
            None => 1,
        };
        // Checkpoints are read when used; their checksums are checked now, so damage is found
        // at start rather than by a rollback.
        for entry in rx.open_table(CHECKPOINTS)?.range::<&str>(..)? {
            let (k, v) = entry?;
            seal::unseal(v.value())
                .map_err(|e| damaged(format!("checkpoint {:?}: {e}", k.value())))?;
        }
        let log = rx.open_table(LOG)?;
        let origins = rx.open_table(ORIGINS)?;
        let mut first_index = None;
        let mut log_bytes = 0;
        let entries = log.len()?;
        for (n, entry) in log.range(0..)?.enumerate() {
            let (k, v) = entry?;
            let index = k.value();
            let delta: Store =
                unsealed(v.value()).map_err(|e| damaged(format!("log entry {index}: {e}")))?;
            state.join(&delta);
            let remote = origins.get(index)?.is_some_and(|o| o.value() == 1);
            replay(Replayed {
                index,
                later: entries.saturating_sub(n as u64 + 1),
                remote,
                delta: &delta,
                state: &state,
            });
            first_index.get_or_insert(index);
            next_index = next_index.max(index + 1);
            log_bytes += v.value().len() as u64;
        }
        drop((meta, log, origins, rx));
        Ok(Recovered {
            durable: Durable {
                db: Some(db),
                path: path.to_path_buf(),
                next_index,
                log_bytes,
                snapshot_bytes,
            },
            replica,
            replicas,
            state,
            first_index: first_index.unwrap_or(next_index),
            next_index,
        })
    }

    /// Appends `deltas` in one transaction: one fsync however many (group commit).
    pub fn append<'a>(
        &mut self,
        deltas: impl IntoIterator<Item = &'a Store>,
    ) -> anyhow::Result<u64> {
        self.append_from(deltas, false)
    }

    /// Appends `deltas` (from a neighbour when `remote`) in one transaction, fsynced; returns the
    /// index of the first (the others follow it).
    pub fn append_from<'a>(
        &mut self,
        deltas: impl IntoIterator<Item = &'a Store>,
        remote: bool,
    ) -> anyhow::Result<u64> {
        let tx = self.db()?.begin_write()?;
        let mut added = 0;
        let first = self.next_index;
        let mut index = first;
        {
            let mut log = tx.open_table(LOG)?;
            let mut origins = tx.open_table(ORIGINS)?;
            for d in deltas {
                let bytes = seal::seal(&codec::encode(d)?);
                log.insert(index, bytes.as_slice())?;
                if remote {
                    origins.insert(index, 1)?;
                }
                index += 1;
                added += bytes.len() as u64;
            }
        }
        tx.commit().context("committing to the store")?;
        self.next_index = index;
        self.log_bytes += added;
        Ok(first)
    }

    /// Compacts when the log has outgrown the snapshot: `state` (the current state, which includes
    /// every logged delta) becomes the snapshot and the log is emptied, atomically.
    pub fn maybe_compact(&mut self, state: &Store) -> anyhow::Result<bool> {
        if self.log_bytes < self.snapshot_bytes.max(MIN_COMPACT_BYTES) {
            return Ok(false);
        }
        self.compact(state)?;
        Ok(true)
    }

    fn db(&self) -> anyhow::Result<&Database> {
        self.db.as_ref().context("the store is closed")
    }

    /// Reopens the file, then writes `state` as the snapshot and empties the log: after an I/O
    /// error (a full disk) redb refuses every transaction until the file is reopened, and the
    /// state in memory may hold what no commit stored.
    pub fn compact_reopened(&mut self, state: &Store) -> anyhow::Result<()> {
        self.db = None;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&self.path)
            .with_context(|| format!("reopening {}", self.path.display()))?;
        self.db = Some(db);
        self.compact(state)
    }

    /// Writes `state` as the snapshot and empties the log.
    pub fn compact(&mut self, state: &Store) -> anyhow::Result<()> {
        let bytes = seal::seal(&codec::encode(state)?);
        let tx = self.db()?.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            meta.insert(SNAPSHOT, bytes.as_slice())?;
            meta.insert(NEXT_INDEX, self.next_index.to_le_bytes().as_slice())?;
            tx.open_table(LOG)?.retain(|_, _| false)?;
            tx.open_table(ORIGINS)?.retain(|_, _| false)?;
        }
        tx.commit().context("committing a compaction")?;
        self.snapshot_bytes = bytes.len() as u64;
        self.log_bytes = 0;
        Ok(())
    }

    /// Saves `state` as checkpoint `label`; `false` (and nothing written) if the label exists.
    pub fn save_checkpoint(
        &mut self,
        label: &str,
        checkpoint: &Checkpoint,
    ) -> anyhow::Result<bool> {
        let tx = self.db()?.begin_write()?;
        {
            let mut table = tx.open_table(CHECKPOINTS)?;
            if table.get(label)?.is_some() {
                return Ok(false);
            }
            table.insert(label, seal::seal(&codec::encode(checkpoint)?).as_slice())?;
        }
        tx.commit().context("committing a checkpoint")?;
        Ok(true)
    }

    /// The checkpoint `label`.
    pub fn checkpoint(&self, label: &str) -> anyhow::Result<Option<Checkpoint>> {
        let rx = self.db()?.begin_read()?;
        let table = rx.open_table(CHECKPOINTS)?;
        let found = table.get(label)?;
        found
            .map(|v| unsealed(v.value()).map_err(|e| anyhow::anyhow!("checkpoint {label:?}: {e}")))
            .transpose()
    }

    /// Every checkpoint's label, digest and time (not its state), by label.
    pub fn checkpoints(&self) -> anyhow::Result<Vec<(String, String, u64)>> {
        Ok(self
            .all_checkpoints()?
            .into_iter()
            .map(|(label, c)| (label, c.digest, c.created_unix_ms))
            .collect())
    }

    /// Every checkpoint with its state, by label.
    pub fn all_checkpoints(&self) -> anyhow::Result<Vec<(String, Checkpoint)>> {
        let rx = self.db()?.begin_read()?;
        let table = rx.open_table(CHECKPOINTS)?;
        let mut all = Vec::new();
        for entry in table.range::<&str>(..)? {
            let (k, v) = entry?;
            let c: Checkpoint = unsealed(v.value())
                .map_err(|e| anyhow::anyhow!("checkpoint {:?}: {e}", k.value()))?;
            all.push((k.value().to_string(), c));
        }
        Ok(all)
    }

    /// The index the next log entry gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Entries in the log.
    pub fn log_entries(&self) -> anyhow::Result<u64> {
        Ok(self.db()?.begin_read()?.open_table(LOG)?.len()?)
    }
}

/// A sealed record's value, or what is wrong with it (checksum, or a value that does not decode).
fn unsealed<T: DeserializeOwned>(record: &[u8]) -> Result<T, String> {
    let payload = seal::unseal(record)?;
    codec::decode_stored(payload).map_err(|e| format!("does not decode ({e})"))
}

/// Seals the records of a store written before records were sealed, in one transaction (once).
fn seal_older_records(db: &Database) -> anyhow::Result<()> {
    rewrite_records_once(db, SEALED, "sealing the store's records", &|_, bytes| {
        Ok(seal::seal(bytes))
    })
}

/// One record of a store, as a rewrite of them all names it.
#[derive(Clone, Copy, Debug)]
enum Record<'a> {
    Snapshot,
    LogEntry(u64),
    Checkpoint(&'a str),
}

impl std::fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Snapshot => write!(f, "the snapshot"),
            Record::LogEntry(i) => write!(f, "log entry {i}"),
            Record::Checkpoint(label) => write!(f, "checkpoint {label:?}"),
        }
    }
}

/// How [`rewrite_records_once`] makes a record's new bytes from which record it is and its bytes.
type Rewrite<'f> = dyn Fn(Record<'_>, &[u8]) -> anyhow::Result<Vec<u8>> + 'f;

/// Unless `meta` holds `mark`, rewrites every record of the store — the snapshot, each log entry,
/// each checkpoint — as `rewrite` makes it from its bytes, and sets `mark`, in one transaction
/// (`doing` names it in an error). An error from `rewrite` changes nothing.
fn rewrite_records_once(
    db: &Database,
    mark: &str,
    doing: &'static str,
    rewrite: &Rewrite<'_>,
) -> anyhow::Result<()> {
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        if meta.get(mark)?.is_some() {
            return Ok(());
        }
        let snapshot = meta
            .get(SNAPSHOT)?
            .map(|v| rewrite(Record::Snapshot, v.value()))
            .transpose()?;
        if let Some(bytes) = snapshot {
            meta.insert(SNAPSHOT, bytes.as_slice())?;
        }
        meta.insert(mark, [1u8].as_slice())?;
        let mut log = tx.open_table(LOG)?;
        let entries: Vec<(u64, Vec<u8>)> = log
            .range(0..)?
            .map(|e| {
                let (k, v) = e?;
                Ok((k.value(), rewrite(Record::LogEntry(k.value()), v.value())?))
            })
            .collect::<anyhow::Result<_>>()?;
        for (k, v) in entries {
            log.insert(k, v.as_slice())?;
        }
        let mut checkpoints = tx.open_table(CHECKPOINTS)?;
        let all: Vec<(String, Vec<u8>)> = checkpoints
            .range::<&str>(..)?
            .map(|e| {
                let (k, v) = e?;
                let label = k.value();
                Ok((
                    label.to_string(),
                    rewrite(Record::Checkpoint(label), v.value())?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        for (k, v) in all {
            checkpoints.insert(k.as_str(), v.as_slice())?;
        }
    }
    tx.commit().context(doing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::{Op, Value, Writer};
    use serde_json::json;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("deltanode-persist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(state: &mut Store, replica: ReplicaId, key: &str, op: Op) -> Store {
        let d = state
            .apply(key, op, &Writer { replica, now_ms: 1 })
            .unwrap();
        state.join(&d);
        d
    }

    #[test]
    fn reopening_recovers_the_state_under_a_new_replica_id() {
        let d = dir("reopen");
        let Recovered {
            mut durable,
            replica,
            mut state,
            ..
        } = Durable::open(&d).unwrap();
        assert!(state.is_empty());
        let a = write(&mut state, replica, "s", Op::SetAdd(Value::from(json!(1))));
        let b = write(&mut state, replica, "c", Op::CounterAdd(-4));
        durable.append([&a, &b]).unwrap();
        drop(durable);
        let again = Durable::open(&d).unwrap();
        assert_ne!(again.replica, replica, "each start is a new incarnation");
        assert_eq!(
            again.replicas,
            vec![replica, again.replica],
            "and is remembered"
        );
        assert_eq!(again.state, state);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn compaction_keeps_the_state_and_empties_the_log() {
        let d = dir("compact");
        let Recovered {
            mut durable,
            replica,
            mut state,
            ..
        } = Durable::open(&d).unwrap();
        for i in 0..50 {
            let delta = write(&mut state, replica, "s", Op::GSetAdd(Value::from(json!(i))));
            durable.append([&delta]).unwrap();
        }
        assert!(
            !durable.maybe_compact(&state).unwrap(),
            "a small log is not worth compacting"
        );
        durable.compact(&state).unwrap();
        assert_eq!(durable.log_entries().unwrap(), 0);
        let more = write(
            &mut state,
            replica,
            "s",
            Op::GSetAdd(Value::from(json!("after"))),
        );
        let from_peer = write(
            &mut state,
            ReplicaId(9),
            "s",
            Op::GSetAdd(Value::from(json!("p"))),
        );
        let first = durable.append([&more]).unwrap();
        assert_eq!(
            first, 51,
            "indexes go on past a compaction (they start at 1)"
        );
        assert_eq!(durable.append_from([&from_peer], true).unwrap(), 52);
        drop(durable);
        let mut replayed = Vec::new();
        let again =
            Durable::open_replaying(&d, &mut |e| replayed.push((e.index, e.later, e.remote)))
                .unwrap();
        assert_eq!(again.state, state);
        assert_eq!(again.durable.log_entries().unwrap(), 2);
        assert_eq!((again.first_index, again.next_index), (51, 53));
        assert_eq!(
            replayed,
            vec![(51, 1, false), (52, 0, true)],
            "the log replays with origins"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_restarted_replica_never_reuses_a_dot_or_a_counter_entry() {
        let d = dir("dots");
        let Recovered {
            mut durable,
            replica,
            mut state,
            ..
        } = Durable::open(&d).unwrap();
        let first = write(
            &mut state,
            replica,
            "s",
            Op::SetAdd(Value::from(json!("x"))),
        );
        let inc = write(&mut state, replica, "c", Op::GCounterInc(1));
        durable.append([&first, &inc]).unwrap();
        drop(durable);
        let Recovered {
            replica: r2,
            state: mut s2,
            ..
        } = Durable::open(&d).unwrap();
        assert_ne!(r2, replica, "a new incarnation");
        let second = write(&mut s2, r2, "s", Op::SetAdd(Value::from(json!("y"))));
        let inc2 = write(&mut s2, r2, "c", Op::GCounterInc(1));
        // Another replica that saw only the writes before the restart still learns both new ones.
        let mut other = Store::default();
        other.join(&first);
        other.join(&inc);
        assert!(
            !second.leq(&other) && !inc2.leq(&other),
            "a reused dot or counter entry would be ignored"
        );
        other.join(&second);
        other.join(&inc2);
        assert_eq!(other.get("s").unwrap().value(), json!(["x", "y"]));
        assert_eq!(other.get("c").unwrap().value(), json!(2));
        // A copy of the data dir opened beside it writes under an id of its own too.
        let copy = dir("dots-copy");
        std::fs::copy(d.join(DB_FILE), copy.join(DB_FILE)).unwrap();
        let (r3, mut s3) = {
            let rec = Durable::open(&copy).unwrap();
            (rec.replica, rec.state)
        };
        assert!(r3 != replica && r3 != r2);
        let third = write(&mut s3, r3, "s", Op::SetAdd(Value::from(json!("z"))));
        assert!(!third.leq(&other), "the copy's write is new to everyone");
        std::fs::remove_dir_all(d).unwrap();
        std::fs::remove_dir_all(copy).unwrap();
    }

    /// A store with a snapshot, log entries after it and a checkpoint; returns its state.
    fn filled(d: &std::path::Path) -> Store {
        let Recovered {
            mut durable,
            replica,
            mut state,
            ..
        } = Durable::open(d).unwrap();
        for i in 0..300 {
            let delta = write(&mut state, replica, "s", Op::SetAdd(Value::from(json!(i))));
            durable.append([&delta]).unwrap();
        }
        durable.compact(&state).unwrap();
        let checkpoint = Checkpoint {
            created_unix_ms: 1,
            digest: "d".into(),
            state: state.clone(),
        };
        assert!(durable.save_checkpoint("cp", &checkpoint).unwrap());
        for i in 0..20 {
            let delta = write(&mut state, replica, "c", Op::GCounterInc(i));
            durable.append([&delta]).unwrap();
        }
        state
    }

    #[test]
    fn a_damaged_record_is_refused_naming_the_file_and_the_way_out() {
        for (what, table) in [
            ("log entry", "log"),
            ("the snapshot", "meta"),
            ("checkpoint", "cp"),
        ] {
            let d = dir(&format!("damaged-{table}"));
            filled(&d);
            {
                // One byte of one record changed, as a bit flip on the disk would.
                let db = Database::create(d.join(DB_FILE)).unwrap();
                let tx = db.begin_write().unwrap();
                let flip = |v: &[u8]| {
                    let mut v = v.to_vec();
                    let i = v.len() / 2;
                    v[i] ^= 0x10;
                    v
                };
                match table {
                    "log" => {
                        let mut log = tx.open_table(LOG).unwrap();
                        let (k, v) = {
                            let (k, v) = log.first().unwrap().unwrap();
                            (k.value(), flip(v.value()))
                        };
                        log.insert(k, v.as_slice()).unwrap();
                    }
                    "meta" => {
                        let mut meta = tx.open_table(META).unwrap();
                        let v = flip(meta.get(SNAPSHOT).unwrap().unwrap().value());
                        meta.insert(SNAPSHOT, v.as_slice()).unwrap();
                    }
                    _ => {
                        let mut cps = tx.open_table(CHECKPOINTS).unwrap();
                        let v = flip(cps.get("cp").unwrap().unwrap().value());
                        cps.insert("cp", v.as_slice()).unwrap();
                    }
                }
                drop(tx.commit());
            }
            let err = Durable::open(&d).err().expect("a damaged store is refused");
            let damaged = err.downcast_ref::<Damaged>().expect("a Damaged error");
            assert_eq!(damaged.file, d.join(DB_FILE));
            let text = err.to_string();
            assert!(text.contains(what), "{text}");
            assert!(text.contains("deltanode repair") && text.contains("--recover-from-peers"));
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn damaged_bytes_anywhere_in_the_file_give_the_same_state_or_an_error_never_a_panic() {
        use rand::{Rng, SeedableRng};
        let d = dir("bytes");
        let state = filled(&d);
        let pristine = std::fs::read(d.join(DB_FILE)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut refused, mut same) = (0, 0);
        for _ in 0..40 {
            let mut bytes = pristine.clone();
            let len = rng.gen_range(1..=256);
            let at = rng.gen_range(0..bytes.len() - len);
            for b in &mut bytes[at..at + len] {
                *b ^= rng.gen_range(1..=255u8);
            }
            std::fs::write(d.join(DB_FILE), &bytes).unwrap();
            match Durable::open(&d) {
                Ok(r) => {
                    assert!(
                        r.state == state,
                        "damage at {at}+{len} loaded another state"
                    );
                    same += 1;
                }
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0, "{same} opened the same, none refused");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_store_written_before_records_were_sealed_is_sealed_on_open() {
        let d = dir("unsealed");
        let state = filled(&d);
        {
            // Strip the seals, as an older node wrote its records.
            let db = Database::create(d.join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut meta = tx.open_table(META).unwrap();
                meta.remove(SEALED).unwrap();
                let v = seal::unseal(meta.get(SNAPSHOT).unwrap().unwrap().value())
                    .unwrap()
                    .to_vec();
                meta.insert(SNAPSHOT, v.as_slice()).unwrap();
                let mut log = tx.open_table(LOG).unwrap();
                let all: Vec<(u64, Vec<u8>)> = log
                    .range(0..)
                    .unwrap()
                    .map(|e| {
                        let (k, v) = e.unwrap();
                        (k.value(), seal::unseal(v.value()).unwrap().to_vec())
                    })
                    .collect();
                for (k, v) in all {
                    log.insert(k, v.as_slice()).unwrap();
                }
                let mut cps = tx.open_table(CHECKPOINTS).unwrap();
                let v = seal::unseal(cps.get("cp").unwrap().unwrap().value())
                    .unwrap()
                    .to_vec();
                cps.insert("cp", v.as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let r = Durable::open(&d).unwrap();
        assert!(r.state == state);
        assert!(r.durable.checkpoint("cp").unwrap().is_some());
        drop(r);
        let again = Durable::open(&d).unwrap();
        assert!(again.state == state, "and reads the same once sealed");
        std::fs::remove_dir_all(d).unwrap();
    }

    /// Rewrites every record of the store in `d` in an older `encoding`, marked as the builds
    /// that wrote it marked their stores.
    fn as_older(d: &std::path::Path, encoding: codec::Encoding) {
        let older = |record: &[u8], checkpoint: bool| -> Vec<u8> {
            let bytes = if checkpoint {
                codec::encode_in(encoding, &unsealed::<Checkpoint>(record).unwrap())
            } else {
                codec::encode_in(encoding, &unsealed::<Store>(record).unwrap())
            };
            seal::seal(&bytes.unwrap())
        };
        let db = Database::create(d.join(DB_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            assert!(meta.remove(upgrade::SEQ_PACKED).unwrap().is_some());
            let mark = match encoding {
                codec::Encoding::SeqRuns => Some(upgrade::SEQ_RUNS),
                codec::Encoding::ItemByItem => Some(upgrade::CONTEXT_RUNS),
                _ => None,
            };
            if let Some(mark) = mark {
                meta.insert(mark, [1u8].as_slice()).unwrap();
            }
            let v = older(meta.get(SNAPSHOT).unwrap().unwrap().value(), false);
            meta.insert(SNAPSHOT, v.as_slice()).unwrap();
            let mut log = tx.open_table(LOG).unwrap();
            let all: Vec<(u64, Vec<u8>)> = log
                .range(0..)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), older(v.value(), false)))
                .collect();
            for (k, v) in all {
                log.insert(k, v.as_slice()).unwrap();
            }
            let mut cps = tx.open_table(CHECKPOINTS).unwrap();
            let v = older(cps.get("cp").unwrap().unwrap().value(), true);
            cps.insert("cp", v.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn stores_from_before_sequences_were_runs_or_packed_are_rewritten_on_open() {
        for (name, encoding) in [
            ("seq-runs", codec::Encoding::ItemByItem),
            ("seq-packed", codec::Encoding::SeqRuns),
        ] {
            let d = dir(name);
            let mut state = filled(&d);
            // A text long enough to be packed, and an edit of it.
            let body: String = (0..600).map(|i| format!("word{} ", i % 31)).collect();
            {
                let mut r = Durable::open(&d).unwrap();
                let path = vec![crdt::doc::Step::Field("body".into())];
                let note = write(
                    &mut r.state,
                    r.replica,
                    "note",
                    Op::DocPut(path.clone(), json!(body)),
                );
                let typed = write(
                    &mut r.state,
                    r.replica,
                    "note",
                    Op::DocSplice(path, 5, 0, ", world".into()),
                );
                r.durable.append([&note, &typed]).unwrap();
                state.join(&note);
                state.join(&typed);
                r.durable.compact(&state).unwrap();
            }
            let now = std::fs::read(d.join(DB_FILE)).unwrap();
            as_older(&d, encoding);
            assert_ne!(std::fs::read(d.join(DB_FILE)).unwrap(), now, "{name}");
            let r = Durable::open(&d).unwrap();
            assert_eq!(r.state, state, "{name}");
            let read = r.state.get("note").map(|o| o.value()).unwrap();
            assert!(read["body"]
                .as_str()
                .unwrap()
                .starts_with("word0, world word1"));
            drop(r);
            let again = Durable::open(&d).unwrap();
            assert_eq!(
                again.state, state,
                "{name}: and reads the same once rewritten"
            );
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn a_store_from_before_contexts_were_runs_is_rewritten_on_open() {
        let d = dir("runs");
        let mut state = filled(&d);
        {
            // Dots beyond a gap (another replica's third write, without its first two) and a
            // removal: contexts whose two encodings differ.
            let mut r = Durable::open(&d).unwrap();
            let mut theirs = Store::default();
            let writes: Vec<Store> = (0..3)
                .map(|i| {
                    let v = Value::from(json!(1000 + i));
                    write(&mut theirs, ReplicaId(99), "s", Op::SetAdd(v))
                })
                .collect();
            let gone = write(
                &mut r.state,
                r.replica,
                "s",
                Op::SetRemove(Value::from(json!(7))),
            );
            r.durable.append([&writes[2], &gone]).unwrap();
            state.join(&writes[2]);
            state.join(&gone);
            assert_eq!(r.state.joined(&writes[2]), state);
        }
        let runs = std::fs::read(d.join(DB_FILE)).unwrap();
        as_older(&d, codec::Encoding::DotByDot);
        assert_ne!(std::fs::read(d.join(DB_FILE)).unwrap(), runs);
        let r = Durable::open(&d).unwrap();
        assert_eq!(r.state, state);
        let cp = r
            .durable
            .checkpoint("cp")
            .unwrap()
            .expect("the checkpoint is read");
        assert!(cp.state.leq(&state) && !cp.state.is_empty());
        drop(r);
        let again = Durable::open(&d).unwrap();
        assert_eq!(again.state, state, "and reads the same once rewritten");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn backups_from_older_builds_restore() {
        let d = dir("backup-v1");
        let state = filled(&d);
        let backup = Backup {
            created_unix_ms: 1,
            state: state.clone(),
            checkpoints: vec![],
            next_index: 5,
        };
        for (magic, encoding) in [
            (&b"deltanode-backup/1\n"[..], codec::Encoding::DotByDot),
            (b"deltanode-backup/2\n", codec::Encoding::ItemByItem),
            (b"deltanode-backup/3\n", codec::Encoding::SeqRuns),
        ] {
            let mut older = magic.to_vec();
            older.extend(seal::seal(&codec::encode_in(encoding, &backup).unwrap()));
            assert_eq!(Backup::decode(&older).unwrap().state, state);
        }
        let now = backup.encode().unwrap();
        assert!(now.starts_with(b"deltanode-backup/4\n"));
        assert_eq!(Backup::decode(&now).unwrap().state, state);
        std::fs::remove_dir_all(d).unwrap();
    }
}
