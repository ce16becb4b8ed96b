//! What crosses the pipe between the server and a sandbox child, and how it is framed.
//!
//! A frame is a 4-byte big-endian length and that many bytes: a JSON value, and after it, for
//! a processing request, the page's raw bytes as they are (`raw_len` of them). JSON because
//! the types already speak serde; the page outside it because writing 46 KB as an escaped
//! base64 string and decoding it again was a tenth of a changed check's CPU in the server.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use changewatch_core::CheckError;
use changewatch_core::diff::DiffFormat;
use changewatch_core::fetch::FetchedPage;
use changewatch_core::pipeline::{PreviousState, Processed, ProcessorSettings};
use changewatch_notify::Message;
use changewatch_notify::render::ChangeContext;
use serde::{Deserialize, Serialize};

/// The largest frame either side accepts. A reply is at most a page's text plus its
/// processed text; anything bigger is a broken or hostile child, not a result.
pub(crate) const MAX_FRAME: usize = 512 * 1024 * 1024;

/// One unit of work for a child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Process(Box<ProcessInput>),
    Render(Box<RenderJob>),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    Processed(Result<Processed, WireCheckError>),
    Rendered(Result<Rendered, String>),
}

/// The processor's inputs in a form that survives serde (`FetchedPage::encoding` is a
/// `&'static str`, `history_lines` an `Arc`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProcessInput {
    page: WirePage,
    pub(crate) settings: ProcessorSettings,
    previous: WirePrevious,
    /// The page's raw bytes: the frame's bytes after the JSON ([`read_request`]).
    #[serde(skip)]
    raw: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePage {
    final_url: String,
    status: u16,
    content_type: Option<String>,
    server: Option<String>,
    headers: Vec<(String, String)>,
    /// How many bytes follow the JSON in the frame: the page's raw bytes.
    raw_len: usize,
    /// Base64: JSON would escape a control character as six bytes, so a hostile page's
    /// text could frame at six times its size; base64 is 4/3 whatever the text. Empty when
    /// `text_is_raw`.
    text_base64: String,
    /// The text is the raw bytes (a UTF-8 page, most pages): sent once, not twice.
    #[serde(default)]
    text_is_raw: bool,
    encoding: String,
    fetch_time: f64,
    #[serde(default)]
    stock_scan: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePrevious {
    md5: Option<String>,
    has_history: bool,
    text_before_filters: Option<String>,
    history_lines: Option<Vec<String>>,
    #[serde(default)]
    last_snapshot: Option<String>,
    #[serde(default)]
    restock: Option<changewatch_core::model::Restock>,
}

/// The frame of a processing request, written straight from the caller's page: the same
/// JSON as `Request::Process(ProcessInput)` (a text that is not the raw bytes base64-encoded
/// as it is written), then the raw bytes, so framing a page costs the frame and nothing
/// besides.
pub(crate) fn process_frame(
    page: &FetchedPage,
    settings: &ProcessorSettings,
    previous: &PreviousState,
) -> serde_json::Result<Vec<u8>> {
    let history_lines: Option<Vec<&str>> = previous
        .history_lines
        .as_ref()
        .map(|lines| lines.iter().map(String::as_str).collect());
    let text_is_raw = page.text.as_bytes() == page.raw.as_slice();
    let request = RequestRef::Process(ProcessInputRef {
        page: WirePageRef {
            final_url: &page.final_url,
            status: page.status,
            content_type: page.content_type.as_deref(),
            server: page.server.as_deref(),
            headers: &page.headers,
            raw_len: page.raw.len(),
            text_base64: Base64(if text_is_raw {
                &[]
            } else {
                page.text.as_bytes()
            }),
            text_is_raw,
            stock_scan: page.stock_scan.as_deref(),
            encoding: page.encoding,
            fetch_time: page.fetch_time,
        },
        settings,
        previous: WirePreviousRef {
            md5: previous.md5.as_deref(),
            has_history: previous.has_history,
            text_before_filters: previous.text_before_filters.as_deref(),
            history_lines,
            last_snapshot: previous.last_snapshot.as_deref(),
            restock: previous.restock.as_ref(),
        },
    });
    // Base64 is 4/3 of its input; the rest of the frame is small next to the page.
    let text_len = if text_is_raw { 0 } else { page.text.len() };
    let mut frame = Vec::with_capacity(page.raw.len() + text_len / 3 * 4 + 4096);
    serde_json::to_writer(&mut frame, &request)?;
    frame.extend_from_slice(&page.raw);
    Ok(frame)
}

/// A request frame as the child reads it: the JSON value, then the bytes after it (a
/// processing request's raw page, exactly `raw_len` of them; nothing for the others).
pub(crate) fn read_request(mut frame: Vec<u8>) -> Result<Request, String> {
    let (request, end) = json_head::<Request>(&frame, "request")?;
    frame.drain(..end);
    match request {
        Request::Process(mut input) => {
            if frame.len() != input.page.raw_len {
                return Err(format!(
                    "request: {} page bytes after the request, {} announced",
                    frame.len(),
                    input.page.raw_len
                ));
            }
            input.raw = frame;
            Ok(Request::Process(input))
        }
        render if frame.is_empty() => Ok(render),
        _ => Err("request: bytes after a render request".into()),
    }
}

/// A reply frame starts with this JSON. A processing result's two texts (the snapshot and the
/// text before filters, each the size of the page's text) follow it as raw bytes, the second
/// only when it differs from the first: escaping them into JSON and parsing them back was a
/// twentieth of a changed check's CPU, and most watches have no filters, so the two are equal.
#[derive(Serialize, Deserialize)]
struct ResponseHead {
    response: Response,
    tail: Option<TextTail>,
}

#[derive(Serialize, Deserialize)]
struct TextTail {
    text_len: usize,
    /// None: the text before filters is the text.
    before_len: Option<usize>,
}

/// The child's reply frame (see [`ResponseHead`]).
pub(crate) fn response_frame(response: Response) -> serde_json::Result<Vec<u8>> {
    let Response::Processed(Ok(mut processed)) = response else {
        return serde_json::to_vec(&ResponseHead {
            response,
            tail: None,
        });
    };
    let text = std::mem::take(&mut processed.text);
    let before = std::mem::take(&mut processed.text_before_filters);
    let before = (before != text).then_some(before);
    let head = ResponseHead {
        response: Response::Processed(Ok(processed)),
        tail: Some(TextTail {
            text_len: text.len(),
            before_len: before.as_ref().map(String::len),
        }),
    };
    let tail_len = text.len() + before.as_ref().map_or(0, String::len);
    let mut frame = Vec::with_capacity(tail_len + 1024);
    serde_json::to_writer(&mut frame, &head)?;
    frame.extend_from_slice(text.as_bytes());
    if let Some(before) = &before {
        frame.extend_from_slice(before.as_bytes());
    }
    Ok(frame)
}

/// A reply frame as the server reads it; a tail that is not what the head announces, or not
/// UTF-8, is refused (a broken or hostile child), never read short.
pub(crate) fn read_response(frame: &[u8]) -> Result<Response, String> {
    let (head, end) = json_head::<ResponseHead>(frame, "reply")?;
    let rest = frame.get(end..).unwrap_or_default();
    let (mut response, tail) = (head.response, head.tail);
    let Some(tail) = tail else {
        return if rest.is_empty() {
            Ok(response)
        } else {
            Err("reply: bytes after a reply without texts".into())
        };
    };
    let Response::Processed(Ok(processed)) = &mut response else {
        return Err("reply: texts after a reply that has none".into());
    };
    let announced = tail.text_len.saturating_add(tail.before_len.unwrap_or(0));
    if announced != rest.len() {
        return Err(format!(
            "reply: {} text bytes after the reply, {announced} announced",
            rest.len()
        ));
    }
    let (text, before) = rest.split_at(tail.text_len);
    let utf8 = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|e| format!("reply: text is not UTF-8: {e}"))
    };
    processed.text = utf8(text)?;
    processed.text_before_filters = match tail.before_len {
        Some(_) => utf8(before)?,
        None => processed.text.clone(),
    };
    Ok(response)
}

