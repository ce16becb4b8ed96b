//! The crate's integration tests, one binary: each test file is a module here, so the
//! dependencies are linked once instead of once per file (disk and link time).

mod aws_e2e;
mod aws_lambda;
mod sam_local;
