//! The `deltanode` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::Parser;
use deltanode::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line for the error and its causes, whatever RUST_BACKTRACE says: a plain error
            // (a dead port, a missing file) is not a crash.
            eprintln!("error: {e:#}");
            if let Some(hint) = deltanode::cli::hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => deltanode::run::run(args),
        Command::Id { data_dir } => {
            println!(
                "{}",
                deltanode::identity::load_or_create(&data_dir)?
                    .key
                    .public()
                    .to_peer_id()
            );
            Ok(())
        }
        Command::Repair { data_dir } => {
            println!("{}", deltanode::persist::repair(&data_dir)?);
            Ok(())
        }
        Command::Restore {
            data_dir,
            force,
            file,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let backup = deltanode::persist::Backup::decode(&bytes)
                .with_context(|| format!("{}", file.display()))?;
            println!(
                "{}",
                deltanode::persist::restore(&data_dir, &backup, force)?
            );
            Ok(())
        }
        Command::Ctl(args) => deltanode::ctl::run(args),
        #[cfg(feature = "experiments")]
        Command::Sim(args) => deltanode::experiments::run(&args),
        #[cfg(feature = "experiments")]
        Command::Topology {
            topology,
            nodes,
            seed,
        } => {
            println!("{}", serde_json::to_string(&topology.edges(nodes, seed))?);
            Ok(())
        }
        #[cfg(feature = "experiments")]
        Command::Charts { csv, out } => {
            let out = out.unwrap_or_else(|| csv.parent().unwrap_or(".".as_ref()).to_path_buf());
            deltanode::experiments::charts_from_csv(&csv, &out)
        }
    }
}