/// The JSON value a frame starts with, and where the bytes after it begin; `what` names the
/// frame in errors.
fn json_head<T: serde::de::DeserializeOwned>(
    frame: &[u8],
    what: &str,
) -> Result<(T, usize), String> {
    let mut values = serde_json::Deserializer::from_slice(frame).into_iter::<T>();
    match values.next() {
        Some(Ok(head)) => Ok((head, values.byte_offset())),
        Some(Err(e)) => Err(format!("{what}: {e}")),
        None => Err(format!("{what}: empty frame")),
    }
}

#[derive(Serialize)]
enum RequestRef<'a> {
    Process(ProcessInputRef<'a>),
}

#[derive(Serialize)]
struct ProcessInputRef<'a> {
    page: WirePageRef<'a>,
    settings: &'a ProcessorSettings,
    previous: WirePreviousRef<'a>,
}

/// [`WirePage`] borrowed; field for field the same JSON.
#[derive(Serialize)]
struct WirePageRef<'a> {
    final_url: &'a str,
    status: u16,
    content_type: Option<&'a str>,
    server: Option<&'a str>,
    headers: &'a [(String, String)],
    raw_len: usize,
    text_base64: Base64<'a>,
    text_is_raw: bool,
    encoding: &'a str,
    fetch_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stock_scan: Option<&'a str>,
}

