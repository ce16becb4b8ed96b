//! The crate's integration tests, one binary: each test file is a module here, so the
//! dependencies are linked once instead of once per file (disk and link time).

mod backup;
mod common;
mod datastore_import;
mod events;
mod notify;
