use std::process::ExitCode;

use changewatch_engine::process::{LogStyle, init_tracing};
use clap::Parser;

fn main() -> ExitCode {
    // A sandbox child (filters, rules and templates under budgets) never becomes a server.
    changewatch_sandbox::run_child_if_requested();
    changewatch_engine::process::limit_malloc_arenas(2);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = changewatch::Cli::parse();
    init_tracing(LogStyle::Text {
        default_level: default_level(&cli),
    });
    match cli.command {
        changewatch::Command::Check(args) => changewatch::check::run(args).await,
        changewatch::Command::Serve(args) => changewatch::serve::run(args).await,
        changewatch::Command::HashPassword => changewatch::password::run(),
        changewatch::Command::ImportDatastore(args) => changewatch::import::run(args).await,
        changewatch::Command::Backup(args) => changewatch::backup::backup(args).await,
        changewatch::Command::Restore(args) => changewatch::backup::restore_cmd(args).await,
        changewatch::Command::Healthcheck(args) => changewatch::health::run(args),
    }
}

/// A server reports what it does (`info`); a one-shot check stays quiet unless asked.
fn default_level(cli: &changewatch::Cli) -> &'static str {
    match cli.command {
        changewatch::Command::Serve(_) => "info",
        changewatch::Command::Check(_)
        | changewatch::Command::HashPassword
        | changewatch::Command::ImportDatastore(_)
        | changewatch::Command::Backup(_)
        | changewatch::Command::Restore(_)
        | changewatch::Command::Healthcheck(_) => "warn",
    }
}
