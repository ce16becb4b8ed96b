//! Fields the API takes only at the values that mean "off". changewatch stores them (upstream's
//! exports and a GET -> PUT round trip carry them) but nothing acts on them, so any other value
//! would look saved and do nothing. Such a value is refused with a 400 naming the field and the
//! value ([`ApiValidationError::Unsupported`]); `crates/api/tests/nothing_silent.rs` walks every
//! field of the served schema and holds each to "acts" or "refused".

use super::*;

/// A WatchBase field changewatch stores without acting on it.
#[derive(Clone, Copy, Debug)]
pub struct UnsupportedField {
    pub field: &'static str,
    /// Why another value cannot be honoured.
    pub why: &'static str,
    /// The accepted values, as messages and the spec show them.
    pub accepted: &'static str,
    accepts: fn(&Value) -> bool,
}

impl UnsupportedField {
    /// Whether `v` is one of the values that mean "off".
    pub fn accepts(&self, v: &Value) -> bool {
        (self.accepts)(v)
    }
}

const NO_LLM: &str = "changewatch has no LLM features";
const LEGACY_RESTOCK: &str = "a legacy restock field upstream no longer reads; set \
     processor_config_restock_diff instead";
const TAG_CONDITIONS: &str =
    "conditions are read from the watch only (as upstream), a tag's would do nothing";

/// In WatchBase order. `tag` is acted on by POST /watch (and the import), which resolve its
/// names to tags; everywhere else it would only be stored.
pub const UNSUPPORTED_FIELDS: &[UnsupportedField] = &[
    UnsupportedField {
        field: "tag",
        why: "tag names are read only when a watch is created; send 'tags' (tag uuids) instead",
        accepted: "''",
        accepts: no_tag_names,
    },
    UnsupportedField {
        field: "track_ldjson_price_data",
        why: "only 'accepted' turns LD-JSON price tracking on",
        accepted: "None, False, 'accepted', 'rejected'",
        accepts: |v| {
            matches!(v, Value::Null | Value::Bool(false))
                || matches!(
                    v.as_str(),
                    Some(PRICE_DATA_TRACK_ACCEPT | PRICE_DATA_TRACK_REJECT)
                )
        },
    },
    UnsupportedField {
        field: "in_stock_only",
        why: LEGACY_RESTOCK,
        accepted: "True",
        accepts: |v| v.as_bool() == Some(true),
    },
    UnsupportedField {
        field: "follow_price_changes",
        why: LEGACY_RESTOCK,
        accepted: "True",
        accepts: |v| v.as_bool() == Some(true),
    },
    UnsupportedField {
        field: "price_change_threshold_percent",
        why: LEGACY_RESTOCK,
        accepted: "None",
        accepts: Value::is_null,
    },
    UnsupportedField {
        field: "llm_intent",
        why: NO_LLM,
        accepted: "''",
        accepts: |v| v.as_str() == Some(""),
    },
    UnsupportedField {
        field: "llm_change_summary",
        why: NO_LLM,
        accepted: "''",
        accepts: |v| v.as_str() == Some(""),
    },
    UnsupportedField {
        field: "llm_change_summary_mode",
        why: NO_LLM,
        accepted: "'replace'",
        accepts: |v| v.as_str() == Some("replace"),
    },
    UnsupportedField {
        field: "llm_backend_profile",
        why: NO_LLM,
        accepted: "None, True",
        accepts: |v| matches!(v, Value::Null | Value::Bool(true)),
    },
];

/// Fields a watch acts on and a tag does not (upstream evaluates only the watch's conditions).
pub const TAG_UNSUPPORTED_FIELDS: &[UnsupportedField] = &[
    UnsupportedField {
        field: "conditions",
        why: TAG_CONDITIONS,
        accepted: "[]",
        accepts: |v| v.as_array().is_some_and(Vec::is_empty),
    },
    UnsupportedField {
        field: "conditions_match_logic",
        why: TAG_CONDITIONS,
        accepted: "'ALL'",
        accepts: |v| v.as_str() == Some("ALL"),
    },
];

/// The entry for `field`, if changewatch stores it without acting on it.
pub fn unsupported_field(field: &str) -> Option<&'static UnsupportedField> {
    UNSUPPORTED_FIELDS.iter().find(|u| u.field == field)
}

/// `tag` as POST /watch splits it: no name once split on commas and trimmed.
fn no_tag_names(v: &Value) -> bool {
    match v {
        Value::String(s) => s.split(',').all(|n| n.trim().is_empty()),
        _ => false,
    }
}

/// Values longer than this are cut in messages: a field's value may be long, the message names
/// it so the client can find it.
const SHOWN_CHARS: usize = 100;

fn shown(v: &Value) -> String {
    let repr = py_repr(v);
    if repr.chars().count() <= SHOWN_CHARS {
        return repr;
    }
    let mut cut: String = repr.chars().take(SHOWN_CHARS).collect();
    cut.push('…');
    cut
}

/// Every field of `body` set to a value changewatch would store and not act on, refused
/// together. `legacy_tag_names`: the endpoint resolves `tag` (POST /watch).
pub(super) fn check_unsupported(
    body: &Map<String, Value>,
    legacy_tag_names: bool,
) -> Result<(), ApiValidationError> {
    refuse(body, UNSUPPORTED_FIELDS, legacy_tag_names)
}

/// [`check_unsupported`] for the tag endpoints: also the fields only a watch acts on.
pub(super) fn check_unsupported_on_tag(
    body: &Map<String, Value>,
) -> Result<(), ApiValidationError> {
    let all: Vec<UnsupportedField> = UNSUPPORTED_FIELDS
        .iter()
        .chain(TAG_UNSUPPORTED_FIELDS)
        .copied()
        .collect();
    refuse(body, &all, false)
}

fn refuse(
    body: &Map<String, Value>,
    fields: &[UnsupportedField],
    legacy_tag_names: bool,
) -> Result<(), ApiValidationError> {
    let refused: Vec<String> = fields
        .iter()
        .filter(|u| !(legacy_tag_names && u.field == "tag"))
        .filter_map(|u| {
            let v = body.get(u.field)?;
            (!u.accepts(v)).then(|| {
                format!(
                    "{}: {} is not supported: {} (accepted: {})",
                    u.field,
                    shown(v),
                    u.why,
                    u.accepted
                )
            })
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ApiValidationError::Unsupported(refused))
    }
}
