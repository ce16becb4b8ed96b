//! JSON Schemas of the request bodies, generated from the very tables the write checks run
//! (`WATCH_BASE_PROPS` and friends), so `/api/v1/full-spec` cannot drift from what
//! the API accepts. A generated client or a fuzzer reading the spec then produces exactly the
//! bodies the server takes, and everything outside them is refused.

use serde_json::{Map, Value, json};

use super::{
    COPY_DROPPED_FIELDS, Extra, Node, READONLY_TAG_FIELDS, READONLY_WATCH_FIELDS,
    SYSTEM_MANAGED_FIELDS, TAG_OWN_PROPS, WATCH_BASE_PROPS, WATCH_PROPERTY_NAMES,
    unsupported_field,
};

/// The `components.schemas` entries the spec's request bodies refer to, in a stable order.
pub fn request_body_schemas() -> Vec<(&'static str, Value)> {
    let watch_dropped: Vec<&str> = READONLY_WATCH_FIELDS
        .iter()
        .chain(WATCH_PROPERTY_NAMES)
        .chain(SYSTEM_MANAGED_FIELDS)
        .copied()
        .collect();
    let copy_dropped: Vec<&str> = watch_dropped
        .iter()
        .chain(COPY_DROPPED_FIELDS)
        .copied()
        .collect();
    let tag_dropped: Vec<&str> = READONLY_TAG_FIELDS
        .iter()
        .chain(SYSTEM_MANAGED_FIELDS)
        .copied()
        .collect();
    let last_viewed = Node {
        types: &[super::Ty::Int],
        minimum: Some(0),
        ..super::ANY
    };
    vec![
        (
            "CreateWatch",
            object_schema(WATCH_BASE_PROPS, &[], &copy_dropped, &["url"], true),
        ),
        (
            "UpdateWatch",
            object_schema(
                WATCH_BASE_PROPS,
                &[("last_viewed", last_viewed)],
                &watch_dropped,
                &[],
                false,
            ),
        ),
        (
            "CreateTag",
            object_schema(
                WATCH_BASE_PROPS,
                TAG_OWN_PROPS,
                &tag_dropped,
                &["title"],
                false,
            ),
        ),
        (
            "UpdateTag",
            object_schema(WATCH_BASE_PROPS, TAG_OWN_PROPS, &tag_dropped, &[], false),
        ),
        // Upstream's `processors/restock_diff/api.yaml` component, as the write checks run it.
        (
            "processor_config_restock_diff",
            node_schema(&super::schema::RESTOCK_CONFIG),
        ),
    ]
}

/// Names a watch body may carry besides its fields; the query parameters of `POST /import`
/// (every watch field, as a string converted by the field's type).
pub fn watch_field_names() -> impl Iterator<Item = &'static str> {
    WATCH_BASE_PROPS.iter().map(|(name, _)| *name)
}

