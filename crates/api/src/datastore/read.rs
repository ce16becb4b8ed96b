//! Reading upstream's datastore directory as changedetection.io 0.50–0.60 leaves it.
//!
//! Two layouts: 0.60's `changedetection.json` (settings only) beside one `<uuid>/watch.json`
//! or `<uuid>/tag.json` per item, and the older single `url-watches.json` whose `watching`
//! holds the watches and whose `settings.application.tags` the tags. Either way a watch's
//! history lives in its `<uuid>/` folder: an index (`history.txt`, or
//! `history-<processor>.txt` for other processors) of `timestamp,filename` lines, each
//! snapshot plain (`<id>.txt`) or brotli-compressed (`<id>.txt.br`, upstream's choice for
//! text over 20 KB), the raw HTML of the newest checks (`<timestamp>.html.br`) and the text
//! before filters of the last check (`last-fetched.br`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::ImportError;

/// The settings file of 0.60's layout.
pub const SETTINGS_FILE: &str = "changedetection.json";
/// The single file of the older layout.
pub const LEGACY_FILE: &str = "url-watches.json";

/// Upstream refuses a `watch.json` over 10 MB as corrupt; so does this reader.
const MAX_ITEM_FILE: u64 = 10 * 1024 * 1024;

/// What the datastore's top-level files and item folders hold, before any mapping.
#[derive(Debug)]
pub struct Datastore {
    pub root: PathBuf,
    /// Which layout it was read as (`changedetection.json` or `url-watches.json`).
    pub layout: &'static str,
    /// `settings` of the settings file.
    pub settings: Option<Value>,
    /// The older layout's watches (all in its one file), by uuid.
    pub watches: BTreeMap<String, Map<String, Value>>,
    /// 0.60's `<uuid>/watch.json` files, read one at a time as they are imported (a datastore
    /// of tens of thousands of watches is not held in memory at once); a file wins over an
    /// inline copy of the same uuid.
    pub watch_files: BTreeMap<String, PathBuf>,
    pub tags: BTreeMap<String, Map<String, Value>>,
    /// Folders or files that could not be read, with why: they go into the report.
    pub unreadable: Vec<(String, String)>,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_ITEM_FILE {
        return Err(format!(
            "{} bytes, over the {MAX_ITEM_FILE} upstream itself reads",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

/// Reads the layout found at `root`. A datastore with neither settings file is refused
/// (nothing says it is upstream's); a single unreadable item is reported, not fatal.
pub fn read_datastore(root: &Path) -> Result<Datastore, ImportError> {
    let new = root.join(SETTINGS_FILE);
    let legacy = root.join(LEGACY_FILE);
    let (layout, main) = if new.is_file() {
        (SETTINGS_FILE, new)
    } else if legacy.is_file() {
        (LEGACY_FILE, legacy)
    } else {
        return Err(ImportError::NotADatastore(format!(
            "{} has neither {SETTINGS_FILE} nor {LEGACY_FILE}",
            root.display()
        )));
    };
    let doc = read_json(&main)
        .map_err(|e| ImportError::NotADatastore(format!("{}: {e}", main.display())))?;
    let Value::Object(mut doc) = doc else {
        return Err(ImportError::NotADatastore(format!(
            "{}: not a JSON object",
            main.display()
        )));
    };
    let mut ds = Datastore {
        root: root.to_path_buf(),
        layout,
        settings: None,
        watches: BTreeMap::new(),
        watch_files: BTreeMap::new(),
        tags: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    let mut settings = doc.remove("settings");
    // The older layout's tags sit in the settings; 0.60 writes `{}` there.
    if let Some(tags) = settings
        .as_mut()
        .and_then(|s| s.get_mut("application"))
        .and_then(Value::as_object_mut)
        .and_then(|a| a.remove("tags"))
        && let Value::Object(tags) = tags
    {
        for (uuid, tag) in tags {
            match tag {
                Value::Object(t) => {
                    ds.tags.insert(uuid, t);
                }
                _ => ds
                    .unreadable
                    .push((format!("tag {uuid}"), "not a JSON object".into())),
            }
        }
    }
    ds.settings = settings;
    if let Some(Value::Object(watching)) = doc.remove("watching") {
        for (uuid, w) in watching {
            match w {
                Value::Object(w) => {
                    ds.watches.insert(uuid, w);
                }
                _ => ds
                    .unreadable
                    .push((format!("watch {uuid}"), "not a JSON object".into())),
            }
        }
    }
    // Item folders: 0.60's files, which win over an inline copy of the same uuid (upstream
    // loads the files after the settings file).
    let entries = std::fs::read_dir(root).map_err(|e| ImportError::Io {
        path: root.display().to_string(),
        source: e,
    })?;
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            dirs.push((name.to_string(), path));
        }
    }
    dirs.sort();
    for (uuid, dir) in dirs {
        let watch = dir.join("watch.json");
        if watch.is_file() {
            ds.watch_files.insert(uuid.clone(), watch);
        }
        let path = dir.join("tag.json");
        if !path.is_file() {
            continue;
        }
        match read_json(&path) {
            Ok(Value::Object(m)) => {
                ds.tags.insert(uuid.clone(), m);
            }
            Ok(_) => ds
                .unreadable
                .push((format!("tag {uuid}"), "tag.json: not a JSON object".into())),
            Err(e) => ds
                .unreadable
                .push((format!("tag {uuid}"), format!("tag.json: {e}"))),
        }
    }
    Ok(ds)
}

/// A `<uuid>/watch.json`, read when its turn comes.
pub fn read_watch_file(path: &Path) -> Result<Map<String, Value>, String> {
    match read_json(path) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("watch.json: not a JSON object".into()),
        Err(e) => Err(format!("watch.json: {e}")),
    }
}

/// One line of a history index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub ts: i64,
    /// The snapshot's file name in the watch folder (upstream reduces every entry to its
    /// base name: older versions wrote absolute paths).
    pub file: String,
}

/// The index file name upstream uses for a processor.
pub fn history_index_name(processor: Option<&str>) -> String {
    match processor {
        None | Some("") | Some("text_json_diff") => "history.txt".into(),
        Some(p) => format!("history-{p}.txt"),
    }
}

/// The index a watch's history is in: upstream's name for its processor, or `history.txt`
/// where a release before `update_25` left a non-text processor's history.
pub fn history_index_for(dir: &Path, processor: Option<&str>) -> String {
    let name = history_index_name(processor);
    if !dir.join(&name).is_file() && dir.join("history.txt").is_file() {
        return "history.txt".into();
    }
    name
}

/// The entries of a watch's history index, oldest first, one per timestamp (upstream reads
/// the index into a dict: a repeated timestamp keeps its last line). Lines that do not parse
/// are returned apart, for the report.
pub fn read_history(dir: &Path, index: &str) -> (Vec<HistoryEntry>, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(dir.join(index)) else {
        return (Vec::new(), Vec::new());
    };
    let mut by_ts: BTreeMap<i64, String> = BTreeMap::new();
    let mut bad = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((ts, file)) = line.split_once(',') else {
            bad.push(format!("{index}: line without a comma: {line:?}"));
            continue;
        };
        let ts = ts.trim();
        let parsed = ts
            .parse::<i64>()
            .ok()
            .or_else(|| ts.parse::<f64>().ok().map(|f| f as i64));
        let base = Path::new(file.trim())
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string);
        match (parsed, base) {
            (Some(ts), Some(file)) if ts > 0 => {
                by_ts.insert(ts, file);
            }
            _ => bad.push(format!("{index}: line that does not parse: {line:?}")),
        }
    }
    let entries = by_ts
        .into_iter()
        .map(|(ts, file)| HistoryEntry { ts, file })
        .collect();
    (entries, bad)
}

