//! The command line. Each subcommand's arguments are a struct the library takes as is.

use clap::{Args, Parser, Subcommand};
use protocol::sim::topology::Topology;
use protocol::sim::workload::WorkloadSpec;
use protocol::Algorithm;
use std::path::PathBuf;

/// A peer-to-peer node replicating delta-state CRDTs.
#[derive(Debug, Parser)]
#[command(name = "deltanode", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the deterministic multi-node simulation and compare algorithms.
    Sim(SimArgs),
}

/// `deltanode sim`: lists are comma-separated, and every combination is run.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Topologies: mesh (4 neighbours each), tree (degree ≤ 3), ring, line, full, random:D.
    #[arg(long, value_delimiter = ',', default_value = "mesh")]
    pub topology: Vec<Topology>,
    /// Number of nodes.
    #[arg(long, default_value_t = 15)]
    pub nodes: usize,
    /// Workloads: gset, gcounter, gmap:K (percent of a node's keys per event), retwis:ZIPF.
    #[arg(long, value_delimiter = ',', default_value = "gset")]
    pub workload: Vec<WorkloadSpec>,
    /// Algorithms (state, delta, bp, rr, bp-rr, scuttlebutt, op), or `all`.
    #[arg(long, default_value = "all", value_parser = parse_algorithms)]
    pub algorithms: AlgorithmList,
    /// Events per node, one per sync round.
    #[arg(long, default_value_t = 100)]
    pub events: u64,
    /// Seed for topology, workload and faults.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub dup: f64,
    /// Deliver each round's messages in random order.
    #[arg(long)]
    pub reorder: bool,
    /// Delay messages by up to this many rounds.
    #[arg(long, default_value_t = 0)]
    pub delay: u64,
    /// Split the network in two halves for a while, then heal it.
    #[arg(long)]
    pub partition: bool,
    /// Crash and restart random nodes during the run.
    #[arg(long)]
    pub crashes: bool,
    /// Where to write results.csv and the charts.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// A parsed `--algorithms` value.
#[derive(Clone, Debug)]
pub struct AlgorithmList(pub Vec<Algorithm>);

fn parse_algorithms(s: &str) -> Result<AlgorithmList, String> {
    if s == "all" {
        return Ok(AlgorithmList(Algorithm::ALL.to_vec()));
    }
    s.split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map(AlgorithmList)
}
