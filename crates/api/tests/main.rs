//! The crate's integration tests, one binary: each test file is a module here, so the
//! dependencies are linked once instead of once per file (disk and link time).

mod bootstrap;
mod browser_watch;
mod common;
mod conditions;
mod datastore_import;
mod fetch_templates;
mod history;
mod hostile;
mod import;
mod import_formats;
mod nothing_silent;
mod notifications;
mod notify_rules;
mod ops;
mod pdf_watch;
mod proxies;
mod restock;
mod rss;
mod rules;
mod search;
mod system;
mod tags;
mod ui;
mod watch_row_type;
mod watches;
