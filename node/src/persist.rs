//! Durable storage of the replica in `DATA_DIR/state.redb` (redb: an embedded, crash-safe,
//! copy-on-write B-tree store; a commit returns once it is fsynced).
//!
//! Layout: a log of the deltas this replica applied (local writes and what was new in remote
//! groups), and a snapshot of the state covering the log up to some index. The state is the
//! snapshot joined with the log after it. When the log outgrows the snapshot (or 1 MiB), compaction
//! writes the current state as the new snapshot and drops the log in the same transaction, so the
//! file stays bounded by the state, not by history. The replica id is drawn once, when the store is
//! created, and kept: together with the state (whose causal contexts and counter entries say what
//! this replica already used) it keeps a restarted node from ever reusing a dot or a counter entry.

use anyhow::Context;
use crdt::{codec, Lattice, ReplicaId, Store};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
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
const SNAPSHOT: &str = "snapshot";

/// Log bytes below which compaction never runs.
const MIN_COMPACT_BYTES: u64 = 1 << 20;

/// redb's page cache.
const CACHE_BYTES: usize = 16 << 20;

/// The open store.
pub struct Durable {
    db: Database,
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
    /// This replica's id (drawn when the store was created).
    pub replica: ReplicaId,
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
    pub fn open_replaying(
        data_dir: &Path,
        replay: &mut dyn FnMut(Replayed<'_>),
    ) -> anyhow::Result<Recovered> {
        let path = data_dir.join(DB_FILE);
        // The state lives in memory; redb's page cache only speeds up reads of the log and the
        // snapshot, done once at start. Its default (1 GiB) would keep every page written.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Every start draws a fresh replica id (an *incarnation*), committed before any write
        // uses it: two copies of one data dir (a VM clone, a restored backup, a container image)
        // then never write under the same dots or counter entries, and neither does a node whose
        // state was lost. Each start adds one replica to the causal contexts and counters it
        // writes to (8 bytes and a counter each).
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let id: u64 = rand::random();
            meta.insert(REPLICA, id.to_le_bytes().as_slice())?;
            tx.open_table(LOG)?;
            tx.open_table(CHECKPOINTS)?;
            tx.open_table(ORIGINS)?;
        }
        tx.commit()?;
        let rx = db.begin_read()?;
        let meta = rx.open_table(META)?;
        let replica_bytes = meta
            .get(REPLICA)?
            .context("replica id missing")?
            .value()
            .to_vec();
        let replica = ReplicaId(u64::from_le_bytes(
            replica_bytes
                .as_slice()
                .try_into()
                .context("replica id is not 8 bytes")?,
        ));
        let (mut state, snapshot_bytes) = match meta.get(SNAPSHOT)? {
            Some(v) => (
                codec::decode_stored::<Store>(v.value()).context("the snapshot does not decode")?,
                v.value().len() as u64,
            ),
            None => (Store::default(), 0),
        };
        // Indexes start at 1 (a feed id of 0 would read as "nothing seen").
        let mut next_index = match meta.get(NEXT_INDEX)? {
            Some(v) => u64::from_le_bytes(v.value().try_into().unwrap_or_default()),
            None => 1,
        };
        let log = rx.open_table(LOG)?;
        let origins = rx.open_table(ORIGINS)?;
        let mut first_index = None;
        let mut log_bytes = 0;
        let entries = log.len()?;
        for (n, entry) in log.range(0..)?.enumerate() {
            let (k, v) = entry?;
            let index = k.value();
            let delta: Store = codec::decode_stored(v.value())
                .with_context(|| format!("log entry {index} does not decode"))?;
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
                db,
                next_index,
                log_bytes,
                snapshot_bytes,
            },
            replica,
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
        let tx = self.db.begin_write()?;
        let mut added = 0;
        let first = self.next_index;
        let mut index = first;
        {
            let mut log = tx.open_table(LOG)?;
            let mut origins = tx.open_table(ORIGINS)?;
            for d in deltas {
                let bytes = codec::encode(d)?;
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

    /// Writes `state` as the snapshot and empties the log.
    pub fn compact(&mut self, state: &Store) -> anyhow::Result<()> {
        let bytes = codec::encode(state)?;
        let tx = self.db.begin_write()?;
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
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(CHECKPOINTS)?;
            if table.get(label)?.is_some() {
                return Ok(false);
            }
            table.insert(label, codec::encode(checkpoint)?.as_slice())?;
        }
        tx.commit().context("committing a checkpoint")?;
        Ok(true)
    }

    /// The checkpoint `label`.
    pub fn checkpoint(&self, label: &str) -> anyhow::Result<Option<Checkpoint>> {
        let rx = self.db.begin_read()?;
        let table = rx.open_table(CHECKPOINTS)?;
        let found = table.get(label)?;
        found
            .map(|v| {
                codec::decode_stored(v.value())
                    .with_context(|| format!("checkpoint {label:?} does not decode"))
            })
            .transpose()
    }

    /// Every checkpoint's label, digest and time (not its state), by label.
    pub fn checkpoints(&self) -> anyhow::Result<Vec<(String, String, u64)>> {
        let rx = self.db.begin_read()?;
        let table = rx.open_table(CHECKPOINTS)?;
        let mut all = Vec::new();
        for entry in table.range::<&str>(..)? {
            let (k, v) = entry?;
            let c: Checkpoint = codec::decode_stored(v.value())?;
            all.push((k.value().to_string(), c.digest, c.created_unix_ms));
        }
        Ok(all)
    }

    /// Entries in the log.
    pub fn log_entries(&self) -> anyhow::Result<u64> {
        Ok(self.db.begin_read()?.open_table(LOG)?.len()?)
    }
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
}
