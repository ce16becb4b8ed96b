//! The unit every transport delivers: a rendered title and body.

use serde::{Deserialize, Serialize};

/// How a rendered body is written. Markdown stays markdown until a transport decides what its
/// service understands (Discord and Slack speak it; email and Telegram get HTML; plain-text
/// services get text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Text,
    Html,
    Markdown,
}

/// A notification ready to send: templates rendered, diff markers replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub title: String,
    pub body: String,
    pub format: BodyFormat,
    /// Files sent with it where the service takes files (the watch's screenshot with
    /// `notification_screenshot`); loaded at delivery, never queued or serialized.
    #[serde(skip)]
    pub attachments: Vec<Attachment>,
}

/// A file sent with a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub mimetype: String,
    pub data: Vec<u8>,
}
