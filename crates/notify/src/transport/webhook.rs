//! Generic webhooks: apprise's `json://`, `form://`, `xml://` and changedetection.io's
//! `get://`…`head://`.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Map, Value};
use tracing::warn;

use super::format::{convert, escape_html};
use super::{Body, Deliverer, DeliveryError, Dest, Part, Request};
use crate::url::{AppriseWebhook, CustomHttp, WebhookKind};
use crate::{Attachment, Message};

/// apprise's notification type; changes are always informational.
const NOTIFY_TYPE: &str = "info";

fn method(service: &'static str, m: &str) -> Result<Method, DeliveryError> {
    Method::from_bytes(m.as_bytes()).map_err(|_| DeliveryError::Config {
        service,
        reason: format!("invalid method {m}"),
    })
}

/// apprise's fields in order, after `:field=value` renames (an empty value drops the field) and
/// with the extra fields appended.
fn fields(w: &AppriseWebhook, base: [(&str, String); 4]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in base {
        let renamed = w
            .payload
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| name.to_string());
        if !renamed.is_empty() {
            out.push((renamed, value));
        }
    }
    out
}

fn extras<'a>(w: &'a AppriseWebhook, known: &[&str]) -> impl Iterator<Item = &'a (String, String)> {
    let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    w.payload.iter().filter(move |(k, _)| !known.contains(k))
}

pub(crate) async fn apprise(
    d: &Deliverer,
    w: &AppriseWebhook,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = match w.kind {
        WebhookKind::Json => "JSON",
        WebhookKind::Form => "Form",
        WebhookKind::Xml => "XML",
    };
    let body = convert(&msg.body, msg.format, w.format.unwrap_or(msg.format));
    let m = method(service, &w.method)?;
    let mut req = Request::new(service, Dest::User, m.clone(), w.url.clone());
    req.basic = w.auth.clone();
    match w.kind {
        WebhookKind::Json => {
            let known = ["version", "title", "message", "attachments", "type"];
            let mut obj = Map::new();
            let renamed = |name: &str| -> Option<String> {
                let r = w
                    .payload
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| name.to_string());
                (!r.is_empty()).then_some(r)
            };
            let base: [(&str, Value); 5] = [
                ("version", Value::from("1.0")),
                ("title", Value::from(msg.title.clone())),
                ("message", Value::from(body)),
                ("attachments", json_attachments(msg)),
                ("type", Value::from(NOTIFY_TYPE)),
            ];
            for (name, value) in base {
                if let Some(key) = renamed(name) {
                    obj.insert(key, value);
                }
            }
            for (k, v) in extras(w, &known) {
                obj.insert(k.clone(), Value::from(v.clone()));
            }
            req = req.header("Content-Type", "application/json");
            req.body = Body::Json(Value::Object(obj));
        }
        WebhookKind::Form => {
            let mut form = fields(
                w,
                [
                    ("version", "1.0".into()),
                    ("title", msg.title.clone()),
                    ("message", body),
                    ("type", NOTIFY_TYPE.into()),
                ],
            );
            form.extend(extras(w, &["version", "title", "message", "type"]).cloned());
            let files = form_files(w, msg);
            if m == Method::GET {
                // requests puts a GET's fields in the query and still posts the files.
                req.url.query_pairs_mut().extend_pairs(form);
                if !files.is_empty() {
                    req.body = Body::Multipart(files);
                }
            } else if files.is_empty() {
                req.body = Body::Form(form);
            } else {
                let mut parts: Vec<Part> = form
                    .into_iter()
                    .map(|(name, value)| Part::text(name, value))
                    .collect();
                parts.extend(files);
                req.body = Body::Multipart(parts);
            }
        }
        WebhookKind::Xml => {
            let known = ["Version", "Subject", "Message", "MessageType"];
            let mut core = fields(
                w,
                [
                    ("Version", "1.1".into()),
                    ("Subject", escape_html(&msg.title)),
                    ("Message", escape_html(&body)),
                    ("MessageType", NOTIFY_TYPE.into()),
                ],
            );
            let extra: Vec<(String, String)> = extras(w, &known)
                .filter_map(|(k, v)| {
                    let key: String = k
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                        .collect();
                    (!key.is_empty()).then(|| (key, escape_html(v)))
                })
                .collect();
            // apprise only points at its schema when the document is exactly that schema.
            let xsd = if w.payload.is_empty() {
                " xmlns:xsi=\"https://raw.githubusercontent.com/caronc/apprise/master/apprise/assets/NotifyXML-1.1.xsd\""
            } else {
                ""
            };
            core.extend(extra);
            let mut core: String = core
                .iter()
                .map(|(k, v)| format!("<{k}>{v}</{k}>"))
                .collect();
            if !msg.attachments.is_empty() {
                core.push_str("\n            ");
                core.push_str(&xml_attachments(msg));
            }
            let doc = format!(
                "<?xml version='1.0' encoding='utf-8'?>\n\
                 <soapenv:Envelope\n    \
                 xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"\n    \
                 xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"\n    \
                 xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n    \
                 <soapenv:Body>\n        \
                 <Notification{xsd}>\n            {core}\n        </Notification>\n    \
                 </soapenv:Body>\n</soapenv:Envelope>"
            );
            req = req.header("Content-Type", "application/xml");
            req.body = Body::Raw(doc.into_bytes());
        }
    }
    req.headers.extend(w.headers.iter().cloned());
    d.send(req).await.map(|_| ())
}

