//! The zstd frames both adapters keep snapshot text, HTML and kept text in.
//!
//! One compressor per thread, made once: a fresh one per call (`zstd::bulk::compress`) allocated
//! and freed ~1.1 MB of match tables for every snapshot, which set the embedded store thread's
//! part of the server's peak heap (heaptrack, bench/README.md eleventh session). Level 3 with
//! 16K-entry tables instead of level 3's 128K: ~300 KB, and within 0.2 % of the same size on
//! bench-serve's 46 KB pages (smaller tables only miss matches far back, which a page's text
//! rarely has). The frames are plain zstd: any decoder reads old and new alike.

use std::cell::RefCell;

use zstd::bulk::Compressor;
use zstd::stream::raw::CParameter;

use crate::StoreError;

const LEVEL: i32 = 3;
/// log2 of the hash and chain tables' entries (4 bytes each).
const TABLE_LOG: u32 = 14;

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
}

fn compressor() -> std::io::Result<Compressor<'static>> {
    let mut c = Compressor::new(LEVEL)?;
    c.set_parameter(CParameter::HashLog(TABLE_LOG))?;
    c.set_parameter(CParameter::ChainLog(TABLE_LOG))?;
    Ok(c)
}

/// One zstd frame holding `s` (its size in the header).
pub(crate) fn compress(s: &str) -> Result<Vec<u8>, StoreError> {
    COMPRESSOR
        .with(|cell| {
            let mut slot = cell.try_borrow_mut().map_err(std::io::Error::other)?;
            let c = match slot.as_mut() {
                Some(c) => c,
                None => slot.insert(compressor()?),
            };
            c.compress(s.as_bytes())
        })
        .map_err(StoreError::backend_source)
}

/// The text of a frame `compress` (or any zstd encoder) wrote.
pub(crate) fn decompress(b: &[u8]) -> Result<String, StoreError> {
    let bytes = zstd::stream::decode_all(b).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reuses_the_threads_compressor() {
        let text = "line of a page that repeats\n".repeat(2_000);
        let first = compress(&text).unwrap();
        assert!(first.len() < text.len() / 20);
        assert_eq!(decompress(&first).unwrap(), text);
        assert!(COMPRESSOR.with(|c| c.borrow().is_some()));
        // The same compressor again: a frame as if new, not one that depends on the last.
        let again = compress("other").unwrap();
        assert_eq!(decompress(&again).unwrap(), "other");
        assert_eq!(compress(&text).unwrap(), first);
    }

    #[test]
    fn reads_frames_of_the_plain_encoder_and_refuses_garbage() {
        let old = zstd::bulk::compress(b"written before", 3).unwrap();
        assert_eq!(decompress(&old).unwrap(), "written before");
        assert!(matches!(
            decompress(b"not zstd"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_tables_are_smaller_than_level_3s_and_the_frames_no_bigger() {
        let text: String = (0..1_500)
            .map(|i| format!("item {i} of the list, price {}\n", i * 7 % 101))
            .collect();
        let mut small = compressor().unwrap();
        let mut plain = Compressor::new(LEVEL).unwrap();
        let (ours, theirs) = (
            small.compress(text.as_bytes()).unwrap(),
            plain.compress(text.as_bytes()).unwrap(),
        );
        let (ours_kb, theirs_kb) = (
            small.context_mut().sizeof() / 1024,
            plain.context_mut().sizeof() / 1024,
        );
        // 324 KB against 580 KB for this 40 KB text.
        assert!(
            ours_kb * 3 < theirs_kb * 2,
            "{ours_kb} KB vs {theirs_kb} KB"
        );
        assert!(
            ours.len() <= theirs.len() + theirs.len() / 50,
            "{} vs {}",
            ours.len(),
            theirs.len()
        );
        assert_eq!(decompress(&ours).unwrap(), text);
    }
}
