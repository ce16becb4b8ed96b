//! changewatch core: the domain of a watch check, with no storage and no HTTP server.
//!
//! Module map, in the order a check runs through them:
//! - [`config`]: process settings from environment variables (one typed struct).
//! - [`model`]: watches, tags and settings with upstream's JSON shapes and defaults, and the
//!   watch + tag + global merge into [`pipeline::ProcessorSettings`].
//! - [`ssrf`]: which resolved addresses a fetch may connect to.
//! - [`fetch`]: the HTTP fetcher (redirects, limits, timeouts, guard on every hop).
//! - [`charset`]: bytes to text (header, BOM, XML declaration, meta, detection).
//! - [`content`]: what kind of document a reply is (HTML, JSON, feed, XML, text, PDF, binary).
//! - [`pdf`]: a PDF's text as the HTML upstream's `pdftohtml` step gives, plus its checksum line.
//! - [`filters`]: subtractive selectors and include filters (CSS, XPath, JSONPath, jq).
//! - [`html_text`]: HTML to the plain text that is stored and compared.
//! - [`text_rules`]: ignore / trigger / extract / sort / dedupe rules and the checksum.
//! - [`pipeline`]: the text_json_diff processor tying the above together.
//! - [`restock`]: the restock_diff processor's extractor (JSON-LD, OpenGraph, microdata price
//!   and availability) and its snapshot text.
//! - [`reuse`]: when a reply is known to process to the last check's result (checksum and
//!   validators of the last processed reply).
//! - [`diff`]: the diff engine and its output formats.
//! - [`error`]: check outcomes that are not a page, with upstream's `last_error` strings.
//! - [`check`]: fetch + process in one call, for the CLI and the checkers.
//! - [`clock`]: the epoch-seconds clock, shared by clones so tests can move it.
//! - [`schedule`]: when a watch is next due (interval, jitter, weekly window in its time zone),
//!   and upstream's "x minutes ago" texts.

pub mod budget;
pub mod charset;
pub mod check;
pub mod clock;
pub mod conditions;
pub mod config;
pub mod content;
pub mod diff;
pub mod error;
pub mod fetch;
pub mod filters;
pub mod html_text;
pub mod model;
pub mod pdf;
pub mod pipeline;
pub mod restock;
pub mod reuse;
pub mod schedule;
pub mod ssrf;
pub mod text_rules;

pub use check::{CheckResult, run_check};
pub use config::Config;
pub use error::CheckError;
pub use fetch::{FetchRequest, FetchedPage, Fetcher, FetcherConfig};
pub use pipeline::{ChangeStatus, PreviousState, Processed, ProcessorSettings};