/// A top-level body: the known fields, the read-only ones a client may send back from a GET
/// (accepted and dropped, as upstream does), `__`-prefixed keys (dropped), and nothing else:
/// any other key is refused with "Unknown field(s)". Fields stored but not acted on say so
/// and which values they take (`legacy_tag_names`: this body's `tag` is resolved to tags).
fn object_schema(
    props: &[(&str, Node)],
    own: &[(&str, Node)],
    dropped: &[&str],
    required: &[&str],
    legacy_tag_names: bool,
) -> Value {
    let mut properties = Map::new();
    for (name, node) in props.iter().chain(own) {
        let mut schema = node_schema(node);
        if *name == "url"
            && let Value::Object(s) = &mut schema
        {
            // Checked after the schema by `is_valid_watch_url` (http, https or ftp with a
            // valid host); stated here so clients and fuzzers produce URLs.
            s.insert("format".into(), json!("uri"));
        }
        if let Some(u) = unsupported_field(name).filter(|u| !(legacy_tag_names && u.field == "tag"))
            && let Value::Object(s) = &mut schema
        {
            s.insert(
                "description".into(),
                json!(format!(
                    "Not supported: {}. Accepted: {}; any other value is refused (400).",
                    u.why, u.accepted
                )),
            );
        }
        properties.insert((*name).to_string(), schema);
    }
    for name in dropped {
        properties.entry((*name).to_string()).or_insert_with(
            || json!({"readOnly": true, "description": "read-only; ignored on input"}),
        );
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema.insert("patternProperties".into(), json!({"^__": {}}));
    schema.insert("additionalProperties".into(), json!(false));
    Value::Object(schema)
}

/// One validation node as JSON Schema 2020-12 (OpenAPI 3.1), keyword for keyword.
fn node_schema(node: &Node) -> Value {
    let mut s = Map::new();
    match node.types {
        [] => {}
        [one] => {
            s.insert("type".into(), json!(one.name()));
        }
        many => {
            s.insert(
                "type".into(),
                Value::Array(many.iter().map(|t| json!(t.name())).collect()),
            );
        }
    }
    if node.format_uuid {
        s.insert("format".into(), json!("uuid"));
    }
    if let Some(max) = node.max_len {
        s.insert("maxLength".into(), json!(max));
    }
    if let Some(p) = node.pattern {
        s.insert("pattern".into(), json!(p.source()));
    }
    if !node.enum_vals.is_empty() {
        s.insert("enum".into(), json!(node.enum_vals));
    }
    if let Some(min) = node.minimum {
        s.insert("minimum".into(), json!(min));
    }
    if let Some(max) = node.maximum {
        s.insert("maximum".into(), json!(max));
    }
    if let Some(items) = node.items {
        s.insert("items".into(), node_schema(items));
    }
    if let Some(max) = node.max_items {
        s.insert("maxItems".into(), json!(max));
    }
    if !node.props.is_empty() {
        let props: Map<String, Value> = node
            .props
            .iter()
            .map(|(name, sub)| ((*name).to_string(), node_schema(sub)))
            .collect();
        s.insert("properties".into(), Value::Object(props));
    }
    if !node.required.is_empty() {
        s.insert("required".into(), json!(node.required));
    }
    match node.extra {
        Extra::Any => {}
        Extra::Deny => {
            s.insert("additionalProperties".into(), json!(false));
        }
        Extra::Each(sub) => {
            s.insert("additionalProperties".into(), node_schema(sub));
        }
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str) -> Value {
        request_body_schemas()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .unwrap_or(Value::Null)
    }

    #[test]
    fn create_watch_requires_url_and_closes_the_object() {
        let s = schema("CreateWatch");
        assert_eq!(s["required"], json!(["url"]));
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(
            s["properties"]["url"],
            json!({"type": "string", "maxLength": 5000, "format": "uri"})
        );
        assert_eq!(
            s["properties"]["title"],
            json!({"type": ["string", "null"], "maxLength": 5000})
        );
        // Read-only fields a GET returns are accepted back and dropped.
        assert_eq!(s["properties"]["last_checked"]["readOnly"], json!(true));
    }

    #[test]
    fn nested_rules_are_carried_over() {
        let s = schema("UpdateWatch");
        assert_eq!(
            s["properties"]["time_between_check"]["properties"]["weeks"],
            json!({"type": ["integer", "null"], "minimum": 0, "maximum": 52000})
        );
        assert_eq!(
            s["properties"]["browser_steps"]["items"]["additionalProperties"],
            json!(false)
        );
        assert_eq!(
            s["properties"]["headers"]["additionalProperties"],
            json!({"type": "string"})
        );
        assert_eq!(s["properties"]["last_viewed"]["minimum"], json!(0));
        assert!(s.get("required").is_none());
    }

    #[test]
    fn fields_stored_but_not_acted_on_say_which_values_they_take() {
        let described = |schema: &Value, field: &str| {
            schema["properties"][field]["description"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        for name in ["CreateWatch", "UpdateWatch", "CreateTag", "UpdateTag"] {
            let s = schema(name);
            assert_eq!(
                described(&s, "llm_intent"),
                "Not supported: changewatch has no LLM features. Accepted: ''; any other value \
                 is refused (400)."
            );
            assert!(described(&s, "in_stock_only").starts_with("Not supported"));
            assert_eq!(described(&s, "processor"), "");
            assert_eq!(described(&s, "processor_config_restock_diff"), "");
            assert_eq!(described(&s, "include_filters"), "");
        }
        // POST /watch resolves legacy tag names; elsewhere `tag` is refused.
        assert_eq!(described(&schema("CreateWatch"), "tag"), "");
        assert!(described(&schema("UpdateWatch"), "tag").starts_with("Not supported"));
    }

    #[test]
    fn the_restock_config_is_a_served_component() {
        let s = schema("processor_config_restock_diff");
        assert_eq!(
            s["properties"]["in_stock_processing"]["enum"],
            json!(["in_stock_only", "all_changes", "off"])
        );
        assert_eq!(
            s["properties"]["price_change_threshold_percent"]["maximum"],
            json!(100)
        );
    }

    #[test]
    fn every_validated_field_is_described() {
        let s = schema("CreateTag");
        for (name, _) in WATCH_BASE_PROPS.iter().chain(TAG_OWN_PROPS) {
            assert!(s["properties"].get(*name).is_some(), "{name} missing");
        }
        assert_eq!(s["required"], json!(["title"]));
        assert_eq!(
            s["properties"]["tag_colour"]["pattern"],
            json!("^(#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}))?$")
        );
    }
}