/// [`WirePrevious`] borrowed.
#[derive(Serialize)]
struct WirePreviousRef<'a> {
    md5: Option<&'a str>,
    has_history: bool,
    text_before_filters: Option<&'a str>,
    history_lines: Option<Vec<&'a str>>,
    last_snapshot: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restock: Option<&'a changewatch_core::model::Restock>,
}

/// Bytes written as a base64 JSON string without an intermediate `String`.
struct Base64<'a>(&'a [u8]);

impl Serialize for Base64<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&base64::display::Base64Display::new(self.0, &STANDARD))
    }
}

impl ProcessInput {
    /// Back to the processor's types, on the child's side.
    pub(crate) fn into_parts(
        self,
    ) -> Result<(FetchedPage, ProcessorSettings, PreviousState), String> {
        let raw = self.raw;
        let text = if self.page.text_is_raw {
            Ok(raw.clone())
        } else {
            STANDARD
                .decode(self.page.text_base64.as_bytes())
                .map_err(|e| format!("page text: {e}"))
        }
        .and_then(|t| String::from_utf8(t).map_err(|e| format!("page text: {e}")))?;
        // The label came from `Encoding::name()`, so it always resolves; UTF-8 is only a
        // fallback for a frame that was not written by this code.
        let encoding = encoding_rs::Encoding::for_label(self.page.encoding.as_bytes())
            .map_or("UTF-8", |e| e.name());
        let page = FetchedPage {
            final_url: self.page.final_url,
            status: self.page.status,
            content_type: self.page.content_type,
            server: self.page.server,
            headers: self.page.headers,
            raw,
            text,
            encoding,
            fetch_time: self.page.fetch_time,
            screenshot: None,
            stock_scan: self.page.stock_scan,
        };
        let previous = PreviousState {
            md5: self.previous.md5,
            has_history: self.previous.has_history,
            text_before_filters: self.previous.text_before_filters,
            history_lines: self
                .previous
                .history_lines
                .map(|lines| Arc::new(lines.into_iter().collect::<HashSet<_>>())),
            last_snapshot: self.previous.last_snapshot,
            restock: self.previous.restock,
        };
        Ok((page, self.settings, previous))
    }
}

/// The processor's errors as the child reports them: the two outcomes callers tell apart
/// structurally (a missing filter counts towards the failure alert; "no text" carries its
/// status), everything else already as the user's `last_error` text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireCheckError {
    FilterNotFound {
        filters: Vec<String>,
    },
    NoText {
        status: u16,
        has_filters: bool,
        only_images: bool,
    },
    Other(String),
}

impl From<CheckError> for WireCheckError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::FilterNotFound { filters } => WireCheckError::FilterNotFound { filters },
            CheckError::NoText {
                status,
                has_filters,
                only_images,
            } => WireCheckError::NoText {
                status,
                has_filters,
                only_images,
            },
            other => WireCheckError::Other(other.last_error()),
        }
    }
}

impl From<WireCheckError> for CheckError {
    fn from(e: WireCheckError) -> Self {
        match e {
            WireCheckError::FilterNotFound { filters } => CheckError::FilterNotFound { filters },
            WireCheckError::NoText {
                status,
                has_filters,
                only_images,
            } => CheckError::NoText {
                status,
                has_filters,
                only_images,
            },
            WireCheckError::Other(last_error) => CheckError::Processor(last_error),
        }
    }
}

