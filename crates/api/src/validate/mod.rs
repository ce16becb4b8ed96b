//! What the REST API accepts in a body: upstream's request-body schema (openapi-core with
//! jsonschema's messages), then its checks in its order, then the fields applied to a watch or
//! tag. This is HTTP knowledge, so it lives here and the domain model stays plain types.
//!
//! - `schema`: the validation tables (`WATCH_BASE_PROPS` and friends), the schema check, and
//!   Python-style value reprs for its messages.
//! - `write`: [`create_watch_from_json`], [`apply_watch_update`], [`create_tag_from_json`],
//!   [`apply_tag_update`] and the single-field checks the settings page reuses, with
//!   upstream's error strings ([`ApiValidationError`]).
//! - [`openapi`]: the same tables as JSON Schema, for `/api/v1/full-spec`.

use std::collections::BTreeSet;
use std::fmt;

use changewatch_core::model::*;
use serde_json::{Map, Value};

pub mod openapi;
mod schema;
#[cfg(test)]
mod tests;
mod write;

pub use schema::*;
pub use write::*;
