//! A store that cannot take writes (a full disk, an I/O error): the node keeps serving reads,
//! `/health` and `/metrics`, refuses writes, pauses sync, and comes back by itself once a probe
//! commit succeeds.

/// Why the store takes no writes.
#[derive(Clone, Debug)]
pub struct Degraded {
    /// What failed, for `/health` and the error answers.
    pub reason: String,
    /// The disk (or the user's quota) is full: writes are answered 507.
    pub disk_full: bool,
    /// Ticks until the next probe, and the gap after a failed one.
    pub(crate) wait: u32,
    pub(crate) backoff: u32,
}

impl Degraded {
    /// From a store error.
    pub fn of(e: &anyhow::Error) -> Self {
        Degraded {
            reason: format!("{e:#}"),
            disk_full: is_disk_full(e),
            wait: 0,
            backoff: 0,
        }
    }
}

/// Whether `e` says the disk or the quota is full (ENOSPC, EDQUOT), anywhere in its chain.
pub fn is_disk_full(e: &anyhow::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    let full = |io: &std::io::Error| {
        io.kind() == std::io::ErrorKind::StorageFull
            || io.kind() == std::io::ErrorKind::QuotaExceeded
            || matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
    };
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(full)
            || matches!(crate::persist::storage_error(c), Some(redb::StorageError::Io(io)) if full(io))
            || matches!(c.downcast_ref(), Some(redb::Error::Io(io)) if full(io))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_from_other_failures_through_the_chain() {
        let full = anyhow::Error::from(redb::StorageError::Io(std::io::Error::from_raw_os_error(
            28,
        )))
        .context("committing to the store");
        assert!(is_disk_full(&full));
        assert!(Degraded::of(&full).disk_full);
        let other = anyhow::Error::from(std::io::Error::from_raw_os_error(5)).context("committing");
        assert!(!is_disk_full(&other));
    }
}
