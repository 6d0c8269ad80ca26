//! Backups: `deltanode ctl backup FILE` takes one from a running node (`GET /v1/backup`: the
//! state and every checkpoint as of one moment on the node's loop), `deltanode restore` writes
//! one into a data dir's store. A backup file is a marker line and one sealed record
//! ([`super::seal`]): damage is found when it is restored, not after.
//!
//! A restored node writes under a fresh replica id, as after every start, so it never reuses a
//! dot its old self or its copies wrote after the backup; its neighbours bring it up to date.

use super::upgrade::{unsealed, SEQ_PACKED};
use super::{seal, Checkpoint, CHECKPOINTS, DB_FILE, META, NEXT_INDEX, SEALED, SNAPSHOT};
use anyhow::Context;
use crdt::codec::{self, Encoding};
use crdt::Store;
use redb::Database;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The first bytes of a backup file: `/4` for this build's encoding, `/3`, `/2` and `/1` for
/// older builds' (large sequences not deflated; sequences item by item too; causal contexts dot
/// by dot too).
const MAGIC: &[u8] = b"deltanode-backup/4\n";
const OLDER: [(&[u8], Encoding); 3] = [
    (b"deltanode-backup/3\n", Encoding::SeqRuns),
    (b"deltanode-backup/2\n", Encoding::ItemByItem),
    (b"deltanode-backup/1\n", Encoding::DotByDot),
];

/// A node's durable content as of one moment.
#[derive(Serialize, Deserialize)]
pub struct Backup {
    /// When it was taken.
    pub created_unix_ms: u64,
    /// The state.
    pub state: Store,
    /// Every checkpoint, by label.
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// The log index the node had reached (feed ids continue past it).
    pub next_index: u64,
}

impl Backup {
    /// The backup file's bytes.
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = MAGIC.to_vec();
        out.extend(seal::seal(&codec::encode(self)?));
        Ok(out)
    }

    /// A backup file's content, checked.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Backup> {
        let (record, encoding) = std::iter::once((MAGIC, Encoding::CURRENT))
            .chain(OLDER)
            .find_map(|(magic, encoding)| Some((bytes.strip_prefix(magic)?, encoding)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "not a deltanode backup (its first line is not deltanode-backup/4, /3, /2 or /1)"
                )
            })?;
        unsealed(encoding, record).map_err(|e| anyhow::anyhow!("the backup is damaged: {e}"))
    }
}

/// What `deltanode restore` did.
#[derive(Debug)]
pub struct Restored {
    /// Objects in the restored state.
    pub objects: usize,
    /// Checkpoints restored.
    pub checkpoints: usize,
    /// Where the store it replaced went (`--force`), if there was one.
    pub replaced: Option<PathBuf>,
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "restored {} objects and {} checkpoints",
            self.objects, self.checkpoints
        )?;
        if let Some(p) = &self.replaced {
            write!(f, "; the store it replaced is now {}", p.display())?;
        }
        write!(
            f,
            ". Start the node: it writes under a new replica id and its neighbours send what \
             came after the backup."
        )
    }
}

/// Writes `backup` as `data_dir`'s store. A data dir that has one is refused unless `force`,
/// which sets it aside (`state.redb.replaced-UNIX_MS`).
pub fn restore(data_dir: &Path, backup: &Backup, force: bool) -> anyhow::Result<Restored> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(DB_FILE);
    let replaced = if path.exists() {
        anyhow::ensure!(
            force,
            "{} exists: restoring would replace the node's state (add --force to set it aside)",
            path.display()
        );
        let ms = crate::clock::unix_ms();
        let aside = data_dir.join(format!("{DB_FILE}.replaced-{ms}"));
        std::fs::rename(&path, &aside)?;
        Some(aside)
    } else {
        None
    };
    // Written beside, then renamed into place: a restore cut short leaves no half store.
    let tmp = data_dir.join(format!("{DB_FILE}.restoring"));
    let _ = std::fs::remove_file(&tmp);
    {
        let db = Database::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            meta.insert(SEALED, [1u8].as_slice())?;
            meta.insert(SEQ_PACKED, [1u8].as_slice())?;
            meta.insert(
                SNAPSHOT,
                seal::seal(&codec::encode(&backup.state)?).as_slice(),
            )?;
            meta.insert(NEXT_INDEX, backup.next_index.to_le_bytes().as_slice())?;
            let mut checkpoints = tx.open_table(CHECKPOINTS)?;
            for (label, c) in &backup.checkpoints {
                checkpoints.insert(label.as_str(), seal::seal(&codec::encode(c)?).as_slice())?;
            }
        }
        tx.commit().context("writing the restored store")?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(Restored {
        objects: backup.state.len(),
        checkpoints: backup.checkpoints.len(),
        replaced,
    })
}
