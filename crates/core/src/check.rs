//! One whole check: fetch, then process off the async runtime.

use tracing::{Instrument, info_span};

use crate::error::CheckError;
use crate::fetch::{FetchRequest, FetchedPage, Fetcher};
use crate::pipeline::{self, PreviousState, Processed, ProcessorSettings};

/// A successful check: the page as fetched and what the processor made of it.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub page: FetchedPage,
    pub processed: Processed,
}

/// Fetches `request` and runs the processor with `settings` against `previous`. The processor
/// runs on a blocking thread: a 1 MB page must not stall the runtime's other tasks.
pub async fn run_check(
    fetcher: &Fetcher,
    request: &FetchRequest,
    settings: ProcessorSettings,
    previous: PreviousState,
) -> Result<CheckResult, CheckError> {
    let span = info_span!("check", url = %request.url);
    async move {
        let page = fetcher.fetch(request).await?;
        let processed = tokio::task::spawn_blocking(move || {
            pipeline::process(&page, &settings, &previous).map(|p| (page, p))
        })
        .await
        .map_err(|e| CheckError::Internal(e.to_string()))?;
        let (page, processed) = processed?;
        Ok(CheckResult { page, processed })
    }
    .instrument(span)
    .await
}
