//! The command line. Each subcommand's arguments are a struct the library takes as is.

use clap::{Args, Parser, Subcommand, ValueEnum};
use libp2p::{Multiaddr, PeerId};
#[cfg(feature = "experiments")]
use protocol::sim::{topology::Topology, workload::WorkloadSpec, Timing};
use protocol::Algorithm;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A peer-to-peer node replicating delta-state CRDTs.
#[derive(Debug, Parser)]
#[command(name = "deltanode", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Each subcommand's examples, shown after its help (a test parses every line, so none can rot).
const RUN_EXAMPLES: &str = "Examples:
  deltanode run --data-dir ./a     # on a LAN: mDNS finds the others, up to 8 become neighbours
  deltanode run --data-dir ./b --no-mdns --api 127.0.0.1:7702 --peer /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGQYS8mgBctYHpagtMDG6amBch26hLmtNv4RcqEM7gG3y
  deltanode run --algorithm bp-rr --max-neighbours 0     # the paper's algorithm, every peer found a neighbour
  DELTANODE_API_TOKEN=s3cret deltanode run --api 0.0.0.0:7700 --swarm-key swarm.key";
const ID_EXAMPLES: &str = "Examples:
  deltanode id --data-dir ./a      # the PeerId other nodes name in --peer …/p2p/ID and --neighbour";
const REPAIR_EXAMPLES: &str = "Examples:
  deltanode repair --data-dir ./a  # after `run` refused a damaged store; then run the node again";
const RESTORE_EXAMPLES: &str = "Examples:
  deltanode restore --data-dir ./a-restored a.backup     # a new node from a backup
  deltanode restore --data-dir ./a --force a.backup      # back in place (the old store is set aside)";
const CTL_EXAMPLES: &str = "Examples:
  deltanode ctl health
  deltanode ctl wait --timeout 60    # go on once a node just started answers
  deltanode ctl --api 127.0.0.1:7702 add tags rust
  deltanode ctl inc visits 5
  deltanode ctl put profile name ada
  deltanode ctl --json get tags    # the API's JSON, for scripts
  deltanode ctl backup a.backup    # the running node's state and checkpoints, to a file
  deltanode ctl --api https://localhost:7710 --cacert api.crt health    # a node serving TLS";
#[cfg(feature = "experiments")]
const SIM_EXAMPLES: &str = "Examples:
  deltanode sim --topology mesh,tree --workload gset,gcounter --out results/paper
  deltanode sim --topology overlay --max-neighbours 8 --churn 0.05 --nodes 1000 --events 1 --algorithms bp-rr,bp-rr-tree --out results/churn
  deltanode sim --preload 1000000 --diverge 10,1% --out results/catchup     # catch-up, reconciliation against full state";
#[cfg(feature = "experiments")]
const TOPOLOGY_EXAMPLES: &str = "Examples:
  deltanode topology --topology mesh --nodes 15
  deltanode topology --topology overlay:8 --nodes 100 --seed 3";
