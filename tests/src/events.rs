//! The events AWS sends the functions, and what AWS does with their results:
//!
//! - API Gateway HTTP API, payload format 2.0: a request becomes an event (headers lower-cased
//!   and comma-joined, the `cookie` header moved to `cookies`, non-text bodies base64), and the
//!   function's result becomes the HTTP response (`cookies` become `Set-Cookie`s; a result
//!   without `statusCode` is a 200 JSON body).
//! - SQS event source mappings: messages actually received from the queue (receipt handles,
//!   `ApproximateReceiveCount`, `eventSourceARN`), and after the invocation the mapping's rule:
//!   with `ReportBatchItemFailures`, every message not listed in `batchItemFailures` is
//!   deleted and the listed ones are left to come back after their visibility timeout; a
//!   function error, or a listed id that is not in the batch, leaves the whole batch.
//! - EventBridge Scheduler: the target's `Input`, or without one Scheduler's default
//!   notification (`detail-type` "Scheduled Event", `detail` the string `"{}"`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::runtime::{Function, FunctionError};
use crate::template::{ACCOUNT_ID, REGION};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One HTTP request as the client sent it.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// As received, percent-encoding kept.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
}

/// One HTTP response as API Gateway sends it to the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Content types API Gateway passes as text; any other body is base64-encoded.
fn is_text(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/xml"
        || essence.ends_with("+xml")
        || essence == "application/javascript"
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP API's `$default` stage and route in front of a function.
#[derive(Clone, Debug)]
pub struct HttpApi {
    pub api_id: String,
}

impl HttpApi {
    pub fn domain_name(&self) -> String {
        format!("{}.execute-api.{REGION}.amazonaws.com", self.api_id)
    }

    /// The payload format 2.0 event for `req`.
    pub fn event(&self, req: &HttpRequest) -> Value {
        let domain = self.domain_name();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        let mut cookies: Vec<String> = Vec::new();
        let mut content_type = String::new();
        for (name, value) in &req.headers {
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "cookie" => cookies.extend(
                    value
                        .split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                ),
                // The client reached the API's own domain.
                "host" => {}
                _ => {
                    if name == "content-type" {
                        content_type = value.clone();
                    }
                    headers
                        .entry(name)
                        .and_modify(|v| {
                            v.push(',');
                            v.push_str(value);
                        })
                        .or_insert_with(|| value.clone());
                }
            }
        }
        let now = now_ms();
        let trace = uuid::Uuid::new_v4().simple().to_string();
        headers.insert("host".into(), domain.clone());
        headers.insert("x-forwarded-for".into(), req.source_ip.clone());
        headers.insert("x-forwarded-port".into(), "443".into());
        headers.insert("x-forwarded-proto".into(), "https".into());
        headers.insert(
            "x-amzn-trace-id".into(),
            format!("Root=1-{:08x}-{}", now / 1000, &trace[..24]),
        );
        let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
        let time = chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.format("%d/%b/%Y:%H:%M:%S +0000").to_string())
            .unwrap_or_default();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": req.path,
            "rawQueryString": req.query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.api_id,
                "domainName": domain,
                "domainPrefix": self.api_id,
                "http": {
                    "method": req.method,
                    "path": req.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": req.source_ip,
                    "userAgent": user_agent,
                },
                "requestId": &uuid::Uuid::new_v4().simple().to_string()[..16],
                "routeKey": "$default",
                "stage": "$default",
                "time": time,
                "timeEpoch": now,
            },
            "isBase64Encoded": false,
        });
        if !cookies.is_empty() {
            event["cookies"] = json!(cookies);
        }
        if !req.query.is_empty() {
            let mut params: BTreeMap<String, String> = BTreeMap::new();
            for pair in req.query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                params
                    .entry(percent_decode(k))
                    .and_modify(|e| {
                        e.push(',');
                        e.push_str(&percent_decode(v));
                    })
                    .or_insert_with(|| percent_decode(v));
            }
            event["queryStringParameters"] = json!(params);
        }
        if !req.body.is_empty() {
            match std::str::from_utf8(&req.body) {
                Ok(text) if is_text(&content_type) => event["body"] = json!(text),
                _ => {
                    event["body"] = json!(BASE64.encode(&req.body));
                    event["isBase64Encoded"] = json!(true);
                }
            }
        }
        event
    }

    /// The client's response for the function's result (payload format 2.0 rules).
    pub fn response(result: &Value) -> Result<HttpResponse, String> {
        let Some(obj) = result.as_object().filter(|o| o.contains_key("statusCode")) else {
            // Not a response object: API Gateway sends the result itself as JSON.
            return Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: result.to_string().into_bytes(),
            });
        };
        let status = obj["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("statusCode {} is not a status", obj["statusCode"]))?;
        let mut headers = Vec::new();
        if let Some(h) = obj.get("headers").and_then(Value::as_object) {
            for (name, value) in h {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                headers.push((name.to_ascii_lowercase(), value));
            }
        }
        if let Some(cookies) = obj.get("cookies").and_then(Value::as_array) {
            for c in cookies.iter().filter_map(Value::as_str) {
                headers.push(("set-cookie".into(), c.to_string()));
            }
        }
        let body = match obj.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) if obj["isBase64Encoded"] == true => BASE64
                .decode(s)
                .map_err(|e| format!("isBase64Encoded but not base64: {e}"))?,
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(other) => return Err(format!("body is not a string: {other}")),
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// What EventBridge Scheduler sends a templated Lambda target: its `Input`, or the default
/// notification when the target has none.
pub fn scheduler_event(schedule_arn: &str, input: Option<&str>) -> Result<Value, String> {
    if let Some(input) = input {
        return serde_json::from_str(input).map_err(|e| format!("Input is not JSON: {e}"));
    }
    let time = chrono::DateTime::from_timestamp_millis(now_ms())
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Ok(json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": time,
        "region": REGION,
        "resources": [schedule_arn],
        "detail": "{}",
    }))
}

