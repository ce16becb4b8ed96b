//! The `changewatch` command line, as a library so that it can be tested without a shell.
//!
//! - [`Cli`] / [`Command`]: argument parsing (clap).
//! - [`check`]: `changewatch check URL`: one check with no storage, printed for a human or as JSON.

pub mod check;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "changewatch",
    version,
    about = "Website change detection and monitoring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch one URL now and print the text changewatch would store, its md5, title and status.
    Check(check::CheckArgs),
}
