//! Upstream's backup zip (`/backups/request-backup`): the datastore's settings file at the top
//! and each watch's and tag's folder as `<uuid>/<file>`, plus two URL lists. It is unpacked
//! into a temporary directory and read as a datastore directory, with upstream's own restore
//! limits against a zip bomb.

use std::io::{Read, Seek};
use std::path::Path;

use super::ImportError;

/// Upstream's `MAX_RESTORE_UPLOAD_MB` default: the largest backup the upload takes.
pub const MAX_ZIP_BYTES: usize = 256 * 1024 * 1024;
/// Upstream's `MAX_RESTORE_DECOMPRESSED_MB` default: all entries together, unpacked.
pub const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;

/// Unpacks `zip` into `into`. Entries whose names leave the directory (absolute, `..`) or go
/// deeper than `<uuid>/<file>` are refused, as is a total past `limit` (counted as the bytes
/// come out, not from the sizes the zip claims): [`MAX_UNPACKED_BYTES`] for an upload.
pub fn unpack<R: Read + Seek>(zip: R, into: &Path, limit: u64) -> Result<(), ImportError> {
    let bad = |m: String| ImportError::BadZip(m);
    let mut archive = ::zip::ZipArchive::new(zip).map_err(|e| bad(e.to_string()))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!(
                "entry {name:?} leaves the archive's directory"
            )));
        };
        if rel.components().count() > 2 {
            return Err(bad(format!(
                "entry {name:?} is deeper than <uuid>/<file>, not upstream's layout"
            )));
        }
        let dest = into.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ImportError::Io {
                path: parent.display().to_string(),
                source: e,
            })?;
        }
        let mut out = std::fs::File::create(&dest).map_err(|e| ImportError::Io {
            path: dest.display().to_string(),
            source: e,
        })?;
        let room = limit - total;
        let copied = std::io::copy(&mut (&mut entry).take(room.saturating_add(1)), &mut out)
            .map_err(|e| bad(format!("entry {name:?}: {e}")))?;
        if copied > room {
            return Err(bad(format!(
                "unpacks to more than {limit} bytes (upstream's restore limit for an upload)"
            )));
        }
        total += copied;
    }
    Ok(())
}
