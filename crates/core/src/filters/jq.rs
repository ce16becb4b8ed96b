//! jq through jaq: the blocked builtins, operator counting, output caps.

use super::*;

/// Compiles a jq program with only side-effect-free builtins loaded.
///
/// Rather than pattern-matching the source like upstream (which also rejects
/// harmless paths such as `.env`), the dangerous builtins are simply absent;
/// using one surfaces as an undefined name, reported as [`FilterError::JqBlocked`].
/// Module loading (`include`, `import`) has no reader and always fails.
pub(super) fn compile_jq(expr: &str, allow_risky: bool) -> Result<JqFilter, FilterError> {
    let blocked = |name: &str| -> Option<&'static str> {
        if allow_risky && !name.starts_with('$') {
            return None;
        }
        JQ_BLOCKED
            .iter()
            .find(|(blocked, _)| *blocked == name)
            .map(|(_, why)| *why)
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .filter(|def| blocked(def.name).is_none());
    let funs = jaq_core::funs::<JqData>()
        .chain(jaq_std::funs::<JqData>())
        .chain(jaq_json::funs::<JqData>())
        .filter(|(name, _, _)| blocked(name).is_none());

    let invalid = |reason: String| FilterError::InvalidJq {
        expr: expr.to_owned(),
        reason,
    };
    let arena = Arena::default();
    let program = File {
        code: expr,
        path: (),
    };
    let modules = Loader::new(defs).load(&arena, program).map_err(|errors| {
        let mut reasons = Vec::new();
        for (_, error) in errors {
            match error {
                jaq_core::load::Error::Io(items) => {
                    let builtin = if contains_word(expr, "import") {
                        "import (reads files from disk)"
                    } else {
                        "include (reads files from disk)"
                    };
                    if !items.is_empty() {
                        return FilterError::JqBlocked {
                            expr: expr.to_owned(),
                            builtin: builtin.to_owned(),
                        };
                    }
                }
                jaq_core::load::Error::Lex(items) => {
                    reasons.extend(items.iter().map(|(expected, found)| {
                        format!("expected {} at '{}'", expected.as_str(), snippet(found))
                    }));
                }
                jaq_core::load::Error::Parse(items) => {
                    reasons.extend(items.iter().map(|(expected, found)| {
                        format!("expected {} at '{}'", expected.as_str(), snippet(found))
                    }));
                }
            }
        }
        invalid(reasons.join("; "))
    })?;

    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let undefined: Vec<(&str, &'static str)> = errors
                .iter()
                .flat_map(|(_, items)| items.iter())
                .map(|(name, kind)| (*name, kind.as_str()))
                .collect();
            let blocked_use = undefined.iter().find_map(|(name, kind)| match *kind {
                "variable" if !name.starts_with('$') => blocked(&format!("${name}")),
                _ => blocked(name),
            });
            match blocked_use {
                Some(builtin) => FilterError::JqBlocked {
                    expr: expr.to_owned(),
                    builtin: builtin.to_owned(),
                },
                None => invalid(
                    undefined
                        .iter()
                        .map(|(name, kind)| format!("undefined {kind} '{name}'"))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            }
        })
}

pub(super) fn snippet(found: &str) -> String {
    let s: String = found.chars().take(20).collect();
    if s.is_empty() {
        "end of input".to_owned()
    } else {
        s
    }
}

pub(super) fn contains_word(haystack: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    haystack.match_indices(word).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

pub(super) fn run_jq(filter: &JqFilter, text: &str, expr: &str) -> Result<Vec<Val>, FilterError> {
    let failed = |reason: String| FilterError::JqFailed {
        expr: expr.to_owned(),
        reason,
    };
    let input: Val = serde_json::from_str(text).map_err(|e| failed(e.to_string()))?;
    let context = Ctx::<JqData>::new(&filter.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for output in filter.id.run((context, input)) {
        match output {
            Ok(value) => outputs.push(value),
            // `halt` must not end the server process, unlike jaq's own
            // `unwrap_valr`, so exceptions are unpacked here.
            Err(exception) => {
                return Err(failed(match exception.get_err() {
                    Ok(error) => error.to_string(),
                    Err(_) => "halt was called".to_owned(),
                }));
            }
        }
        if outputs.len() > MAX_JQ_OUTPUTS {
            return Err(failed(format!(
                "produced more than {MAX_JQ_OUTPUTS} results"
            )));
        }
    }
    Ok(outputs)
}

pub(super) fn val_to_json(value: &Val) -> Value {
    match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number_to_json(&n.to_string()),
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => Value::Array(items.iter().map(val_to_json).collect()),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (val_key(key), val_to_json(value)))
                .collect(),
        ),
    }
}

pub(super) fn val_key(key: &Val) -> String {
    match key {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => other.to_string(),
    }
}

pub(super) fn number_to_json(text: &str) -> Value {
    if let Ok(number) = serde_json::from_str::<serde_json::Number>(text) {
        return Value::Number(number);
    }
    // NaN and infinities are not JSON; jq prints them as null / ±1.797e308.
    match text.parse::<f64>() {
        Ok(f) if f.is_infinite() => {
            let max = if f > 0.0 { f64::MAX } else { f64::MIN };
            serde_json::Number::from_f64(max).map_or(Value::Null, Value::Number)
        }
        _ => Value::Null,
    }
}

/// `jqraw:` prints strings without quotes, like `jq -r`; other values as
/// compact JSON.
pub(super) fn raw_jq_output(value: &Val) -> String {
    match value {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => serde_json::to_string(&val_to_json(other)).unwrap_or_default(),
    }
}
