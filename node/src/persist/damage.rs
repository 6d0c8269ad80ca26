//! A store found damaged at start: the error that names the file and the ways out.

use std::fmt;
use std::path::{Path, PathBuf};

/// `file` is damaged (`what` says where): the node refuses to start rather than load another
/// state or pass it on to its peers.
#[derive(Debug)]
pub struct Damaged {
    /// The damaged file.
    pub file: PathBuf,
    /// What is wrong, and where.
    pub what: String,
}

impl Damaged {
    /// `file` damaged as `what` says.
    pub fn new(file: &Path, what: String) -> Self {
        Damaged {
            file: file.to_path_buf(),
            what,
        }
    }
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        write!(
            f,
            "{} is damaged: {}. Nothing was changed. Ways out: `deltanode repair --data-dir {}` \
             keeps what is intact and sets the damaged file aside; or start with \
             `--recover-from-peers`, which sets it aside and lets the neighbours catch the node up",
            self.file.display(),
            self.what,
            dir.display()
        )
    }
}

impl std::error::Error for Damaged {}

/// The storage error inside one of redb's error types, if `e` is one that carries it.
pub fn storage_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a redb::StorageError> {
    use redb::{CommitError, DatabaseError, StorageError, TableError, TransactionError};
    if let Some(s) = e.downcast_ref::<StorageError>() {
        return Some(s);
    }
    match (
        e.downcast_ref(),
        e.downcast_ref(),
        e.downcast_ref(),
        e.downcast_ref(),
    ) {
        (Some(DatabaseError::Storage(s)), _, _, _)
        | (_, Some(TableError::Storage(s)), _, _)
        | (_, _, Some(TransactionError::Storage(s)), _)
        | (_, _, _, Some(CommitError::Storage(s))) => Some(s),
        _ => None,
    }
}

/// Whether redb said, anywhere in `e`'s chain, that the file is corrupted.
pub fn is_corruption(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(storage_error(c), Some(redb::StorageError::Corrupted(_)))
            || matches!(c.downcast_ref(), Some(redb::Error::Corrupted(_)))
    })
}
