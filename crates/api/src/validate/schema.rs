//! The request-body schema check (upstream runs openapi-core with jsonschema's messages):
//! the validation tables, and Python-style value reprs for the messages.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Int,
    Num,
    Bool,
    Null,
    Obj,
    Arr,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Num => "number",
            Ty::Bool => "boolean",
            Ty::Null => "null",
            Ty::Obj => "object",
            Ty::Arr => "array",
        }
    }

    /// JSON Schema typing: `1.0` is an integer, booleans are not numbers.
    fn matches(self, v: &Value) -> bool {
        match (self, v) {
            (Ty::Str, Value::String(_)) => true,
            (Ty::Int, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            (Ty::Num, Value::Number(_)) => true,
            (Ty::Bool, Value::Bool(_)) => true,
            (Ty::Null, Value::Null) => true,
            (Ty::Obj, Value::Object(_)) => true,
            (Ty::Arr, Value::Array(_)) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Pat {
    FetchBackend,
    StartTime,
    Digits,
    HexColourOrEmpty,
}

impl Pat {
    pub(super) fn source(self) -> &'static str {
        match self {
            Pat::FetchBackend => "^(system|html_requests|html_webdriver|extra_browser_.+)$",
            Pat::StartTime => "^([0-1]?[0-9]|2[0-3]):[0-5][0-9]$",
            Pat::Digits => "^[0-9]+$",
            Pat::HexColourOrEmpty => "^(#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}))?$",
        }
    }

    fn matches(self, s: &str) -> bool {
        // Python's `$` also matches before one trailing newline.
        let s = s.strip_suffix('\n').unwrap_or(s);
        match self {
            Pat::FetchBackend => {
                matches!(s, "system" | "html_requests" | "html_webdriver")
                    || s.strip_prefix("extra_browser_")
                        .is_some_and(|r| !r.is_empty() && !r.contains('\n'))
            }
            Pat::StartTime => {
                let Some((h, m)) = s.split_once(':') else {
                    return false;
                };
                let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
                let hour_ok = match h.len() {
                    1 => digits(h),
                    2 => {
                        digits(h)
                            && (h.as_bytes()[0] <= b'1'
                                || (h.as_bytes()[0] == b'2' && h.as_bytes()[1] <= b'3'))
                    }
                    _ => false,
                };
                hour_ok && m.len() == 2 && digits(m) && m.as_bytes()[0] <= b'5'
            }
            Pat::Digits => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
            Pat::HexColourOrEmpty => s.is_empty() || is_hex_colour(s),
        }
    }
}

pub(super) fn is_hex_colour(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Extra {
    Any,
    Deny,
    Each(&'static Node),
}

/// One JSON Schema node with the keywords the spec uses. Keywords are checked in the order
/// the spec lists them (type first), which is the order upstream reports errors in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    pub(super) types: &'static [Ty],
    pub(super) format_uuid: bool,
    pub(super) max_len: Option<usize>,
    pub(super) pattern: Option<Pat>,
    pub(super) enum_vals: &'static [&'static str],
    pub(super) minimum: Option<i64>,
    pub(super) maximum: Option<i64>,
    pub(super) items: Option<&'static Node>,
    pub(super) max_items: Option<usize>,
    pub(super) props: &'static [(&'static str, Node)],
    pub(super) required: &'static [&'static str],
    pub(super) extra: Extra,
}

