//! Getting a node with a damaged store going again: `deltanode repair` keeps every record that
//! is intact, and `--recover-from-peers` keeps none; both set the damaged file aside (never
//! delete it) and leave the rest to the neighbours, which catch the node up like any node that
//! was away. The node writes under a fresh replica id afterwards, as after every start, so what it
//! lost can never be written again under the same dots.

use super::upgrade::{encoding_of, unsealed, SEQ_PACKED};
use super::{seal, Durable, CHECKPOINTS, DB_FILE, LOG, META, NEXT_INDEX, SEALED, SNAPSHOT};
use anyhow::Context;
use crdt::{codec, Lattice, Store};
use redb::{Database, ReadableDatabase};
use std::path::{Path, PathBuf};

/// What `deltanode repair` did.
#[derive(Debug, Default)]
pub struct Repaired {
    /// Where the damaged file went (`None`: nothing was damaged, nothing changed).
    pub set_aside: Option<PathBuf>,
    /// Whether redb could read the file's structure at all.
    pub readable: bool,
    /// Whether the snapshot was intact (`None`: there was none).
    pub snapshot: Option<bool>,
    /// Log entries kept and dropped.
    pub log: (u64, u64),
    /// Checkpoints kept and dropped.
    pub checkpoints: (u64, u64),
}

impl std::fmt::Display for Repaired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(aside) = &self.set_aside else {
            return write!(f, "nothing is damaged: nothing was changed");
        };
        if !self.readable {
            write!(
                f,
                "the store could not be read at all: the node starts empty"
            )?;
        } else {
            let snapshot = match self.snapshot {
                Some(true) => "kept",
                Some(false) => "damaged, dropped",
                None => "none",
            };
            write!(
                f,
                "snapshot: {snapshot}; log entries kept {} of {}; checkpoints kept {} of {}",
                self.log.0,
                self.log.0 + self.log.1,
                self.checkpoints.0,
                self.checkpoints.0 + self.checkpoints.1
            )?;
        }
        write!(
            f,
            ". The damaged file is now {}. Start the node: its neighbours send it what was lost.",
            aside.display()
        )
    }
}

/// Moves `data_dir`'s store aside (`state.redb.damaged-UNIX_MS`), synced; returns where to.
pub fn set_aside(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let from = data_dir.join(DB_FILE);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let to = data_dir.join(format!("{DB_FILE}.damaged-{ms}"));
    std::fs::rename(&from, &to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(to)
}

/// Repairs `data_dir`'s store: if it is damaged, keeps what is intact in a new one and sets the
/// damaged file aside. A store that opens as it is stays untouched.
pub fn repair(data_dir: &Path) -> anyhow::Result<Repaired> {
    let path = data_dir.join(DB_FILE);
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    match Durable::open(data_dir) {
        Ok(_) => return Ok(Repaired::default()),
        Err(e) if e.downcast_ref::<super::Damaged>().is_none() => return Err(e),
        Err(_) => {}
    }
    let salvage = std::panic::catch_unwind(|| salvage(&path))
        .ok()
        .and_then(Result::ok);
    let mut report = Repaired {
        set_aside: Some(set_aside(data_dir)?),
        ..Repaired::default()
    };
    let Some(s) = salvage else {
        return Ok(report);
    };
    report.readable = true;
    report.snapshot = s.snapshot;
    report.log = s.log;
    report.checkpoints = (s.checkpoints.len() as u64, s.checkpoints_dropped);
    let db = Database::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        meta.insert(SEALED, [1u8].as_slice())?;
        meta.insert(SEQ_PACKED, [1u8].as_slice())?;
        meta.insert(SNAPSHOT, seal::seal(&codec::encode(&s.state)?).as_slice())?;
        meta.insert(NEXT_INDEX, s.next_index.to_le_bytes().as_slice())?;
        let mut checkpoints = tx.open_table(CHECKPOINTS)?;
        for (label, record) in &s.checkpoints {
            checkpoints.insert(label.as_str(), record.as_slice())?;
        }
    }
    tx.commit().context("writing the repaired store")?;
    Ok(report)
}

/// What could be read of a damaged store.
struct Salvage {
    state: Store,
    snapshot: Option<bool>,
    log: (u64, u64),
    checkpoints: Vec<(String, Vec<u8>)>,
    checkpoints_dropped: u64,
    next_index: u64,
}

/// Reads every intact record of the store at `path` (errors if redb cannot read it at all).
fn salvage(path: &Path) -> anyhow::Result<Salvage> {
    let db = Database::open(path)?;
    let rx = db.begin_read()?;
    let meta = rx.open_table(META)?;
    let encoding = encoding_of(&meta);
    let mut state = Store::default();
    let snapshot = meta.get(SNAPSHOT).ok().flatten().map(|v| {
        unsealed::<Store>(encoding, v.value())
            .map(|s| state.join(&s))
            .is_ok()
    });
    let mut next_index = meta
        .get(NEXT_INDEX)
        .ok()
        .flatten()
        .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
        .unwrap_or(1);
    let (mut kept, mut dropped) = (0, 0);
    if let Ok(log) = rx.open_table(LOG) {
        if let Ok(range) = log.range(0..) {
            for entry in range {
                let Ok((k, v)) = entry else {
                    dropped += 1;
                    break;
                };
                next_index = next_index.max(k.value() + 1);
                match unsealed::<Store>(encoding, v.value()) {
                    Ok(delta) => {
                        state.join(&delta);
                        kept += 1;
                    }
                    Err(_) => dropped += 1,
                }
            }
        }
    }
    let (mut checkpoints, mut checkpoints_dropped) = (Vec::new(), 0);
    if let Ok(table) = rx.open_table(CHECKPOINTS) {
        if let Ok(range) = table.range::<&str>(..) {
            for entry in range.flatten() {
                // Re-encoded in the current encoding (the store may be an older build's).
                let record = unsealed::<super::Checkpoint>(encoding, entry.1.value())
                    .ok()
                    .and_then(|c| codec::encode(&c).ok())
                    .map(|bytes: Vec<u8>| seal::seal(&bytes));
                match record {
                    Some(record) => checkpoints.push((entry.0.value().to_string(), record)),
                    None => checkpoints_dropped += 1,
                }
            }
        }
    }
    Ok(Salvage {
        state,
        snapshot,
        log: (kept, dropped),
        checkpoints,
        checkpoints_dropped,
        next_index,
    })
}
