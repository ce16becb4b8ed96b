//! The import formats upstream's Import page takes, turned into watch bodies for the same
//! validation `POST /api/v1/watch` runs: a URL list (one URL a line, tags after a space),
//! Distill.io's JSON export, and `.xlsx` sheets (Wachete's export or a custom column mapping,
//! [`xlsx`]). Parsing only: nothing here touches the store, so a hostile file costs at most
//! the bounds below.

pub mod xlsx;

use serde_json::{Map, Value, json};

/// Upstream imports at most this many watches from one file ("the rest can be imported
/// again"); rows past it are reported as skipped rather than dropped.
pub const MAX_ROWS: usize = 5000;

/// Rows reported for one file at most, skipped ones included: a reply stays a few MB however
/// many junk lines a file holds.
pub const MAX_REPORTED: usize = 10_000;

/// Largest Distill.io export or URL list accepted (a 5 000-monitor export is a few MB).
pub const MAX_TEXT_BYTES: usize = 16 * 1024 * 1024;

/// A file as a whole could not be read: nothing was imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("Unable to read JSON file, was it broken?")]
    BadJson,
    #[error("JSON structure looks invalid, was it broken?")]
    BadStructure,
    #[error("Unable to read export XLSX file, something wrong with the file? ({0})")]
    BadXlsx(String),
}

/// One row of an import file: where it sits (line, array index or sheet row, from 1), the URL
/// it names (for the report), and either the watch body it maps to or why it is skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub row: usize,
    pub url: String,
    pub body: Result<Map<String, Value>, String>,
    /// This row and every one after it were not read (a bound was reached): the caller shows
    /// them as left to import again.
    pub rest: bool,
}

impl Row {
    fn skip(row: usize, url: impl Into<String>, reason: impl Into<String>) -> Self {
        Row {
            row,
            url: url.into(),
            body: Err(reason.into()),
            rest: false,
        }
    }
}

/// The rows of one file as they are read, within [`MAX_ROWS`] and [`MAX_REPORTED`].
#[derive(Debug, Default)]
struct Rows {
    rows: Vec<Row>,
    taken: usize,
}

impl Rows {
    /// True when row `n` is past a bound: it is recorded as the start of the rest, and the
    /// file must stop there. `with_url`: the row names a URL (counts toward [`MAX_ROWS`]).
    fn full(&mut self, n: usize, url: &str, with_url: bool) -> bool {
        if self.rows.len() + 1 >= MAX_REPORTED || (with_url && self.taken == MAX_ROWS) {
            self.rows.push(Row {
                rest: true,
                ..Row::skip(
                    n,
                    url,
                    format!(
                        "Only the first {MAX_ROWS} URLs are imported at once: this row and the ones after it were not read, import them again."
                    ),
                )
            });
            return true;
        }
        self.taken += usize::from(with_url);
        false
    }
}

/// Upstream's list: a URL, optionally a space and comma-separated tag names. `tag` (names,
/// comma-separated) is added to every line's; `processor` goes to every watch. Blank lines are
/// no rows; a line without "http" in its URL is skipped as upstream skips it.
pub fn url_list(text: &str, tag: Option<&str>, processor: Option<&str>) -> Vec<Row> {
    let mut rows = Rows::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (url, tags) = line.split_once(' ').unwrap_or((line, ""));
        let (n, url) = (i + 1, url.trim());
        let with_url = url.to_ascii_lowercase().contains("http");
        if rows.full(n, url, with_url) {
            break;
        }
        if !with_url {
            rows.rows
                .push(Row::skip(n, url, "Not a URL (it must start with http)"));
            continue;
        }
        let mut body = Map::new();
        body.insert("url".into(), json!(url));
        let names: Vec<&str> = tags
            .split(',')
            .chain(tag.unwrap_or_default().split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !names.is_empty() {
            body.insert("tag".into(), json!(names.join(",")));
        }
        if let Some(p) = processor {
            body.insert("processor".into(), json!(p));
        }
        rows.rows.push(Row {
            row: n,
            url: url.to_string(),
            body: Ok(body),
            rest: false,
        });
    }
    rows.rows
}