pub(super) const ANY: Node = Node {
    types: &[],
    format_uuid: false,
    max_len: None,
    pattern: None,
    enum_vals: &[],
    minimum: None,
    maximum: None,
    items: None,
    max_items: None,
    props: &[],
    required: &[],
    extra: Extra::Any,
};
pub(super) const STR: Node = Node {
    types: &[Ty::Str],
    ..ANY
};
pub(super) const STR_5000: Node = Node {
    max_len: Some(5000),
    ..STR
};
pub(super) const STR_1000: Node = Node {
    max_len: Some(1000),
    ..STR
};
pub(super) const STR_2000: Node = Node {
    max_len: Some(2000),
    ..STR
};
pub(super) const STR_NULL: Node = Node {
    types: &[Ty::Str, Ty::Null],
    ..ANY
};
pub(super) const STR_NULL_5000: Node = Node {
    max_len: Some(5000),
    ..STR_NULL
};
pub(super) const BOOL: Node = Node {
    types: &[Ty::Bool],
    ..ANY
};
pub(super) const BOOL_NULL: Node = Node {
    types: &[Ty::Bool, Ty::Null],
    ..ANY
};
pub(super) const INT_NULL: Node = Node {
    types: &[Ty::Int, Ty::Null],
    ..ANY
};
pub(super) const NUM_NULL: Node = Node {
    types: &[Ty::Num, Ty::Null],
    ..ANY
};
pub(super) const OBJ: Node = Node {
    types: &[Ty::Obj],
    ..ANY
};
pub(super) const STR_LIST: Node = Node {
    types: &[Ty::Arr],
    items: Some(&STR_5000),
    max_items: Some(100),
    ..ANY
};
pub(super) const fn interval(max: i64) -> Node {
    Node {
        minimum: Some(0),
        maximum: Some(max),
        ..INT_NULL
    }
}
pub(super) const fn enum_str(vals: &'static [&'static str]) -> Node {
    Node {
        enum_vals: vals,
        ..STR
    }
}
pub(super) const DAY_SCHEDULE: Node = Node {
    types: &[Ty::Obj],
    props: &[
        ("enabled", BOOL),
        (
            "start_time",
            Node {
                pattern: Some(Pat::StartTime),
                ..STR
            },
        ),
        (
            "duration",
            Node {
                types: &[Ty::Obj],
                props: &[
                    (
                        "hours",
                        Node {
                            pattern: Some(Pat::Digits),
                            ..STR
                        },
                    ),
                    (
                        "minutes",
                        Node {
                            pattern: Some(Pat::Digits),
                            ..STR
                        },
                    ),
                ],
                ..ANY
            },
        ),
    ],
    ..ANY
};
pub(super) const BROWSER_STEP: Node = Node {
    types: &[Ty::Obj],
    props: &[
        ("operation", STR_NULL_5000),
        ("selector", STR_NULL_5000),
        ("optional_value", STR_NULL_5000),
    ],
    required: &["operation", "selector", "optional_value"],
    extra: Extra::Deny,
    ..ANY
};
pub(super) const CONDITION: Node = Node {
    types: &[Ty::Obj],
    props: &[("field", STR), ("operator", STR), ("value", STR)],
    required: &["field", "operator", "value"],
    ..ANY
};
pub(super) const RESTOCK_CONFIG: Node = Node {
    types: &[Ty::Obj],
    props: &[
        (
            "in_stock_processing",
            enum_str(&["in_stock_only", "all_changes", "off"]),
        ),
        ("follow_price_changes", BOOL),
        ("price_change_min", NUM_NULL),
        ("price_change_max", NUM_NULL),
        (
            "price_change_threshold_percent",
            Node {
                minimum: Some(0),
                maximum: Some(100),
                ..NUM_NULL
            },
        ),
    ],
    ..ANY
};

