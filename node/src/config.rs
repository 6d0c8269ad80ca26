//! How a node runs: [`NodeConfig`].

use libp2p::{Multiaddr, PeerId};
use protocol::{wire, Algorithm};
use std::path::PathBuf;
use std::time::Duration;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the identity and the store live.
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep redialling, each ending in `/p2p/ID`.
    pub peers: Vec<Multiaddr>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// When not empty, only these peers are neighbours.
    pub neighbours: Vec<PeerId>,
    /// How often each neighbour is sent what it lacks.
    pub sync_interval: Duration,
    /// The sync algorithm (one of `Algorithm::ON_THE_WIRE`).
    pub algorithm: Algorithm,
    /// The private-network pre-shared key file.
    pub swarm_key: Option<PathBuf>,
    /// The largest frame sent or accepted.
    pub max_frame: usize,
    /// A peer disconnected for longer than this leaves `/v1/peers` and the per-peer metrics, and
    /// is no longer redialled (unless it is a `--peer`); it stays in the peer book for restarts.
    pub forget_after: Duration,
    /// Bounded partial views (`protocol::membership`, HyParView): at most this many neighbours,
    /// the other peers known kept as candidates. `None`: every sync peer found is a neighbour.
    pub max_neighbours: Option<usize>,
    /// A store found damaged at start is set aside and the node starts empty, to be caught up by
    /// its neighbours (else it refuses to start).
    pub recover_from_peers: bool,
    /// Neighbours' last-writer-wins writes stamped more than this ahead of the local clock are
    /// held until it is within it. `None`: no bound.
    pub max_clock_skew: Option<Duration>,
}

impl NodeConfig {
    /// Defaults as the CLI has them, for `data_dir`, on loopback with mDNS off (for tests and apps).
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")],
            peers: vec![],
            mdns: false,
            neighbours: vec![],
            sync_interval: Duration::from_millis(500),
            algorithm: Algorithm::BpRr,
            swarm_key: None,
            max_frame: wire::DEFAULT_MAX_FRAME,
            forget_after: Duration::from_secs(600),
            max_neighbours: None,
            recover_from_peers: false,
            max_clock_skew: Some(Duration::from_secs(30)),
        }
    }
}