/// Distill.io's export (`{"data": [monitor, ...]}`): `name` is the title, `uri` the URL,
/// `tags` the tag names, and the first frame of `config`'s first selection gives the filters
/// (its first include, XPath or CSS, and its first CSS exclude), as upstream reads them; the
/// rest of a monitor (its schedule included) has no counterpart and is left, as upstream does.
pub fn distill_json(text: &str) -> Result<Vec<Row>, FormatError> {
    let doc: Value = serde_json::from_str(text.trim()).map_err(|_| FormatError::BadJson)?;
    let monitors = match doc.get("data") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(FormatError::BadStructure),
    };
    let mut rows = Rows::default();
    for (i, m) in monitors.iter().enumerate() {
        let n = i + 1;
        let uri = m.get("uri").and_then(Value::as_str).map(str::trim);
        let uri = uri.filter(|u| !u.is_empty());
        if rows.full(n, uri.unwrap_or_default(), uri.is_some()) {
            break;
        }
        let Some(uri) = uri else {
            rows.rows
                .push(Row::skip(n, "", "The monitor has no \"uri\""));
            continue;
        };
        rows.rows.push(match distill_monitor(m, uri) {
            Ok(body) => Row {
                row: n,
                url: uri.to_string(),
                body: Ok(body),
                rest: false,
            },
            Err(reason) => Row::skip(n, uri, reason),
        });
    }
    Ok(rows.rows)
}

fn distill_monitor(m: &Value, uri: &str) -> Result<Map<String, Value>, String> {
    let mut body = Map::new();
    body.insert("url".into(), json!(uri));
    match m.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            body.insert("title".into(), json!(s));
        }
        Some(_) => return Err("\"name\" is not a string".into()),
    }
    match m.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) => {
            let names = tags
                .iter()
                .map(|t| t.as_str().map(str::trim))
                .collect::<Option<Vec<_>>>()
                .ok_or("\"tags\" holds something other than names")?;
            let names: Vec<&str> = names.into_iter().filter(|t| !t.is_empty()).collect();
            if !names.is_empty() {
                body.insert("tag".into(), json!(names.join(",")));
            }
        }
        Some(_) => return Err("\"tags\" is not a list".into()),
    }
    // `config` is JSON in a string.
    let config: Value = match m.get("config") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|_| "\"config\" is not valid JSON".to_string())?
        }
        Some(_) => return Err("\"config\" is not a JSON string".into()),
    };
    let frame = config.pointer("/selections/0/frames/0");
    let first = |list: &str| frame.and_then(|f| f.pointer(&format!("/{list}/0")));
    let expr = |sel: &Value| sel.get("expr").and_then(Value::as_str).map(str::to_string);
    if let Some(ex) = first("excludes")
        && ex.get("type").and_then(Value::as_str) == Some("css")
        && let Some(e) = expr(ex)
    {
        body.insert("subtractive_selectors".into(), json!([e]));
    }
    if let Some(inc) = first("includes")
        && let Some(e) = expr(inc)
    {
        let filter = if inc.get("type").and_then(Value::as_str) == Some("xpath") {
            format!("xpath:{e}")
        } else {
            e
        };
        body.insert("include_filters".into(), json!([filter]));
    }
    Ok(body)
}

/// Upstream's recheck interval from minutes: whole weeks, days, hours and minutes.
pub fn interval_from_minutes(minutes: u64) -> Value {
    let (hours, minutes) = (minutes / 60, minutes % 60);
    let (days, hours) = (hours / 24, hours % 24);
    let (weeks, days) = (days / 7, days % 7);
    json!({"weeks": weeks, "days": days, "hours": hours, "minutes": minutes, "seconds": 0})
}

#[cfg(test)]
mod tests;