/// WatchBase properties in spec order, with the processor config merged in as upstream does
/// at startup. `link_to_open` and `llm_backend_profile` are contract additions.
pub(super) const WATCH_BASE_PROPS: &[(&str, Node)] = &[
    (
        "uuid",
        Node {
            format_uuid: true,
            ..STR
        },
    ),
    ("date_created", INT_NULL),
    ("url", STR_5000),
    ("link_to_open", STR_5000),
    ("title", STR_NULL_5000),
    ("tag", STR_5000),
    (
        "tags",
        Node {
            types: &[Ty::Arr],
            items: Some(&STR),
            ..ANY
        },
    ),
    ("paused", BOOL),
    ("notification_muted", BOOL),
    ("method", enum_str(HTTP_METHODS)),
    (
        "fetch_backend",
        Node {
            pattern: Some(Pat::FetchBackend),
            ..STR
        },
    ),
    (
        "headers",
        Node {
            types: &[Ty::Obj],
            extra: Extra::Each(&STR),
            ..ANY
        },
    ),
    ("body", STR_NULL_5000),
    ("proxy", STR_NULL_5000),
    ("ignore_status_codes", BOOL_NULL),
    ("webdriver_delay", INT_NULL),
    ("webdriver_js_execute_code", STR_NULL_5000),
    (
        "time_between_check",
        Node {
            types: &[Ty::Obj],
            props: &[
                ("weeks", interval(52_000)),
                ("days", interval(365_000)),
                ("hours", interval(8_760_000)),
                ("minutes", interval(525_600_000)),
                ("seconds", interval(31_536_000_000)),
            ],
            ..ANY
        },
    ),
    ("time_between_check_use_default", BOOL),
    (
        "notification_urls",
        Node {
            types: &[Ty::Arr],
            items: Some(&STR_1000),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("notification_title", STR_NULL_5000),
    ("notification_body", STR_NULL_5000),
    ("notification_format", enum_str(NOTIFICATION_FORMATS)),
    // The spec says boolean|null but upstream stores "accepted"/"rejected" here, so a
    // GET -> PUT round trip must accept strings too.
    (
        "track_ldjson_price_data",
        Node {
            types: &[Ty::Bool, Ty::Null, Ty::Str],
            ..ANY
        },
    ),
    (
        "browser_steps",
        Node {
            types: &[Ty::Arr],
            items: Some(&BROWSER_STEP),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("processor", enum_str(PROCESSORS)),
    ("include_filters", STR_LIST),
    ("subtractive_selectors", STR_LIST),
    ("ignore_text", STR_LIST),
    ("trigger_text", STR_LIST),
    ("text_should_not_be_present", STR_LIST),
    ("extract_lines_containing", STR_LIST),
    ("extract_text", STR_LIST),
    ("trim_text_whitespace", BOOL),
    ("sort_text_alphabetically", BOOL),
    ("remove_duplicate_lines", BOOL),
    ("check_unique_lines", BOOL),
    ("strip_ignored_lines", BOOL_NULL),
    ("filter_text_added", BOOL),
    ("filter_text_removed", BOOL),
    ("filter_text_replaced", BOOL),
    ("in_stock_only", BOOL),
    ("follow_price_changes", BOOL),
    ("price_change_threshold_percent", NUM_NULL),
    ("has_ldjson_price_data", BOOL_NULL),
    ("notification_screenshot", BOOL),
    ("filter_failure_notification_send", BOOL),
    ("use_page_title_in_list", BOOL_NULL),
    (
        "history_snapshot_max_length",
        Node {
            minimum: Some(1),
            maximum: Some(1000),
            ..INT_NULL
        },
    ),
    (
        "time_schedule_limit",
        Node {
            types: &[Ty::Obj],
            props: &[
                ("enabled", BOOL),
                ("monday", DAY_SCHEDULE),
                ("tuesday", DAY_SCHEDULE),
                ("wednesday", DAY_SCHEDULE),
                ("thursday", DAY_SCHEDULE),
                ("friday", DAY_SCHEDULE),
                ("saturday", DAY_SCHEDULE),
                ("sunday", DAY_SCHEDULE),
            ],
            ..ANY
        },
    ),
    (
        "conditions",
        Node {
            types: &[Ty::Arr],
            items: Some(&CONDITION),
            max_items: Some(100),
            ..ANY
        },
    ),
    ("conditions_match_logic", enum_str(&["ALL", "ANY"])),
    ("llm_intent", STR_2000),
    ("llm_change_summary", STR_2000),
    ("llm_change_summary_mode", enum_str(&["replace", "append"])),
    ("llm_prefilter", STR_NULL),
    ("llm_evaluation_cache", OBJ),
    ("llm_last_tokens_used", INT_NULL),
    ("llm_tokens_used_cumulative", INT_NULL),
    ("llm_tokens_this_period", INT_NULL),
    ("llm_tokens_period_key", STR_NULL),
    ("processor_config_restock_diff", RESTOCK_CONFIG),
    ("llm_backend_profile", BOOL_NULL),
];

pub(super) const WATCH_BASE: Node = Node {
    types: &[Ty::Obj],
    props: WATCH_BASE_PROPS,
    ..ANY
};
/// The JSON type (first non-null one) of a WatchBase field, `None` for an unknown field.
/// POST /import takes any watch field as a query parameter and converts the string by it.
pub fn watch_field_type(name: &str) -> Option<&'static str> {
    let (_, node) = WATCH_BASE_PROPS.iter().find(|(n, _)| *n == name)?;
    Some(
        node.types
            .iter()
            .find(|t| **t != Ty::Null)
            .map_or("string", |t| t.name()),
    )
}

pub(super) const CREATE_WATCH_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        required: &["url"],
        ..ANY
    },
];
pub(super) const UPDATE_WATCH_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: &[(
            "last_viewed",
            Node {
                types: &[Ty::Int],
                minimum: Some(0),
                ..ANY
            },
        )],
        ..ANY
    },
];
pub(super) const TAG_OWN_PROPS: &[(&str, Node)] = &[
    ("overrides_watch", BOOL_NULL),
    ("url_match_pattern", STR),
    (
        "tag_colour",
        Node {
            pattern: Some(Pat::HexColourOrEmpty),
            ..STR
        },
    ),
];
pub(super) const TAG_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: TAG_OWN_PROPS,
        ..ANY
    },
];
pub(super) const CREATE_TAG_SCHEMA: &[Node] = &[
    WATCH_BASE,
    Node {
        types: &[Ty::Obj],
        props: TAG_OWN_PROPS,
        ..ANY
    },
    Node {
        types: &[Ty::Obj],
        required: &["title"],
        ..ANY
    },
];

/// jsonschema's `uuid` format: parses, and is written in the canonical hyphenated form.
pub(super) fn is_uuid_format(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s.to_lowercase())
}

