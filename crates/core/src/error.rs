//! The outcomes of a check that are not a processed page, with the `last_error` text users see.

use crate::fetch::FetchError;
use crate::filters::FilterError;
use crate::text_rules::RuleError;

/// Why a check produced no text to compare.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The include filters matched nothing: the distinct outcome that counts
    /// `consecutive_filter_failures` (the page probably changed layout).
    #[error("no include filter matched: {}", filters.join(", "))]
    FilterNotFound { filters: Vec<String> },
    /// The page (or the part the filters kept) has no visible text.
    #[error("no text found (status {status})")]
    NoText {
        status: u16,
        has_filters: bool,
        only_images: bool,
    },
    /// A filter expression that cannot run (bad selector, blocked jq builtin, invalid JSON).
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A PDF reply whose text could not be read (malformed, encrypted, over its limits).
    #[error("the PDF could not be read: {0}")]
    Pdf(String),
    /// The reply is a PDF (by the watch's URL, its last content type or this reply's) but the
    /// fetcher has no PDF bytes, only a browser's viewer page. The content type is kept, so
    /// the next check knows the watch is a PDF and fetches it with the plain client.
    #[error("the fetcher could not provide the original PDF file")]
    PdfNotAvailable { content_type: Option<String> },
    /// The processing task died (a panic in a dependency); reported, never swallowed.
    #[error("{0}")]
    Internal(String),
    /// An outcome that crossed the process sandbox, already in `last_error` form: the
    /// processor's own errors, and the sandbox's verdict when a filter or rule blew its
    /// time, memory or stack budget.
    #[error("{0}")]
    Processor(String),
    /// The check (fetch and processing, with any wait for the checker's memory or sandbox)
    /// ran into the checker's own deadline: in a Lambda invocation, the time left to commit
    /// before the function is stopped. The watch gets this error; the batch's other checks
    /// are unaffected.
    #[error("the check did not finish within the {secs} seconds the checker had left for it")]
    Deadline { secs: u64 },
}

impl CheckError {
    /// Upstream's `last_error` string for this outcome.
    pub fn last_error(&self) -> String {
        match self {
            CheckError::Fetch(e) => e.last_error(),
            CheckError::FilterNotFound { .. } => "Warning, no filters were found, no change detection ran - Did the page change layout? update your Visual Filter if necessary.".into(),
            CheckError::NoText {
                status,
                has_filters,
                only_images,
            } => {
                let hint = match (has_filters, only_images) {
                    (true, true) => ", it's possible that the filters you have give an empty result or contain only an image.",
                    (true, false) => ", it's possible that the filters were found, but contained no usable text.",
                    _ => "",
                };
                format!("Got HTML content but no text found (With {status} reply code){hint}")
            }
            CheckError::Filter(e) => format!("Exception: {e}"),
            CheckError::Rule(e) => format!("Exception: {e}"),
            CheckError::Pdf(_) => format!("Exception: {self}"),
            CheckError::PdfNotAvailable { .. } => "Content is a PDF but this fetcher could not provide the original PDF file, try the 'Basic fast Plaintext/HTTP Client' fetcher instead.".into(),
            CheckError::Internal(e) => format!("Worker error: {e}"),
            CheckError::Processor(e) => e.clone(),
            CheckError::Deadline { .. } => format!("Exception: {self}"),
        }
    }

    /// Whether this outcome counts towards the filter-failure notification threshold.
    pub fn is_filter_failure(&self) -> bool {
        matches!(self, CheckError::FilterNotFound { .. })
    }
}
