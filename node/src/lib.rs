//! # deltanode — the node
//!
//! The thin async shell around the sans-IO `protocol` engine: the libp2p swarm, the store and its
//! persistence, the HTTP API, the CLI and the experiments command.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap) |
//! | [`node`] | `Node::start`, the `Client`, configuration and views |
//! | [`event_loop`] | the task that owns the swarm, the engine and the store |
//! | [`network`], [`codec`] | the libp2p swarm and the `/deltanode/sync/1` frame codec |
//! | [`identity`] | the node's key and the private-network key |
//! | [`persist`] | the durable store (redb): delta log, snapshot, checkpoints |
//! | [`api`], [`ops`] | the HTTP API and its JSON operations |
//! | [`feed`], [`metrics`] | the change feed and the Prometheus metrics |
//! | [`run`], [`ctl`] | `deltanode run` and `deltanode ctl` |
//! | [`experiments`] | `deltanode sim`: runs the simulator, prints the table, writes CSV and charts |

pub mod api;
pub mod cli;
pub mod codec;
pub mod ctl;
pub mod event_loop;
pub mod experiments;
pub mod feed;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;
pub mod persist;
pub mod run;
