//! `changewatch-aws-admin`: operator commands against a deployed stack (thin wiring over
//! `changewatch_aws::admin`). Configured like the functions: the stack's resource names in
//! `CW_*` variables (see infra/README.md) and the AWS SDK's usual credentials and region.

use std::path::PathBuf;
use std::process::ExitCode;

use changewatch_api::datastore::Options;
use changewatch_aws::{AwsConfig, Clients, admin};
use changewatch_engine::checker::epoch_now;
use changewatch_sandbox::{Sandbox, SandboxConfig};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "changewatch-aws-admin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upstream changedetection.io's datastore (directory or backup zip) into the stack's
    /// tables, as `changewatch import-datastore` does for embedded mode.
    ImportDatastore {
        /// The datastore directory (changedetection.json or url-watches.json) or a backup zip.
        source: PathBuf,
        /// The tenant to write (default: the stack's CW_TENANT).
        #[arg(long)]
        tenant: Option<String>,
        /// Read and check everything, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// A progress line on stderr every this many watches.
        #[arg(long, default_value_t = 100, value_name = "N")]
        progress_every: usize,
    },
}

fn main() -> ExitCode {
    // Templates are checked in budgeted children of this executable, as the API checks them.
    changewatch_sandbox::run_child_if_requested();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("changewatch-aws-admin: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("changewatch-aws-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    let Command::ImportDatastore {
        source,
        tenant,
        dry_run,
        json,
        progress_every,
    } = command;
    let config = AwsConfig::from_env().map_err(|e| e.to_string())?;
    let clients = Clients::from_env().await;
    let sandbox = Sandbox::child_process(
        SandboxConfig::current_exe(&config.base.sandbox).map_err(|e| e.to_string())?,
    );
    let opts = Options {
        tenant: tenant.unwrap_or_else(|| config.tenant.clone()),
        dry_run,
        minimum_recheck_secs: config.base.minimum_recheck_secs,
        now: epoch_now(),
        progress_every,
        // The stack's key is its API_ACCESS_TOKEN (or the one its settings hold): kept.
        keep_api_key: true,
    };
    let mut progress = |done: usize, total: usize| {
        eprintln!("import-datastore: {done}/{total} watches");
    };
    let result =
        admin::import_datastore(&clients, &config, &sandbox, &source, &opts, &mut progress).await;
    sandbox.shutdown();
    let report = result.map_err(|e| e.to_string())?;
    if json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}
