//! The `changewatch` command line, as a library so that it can be tested without a shell.
//!
//! - [`Cli`] / [`Command`]: argument parsing (clap).
//! - [`check`]: `changewatch check URL`: one check with no storage, printed for a human or as JSON.
//! - [`serve`]: `changewatch serve`: embedded mode (API, scheduler, checkers, one SQLite file).
//! - [`embedded`]: embedded mode's composition root (`Embedded::build`).
//! - [`import`]: `changewatch import-datastore SOURCE`: upstream's datastore or backup zip.
//! - [`password`]: `changewatch hash-password`: a `SALTED_PASS` value for fixed passwords.
//! - [`backup`]: `changewatch backup FILE` / `restore FILE` (`docs/BACKUP.md`).
//! - [`health`]: `changewatch healthcheck`, the container image's `HEALTHCHECK`.

pub mod backup;
pub mod check;
pub mod embedded;
pub mod health;
pub mod import;
pub mod password;
pub mod serve;

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
    /// Run changewatch on this machine: REST API, scheduler and checkers over one SQLite file.
    Serve(serve::ServeArgs),
    /// Fetch one URL now and print the text changewatch would store, its md5, title and status.
    Check(check::CheckArgs),
    /// Read a dashboard password on standard input and print it hashed as SALTED_PASS wants it
    /// (upstream's format): for `serve` on a network address, or the AWS stack's
    /// DashboardPasswordHash parameter.
    HashPassword,
    /// Bring in changedetection.io's datastore (a directory in either of its layouts, or its
    /// backup zip): watches with their uuids, tags, settings and full history. Safe to run
    /// again: what is already here is left as it is.
    ImportDatastore(import::ImportArgs),
    /// Write a backup of the datastore to FILE (`-`: standard output), consistent even while
    /// `serve` is running on it (docs/BACKUP.md).
    Backup(backup::BackupArgs),
    /// Restore a backup (of either mode) into an empty datastore, or over one with --force.
    /// Stop `serve` first, or restore through the API (POST /api/v1/backup).
    Restore(backup::RestoreArgs),
    /// Exit 0 when the local server answers /healthz with 200 (the container's HEALTHCHECK).
    Healthcheck(health::HealthcheckArgs),
}
