//! `.xlsx` imports: Wachete's export (a header row naming the columns) or a custom mapping of
//! column numbers to watch fields, read from the workbook's first sheet.
//!
//! An xlsx file is a zip of XML: before calamine opens it the zip is walked once with every
//! entry really inflated (declared sizes can lie) against [`MAX_ENTRIES`] and
//! [`MAX_UNPACKED_BYTES`]; the sheet is then streamed cell by cell (calamine's `Range` would
//! allocate the bounding box of two far-apart cells) up to [`MAX_CELLS`].

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};
use serde_json::{Map, Value, json};

use super::{FormatError, Row, Rows, interval_from_minutes};
use changewatch_core::model::is_valid_watch_url;

/// Largest `.xlsx` upload (a 5 000-row Wachete export is well under 1 MB).
pub const MAX_XLSX_BYTES: usize = 16 * 1024 * 1024;
/// Entries in the zip (a workbook has a dozen or two).
pub const MAX_ENTRIES: usize = 1000;
/// Inflated bytes of all entries together.
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Non-empty cells read from the sheet.
pub const MAX_CELLS: usize = 200_000;

/// What a column of a custom mapping holds (upstream's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Url,
    Title,
    IncludeFilters,
    Tag,
    IntervalMinutes,
}

impl Column {
    pub const NAMES: &[&str] = &["url", "title", "include_filters", "tag", "interval_minutes"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "url" => Column::Url,
            "title" => Column::Title,
            "include_filters" => Column::IncludeFilters,
            "tag" => Column::Tag,
            "interval_minutes" => Column::IntervalMinutes,
            _ => return None,
        })
    }
}

/// How the sheet's columns map to watch fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    /// Wachete's export: row 1 names the columns (`url`, `name`, `xpath`, `interval (min)`,
    /// `dynamic wachet`, `folder`; case and spaces around them do not matter).
    Wachete,
    /// Column number (from 1) to field; every row is data, header rows included (their URL
    /// cell fails validation and is reported, as upstream reports it).
    Custom(BTreeMap<u32, Column>),
}

const BAD_URL: &str = "URL value was incorrect, row was skipped.";
const BAD_TYPES: &str = "check all cell data types are correct, row was skipped.";

/// The rows of the first sheet under `mapping`.
pub fn read(bytes: &[u8], mapping: &Mapping) -> Result<Vec<Row>, FormatError> {
    let bad = |m: String| FormatError::BadXlsx(m);
    if bytes.len() > MAX_XLSX_BYTES {
        return Err(bad(format!("larger than {MAX_XLSX_BYTES} bytes")));
    }
    check_zip(bytes)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let sheet = book
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| bad("the workbook has no sheet".into()))?;
    let mut cells = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| bad(e.to_string()))?;
    // Sheet row (from 0) -> column (from 0) -> text; empty cells are absent.
    let mut sheet_rows: BTreeMap<u32, BTreeMap<u32, Cell>> = BTreeMap::new();
    let mut count = 0;
    while let Some(c) = cells.next_cell().map_err(|e| bad(e.to_string()))? {
        let Some(v) = cell(c.get_value()) else {
            continue;
        };
        count += 1;
        if count > MAX_CELLS {
            return Err(bad(format!("more than {MAX_CELLS} cells")));
        }
        let (r, col) = c.get_position();
        sheet_rows.entry(r).or_default().insert(col, v);
    }
    Ok(match mapping {
        Mapping::Wachete => wachete(&sheet_rows),
        Mapping::Custom(cols) => custom(&sheet_rows, cols),
    })
}

