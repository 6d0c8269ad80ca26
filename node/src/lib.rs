//! # deltanode — the node
//!
//! The thin async shell around the sans-IO `protocol` engine: the libp2p swarm, the store and its
//! persistence, the HTTP API, the CLI and the experiments command.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap) |
//! | [`experiments`] | `deltanode sim`: runs the simulator, prints the table, writes CSV and charts |

pub mod api;
pub mod cli;
pub mod codec;
pub mod ctl;
pub mod experiments;
pub mod feed;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod node;
pub mod ops;
pub mod persist;
pub mod run;