pub(super) fn type_list_repr(types: &[Ty]) -> String {
    types
        .iter()
        .map(|t| format!("'{}'", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn str_list_repr(vals: &[&str]) -> String {
    let items: Vec<String> = vals.iter().map(|v| py_str_repr(v)).collect();
    format!("[{}]", items.join(", "))
}

pub(super) fn validate_node(
    node: &Node,
    v: &Value,
    path: &mut Vec<String>,
    errs: &mut Vec<String>,
) {
    let mut push = |path: &Vec<String>, msg: String| {
        let field = if path.is_empty() {
            "body".to_string()
        } else {
            path.join(".")
        };
        errs.push(format!("{field}: {msg}"));
    };
    if !node.types.is_empty() && !node.types.iter().any(|t| t.matches(v)) {
        push(
            path,
            format!(
                "{} is not of type {}",
                py_repr(v),
                type_list_repr(node.types)
            ),
        );
    }
    if !node.enum_vals.is_empty()
        && !matches!(v, Value::String(s) if node.enum_vals.contains(&s.as_str()))
    {
        push(
            path,
            format!(
                "{} is not one of {}",
                py_repr(v),
                str_list_repr(node.enum_vals)
            ),
        );
    }
    if let Value::String(s) = v {
        if node.format_uuid && !is_uuid_format(s) {
            push(path, format!("{} is not a 'uuid'", py_repr(v)));
        }
        if let Some(max) = node.max_len
            && s.chars().count() > max
        {
            push(path, format!("{} is too long", py_repr(v)));
        }
        if let Some(p) = node.pattern
            && !p.matches(s)
        {
            push(
                path,
                format!("{} does not match {}", py_repr(v), py_str_repr(p.source())),
            );
        }
    }
    if let Value::Number(n) = v {
        let f = n.as_f64().unwrap_or(0.0);
        if let Some(min) = node.minimum
            && f < min as f64
        {
            push(
                path,
                format!("{} is less than the minimum of {min}", py_repr(v)),
            );
        }
        if let Some(max) = node.maximum
            && f > max as f64
        {
            push(
                path,
                format!("{} is greater than the maximum of {max}", py_repr(v)),
            );
        }
    }
    if let Value::Array(items) = v {
        if let Some(item_node) = node.items {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                validate_node(item_node, item, path, errs);
                path.pop();
            }
        }
        if let Some(max) = node.max_items
            && items.len() > max
        {
            let field = if path.is_empty() {
                "body".to_string()
            } else {
                path.join(".")
            };
            errs.push(format!("{field}: {} is too long", py_repr(v)));
        }
    }
    if let Value::Object(obj) = v {
        for (name, sub) in node.props {
            if let Some(child) = obj.get(*name) {
                path.push((*name).to_string());
                validate_node(sub, child, path, errs);
                path.pop();
            }
        }
        let field = if path.is_empty() {
            "body".to_string()
        } else {
            path.join(".")
        };
        for r in node.required {
            if !obj.contains_key(*r) {
                errs.push(format!(
                    "{field}: {} is a required property",
                    py_str_repr(r)
                ));
            }
        }
        let extras: Vec<&String> = obj
            .keys()
            .filter(|k| !node.props.iter().any(|(n, _)| n == k))
            .collect();
        match node.extra {
            Extra::Any => {}
            Extra::Deny if !extras.is_empty() => {
                let names: Vec<String> = extras.iter().map(|k| py_str_repr(k)).collect();
                let verb = if names.len() == 1 { "was" } else { "were" };
                errs.push(format!(
                    "{field}: Additional properties are not allowed ({} {verb} unexpected)",
                    names.join(", ")
                ));
            }
            Extra::Deny => {}
            Extra::Each(sub) => {
                for k in extras {
                    path.push(k.clone());
                    validate_node(sub, &obj[k.as_str()], path, errs);
                    path.pop();
                }
            }
        }
    }
}

/// Checks a request body against an `allOf` list of schema nodes; `Err` carries upstream's
/// "Validation failed: field: message; ..." error.
pub(super) fn schema_check<'v>(
    body: &'v Value,
    schema: &[Node],
) -> Result<&'v Map<String, Value>, ApiValidationError> {
    let mut errs = Vec::new();
    for node in schema {
        validate_node(node, body, &mut Vec::new(), &mut errs);
    }
    match body {
        Value::Object(m) if errs.is_empty() => Ok(m),
        _ => Err(ApiValidationError::ValidationFailed(errs)),
    }
}

/// Python `repr()` of a JSON value, because upstream's messages embed it (`'x'`, `None`,
/// `True`, `[1, 2]`, `{'a': 1}`).
pub(super) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                py_float_repr(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => py_str_repr(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

pub(super) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if neg { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        };
        format!("{sign}{body}")
    } else {
        let mant = mant.trim_start_matches('-');
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mant}e{esign}{:02}", exp.unsigned_abs())
    }
}

pub(super) fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control()
                || (c.is_whitespace() && c != ' ')
                || matches!(c, '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}') =>
            {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}