/// Every entry inflated for real, counted against the bounds.
fn check_zip(bytes: &[u8]) -> Result<(), FormatError> {
    let bad = |m: String| FormatError::BadXlsx(m);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("not a zip file: {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(bad(format!("more than {MAX_ENTRIES} entries")));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let left = MAX_UNPACKED_BYTES - total;
        let n = std::io::copy(&mut entry.take(left + 1), &mut std::io::sink())
            .map_err(|e| bad(e.to_string()))?;
        total += n;
        if total > MAX_UNPACKED_BYTES {
            return Err(bad(format!(
                "unpacks to more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

/// A cell's value as upstream's `str(cell.value)` would give it for the types a sheet holds;
/// an error cell (`#N/A`) is kept as such so its row is reported.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Error,
}

fn cell(v: &DataRef<'_>) -> Option<Cell> {
    let text = match v {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => s.to_string(),
        DataRef::Int(i) => i.to_string(),
        // Whole numbers (sheets store 60 as 60.0) read as integers.
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => d.as_f64().to_string(),
        DataRef::Error(_) => return Some(Cell::Error),
    };
    let text = text.trim();
    (!text.is_empty()).then(|| Cell::Text(text.to_string()))
}

fn text(c: &Cell) -> Result<&str, String> {
    match c {
        Cell::Text(s) => Ok(s),
        Cell::Error => Err(BAD_TYPES.into()),
    }
}

fn minutes(c: &Cell) -> Result<Value, String> {
    let t = text(c)?;
    t.parse::<u64>()
        .map(interval_from_minutes)
        .map_err(|_| BAD_TYPES.to_string())
}

/// Wachete's "dynamic wachet" column: spreadsheets write booleans as TRUE, =TRUE() or 1.
fn fetch_backend(c: &Cell) -> Result<Option<&'static str>, String> {
    let t = text(c)?.to_ascii_lowercase();
    Ok(if t.contains("true") || t == "1" {
        Some("html_webdriver")
    } else if t.contains("false") || t == "0" {
        Some("html_requests")
    } else {
        None
    })
}

/// One sheet row with `url`: skipped without one or with a bad one, else `fields` adds the rest
/// of the body. False once a bound stops the sheet.
fn sheet_row(
    out: &mut Rows,
    n: usize,
    url: String,
    fields: impl FnOnce(&mut Map<String, Value>) -> Result<(), String>,
) -> bool {
    if out.full(n, &url, !url.is_empty()) {
        return false;
    }
    if url.is_empty() {
        out.rows.push(Row::skip(n, "", "No URL in this row"));
        return true;
    }
    let body = if is_valid_watch_url(&url) {
        let mut body = Map::new();
        body.insert("url".into(), json!(url));
        fields(&mut body).map(|()| body)
    } else {
        Err(BAD_URL.to_string())
    };
    out.rows.push(Row {
        row: n,
        url,
        body,
        rest: false,
    });
    true
}

fn wachete(rows: &BTreeMap<u32, BTreeMap<u32, Cell>>) -> Vec<Row> {
    let header: BTreeMap<u32, String> = rows
        .get(&0)
        .map(|h| {
            h.iter()
                .filter_map(|(c, v)| text(v).ok().map(|t| (*c, t.to_ascii_lowercase())))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Rows::default();
    for (r, cells) in rows.range(1..) {
        let named: BTreeMap<&str, &Cell> = cells
            .iter()
            .filter_map(|(c, v)| header.get(c).map(|h| (h.as_str(), v)))
            .collect();
        let url = named
            .get("url")
            .and_then(|c| text(c).ok())
            .unwrap_or_default();
        let more = sheet_row(&mut out, *r as usize + 1, url.to_string(), |body| {
            if let Some(c) = named.get("dynamic wachet")
                && let Some(f) = fetch_backend(c)?
            {
                body.insert("fetch_backend".into(), json!(f));
            }
            if let Some(c) = named.get("xpath") {
                body.insert("include_filters".into(), json!([text(c)?]));
            }
            if let Some(c) = named.get("name") {
                body.insert("title".into(), json!(text(c)?));
            }
            if let Some(c) = named.get("interval (min)") {
                body.insert("time_between_check".into(), minutes(c)?);
            }
            if let Some(c) = named.get("folder") {
                body.insert("tag".into(), json!(text(c)?));
            }
            Ok(())
        });
        if !more {
            break;
        }
    }
    out.rows
}

fn custom(rows: &BTreeMap<u32, BTreeMap<u32, Cell>>, cols: &BTreeMap<u32, Column>) -> Vec<Row> {
    let mut out = Rows::default();
    for (r, cells) in rows {
        // Mapped columns are numbered from 1, calamine's from 0.
        let mapped: Vec<(Column, &Cell)> = cells
            .iter()
            .filter_map(|(c, v)| cols.get(&(c + 1)).map(|k| (*k, v)))
            .collect();
        let url = mapped
            .iter()
            .find(|(k, _)| *k == Column::Url)
            .and_then(|(_, c)| text(c).ok())
            .unwrap_or_default();
        let more = sheet_row(&mut out, *r as usize + 1, url.to_string(), |body| {
            for (k, c) in &mapped {
                let (field, v) = match k {
                    Column::Url => continue,
                    Column::Title => ("title", json!(text(c)?)),
                    Column::IncludeFilters => ("include_filters", json!([text(c)?])),
                    Column::Tag => ("tag", json!(text(c)?)),
                    Column::IntervalMinutes => ("time_between_check", minutes(c)?),
                };
                body.insert(field.into(), v);
            }
            Ok(())
        });
        if !more {
            break;
        }
    }
    out.rows
}
