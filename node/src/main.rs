//! The `deltanode` binary: parses the command line and hands over to the library.

use clap::Parser;
use deltanode::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Sim(args) => deltanode::experiments::run(&args),
    }
}