/// One SQS event source mapping of a function (from the template's `Type: SQS` event).
#[derive(Clone, Debug)]
pub struct EventSource {
    /// The event's name in the template (`Checks`).
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub report_batch_item_failures: bool,
}

/// One batch the mapping delivered, and what became of it.
#[derive(Debug)]
pub struct Delivery {
    /// The event the function was invoked with.
    pub event: Value,
    pub message_ids: Vec<String>,
    pub outcome: Result<Value, FunctionError>,
    /// Ids of the messages the mapping deleted (the others come back).
    pub deleted: Vec<String>,
}

impl Delivery {
    /// The `batchItemFailures` ids the function reported.
    pub fn reported_failures(&self) -> Vec<String> {
        self.outcome
            .as_ref()
            .ok()
            .and_then(|v| v.get("batchItemFailures"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn sdk_error(e: impl std::error::Error + 'static) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

fn attribute_value(v: &MessageAttributeValue) -> Value {
    json!({
        "stringValue": v.string_value(),
        "binaryValue": v.binary_value().map(|b| BASE64.encode(b.as_ref())),
        "stringListValues": v.string_list_values(),
        "binaryListValues": v
            .binary_list_values()
            .iter()
            .map(|b| BASE64.encode(b.as_ref()))
            .collect::<Vec<_>>(),
        "dataType": v.data_type(),
    })
}

impl EventSource {
    /// Up to a batch of messages, waiting at most `wait` for the first (long polling).
    pub async fn receive(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait: Duration,
    ) -> Result<Vec<Message>, String> {
        let out = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.messages.unwrap_or_default())
    }

    /// The SQS event Lambda builds from `messages`.
    pub fn event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                let message_attributes: Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), attribute_value(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Which of `ids` stay in the queue after an invocation that ended with `outcome`.
    pub fn retained(&self, ids: &[String], outcome: &Result<Value, FunctionError>) -> Vec<String> {
        let all = || ids.to_vec();
        let result = match outcome {
            Err(_) => return all(),
            Ok(_) if !self.report_batch_item_failures => return Vec::new(),
            Ok(v) => v,
        };
        match result.get("batchItemFailures") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut keep = Vec::new();
                for item in items {
                    match item.get("itemIdentifier").and_then(Value::as_str) {
                        Some(id) if ids.iter().any(|i| i == id) => keep.push(id.to_string()),
                        // An empty or unknown id fails the whole batch.
                        _ => return all(),
                    }
                }
                keep
            }
            Some(_) => all(),
        }
    }

    /// Invokes `function` with `messages` and settles them as the mapping does.
    pub async fn deliver_messages(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &Function,
        messages: &[Message],
    ) -> Result<Delivery, String> {
        let event = self.event(messages);
        let outcome = function.invoke(&event).await;
        let ids: Vec<String> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default().to_string())
            .collect();
        let retained = self.retained(&ids, &outcome);
        let mut entries = Vec::new();
        let mut deleted = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if retained.contains(&ids[i]) {
                continue;
            }
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .map_err(sdk_error)?;
            entries.push(entry);
            deleted.push(ids[i].clone());
        }
        if !entries.is_empty() {
            let out = sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
            if !out.failed().is_empty() {
                return Err(format!("DeleteMessageBatch failed: {:?}", out.failed()));
            }
        }
        Ok(Delivery {
            event,
            message_ids: ids,
            outcome,
            deleted,
        })
    }

