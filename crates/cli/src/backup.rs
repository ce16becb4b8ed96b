//! `changewatch backup FILE` and `changewatch restore FILE`: embedded mode's datastore to and
//! from the backup format of `docs/BACKUP.md`.
//!
//! `backup` may run while `serve` uses the same data directory: it copies the database as of
//! one moment on a connection of its own (`SqliteExporter`), so the file is never torn. The
//! file is written beside its final name and renamed when complete, so a failed backup never
//! leaves a file that looks whole. `restore` writes into a datastore that `serve` is not
//! using (a running server restores through `POST /api/v1/backup`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use changewatch_core::Config;
use changewatch_engine::checker::epoch_now;
use changewatch_store::DEFAULT_TENANT;
use changewatch_store::backup::{Exporter, RestoreOptions, restore};
use changewatch_store::sqlite::SqliteStore;
use changewatch_store::sqlite::backup::SqliteExporter;
use clap::Args;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (`-` for standard output).
    pub file: PathBuf,
    /// Data directory (env DATASTORE_PATH, default ./data).
    #[arg(short = 'd', long = "datastore-path")]
    pub datastore_path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    pub file: PathBuf,
    /// Data directory (env DATASTORE_PATH, default ./data); created when missing.
    #[arg(short = 'd', long = "datastore-path")]
    pub datastore_path: Option<PathBuf>,
    /// Replace the watches and tags the datastore has (else only an empty one is restored into).
    #[arg(long)]
    pub force: bool,
}

fn data_dir(arg: Option<PathBuf>) -> Result<PathBuf, String> {
    match arg {
        Some(p) => Ok(p),
        None => Config::from_env()
            .map(|c| c.datastore_path)
            .map_err(|e| e.to_string()),
    }
}

pub async fn backup(args: BackupArgs) -> ExitCode {
    match write_backup(args).await {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("changewatch backup: {e}");
            ExitCode::from(1)
        }
    }
}

/// The temporary name a backup is written under until it is complete.
fn partial_name(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

async fn write_backup(args: BackupArgs) -> Result<String, String> {
    let dir = data_dir(args.datastore_path)?;
    let exporter = SqliteExporter::for_dir(&dir);
    let now = epoch_now();
    if args.file.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let counts = exporter
            .export(DEFAULT_TENANT, now, &mut out)
            .await
            .map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        return Ok(format!(
            "backed up {} watches, {} snapshots, {} tags",
            counts.watches, counts.snapshots, counts.tags
        ));
    }
    let partial = partial_name(&args.file);
    let result = async {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let counts = exporter
            .export(DEFAULT_TENANT, now, &mut out)
            .await
            .map_err(|e| e.to_string())?;
        let file = out.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&partial, &args.file)
            .map_err(|e| format!("cannot name it {}: {e}", args.file.display()))?;
        Ok::<_, String>(counts)
    }
    .await;
    match result {
        Ok(counts) => Ok(format!(
            "backed up {} watches, {} snapshots, {} tags to {}",
            counts.watches,
            counts.snapshots,
            counts.tags,
            args.file.display()
        )),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

pub async fn restore_cmd(args: RestoreArgs) -> ExitCode {
    match read_backup(args).await {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("changewatch restore: {e}");
            ExitCode::from(1)
        }
    }
}

async fn read_backup(args: RestoreArgs) -> Result<String, String> {
    let dir = data_dir(args.datastore_path)?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| format!("cannot open {}: {e}", args.file.display()))?;
    let store = SqliteStore::open_dir(&dir)
        .map_err(|e| format!("cannot open the datastore at {}: {e}", dir.display()))?;
    let opts = RestoreOptions {
        force: args.force,
        now: epoch_now(),
        check: &changewatch_api::backup::check_doc,
    };
    let restored = restore(&store, DEFAULT_TENANT, std::io::BufReader::new(file), &opts)
        .await
        .map_err(|e| e.to_string())?;
    let m = &restored.manifest;
    Ok(format!(
        "restored {} watches, {} snapshots, {} tags into {} (backup of {} taken by changewatch {} in {} mode{}{})",
        restored.counts.watches,
        restored.counts.snapshots,
        restored.counts.tags,
        dir.display(),
        chrono_like(m.created),
        m.changewatch_version,
        m.source_mode,
        if m.consistent {
            ""
        } else {
            ", read while in use"
        },
        if restored.replaced > 0 {
            format!(", {} watches and tags replaced", restored.replaced)
        } else {
            String::new()
        }
    ))
}

/// Epoch seconds as the UTC time a person reads.
fn chrono_like(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("epoch {ts}"))
}