#[cfg(feature = "experiments")]
const CHARTS_EXAMPLES: &str = "Examples:
  deltanode charts results/paper/results.csv --out results/paper/charts";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Print the node's PeerId, creating its identity key if absent.
    #[command(after_help = ID_EXAMPLES)]
    Id {
        /// The node's data directory.
        #[arg(long, default_value = "./deltanode-data")]
        data_dir: PathBuf,
    },
    /// Repair a node's damaged store (the node stopped): keep every intact record, set the
    /// damaged file aside; the neighbours send the rest once the node runs again.
    #[command(after_help = REPAIR_EXAMPLES)]
    Repair {
        /// The node's data directory.
        #[arg(long, default_value = "./deltanode-data")]
        data_dir: PathBuf,
    },
    /// Restore a backup (from `deltanode ctl backup`) into a data dir, the node stopped.
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore {
        /// The node's data directory.
        #[arg(long, default_value = "./deltanode-data")]
        data_dir: PathBuf,
        /// Replace a store the data dir already has (it is set aside, not deleted).
        #[arg(long)]
        force: bool,
        /// The backup file.
        file: PathBuf,
    },
    /// Talk to a running node over its HTTP API.
    #[command(after_help = CTL_EXAMPLES)]
    Ctl(CtlArgs),
    /// Run the deterministic multi-node simulation and compare algorithms.
    #[cfg(feature = "experiments")]
    #[command(after_help = SIM_EXAMPLES)]
    Sim(SimArgs),
    /// Print a topology's edges as JSON (`[[a,b],…]`), as the simulator builds it (for scripts).
    #[cfg(feature = "experiments")]
    #[command(after_help = TOPOLOGY_EXAMPLES)]
    Topology {
        /// mesh, tree, ring, line, full, random:D or overlay[:K].
        #[arg(long)]
        topology: Topology,
        /// Number of nodes.
        #[arg(long)]
        nodes: usize,
        /// Seed (random:D and overlay only).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Draw the charts of a results.csv (from `sim` or scripts/experiment.py) into a directory.
    #[cfg(feature = "experiments")]
    #[command(after_help = CHARTS_EXAMPLES)]
    Charts {
        /// The results.csv to read.
        csv: PathBuf,
        /// Where to write the PNGs (default: the CSV's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `deltanode ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The node's API address (before or after the subcommand).
    #[arg(
        long,
        global = true,
        env = "DELTANODE_API",
        default_value = "127.0.0.1:7700"
    )]
    pub api: String,
    /// Bearer token, if the node wants one (before or after the subcommand).
    #[arg(long, global = true, env = "DELTANODE_API_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub token: Option<String>,
    /// Print the API's JSON as is (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// A certificate (PEM) to trust for an https:// --api: the node's own, self-signed, or the
    /// CA that signed it (without it, the usual public roots).
    #[arg(long, global = true, env = "DELTANODE_CACERT")]
    pub cacert: Option<std::path::PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `deltanode ctl` commands. Values are JSON when they parse as JSON, else strings.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The node's health.
    Health,
    /// Waits until the node answers (for scripts that start one), then prints its health;
    /// fails after --timeout seconds.
    Wait {
        /// Seconds to wait at most.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Every object and the state digest.
    State,
    /// One object.
    Get {
        /// Its key.
        key: String,
    },
    /// Apply an operation given as JSON, e.g. '{"type":"set","op":"add","value":1}'.
    Op {
        /// The key.
        key: String,
        /// The operation, as JSON.
        operation: String,
    },
    /// Increment a counter (type `counter`; negative to decrement).
    Inc {
        /// The key.
        key: String,
        /// The amount.
        #[arg(default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
    },
    /// Add an element to an add-wins set.
    Add {
        /// The key.
        key: String,
        /// The element.
        value: String,
    },
    /// Remove an element from an add-wins set.
    Remove {
        /// The key.
        key: String,
        /// The element.
        value: String,
    },
    /// Write a field of a map.
    Put {
        /// The key.
        key: String,
        /// The field.
        field: String,
        /// The value.
        value: String,
    },
    /// The peers and their sync state.
    Peers,
    /// Every type clash and every register or map field holding concurrent values.
    Conflicts,
    /// Settle a type clash: KEY keeps type KEEP (its other types are retired).
    Resolve {
        /// The key.
        key: String,
        /// The type to keep (counter, set, map, …).
        keep: String,
    },
    /// Start a sync round now.
    Sync,
    /// Save a backup of the running node (its state and checkpoints, as of one moment) to FILE;
    /// `deltanode restore` puts it back.
    Backup {
        /// Where to write it.
        file: PathBuf,
    },
    /// Save the current state as a named checkpoint.
    Checkpoint {
        /// Its name.
        label: String,
    },
    /// List the checkpoints.
    Checkpoints,
    /// Revert every object changed since a checkpoint, cluster-wide.
    Rollback {
        /// The checkpoint.
        label: String,
        /// Revert what can be, even if some objects cannot (grow-only).
        #[arg(long)]
        partial: bool,
    },
    /// Print the change feed as it happens (Ctrl-C to stop).
    Watch {
        /// Resume after this event id.
        #[arg(long)]
        since: Option<String>,
    },
}

