//! The crate's integration tests, one binary: each test file is a module here, so the
//! dependencies are linked once instead of once per file (disk and link time).

mod attack_auth;
mod attack_net;
mod attack_pipeline;
mod backup;
mod check_cli;
mod common;
mod import_datastore;
mod notifications;
mod realtime;
mod sandbox;
mod serve;