    /// One poll of the mapping: a batch received within `wait`, delivered and settled; `None`
    /// when the queue had nothing visible.
    pub async fn poll(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &Function,
        wait: Duration,
    ) -> Result<Option<Delivery>, String> {
        let messages = self.receive(sqs, wait).await?;
        if messages.is_empty() {
            return Ok(None);
        }
        self.deliver_messages(sqs, function, &messages)
            .await
            .map(Some)
    }

    /// Polls until the queue has nothing visible for one `wait`; the batches delivered.
    pub async fn drain(
        &self,
        sqs: &aws_sdk_sqs::Client,
        function: &Function,
        wait: Duration,
    ) -> Result<Vec<Delivery>, String> {
        let mut out = Vec::new();
        while let Some(d) = self.poll(sqs, function, wait).await? {
            let failed = !d.deleted.len().eq(&d.message_ids.len());
            out.push(d);
            if failed {
                // What failed comes back only after its visibility timeout.
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

    use super::*;

    fn api() -> HttpApi {
        HttpApi {
            api_id: "abc123".into(),
        }
    }

    #[test]
    fn a_request_becomes_a_payload_2_event() {
        let e = api().event(&HttpRequest {
            method: "POST".into(),
            path: "/api/v1/watch".into(),
            query: "a=1&a=2&b=x%20y".into(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cookie".into(), "s=1; t=2".into()),
                ("X-Many".into(), "1".into()),
                ("x-many".into(), "2".into()),
                ("Host".into(), "127.0.0.1:9".into()),
            ],
            body: b"{\"url\":1}".to_vec(),
            source_ip: "127.0.0.1".into(),
        });
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["headers"]["x-many"], "1,2");
        assert_eq!(
            e["headers"]["host"],
            "abc123.execute-api.us-east-1.amazonaws.com"
        );
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["body"], "{\"url\":1}");
        assert_eq!(e["isBase64Encoded"], false);

        let bin = api().event(&HttpRequest {
            method: "POST".into(),
            path: "/x".into(),
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: vec![0, 1, 2],
            ..HttpRequest::default()
        });
        assert_eq!(bin["isBase64Encoded"], true);
        assert_eq!(bin["body"], "AAEC");
    }

    #[test]
    fn a_result_becomes_the_clients_response() {
        let r = HttpApi::response(&json!({
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "e30=",
            "isBase64Encoded": true,
        }))
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"{}");
        assert_eq!(
            r.headers,
            [
                ("content-type".to_string(), "application/json".to_string()),
                ("set-cookie".to_string(), "a=1; Path=/".to_string()),
                ("set-cookie".to_string(), "b=2".to_string()),
            ]
        );
        let plain = HttpApi::response(&json!({"hello": 1})).unwrap();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.body, b"{\"hello\":1}");
    }

    #[test]
    fn the_mapping_keeps_what_failed() {
        let source = EventSource {
            name: "Jobs".into(),
            queue_url: "u".into(),
            queue_arn: "a".into(),
            batch_size: 10,
            report_batch_item_failures: true,
        };
        let ids = vec!["a".to_string(), "b".to_string()];
        let ok = |v: Value| -> Result<Value, FunctionError> { Ok(v) };
        assert!(
            source
                .retained(&ids, &ok(json!({"batchItemFailures": []})))
                .is_empty()
        );
        assert_eq!(
            source.retained(
                &ids,
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "b"}]}))
            ),
            ["b"]
        );
        assert_eq!(
            source.retained(
                &ids,
                &ok(json!({"batchItemFailures": [{"itemIdentifier": "zz"}]}))
            ),
            ids
        );
        assert_eq!(
            source.retained(&ids, &Err(FunctionError::Timeout(Duration::from_secs(1)))),
            ids
        );
        let without = EventSource {
            report_batch_item_failures: false,
            ..source
        };
        assert!(
            without
                .retained(
                    &ids,
                    &ok(json!({"batchItemFailures": [{"itemIdentifier": "b"}]}))
                )
                .is_empty()
        );
    }

    #[test]
    fn the_scheduler_sends_its_default_notification() {
        let e = scheduler_event("arn:aws:scheduler:us-east-1:1:schedule/default/t", None).unwrap();
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.scheduler");
        assert_eq!(e["detail"], "{}");
        let given = scheduler_event("x", Some("{\"k\": 1}")).unwrap();
        assert_eq!(given, json!({"k": 1}));
    }
}