/// Log line format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `deltanode run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the node keeps its identity and data.
    #[arg(long, env = "DELTANODE_DATA_DIR", default_value = "./deltanode-data")]
    pub data_dir: PathBuf,
    /// Address to listen on for peers (repeatable).
    #[arg(
        long,
        env = "DELTANODE_LISTEN",
        value_delimiter = ',',
        default_value = "/ip4/0.0.0.0/tcp/0"
    )]
    pub listen: Vec<Multiaddr>,
    /// Address of the HTTP API (port 0 picks one).
    #[arg(long, env = "DELTANODE_API", default_value = "127.0.0.1:7700")]
    pub api: SocketAddr,
    /// A peer to connect to and keep reconnecting to, ending in /p2p/PEER_ID (repeatable).
    #[arg(long, env = "DELTANODE_PEER", value_delimiter = ',')]
    pub peer: Vec<Multiaddr>,
    /// Do not discover peers with mDNS.
    #[arg(long, env = "DELTANODE_NO_MDNS")]
    pub no_mdns: bool,
    /// Only these peers are neighbours, however many are found (repeatable).
    #[arg(long, env = "DELTANODE_NEIGHBOUR", value_delimiter = ',')]
    pub neighbour: Vec<PeerId>,
    /// Milliseconds between sync rounds.
    #[arg(long, env = "DELTANODE_SYNC_INTERVAL", default_value_t = 500)]
    pub sync_interval: u64,
    /// Sync algorithm: bp-rr, bp-rr-tree, bp, rr, delta or state.
    #[arg(long, env = "DELTANODE_ALGORITHM", default_value = "bp-rr")]
    pub algorithm: Algorithm,
    /// Private-network pre-shared key file (swarm.key format).
    #[arg(long, env = "DELTANODE_SWARM_KEY")]
    pub swarm_key: Option<PathBuf>,
    /// Seconds a peer may stay disconnected before it leaves /v1/peers and the per-peer metrics
    /// and is no longer redialled (a --peer always is); it stays in the peer book.
    #[arg(long, env = "DELTANODE_FORGET_AFTER", default_value_t = 600)]
    pub forget_after: u64,
    /// At most this many neighbours (bounded partial views, HyParView): the other peers found
    /// are kept as candidates and exchanged, and replace a neighbour that fails; while fewer are
    /// known, every one is a neighbour. 0: no bound (every sync peer found is a neighbour).
    /// Ignored with --neighbour, which names the neighbours itself.
    #[arg(long, env = "DELTANODE_MAX_NEIGHBOURS", default_value_t = 8)]
    pub max_neighbours: u16,
    /// Bearer token the API requires (required when --api is not loopback; not empty).
    #[arg(long, env = "DELTANODE_API_TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub api_token: Option<String>,
    /// Seconds a neighbour's last-writer-wins write may be stamped ahead of this node's clock;
    /// later ones are held until the clock is within it (counted, shown per peer and in /health).
    /// 0: no bound.
    #[arg(long, env = "DELTANODE_MAX_CLOCK_SKEW", default_value_t = 30)]
    pub max_clock_skew: u64,
    /// Serve the API over TLS with this certificate chain (PEM); needs --api-tls-key.
    #[arg(long, env = "DELTANODE_API_TLS_CERT", requires = "api_tls_key")]
    pub api_tls_cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --api-tls-cert.
    #[arg(long, env = "DELTANODE_API_TLS_KEY", requires = "api_tls_cert")]
    pub api_tls_key: Option<PathBuf>,
    /// Serve the API over plain HTTP on a non-loopback --api (refused without it: the bearer
    /// token would cross the network in the clear). Only on a network you trust.
    #[arg(long, env = "DELTANODE_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// An origin whose pages may call the API from a browser (CORS), e.g.
    /// https://app.example.com; `*` allows any. Repeatable. Browsers open the change feed and
    /// the WebSocket with an access token from POST /v1/tokens.
    #[arg(long, env = "DELTANODE_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// API connections served at once; beyond, a 503 and the connection closed.
    #[arg(long, env = "DELTANODE_API_MAX_CONNECTIONS", default_value_t = 1024)]
    pub api_max_connections: usize,
    /// Change-feed streams (GET /v1/events) open at once; beyond, a 503.
    #[arg(long, env = "DELTANODE_API_MAX_STREAMS", default_value_t = 256)]
    pub api_max_streams: usize,
    /// Seconds an API client has to send a request's headers (and an idle keep-alive connection
    /// its next request) before the connection is closed.
    #[arg(long, env = "DELTANODE_API_HEADER_TIMEOUT", default_value_t = 10)]
    pub api_header_timeout: u64,
    /// Seconds an API write may make no progress (a client that stopped reading, a change-feed
    /// reader among them) before the connection is closed.
    #[arg(long, env = "DELTANODE_API_WRITE_TIMEOUT", default_value_t = 30)]
    pub api_write_timeout: u64,
    /// If the store (DATA_DIR/state.redb) is found damaged at start, set it aside
    /// (state.redb.damaged-TIME) and start empty: the neighbours catch the node up. Without it a
    /// damaged store stops the node with an error (see also `deltanode repair`).
    #[arg(long, env = "DELTANODE_RECOVER_FROM_PEERS")]
    pub recover_from_peers: bool,
    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(long, env = "DELTANODE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// A hint printed under an error, for the mistakes a new user makes.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let text = format!("{e:#}");
    if text.contains("cannot reach the node") {
        Some("is the node running? ctl talks to --api (env DELTANODE_API, default 127.0.0.1:7700)")
    } else if text.contains("401") || text.contains("bearer token") {
        Some("the node wants a token: --token TOKEN or env DELTANODE_API_TOKEN")
    } else if text.contains("Address already in use") {
        Some("another process holds that port; pick another with --api HOST:PORT")
    } else {
        None
    }
}

/// A token: any non-empty string (an empty one would let a typo like `$(cat missing-file)` start a
/// node whose token is "").
fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("the token is empty; give a non-empty token (or leave the option out)".into())
    } else {
        Ok(s.to_string())
    }
}

