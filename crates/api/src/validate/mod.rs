//! What the REST API accepts in a body: upstream's request-body schema (openapi-core with
//! jsonschema's messages), then its checks in its order, then the fields applied to a watch or
//! tag. This is HTTP knowledge, so it lives here and the domain model stays plain types.
//!
//! - `schema`: the validation tables (`WATCH_BASE_PROPS` and friends), the schema check, and
//!   Python-style value reprs for its messages.
//! - `write`: [`create_watch_from_json`], [`apply_watch_update`], [`create_tag_from_json`],
//!   [`apply_tag_update`] and the single-field checks the settings page reuses, with
//!   upstream's error strings ([`ApiValidationError`]).
//! - `unsupported`: fields stored but not acted on ([`UNSUPPORTED_FIELDS`]), taken only at
//!   the values that mean "off"; any other value is a 400 naming the field and the value.
//! - [`openapi`]: the same tables as JSON Schema, for `/api/v1/full-spec`.

use std::collections::BTreeSet;
use std::fmt;

use changewatch_core::model::*;
use serde_json::{Map, Value};

pub mod openapi;
mod schema;
#[cfg(test)]
mod tests;
mod unsupported;
mod write;

pub use schema::*;
pub use unsupported::*;
pub use write::*;

/// The non-empty notification templates of a request body, as `(field, template)`; a body
/// without any needs no trip to the sandbox.
pub fn notification_templates(body: &Value) -> Vec<(String, String)> {
    ["notification_title", "notification_body"]
        .iter()
        .filter_map(|field| {
            let src = body.get(*field)?.as_str()?;
            (!src.trim().is_empty()).then(|| ((*field).to_string(), src.to_string()))
        })
        .collect()
}

/// Notification templates in a request body (`notification_title`, `notification_body`),
/// checked by the notification engine's validator, the one the test send uses: it parses,
/// knows the tokens, and renders against example values. Rendering user templates happens only
/// in the sandbox, so this runs there. Empty ones mean "the default" and are skipped. Run after
/// the synchronous write rules, whose syntax messages are upstream's.
pub async fn check_notification_templates(
    sandbox: &changewatch_sandbox::Sandbox,
    body: &Value,
) -> Result<(), ApiValidationError> {
    // One request per template, so that a blown budget (which ends the child, not with a
    // message of its own) is still reported against its field.
    for (field, src) in notification_templates(body) {
        let job = changewatch_sandbox::RenderJob::Validate {
            templates: vec![(field.clone(), src)],
        };
        if let Err(e) = sandbox.render(job).await {
            let msg = e.to_string();
            let msg = match msg.starts_with(&format!("{field}:")) {
                true => msg,
                false => format!("{field}: {msg}"),
            };
            return Err(ApiValidationError::NotificationTemplateRefused(msg));
        }
    }
    Ok(())
}