/// Template work: everything that renders a user's Jinja template.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RenderJob {
    /// A content-change notification: title and body, and each notification URL that is a
    /// template (a URL whose template fails is kept as written, so its delivery fails
    /// visibly instead of vanishing).
    Change {
        title: String,
        body: String,
        urls: Vec<String>,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
    /// Only the notification URLs (alerts whose title and body are fixed texts).
    Urls {
        urls: Vec<String>,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
    /// Saving notification templates: each `(field, template)` is validated as the test send
    /// validates it (parses, names only known tokens, renders against example values within
    /// the render limits), nothing is sent. The first failure names its field.
    Validate { templates: Vec<(String, String)> },
    /// "Send test notification": both templates are validated as a form would validate them
    /// (errors name the field), then rendered as upstream's test action renders them.
    Test {
        title: String,
        body: String,
        ctx: Box<ChangeContext>,
        format: DiffFormat,
    },
    /// A check's request templates (`(field, template)`: the URL, header values, the body),
    /// rendered as upstream renders them at fetch time, in order into [`Rendered::texts`].
    /// The first failure names its field.
    Request { templates: Vec<(String, String)> },
}

/// What a [`RenderJob`] produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// `None` for [`RenderJob::Urls`] and [`RenderJob::Request`].
    pub message: Option<Message>,
    pub urls: Vec<String>,
    /// [`RenderJob::Request`]'s texts.
    #[serde(default)]
    pub texts: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use super::*;

    /// The borrowed frame the parent writes is what the child's owned types read, for every
    /// byte value and for text JSON would have escaped.
    #[test]
    fn a_process_frame_reads_back_as_the_same_page_and_state() {
        let raw: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let page = FetchedPage {
            final_url: "http://127.0.0.1/p".into(),
            status: 203,
            content_type: Some("text/html; charset=x".into()),
            server: Some("srv".into()),
            headers: vec![("a".into(), "b\"c".into())],
            text: "\u{1}\u{2}\"\\ é ✓ \u{fffd}".repeat(50),
            raw,
            encoding: "windows-1252",
            fetch_time: 0.25,
            screenshot: None,
            stock_scan: Some("sold out".into()),
        };
        let previous = PreviousState {
            md5: Some("abc".into()),
            has_history: true,
            text_before_filters: Some("before\u{0}".into()),
            history_lines: Some(Arc::new(["x".to_string(), "y".to_string()].into())),
            last_snapshot: Some("newest".into()),
            restock: Some(changewatch_core::model::Restock {
                in_stock: Some(false),
                price: Some(9.5),
                ..Default::default()
            }),
        };
        let settings = ProcessorSettings::default();
        let frame = process_frame(&page, &settings, &previous).unwrap();
        // Text that JSON escapes six bytes a character costs base64's 4/3 here, the raw
        // bytes their own length.
        assert!(frame.len() < page.raw.len() + page.text.len() * 4 / 3 + 4096);
        let Request::Process(input) = read_request(frame).unwrap() else {
            panic!("not a processing request");
        };
        let (back, _, prev) = input.into_parts().unwrap();
        assert_eq!(back.raw, page.raw);
        assert_eq!(back.text, page.text);
        assert_eq!(back.headers, page.headers);
        assert_eq!(
            (back.status, back.encoding, back.fetch_time),
            (203, "windows-1252", 0.25)
        );
        assert_eq!(back.content_type, page.content_type);
        assert_eq!(back.stock_scan.as_deref(), Some("sold out"));
        assert_eq!(prev.md5.as_deref(), Some("abc"));
        assert_eq!(prev.last_snapshot.as_deref(), Some("newest"));
        assert_eq!(prev.restock.and_then(|r| r.price), Some(9.5));
        assert_eq!(prev.text_before_filters.as_deref(), Some("before\u{0}"));
        assert_eq!(prev.history_lines.unwrap().len(), 2);
    }

    /// A UTF-8 page's text is its bytes: the frame carries them once and the child gets both.
    #[test]
    fn a_utf8_page_is_framed_once_and_read_back_whole() {
        let text = "<p>caf\u{e9} \u{2713}</p>\n".repeat(400);
        let page = FetchedPage {
            final_url: "http://127.0.0.1/u".into(),
            status: 200,
            content_type: Some("text/html".into()),
            server: None,
            headers: Vec::new(),
            raw: text.clone().into_bytes(),
            text: text.clone(),
            encoding: "UTF-8",
            fetch_time: 0.1,
            screenshot: None,
            stock_scan: None,
        };
        let previous = PreviousState::default();
        let frame = process_frame(&page, &ProcessorSettings::default(), &previous).unwrap();
        assert!(frame.len() < page.raw.len() + 4096, "{}", frame.len());
        let Request::Process(input) = read_request(frame).unwrap() else {
            panic!("not a processing request");
        };
        let (back, _, _) = input.into_parts().unwrap();
        assert_eq!(back.raw, page.raw);
        assert_eq!(back.text, text);
    }

    fn processed(text: &str, before: &str) -> Response {
        Response::Processed(Ok(Processed {
            status: changewatch_core::pipeline::ChangeStatus::Changed,
            text: text.into(),
            md5: "m".into(),
            triggered_text: vec!["t".into()],
            text_before_filters: before.into(),
            title: Some("T".into()),
            stream_type: changewatch_core::content::StreamType::Html,
            restock: None,
        }))
    }

    fn texts(r: Response) -> (String, String) {
        match r {
            Response::Processed(Ok(p)) => (p.text, p.text_before_filters),
            _ => panic!("not a processing result"),
        }
    }

    /// The texts travel as raw bytes after the JSON (once when they are equal) and read back
    /// whole, text JSON would escape included; other replies read back as they were.
    #[test]
    fn a_reply_frame_reads_back_as_the_same_reply() {
        let text = "\u{1}\"\\ é ✓\n".repeat(300);
        let frame = response_frame(processed(&text, &text)).unwrap();
        assert!(frame.len() < text.len() + 512, "{}", frame.len());
        assert_eq!(
            texts(read_response(&frame).unwrap()),
            (text.clone(), text.clone())
        );

        let frame = response_frame(processed(&text, "before\u{0}")).unwrap();
        assert_eq!(
            texts(read_response(&frame).unwrap()),
            (text.clone(), "before\u{0}".to_string())
        );
        let frame = response_frame(processed("", "")).unwrap();
        assert_eq!(
            texts(read_response(&frame).unwrap()),
            (String::new(), String::new())
        );

        let error = Response::Processed(Err(WireCheckError::Other("boom".into())));
        let frame = response_frame(error).unwrap();
        assert!(matches!(
            read_response(&frame).unwrap(),
            Response::Processed(Err(WireCheckError::Other(m))) if m == "boom"
        ));
        let rendered = Response::Rendered(Err("bad".into()));
        let frame = response_frame(rendered).unwrap();
        assert!(matches!(read_response(&frame).unwrap(), Response::Rendered(Err(m)) if m == "bad"));
    }

    /// A reply whose tail is longer, shorter or not UTF-8 is refused.
    #[test]
    fn a_reply_with_the_wrong_tail_is_refused() {
        let frame = response_frame(processed("abc", "xy")).unwrap();
        let mut long = frame.clone();
        long.push(b'x');
        assert!(read_response(&long).unwrap_err().contains("6 text bytes"));
        assert!(
            read_response(&frame[..frame.len() - 1])
                .unwrap_err()
                .contains("4 text bytes")
        );
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert!(read_response(&bad).unwrap_err().contains("UTF-8"));
        let mut extra = response_frame(Response::Rendered(Err("x".into()))).unwrap();
        extra.push(b'x');
        assert!(read_response(&extra).is_err());
        assert!(read_response(&[]).is_err());
    }

    /// A frame whose tail does not match what its request announces is refused, not read
    /// short or long.
    #[test]
    fn a_frame_with_the_wrong_tail_is_refused() {
        let page = FetchedPage {
            final_url: "http://127.0.0.1/t".into(),
            status: 200,
            content_type: None,
            server: None,
            headers: Vec::new(),
            raw: b"abc".to_vec(),
            text: "abc".into(),
            encoding: "UTF-8",
            fetch_time: 0.0,
            screenshot: None,
            stock_scan: None,
        };
        let frame = process_frame(
            &page,
            &ProcessorSettings::default(),
            &PreviousState::default(),
        )
        .unwrap();
        let mut long = frame.clone();
        long.push(b'x');
        assert!(read_request(long).unwrap_err().contains("4 page bytes"));
        let short = frame[..frame.len() - 1].to_vec();
        assert!(read_request(short).unwrap_err().contains("2 page bytes"));
        let render = Request::Render(Box::new(RenderJob::Validate {
            templates: Vec::new(),
        }));
        let mut bytes = serde_json::to_vec(&render).unwrap();
        assert!(read_request(bytes.clone()).is_ok());
        bytes.push(b'x');
        assert!(read_request(bytes).is_err());
        assert!(read_request(Vec::new()).is_err());
    }
}