/// `deltanode sim`: lists are comma-separated, and every combination is run.
#[cfg(feature = "experiments")]
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Topologies: mesh (4 neighbours each), tree (degree ≤ 3), ring, line, full, random:D, or
    /// overlay (the graph the membership protocol builds from a random bootstrap; overlay:K or
    /// --max-neighbours bound its views, 8 by default).
    #[arg(long, value_delimiter = ',', default_value = "mesh")]
    pub topology: Vec<Topology>,
    /// With --topology overlay: the bound on every node's active view.
    #[arg(long)]
    pub max_neighbours: Option<usize>,
    /// With --topology overlay: the share of nodes (0 to 0.5) that leave for good halfway through
    /// the events while as many new ones join through the membership protocol.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Numbers of nodes (comma-separated: each is a run).
    #[arg(long, value_delimiter = ',', default_value = "15")]
    pub nodes: Vec<usize>,
    /// Workloads: gset, gcounter, gmap:K (percent of a node's keys per event), retwis:ZIPF.
    #[arg(long, value_delimiter = ',', default_value = "gset")]
    pub workload: Vec<WorkloadSpec>,
    /// Algorithms (state, delta, bp, rr, bp-rr, bp-rr-tree, scuttlebutt, op), or `all`.
    #[arg(long, default_value = "all", value_parser = parse_algorithms)]
    pub algorithms: AlgorithmList,
    /// Events per node, one per sync round.
    #[arg(long, default_value_t = 100)]
    pub events: u64,
    /// Elements every node holds before the first event (comma-separated: each is a run; gset
    /// only, not with scuttlebutt or op): how costs grow with the state. Reported as `gset+N`.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub preload: Vec<u64>,
    /// With --preload N: catch-up runs instead of the workload — two replicas sharing N elements
    /// and differing in D (comma-separated counts, or percentages of N such as `1%`), by
    /// reconciliation and by full-state exchange, side by side (`catchup.csv`).
    #[arg(long, value_delimiter = ',')]
    pub diverge: Vec<String>,
    /// With --diverge: the difference is all on one replica (default: split between both).
    #[arg(long)]
    pub diverge_one_side: bool,
    /// With --diverge: elements are strings of this many bytes (comma-separated: each is a run;
    /// 0, the default: integers, ~5 bytes encoded).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub element_bytes: Vec<usize>,
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
    /// When messages arrive within a round: staggered (nodes tick one after another, as real
    /// nodes do) or lockstep (every node ticks, then every message arrives).
    #[arg(long, default_value = "staggered")]
    pub timing: Timing,
    /// Where to write results.csv and the charts.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// A parsed `--algorithms` value.
