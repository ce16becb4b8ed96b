//! `changewatch import-datastore SOURCE`: upstream's datastore directory (either layout) or its
//! backup zip into this machine's datastore. The work is `changewatch_api::datastore`'s; this
//! opens the store, prints progress on stderr and the report on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use changewatch_api::datastore::{self, Options, Report};
use changewatch_core::Config;
use changewatch_engine::checker::epoch_now;
use changewatch_sandbox::{Sandbox, SandboxConfig};
use changewatch_store::DEFAULT_TENANT;
use changewatch_store::sqlite::SqliteStore;
use clap::Args;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Upstream's datastore directory (the one with changedetection.json or url-watches.json),
    /// or a backup zip made by its Backups page.
    pub source: PathBuf,
    /// This machine's data directory (env DATASTORE_PATH, default ./data).
    #[arg(short = 'd', long = "datastore-path")]
    pub datastore_path: Option<PathBuf>,
    /// Read and check everything, write nothing: the report says what a real run would do.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// A progress line on stderr every this many watches.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub progress_every: usize,
}

pub async fn run(args: ImportArgs) -> ExitCode {
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("changewatch: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(p) = args.datastore_path.clone() {
        config.datastore_path = p;
    }
    match import(&config, &args).await {
        Ok(report) => {
            let mut out = std::io::stdout().lock();
            let written = match args.json {
                true => serde_json::to_string_pretty(&report)
                    .map_err(std::io::Error::other)
                    .and_then(|s| writeln!(out, "{s}")),
                false => write!(out, "{}", report.text()),
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("changewatch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("changewatch: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import(config: &Config, args: &ImportArgs) -> Result<Report, String> {
    let store = SqliteStore::open_dir(&config.datastore_path).map_err(|e| {
        format!(
            "cannot open the datastore at {}: {e}",
            config.datastore_path.display()
        )
    })?;
    // Notification templates are checked by the engine's validator in a budgeted child, as
    // the API checks them.
    let sandbox = Sandbox::child_process(
        SandboxConfig::current_exe(&config.sandbox)
            .map_err(|e| format!("cannot find this executable for the sandbox: {e}"))?,
    );
    let opts = Options {
        tenant: DEFAULT_TENANT.to_string(),
        dry_run: args.dry_run,
        minimum_recheck_secs: config.minimum_recheck_secs,
        now: epoch_now(),
        progress_every: args.progress_every,
        // `serve` would put the fixed key back at its next start anyway.
        keep_api_key: config.api_access_token.is_some(),
    };
    let mut progress = |done: usize, total: usize| {
        eprintln!("import-datastore: {done}/{total} watches");
    };
    let result = if args.source.is_file() {
        datastore::import_zip_file(&store, Some(&sandbox), &args.source, &opts, &mut progress).await
    } else {
        datastore::import_dir(&store, Some(&sandbox), &args.source, &opts, &mut progress).await
    };
    sandbox.shutdown();
    result.map_err(|e| e.to_string())
}