pub(crate) async fn custom(
    d: &Deliverer,
    h: &CustomHttp,
    msg: &Message,
) -> Result<(), DeliveryError> {
    let service = "Webhook";
    let body = convert(&msg.body, msg.format, h.format.unwrap_or(msg.format));
    let mut req = Request::new(
        service,
        Dest::User,
        method(service, &h.method)?,
        h.url.clone(),
    );
    req.basic = h.auth.clone();
    req.headers = h.headers.clone();
    let has_type = h
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_type && serde_json::from_str::<Value>(&body).is_ok() {
        req.headers.push((
            "Content-Type".into(),
            "application/json; charset=utf-8".into(),
        ));
    }
    req.body = Body::Raw(body.into_bytes());
    d.send(req).await.map(|_| ())
}

/// apprise's `form://` files: one file field per attachment, named by `attach-as`, with its
/// file name and type, after the text fields.
fn form_files(w: &AppriseWebhook, msg: &Message) -> Vec<Part> {
    if msg.attachments.len() > 1 && !w.attach_as.numbered {
        warn!(
            field = %w.attach_as.prefix,
            "several attachments share one form:// field (attach-as has no wildcard)"
        );
    }
    msg.attachments
        .iter()
        .enumerate()
        .map(|(i, a)| Part::File {
            name: w.attach_as.field(i + 1),
            filename: file_name(a, i + 1),
            mimetype: Some(a.mimetype.clone()),
            data: a.data.clone(),
        })
        .collect()
}

/// apprise's name for a file that has none: `file001.dat`, numbered from 1.
fn file_name(a: &Attachment, no: usize) -> String {
    if a.filename.is_empty() {
        format!("file{no:03}.dat")
    } else {
        a.filename.clone()
    }
}

/// apprise's `xml://` attachments, after the fields inside `<Notification>`.
fn xml_attachments(msg: &Message) -> String {
    let entries: String = msg
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "<Attachment filename=\"{}\" mimetype=\"{}\">{}</Attachment>",
                escape_html(&file_name(a, i + 1)),
                escape_html(&a.mimetype),
                base64::engine::general_purpose::STANDARD.encode(&a.data),
            )
        })
        .collect();
    format!("<Attachments format=\"base64\">{entries}</Attachments>")
}

/// apprise's `json://` attachments: each file as `{filename, base64, mimetype}`.
fn json_attachments(msg: &Message) -> Value {
    Value::Array(
        msg.attachments
            .iter()
            .map(|a| {
                serde_json::json!({
                    "filename": a.filename,
                    "base64": base64::engine::general_purpose::STANDARD.encode(&a.data),
                    "mimetype": a.mimetype,
                })
            })
            .collect(),
    )
}
