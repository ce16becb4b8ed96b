//! PDF replies as text: the document becomes the HTML upstream's `pdftohtml -s -i` step would
//! give the rest of the pipeline (a `div` per page, a `p` per block of lines, `<br/>` between
//! lines of a block), plus upstream's closing line, `Added by changedetection.io: Document
//! checksum - <MD5 HEX> Original file size - <N> bytes`, so filters, HTML to text, text rules
//! and the diff work on a PDF as on a page.
//!
//! Text comes from `pdf-extract` (fonts, encodings, `ToUnicode` maps, on `lopdf`): each glyph
//! with its position. Glyphs are put together the way `pdftohtml` does it: a glyph joins the
//! string before it when it sits on the same line and the gap is under one font size (a space
//! when the gap is over a tenth of it), so table cells and columns stay apart; a string that
//! starts where the previous one started, one line further down, continues its block.
//!
//! Hostile documents: this runs in the pipeline, so in the sandbox child with its time and
//! memory budget; a page or output count past [`PdfLimits`] and a panic in the parser are the
//! check's error ([`CheckError::Pdf`]), not the process's.

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};

use crate::error::CheckError;

/// What one document may take.
#[derive(Clone, Copy, Debug)]
pub struct PdfLimits {
    /// Pages read; a longer document is refused.
    pub max_pages: usize,
    /// Characters of text; past this the document is refused (a small file whose streams
    /// inflate to gigabytes of text).
    pub max_chars: usize,
}

impl PdfLimits {
    /// The limits for a document of `len` bytes: 5,000 pages, text up to max(16 Mi, 10 x the
    /// file) characters, the budget the filters have for their output.
    pub fn for_len(len: usize) -> Self {
        PdfLimits {
            max_pages: 5_000,
            max_chars: (16 << 20).max(len.saturating_mul(10)),
        }
    }
}

/// Whether the reply is a PDF by its bytes: `%PDF-` within the first 1,024 bytes (viewers
/// accept leading junk before the header).
pub fn looks_like_pdf(raw: &[u8]) -> bool {
    raw[..raw.len().min(1024)].windows(5).any(|w| w == b"%PDF-")
}

/// Upstream's line after the text: the file's md5 (upper-case hex) and size.
pub fn checksum_line(raw: &[u8]) -> String {
    format!(
        "Added by changedetection.io: Document checksum - {:X} Original file size - {} bytes",
        md5::compute(raw),
        raw.len()
    )
}

/// The document as HTML, with upstream's checksum paragraph before `</body>`.
pub fn pdf_to_html(raw: &[u8], limits: PdfLimits) -> Result<String, CheckError> {
    let pages = extract_pages(raw, limits)?;
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"/>\n</head>\n<body>\n",
    );
    for (n, blocks) in pages.iter().enumerate() {
        let n = n + 1;
        let _ = write!(
            html,
            "<!-- Page {n} -->\n<a name=\"{n}\"></a>\n<div id=\"page{n}-div\">\n"
        );
        for block in blocks {
            html.push_str("<p>");
            for (i, line) in block.iter().enumerate() {
                if i > 0 {
                    html.push_str("<br/>");
                }
                escape_into(&mut html, line);
            }
            html.push_str("</p>\n");
        }
        html.push_str("</div>\n");
    }
    let _ = write!(html, "<p>{}</p>\n</body>\n</html>\n", checksum_line(raw));
    Ok(html)
}

/// A page's blocks, each a list of lines.
type Page = Vec<Vec<String>>;

fn extract_pages(raw: &[u8], limits: PdfLimits) -> Result<Vec<Page>, CheckError> {
    if !looks_like_pdf(raw) {
        return Err(CheckError::Pdf("no %PDF- header".into()));
    }
    // pdf-extract and lopdf index and unwrap in places on malformed input: a panic there is
    // this document's error.
    let result = catch_unwind(AssertUnwindSafe(|| extract_unguarded(raw, limits)));
    match result {
        Ok(r) => r,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the parser stopped".into());
            tracing::warn!(reason = %why, "PDF extraction panicked");
            Err(CheckError::Pdf(format!("malformed document ({why})")))
        }
    }
}

