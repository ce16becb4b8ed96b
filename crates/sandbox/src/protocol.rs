//! What crosses the pipe between the server and a sandbox child, and how it is framed.
//!
//! A frame is a 4-byte big-endian length and that many bytes of JSON. JSON rather than a
//! binary codec because the types already speak serde and a frame is dominated by page text;
//! raw page bytes travel as base64 so they do not become a JSON array of numbers.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use changewatch_core::CheckError;
use changewatch_core::diff::DiffFormat;
use changewatch_core::fetch::FetchedPage;
use changewatch_core::pipeline::{PreviousState, Processed, ProcessorSettings};
use changewatch_notify::Message;
use changewatch_notify::render::ChangeContext;
use serde::{Deserialize, Serialize};

/// The largest frame either side accepts. A reply is at most a page's text plus its
/// processed text; anything bigger is a broken or hostile child, not a result.
pub(crate) const MAX_FRAME: usize = 512 * 1024 * 1024;

/// One unit of work for a child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Process(Box<ProcessInput>),
    Render(Box<RenderJob>),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Processed(Result<Processed, WireCheckError>),
    Rendered(Result<Rendered, String>),
}

/// The processor's inputs in a form that survives serde (`FetchedPage::encoding` is a
/// `&'static str`, `history_lines` an `Arc`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProcessInput {
    page: WirePage,
    pub(crate) settings: ProcessorSettings,
    previous: WirePrevious,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePage {
    final_url: String,
    status: u16,
    content_type: Option<String>,
    server: Option<String>,
    headers: Vec<(String, String)>,
    raw_base64: String,
    text: String,
    encoding: String,
    fetch_time: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePrevious {
    md5: Option<String>,
    has_history: bool,
    text_before_filters: Option<String>,
    history_lines: Option<Vec<String>>,
}

impl ProcessInput {
    pub(crate) fn new(
        page: &FetchedPage,
        settings: ProcessorSettings,
        previous: &PreviousState,
    ) -> Self {
        ProcessInput {
            page: WirePage {
                final_url: page.final_url.clone(),
                status: page.status,
                content_type: page.content_type.clone(),
                server: page.server.clone(),
                headers: page.headers.clone(),
                raw_base64: STANDARD.encode(&page.raw),
                text: page.text.clone(),
                encoding: page.encoding.to_string(),
                fetch_time: page.fetch_time,
            },
            settings,
            previous: WirePrevious {
                md5: previous.md5.clone(),
                has_history: previous.has_history,
                text_before_filters: previous.text_before_filters.clone(),
                history_lines: previous
                    .history_lines
                    .as_ref()
                    .map(|lines| lines.iter().cloned().collect()),
            },
        }
    }

    /// Back to the processor's types, on the child's side.
    pub(crate) fn into_parts(
        self,
    ) -> Result<(FetchedPage, ProcessorSettings, PreviousState), String> {
        let raw = STANDARD
            .decode(self.page.raw_base64.as_bytes())
            .map_err(|e| format!("page bytes: {e}"))?;
        // The label came from `Encoding::name()`, so it always resolves; UTF-8 is only a
        // fallback for a frame that was not written by this code.
        let encoding = encoding_rs::Encoding::for_label(self.page.encoding.as_bytes())
            .map_or("UTF-8", |e| e.name());
        let page = FetchedPage {
            final_url: self.page.final_url,
            status: self.page.status,
            content_type: self.page.content_type,
            server: self.page.server,
            headers: self.page.headers,
            raw,
            text: self.page.text,
            encoding,
            fetch_time: self.page.fetch_time,
        };
        let previous = PreviousState {
            md5: self.previous.md5,
            has_history: self.previous.has_history,
            text_before_filters: self.previous.text_before_filters,
            history_lines: self
                .previous
                .history_lines
                .map(|lines| Arc::new(lines.into_iter().collect::<HashSet<_>>())),
        };
        Ok((page, self.settings, previous))
    }
}

/// The processor's errors as the child reports them: the two outcomes callers tell apart
/// structurally (a missing filter counts towards the failure alert; "no text" carries its
/// status), everything else already as the user's `last_error` text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireCheckError {
    FilterNotFound {
        filters: Vec<String>,
    },
    NoText {
        status: u16,
        has_filters: bool,
        only_images: bool,
    },
    Other(String),
}

impl From<CheckError> for WireCheckError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::FilterNotFound { filters } => WireCheckError::FilterNotFound { filters },
            CheckError::NoText {
                status,
                has_filters,
                only_images,
            } => WireCheckError::NoText {
                status,
                has_filters,
                only_images,
            },
            other => WireCheckError::Other(other.last_error()),
        }
    }
}

impl From<WireCheckError> for CheckError {
    fn from(e: WireCheckError) -> Self {
        match e {
            WireCheckError::FilterNotFound { filters } => CheckError::FilterNotFound { filters },
            WireCheckError::NoText {
                status,
                has_filters,
                only_images,
            } => CheckError::NoText {
                status,
                has_filters,
                only_images,
            },
            WireCheckError::Other(last_error) => CheckError::Processor(last_error),
        }
    }
}

/// Template work: everything that renders a user's Jinja template.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RenderJob {
    /// A content-change notification: title and body, and each notification URL that is a
    /// template (a URL whose template fails is kept as written, so its delivery fails
    /// visibly instead of vanishing).
    Change {
        title: String,
        body: String,
        urls: Vec<String>,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
    /// Only the notification URLs (alerts whose title and body are fixed texts).
    Urls {
        urls: Vec<String>,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
    /// Saving notification templates: each `(field, template)` is validated as the test send
    /// validates it (parses, names only known tokens, renders against example values within
    /// the render limits), nothing is sent. The first failure names its field.
    Validate { templates: Vec<(String, String)> },
    /// "Send test notification": both templates are validated as a form would validate them
    /// (errors name the field), then rendered as upstream's test action renders them.
    Test {
        title: String,
        body: String,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
}

/// What a [`RenderJob`] produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// `None` for [`RenderJob::Urls`].
    pub message: Option<Message>,
    pub urls: Vec<String>,
}
