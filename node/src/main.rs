//! The `deltanode` binary: parses the command line and hands over to the library.

use clap::Parser;
use deltanode::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => deltanode::run::run(args),
        Command::Id { data_dir } => {
            println!(
                "{}",
                deltanode::identity::load_or_create(&data_dir)?
                    .public()
                    .to_peer_id()
            );
            Ok(())
        }
        Command::Ctl(args) => deltanode::ctl::run(args),
        Command::Sim(args) => deltanode::experiments::run(&args),
        Command::Topology {
            topology,
            nodes,
            seed,
        } => {
            println!("{}", serde_json::to_string(&topology.edges(nodes, seed))?);
            Ok(())
        }
        Command::Charts { csv, out } => {
            let out = out.unwrap_or_else(|| csv.parent().unwrap_or(".".as_ref()).to_path_buf());
            deltanode::experiments::charts_from_csv(&csv, &out)
        }
    }
}
