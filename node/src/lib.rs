//! # deltanode — the node
//!
//! The thin async shell around the sans-IO `protocol` engine: the libp2p swarm, the store and its
//! persistence, the HTTP API, the CLI and the experiments command.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap) |
//! | [`node`] | `Node::start`: builds a node and runs it |
//! | [`config`] | `NodeConfig`: how a node runs |
//! | [`client`] | the `Client` handle the API and embedding apps use |
//! | `replica` | the write path: engine, store, durable log, feed |
//! | `peers` | swarm, connections, redial, frames |
//! | `peer_book` | peers met, kept in the data dir and dialled on start |
//! | [`peer_exchange`] | `/deltanode/peers/1`: samples of the peer book between neighbours |
//! | `event_loop` | the task that routes between replica, peers and clients |
//! | [`views`], [`snapshot`] | what reads return; owned snapshots for whole-store reads |
//! | [`sync_history`] | what the node sent since it started, sampled for the dashboard |
//! | [`network`], [`codec`] | the libp2p swarm and the `/deltanode/sync/1` frame codec |
//! | [`identity`] | the node's key and the private-network key |
//! | [`persist`] | the durable store (redb): delta log, snapshot, checkpoints |
//! | [`api`], [`ops`] | the HTTP API and its JSON operations |
//! | [`feed`], [`metrics`], [`prometheus`] | the change feed; what the shell counts; `/metrics` |
//! | [`clock`], [`clock_frames`] | the wall clock; the frames neighbours read each other's clocks with |
//! | [`run`], [`ctl`] | `deltanode run` and `deltanode ctl` |
//! | `experiments` | `deltanode sim`: runs the simulator, prints the table, writes CSV and charts |

#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod client;
pub mod clock;
pub mod clock_frames;
pub mod codec;
pub mod config;
pub mod ctl;
mod event_loop;
#[cfg(feature = "experiments")]
pub mod experiments;
pub mod feed;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;
mod peer_book;
pub mod peer_exchange;
mod peers;
pub mod persist;
pub mod prometheus;
mod replica;
pub mod run;
pub mod snapshot;
pub mod sync_history;
pub mod views;
