//! Operator commands that run against a deployed stack from any machine with its credentials
//! and resource names (the functions' environment): what no Lambda invocation can do within
//! API Gateway's 6 MB and 29 s, such as importing a large upstream datastore.

use std::path::Path;

use changewatch_api::datastore::{self, ImportError, Options, Report};
use changewatch_sandbox::Sandbox;

use crate::{AwsConfig, Clients};

/// Upstream's datastore directory (either layout) or its backup zip into the stack's DynamoDB
/// tables through the store port, exactly as `changewatch import-datastore` writes SQLite:
/// idempotent, dry-run, a report of what could not be mapped. `opts.tenant` is the tenant
/// written (the stack's `CW_TENANT` unless the caller chose another).
pub async fn import_datastore(
    clients: &Clients,
    config: &AwsConfig,
    sandbox: &Sandbox,
    source: &Path,
    opts: &Options,
    progress: datastore::Progress<'_>,
) -> Result<Report, ImportError> {
    let store = clients.store(config);
    if source.is_file() {
        datastore::import_zip_file(&store, Some(sandbox), source, opts, progress).await
    } else {
        datastore::import_dir(&store, Some(sandbox), source, opts, progress).await
    }
}