fn extract_unguarded(raw: &[u8], limits: PdfLimits) -> Result<Vec<Page>, CheckError> {
    let mut doc =
        pdf_extract::Document::load_mem(raw).map_err(|e| CheckError::Pdf(e.to_string()))?;
    if doc.is_encrypted() {
        // Documents with an owner password only open with the empty user password.
        doc.decrypt("")
            .map_err(|e| CheckError::Pdf(format!("encrypted ({e})")))?;
    }
    let count = doc.get_pages().len();
    if count > limits.max_pages {
        return Err(CheckError::Pdf(format!(
            "{count} pages, more than the {} a document may have",
            limits.max_pages
        )));
    }
    let mut layout = Layout::new(limits.max_chars);
    match pdf_extract::output_doc(&doc, &mut layout) {
        Ok(()) => Ok(layout.pages),
        Err(_) if layout.over_limit => Err(CheckError::Pdf(format!(
            "its text is longer than {} characters",
            limits.max_chars
        ))),
        Err(e) => Err(CheckError::Pdf(e.to_string())),
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Control characters from broken encodings would only be noise in the text.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// A run of glyphs on one line.
#[derive(Debug)]
struct Run {
    text: String,
    /// Left edge, baseline (top-down page space), right edge, font size.
    x0: f64,
    y: f64,
    x1: f64,
    size: f64,
}

/// The output device: glyphs into runs, runs into blocks, blocks into pages.
struct Layout {
    pages: Vec<Page>,
    runs: Vec<Run>,
    /// The page's height: PDF's y axis goes up, the layout's down.
    height: f64,
    chars: usize,
    max_chars: usize,
    over_limit: bool,
}

impl Layout {
    fn new(max_chars: usize) -> Self {
        Layout {
            pages: Vec::new(),
            runs: Vec::new(),
            height: 0.0,
            chars: 0,
            max_chars,
            over_limit: false,
        }
    }

    /// The page's runs as blocks: a run continues the block before it when it starts at the
    /// same left edge one line further down (less than 1.5 font sizes below).
    fn blocks(runs: &[Run]) -> Page {
        let mut blocks: Page = Vec::new();
        let mut last: Option<&Run> = None;
        for run in runs {
            let text = run.text.trim();
            if text.is_empty() {
                continue;
            }
            let continues = last.is_some_and(|prev| {
                let down = run.y - prev.y;
                (run.x0 - prev.x0).abs() < 0.5 && down > 0.0 && down < 1.5 * prev.size.max(run.size)
            });
            match blocks.last_mut() {
                Some(block) if continues => block.push(text.to_string()),
                _ => blocks.push(vec![text.to_string()]),
            }
            last = Some(run);
        }
        blocks
    }
}

impl OutputDev for Layout {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.height = media_box.ury - media_box.lly;
        self.runs.clear();
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        let runs = std::mem::take(&mut self.runs);
        self.pages.push(Self::blocks(&runs));
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        ch: &str,
    ) -> Result<(), OutputError> {
        self.chars += ch.chars().count();
        if self.chars > self.max_chars {
            self.over_limit = true;
            return Err(OutputError::FormatError(std::fmt::Error));
        }
        // The glyph's origin and size in page space (the text matrix applied to the font
        // size in both directions), as pdf-extract's own text output measures them.
        let (sx, sy) = (
            font_size * (trm.m11 + trm.m21),
            font_size * (trm.m12 + trm.m22),
        );
        let size = (sx * sy).abs().sqrt();
        let size = if size.is_finite() && size > 0.0 {
            size
        } else {
            1.0
        };
        let (x, y) = (trm.m31, self.height - trm.m32);
        let advance = width * size;
        let x1 = if advance.is_finite() { x + advance } else { x };
        if let Some(run) = self.runs.last_mut() {
            let gap = x - run.x1;
            let same_line = (y - run.y).abs() < 0.5 * run.size.max(size);
            let height = run.size.max(size);
            if same_line && gap > -0.5 * height && gap < height {
                let spaced =
                    run.text.ends_with(char::is_whitespace) || ch.starts_with(char::is_whitespace);
                if gap > 0.1 * height && !spaced {
                    run.text.push(' ');
                }
                run.text.push_str(ch);
                run.x1 = run.x1.max(x1);
                return Ok(());
            }
        }
        self.runs.push(Run {
            text: ch.to_string(),
            x0: x,
            y,
            x1,
            size,
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html_text::{TextOptions, html_to_text};

    fn text(raw: &[u8]) -> Result<String, CheckError> {
        pdf_to_html(raw, PdfLimits::for_len(raw.len()))
            .map(|h| html_to_text(&h, &TextOptions::default()))
    }

    fn lines(t: &str) -> Vec<String> {
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn lines_of_each_page_in_order_then_the_checksum_line() {
        let raw = testkit::pdf::document(&[
            &["Price list", "Widget (large) 10.00"],
            &["Page two: Café £9"],
        ]);
        let out = text(&raw).unwrap_or_else(|e| e.last_error());
        let want = vec![
            "Price list".to_string(),
            "Widget (large) 10.00".into(),
            "Page two: Café £9".into(),
            format!(
                "Added by changedetection.io: Document checksum - {:X} Original file size - {} bytes",
                md5::compute(&raw),
                raw.len()
            ),
        ];
        assert_eq!(lines(&out), want, "{out}");
    }

    #[test]
    fn the_html_has_a_div_per_page_for_filters() {
        let raw = testkit::pdf::document(&[&["one"], &["two <b>&"]]);
        let html = pdf_to_html(&raw, PdfLimits::for_len(raw.len())).unwrap_or_default();
        assert!(
            html.contains("<div id=\"page1-div\">\n<p>one</p>"),
            "{html}"
        );
        assert!(html.contains("<p>two &lt;b&gt;&amp;</p>"), "{html}");
        assert!(html.contains("<p>Added by changedetection.io: Document checksum - "));
    }

    #[test]
    fn broken_documents_are_the_checks_error() {
        let good = testkit::pdf::document(&[&["hello world"]]);
        let cases: Vec<Vec<u8>> = vec![
            b"not a pdf at all".to_vec(),
            b"%PDF-1.4\n".to_vec(),
            good[..good.len() / 2].to_vec(),
            // Garbage in the page's content stream and a broken cross-reference table.
            String::from_utf8_lossy(&good)
                .replace("xref", "xrf")
                .replace("/Length", "/Lngth")
                .into_bytes(),
        ];
        for raw in cases {
            match text(&raw) {
                Err(e @ CheckError::Pdf(_)) => {
                    assert!(
                        e.last_error()
                            .starts_with("Exception: the PDF could not be read")
                    )
                }
                // lopdf rebuilds what it can of a damaged file; text from it is fine too.
                Ok(t) => assert!(t.contains("Added by changedetection.io"), "{t}"),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(matches!(text(b"nothing"), Err(CheckError::Pdf(_))));
    }

    #[test]
    fn page_and_text_limits() {
        let raw = testkit::pdf::document(&[&["a"], &["b"], &["c"]]);
        let few_pages = PdfLimits {
            max_pages: 2,
            max_chars: 1000,
        };
        let err = pdf_to_html(&raw, few_pages).err().map(|e| e.last_error());
        assert_eq!(
            err.as_deref(),
            Some(
                "Exception: the PDF could not be read: 3 pages, more than the 2 a document may have"
            )
        );
        let long = testkit::pdf::document(&[&["0123456789"; 5]]);
        let short_text = PdfLimits {
            max_pages: 10,
            max_chars: 20,
        };
        let err = pdf_to_html(&long, short_text).err().map(|e| e.last_error());
        assert!(
            err.is_some_and(|e| e.contains("longer than 20 characters")),
            "text limit"
        );
    }

    #[test]
    fn a_pdf_header_after_leading_bytes_is_still_a_pdf() {
        assert!(looks_like_pdf(b"\xef\xbb\xbf%PDF-1.7"));
        assert!(!looks_like_pdf(b"<html>%PDF"));
    }
}