/// Upstream's binary snapshot kinds (images and PDFs of its image and PDF processors): text
/// watches here have no such history.
const BINARY_EXTENSIONS: &[&str] = &[
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".bin", ".jfif",
];

/// A snapshot's text as upstream reads it: the `.br` twin when there is one (a snapshot
/// compressed after the index was written), the plain file when a restored `.br` is missing.
pub fn read_snapshot(dir: &Path, file: &str) -> Result<String, String> {
    if BINARY_EXTENSIONS.iter().any(|e| file.ends_with(e)) {
        return Err(format!(
            "{file}: a binary snapshot (image or PDF), which changewatch's history does not hold"
        ));
    }
    let plain = file.strip_suffix(".br").unwrap_or(file);
    let br = format!("{plain}.br");
    if dir.join(&br).is_file() {
        return read_brotli_text(&dir.join(&br)).map_err(|e| format!("{br}: {e}"));
    }
    if dir.join(plain).is_file() {
        let bytes = std::fs::read(dir.join(plain)).map_err(|e| format!("{plain}: {e}"))?;
        // Upstream reads snapshots with errors='ignore'.
        return Ok(String::from_utf8_lossy(&bytes).replace('\u{FFFD}', ""));
    }
    Err(format!("{file}: listed in the history index but missing"))
}

/// Brotli has no header to detect it by: upstream names its compressed files `.br`.
pub fn read_brotli_text(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(file, 64 * 1024)
        .read_to_end(&mut out)
        .map_err(|e| format!("not brotli: {e}"))?;
    String::from_utf8(out).map_err(|_| "not UTF-8 text".to_string())
}

/// The raw HTML upstream kept for the check at `ts` (its newest two), if any.
pub fn read_html(dir: &Path, ts: i64) -> Option<String> {
    let br = dir.join(format!("{ts}.html.br"));
    if br.is_file() {
        return read_brotli_text(&br).ok();
    }
    let plain = dir.join(format!("{ts}.html"));
    std::fs::read(plain)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The last check's text before filters (`last-fetched.br`).
pub fn read_text_before_filters(dir: &Path) -> Option<String> {
    let br = dir.join("last-fetched.br");
    if br.is_file() {
        return read_brotli_text(&br).ok();
    }
    None
}

/// Files in a watch folder that changewatch has no place for, by kind, for the report.
pub fn unmapped_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        if name.starts_with("favicon.") {
            out.push(format!(
                "{name}: favicons are not kept by changewatch (it fetches none)"
            ));
        } else if name.starts_with("last-screenshot") || name.starts_with("last-error-screenshot") {
            out.push(format!(
                "{name}: upstream's screenshot files are not imported (changewatch keeps a browser check's screenshot with its snapshot)"
            ));
        }
    }
    out
}
