//! # protocol — the sans-IO delta-group synchronisation engine
//!
//! The algorithm of Enes et al., "Efficient Synchronization of State-based CRDTs" (ICDE 2019), as a
//! deterministic state machine generic over the peer id and the lattice: inputs in, outputs out,
//! no sockets, no tasks, no clock. The node crate drives it over libp2p; the simulator drives
//! hundreds of copies in memory.
//!
//! | module | what |
//! |---|---|
//! | [`algorithm`] | `bp-rr`, `bp`, `rr`, `delta`, `state`, and the baselines' names |
//! | [`peer`] | the `PeerId` trait: what the engine needs of a peer identity |
//! | [`engine`] | the engine: `Input` → `handle` → `Output`, per-neighbour acks, catch-up |
//! | [`reconcile`] | range-based set reconciliation over join-decompositions: catch-up in proportion to the difference |
//! | [`buffer`] | the delta-buffer of `(seq, origin, group)` entries |
//! | [`tree`] | `bp-rr-tree`'s spanning tree: eager and lazy links, beacons |
//! | [`membership`] | bounded partial views (HyParView): active and passive views, join, shuffle, repair |
//! | [`message`] | wire messages and their size in the paper's units |
//! | [`wire`] | frames: version byte, size limit, the codec |
//! | `baseline` | Scuttlebutt and op-based causal broadcast, for the simulator (feature `sim`) |
//! | `sim` | the deterministic simulator: topologies, workloads, faults, reports (feature `sim`) |
//! | [`error`] | the crate's error type |

#![deny(missing_docs)]

pub mod algorithm;
#[cfg(feature = "sim")]
pub mod baseline;
pub mod buffer;
pub mod engine;
pub mod error;
pub mod membership;
pub mod message;
pub mod peer;
pub mod reconcile;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tree;
pub mod wire;

pub use algorithm::Algorithm;
pub use buffer::{DeltaBuffer, Origin};
pub use engine::{Config, Engine, Event, Input, Neighbour, Output, Stats};
pub use error::ProtocolError;
pub use message::Message;
pub use peer::PeerId;