#[cfg(feature = "experiments")]
#[derive(Clone, Debug)]
pub struct AlgorithmList(pub Vec<Algorithm>);

#[cfg(feature = "experiments")]
fn parse_algorithms(s: &str) -> Result<AlgorithmList, String> {
    if s == "all" {
        return Ok(AlgorithmList(Algorithm::ALL.to_vec()));
    }
    s.split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map(AlgorithmList)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // Catches clashing names (say, a global --json and an argument called json) before a user does.
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["deltanode", "ctl", "--json", "op", "k", "{}"]).unwrap();
        assert!(matches!(
            parsed.command,
            Command::Ctl(CtlArgs {
                json: true,
                command: CtlCommand::Op { .. },
                ..
            })
        ));
        assert!(Cli::try_parse_from(["deltanode", "run", "--algorithm", "nope"]).is_err());
    }

    /// Every example line parses as a command (environment variables and comments aside), and
    /// the help of `run` and `sim` names every algorithm they take.
    #[cfg(feature = "experiments")]
    #[test]
    fn every_help_example_parses_and_the_help_lists_every_algorithm() {
        let mut seen = 0;
        for examples in [
            RUN_EXAMPLES,
            ID_EXAMPLES,
            CTL_EXAMPLES,
            SIM_EXAMPLES,
            TOPOLOGY_EXAMPLES,
            CHARTS_EXAMPLES,
        ] {
            for line in examples.lines().skip(1) {
                let command = line.split(" #").next().unwrap();
                let argv: Vec<&str> = command
                    .split_whitespace()
                    .skip_while(|w| w.contains('='))
                    .collect();
                assert_eq!(argv[0], "deltanode", "{line}");
                Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{line}: {e}"));
                seen += 1;
            }
        }
        assert!(seen >= 15, "{seen} examples");
        let mut cli = Cli::command();
        let help = |cli: &mut clap::Command, sub: &str| {
            let sub = cli.find_subcommand_mut(sub).unwrap();
            sub.render_long_help().to_string()
        };
        let run = help(&mut cli, "run");
        assert!(run.contains("Examples:") && run.contains("DELTANODE_MAX_NEIGHBOURS"));
        // Every option of `run` reads DELTANODE_<NAME> (SPEC), and its help says so.
        let sub = cli.find_subcommand_mut("run").unwrap();
        for arg in sub
            .get_arguments()
            .filter(|a| a.get_long().is_some_and(|l| l != "help"))
        {
            let long = arg.get_long().unwrap();
            let want = format!("DELTANODE_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "--{long}"
            );
            assert!(
                run.contains(&format!("[env: {want}")),
                "run --help lacks {want}"
            );
        }
        for a in protocol::Algorithm::ON_THE_WIRE {
            assert!(run.contains(a.name()), "run --help lacks {}", a.name());
        }
        let sim = help(&mut cli, "sim");
        for a in protocol::Algorithm::ALL {
            assert!(sim.contains(a.name()), "sim --help lacks {}", a.name());
        }
        for sub in ["id", "ctl", "topology", "charts"] {
            assert!(help(&mut cli, sub).contains("Examples:"), "{sub}");
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand_and_empty_tokens_are_refused() {
        for argv in [
            &[
                "deltanode",
                "ctl",
                "--api",
                "127.0.0.1:9",
                "--token",
                "t",
                "health",
            ][..],
            &[
                "deltanode",
                "ctl",
                "health",
                "--api",
                "127.0.0.1:9",
                "--token",
                "t",
            ][..],
        ] {
            let Command::Ctl(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not ctl")
            };
            assert_eq!(
                (args.api.as_str(), args.token.as_deref()),
                ("127.0.0.1:9", Some("t"))
            );
        }
        for argv in [
            &["deltanode", "ctl", "health", "--token", ""][..],
            &["deltanode", "run", "--api-token", ""][..],
            &["deltanode", "run", "--api-token", "  "][..],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err().to_string();
            assert!(err.contains("the token is empty"), "{err}");
        }
    }
}
