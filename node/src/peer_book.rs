//! The peer book: every peer met that speaks sync, with the listen addresses it announced (through
//! identify) and when it was last seen, kept in `DATA_DIR/peers.json`. On start the node dials its
//! book besides `--peer`, so a node restarted on a new port finds its neighbours again even when
//! nobody knows its new address. A missing file is an empty book; a damaged one is logged and
//! started over (the book is a hint, never data).

use crate::clock::unix_ms;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file, in the data dir.
pub const FILE: &str = "peers.json";

/// Peers kept at most (the least recently seen go first).
pub const MAX_PEERS: usize = 1_000;

/// Addresses kept per peer at most.
const MAX_ADDRS: usize = 8;

/// One peer in the book.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it listens, as it announced.
    pub addrs: Vec<Multiaddr>,
    /// When it was last seen (ms since the epoch).
    pub last_seen_unix_ms: u64,
}

/// The book. See the module docs.
#[derive(Debug)]
pub struct PeerBook {
    path: PathBuf,
    entries: BTreeMap<PeerId, Entry>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    peers: BTreeMap<String, Entry>,
}

impl PeerBook {
    /// The book of `data_dir`.
    pub fn load(data_dir: &Path) -> PeerBook {
        let path = data_dir.join(FILE);
        let entries = match std::fs::read(&path) {
            Err(_) => BTreeMap::new(),
            Ok(bytes) => match serde_json::from_slice::<OnDisk>(&bytes) {
                Ok(d) => d
                    .peers
                    .into_iter()
                    .filter_map(|(p, e)| Some((p.parse().ok()?, e)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "the peer book does not parse; starting an empty one");
                    BTreeMap::new()
                }
            },
        };
        PeerBook { path, entries }
    }

    /// Every peer in the book.
    pub fn entries(&self) -> impl Iterator<Item = (&PeerId, &Entry)> {
        self.entries.iter()
    }

    /// `peer` was seen now, listening on `addrs` (kept as they are when empty); saved at once.
    pub fn record(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        let entry = self.entries.entry(peer).or_insert_with(|| Entry {
            addrs: Vec::new(),
            last_seen_unix_ms: 0,
        });
        if !addrs.is_empty() {
            entry.addrs = addrs.iter().take(MAX_ADDRS).cloned().collect();
        }
        entry.last_seen_unix_ms = unix_ms();
        while self.entries.len() > MAX_PEERS {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_seen_unix_ms)
                .map(|(p, _)| *p)
                .expect("not empty");
            self.entries.remove(&oldest);
        }
        if let Err(e) = self.save() {
            tracing::warn!(path = %self.path.display(), error = %e, "the peer book was not saved");
        }
    }

    /// Peers heard of from a neighbour (peer exchange): those the book does not hold are added,
    /// as never seen by this node (the first to go when the book is full). Saved once.
    pub fn heard(&mut self, peers: &[(PeerId, Vec<Multiaddr>)]) {
        let mut changed = false;
        for (peer, addrs) in peers {
            if !self.entries.contains_key(peer)
                && self.entries.len() < MAX_PEERS
                && !addrs.is_empty()
            {
                self.entries.insert(
                    *peer,
                    Entry {
                        addrs: addrs.iter().take(MAX_ADDRS).cloned().collect(),
                        last_seen_unix_ms: 0,
                    },
                );
                changed = true;
            }
        }
        if changed {
            if let Err(e) = self.save() {
                tracing::warn!(path = %self.path.display(), error = %e, "the peer book was not saved");
            }
        }
    }

    /// A sample for `to`: the most recently seen peers with addresses, `to` left out.
    pub fn sample(&self, to: &PeerId, max: usize) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut peers: Vec<(&PeerId, &Entry)> = self
            .entries
            .iter()
            .filter(|(p, e)| *p != to && !e.addrs.is_empty())
            .collect();
        peers.sort_by_key(|(_, e)| std::cmp::Reverse(e.last_seen_unix_ms));
        peers
            .into_iter()
            .take(max)
            .map(|(p, e)| (*p, e.addrs.clone()))
            .collect()
    }

    /// Writes the book (to a temporary file, then renamed over the old one: never half a book).
    fn save(&self) -> std::io::Result<()> {
        let disk = OnDisk {
            peers: self
                .entries
                .iter()
                .map(|(p, e)| (p.to_string(), e.clone()))
                .collect(),
        };
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&disk)?)?;
        std::fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_survives_a_reload_and_a_damaged_file_starts_over() {
        let dir = std::env::temp_dir().join(format!("deltanode-book-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let mut book = PeerBook::load(&dir);
        assert_eq!(book.entries().count(), 0);
        book.record(peer, std::slice::from_ref(&addr));
        book.record(peer, &[]);
        let again = PeerBook::load(&dir);
        let (p, e) = again.entries().next().unwrap();
        assert_eq!(
            (p, &e.addrs),
            (&peer, &vec![addr]),
            "empty announcements keep the addresses"
        );
        std::fs::write(dir.join(FILE), b"{not json").unwrap();
        assert_eq!(PeerBook::load(&dir).entries().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
