//! Apprise-style notification URLs, parsed into typed targets.
//!
//! Users paste URLs written for apprise (and changedetection.io's own `get://`…`head://`
//! webhooks), so the shapes and query options follow apprise's documented formats. Parsing is
//! lenient in the way apprise is: tokens such as a Telegram bot token (`123:abc`) or a Slack
//! channel (`/#general`) are not valid parts of a standard URL, so the URL is split by hand rather
//! than with [`url::Url`], which would reject or reinterpret them.
//!
//! A scheme apprise 2.0.1 (upstream's pin) knows but this crate does not deliver itself parses
//! as [`NotifyUrl::Relay`]: it is accepted, as upstream accepts it, and delivered through the
//! operator's Apprise API server (`APPRISE_API_URL`), which judges the rest of the URL. Without
//! that server its delivery fails with a message saying so, never silently. A scheme apprise
//! does not know is invalid: saving a URL that can never be delivered would only hide the
//! problem.

use std::fmt;

use url::Url;

/// Upstream's validation message, which users and UI tests already know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{url}' is not a valid AppRise URL.")]
pub struct InvalidUrl {
    pub url: String,
}

/// A parsed notification URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyUrl {
    /// A `#` comment line: callers skip it without sending or failing.
    Skip,
    /// `null://`: accepted and delivered nowhere, for tests and placeholders.
    Null,
    /// apprise's generic `json://`, `form://` and `xml://` notifiers.
    Apprise(AppriseWebhook),
    /// changedetection.io's `get://` … `head://` webhooks: the body is sent as it is.
    Http(CustomHttp),
    Discord(Discord),
    Slack(Slack),
    Telegram(Telegram),
    Ntfy(Ntfy),
    Gotify(Gotify),
    Pushover(Pushover),
    Pushbullet(Pushbullet),
    Mattermost(Mattermost),
    RocketChat(RocketChat),
    Signal(Signal),
    Workflows(Workflows),
    Matrix(Matrix),
    Email(Email),
    /// apprise's own `apprise(s)://` notifier: a post to an Apprise API server's `/notify`.
    AppriseApi(AppriseApi),
    /// Any other scheme apprise knows: handed whole to the operator's Apprise API server.
    Relay(Relayed),
}

impl NotifyUrl {
    /// Name used in log lines and error messages.
    pub fn service(&self) -> &'static str {
        match self {
            NotifyUrl::Skip => "Comment",
            NotifyUrl::Null => "Null",
            NotifyUrl::Apprise(w) => match w.kind {
                WebhookKind::Json => "JSON",
                WebhookKind::Form => "Form",
                WebhookKind::Xml => "XML",
            },
            NotifyUrl::Http(_) => "Webhook",
            NotifyUrl::Discord(_) => "Discord",
            NotifyUrl::Slack(_) => "Slack",
            NotifyUrl::Telegram(_) => "Telegram",
            NotifyUrl::Ntfy(_) => "ntfy",
            NotifyUrl::Gotify(_) => "Gotify",
            NotifyUrl::Pushover(_) => "Pushover",
            NotifyUrl::Pushbullet(_) => "Pushbullet",
            NotifyUrl::Mattermost(_) => "Mattermost",
            NotifyUrl::RocketChat(_) => "Rocket.Chat",
            NotifyUrl::Signal(_) => "Signal API",
            NotifyUrl::Workflows(_) => "Power Automate workflow",
            NotifyUrl::Matrix(_) => "Matrix",
            NotifyUrl::Email(_) => "Email",
            NotifyUrl::AppriseApi(_) => "Apprise API",
            NotifyUrl::Relay(_) => "Apprise API relay",
        }
    }

    /// The `format=` option every apprise URL may carry, when given.
    pub fn format(&self) -> Option<crate::BodyFormat> {
        match self {
            NotifyUrl::Apprise(w) => w.format,
            NotifyUrl::Http(h) => h.format,
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    Json,
    Form,
    Xml,
}

/// `json://`, `form://`, `xml://` (plus `s` for https):
/// `{schema}://[user[:password]@]host[:port][/path][?method=POST&+Header=v&:field=v&-param=v]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppriseWebhook {
    pub kind: WebhookKind,
    /// Target with scheme http/https and the `-param` query parameters applied.
    pub url: Url,
    pub method: String,
    pub auth: Option<(String, String)>,
    /// `+Header=value` entries.
    pub headers: Vec<(String, String)>,
    /// `:field=value` entries: a known field name renames that field (an empty value drops it),
    /// any other adds a field.
    pub payload: Vec<(String, String)>,
    pub format: Option<crate::BodyFormat>,
    /// `form://`'s `attach-as=`: the field each file goes under (`file01`, `file02`… by default).
    pub attach_as: AttachAs,
}

/// apprise's `attach-as=` for `form://`: a name with an optional wildcard (`*?+$:.%`) that
/// becomes the file's number, two digits (`file*` → `file01`, `*file` → `01file`). Without a
/// wildcard every file goes under the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachAs {
    pub prefix: String,
    pub numbered: bool,
    pub suffix: String,
}

impl Default for AttachAs {
    fn default() -> Self {
        AttachAs {
            prefix: "file".into(),
            numbered: true,
            suffix: String::new(),
        }
    }
}

impl AttachAs {
    /// apprise's pattern, matched at the start of the trimmed value as `re.match` does: a
    /// wildcard run between two names, or a name and at most one wildcard; anything after the
    /// match is ignored. `None` when nothing matches, which apprise refuses.
    pub fn parse(value: &str) -> Option<AttachAs> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let is_wild = |c: char| "*?+$:.%".contains(c);
        let v = value.trim();
        let head_len = v.find(|c| !is_name(c)).unwrap_or(v.len());
        let (head, rest) = v.split_at(head_len);
        let wild_len = rest.find(|c| !is_wild(c)).unwrap_or(rest.len());
        let (wild, rest) = rest.split_at(wild_len);
        let tail_len = rest.find(|c| !is_name(c)).unwrap_or(rest.len());
        let tail = &rest[..tail_len];
        if !wild.is_empty() && !tail.is_empty() {
            return Some(AttachAs {
                prefix: head.to_string(),
                numbered: true,
                suffix: tail.to_string(),
            });
        }
        (!head.is_empty()).then(|| AttachAs {
            prefix: head.to_string(),
            numbered: !wild.is_empty(),
            suffix: String::new(),
        })
    }

    /// The field name of file `no` (from 1).
    pub fn field(&self, no: usize) -> String {
        if self.numbered {
            format!("{}{no:02}{}", self.prefix, self.suffix)
        } else {
            self.prefix.clone()
        }
    }
}

/// changedetection.io's `get(s)://`, `post(s)://`, `put(s)://`, `patch(s)://`, `delete(s)://`,
/// `head(s)://`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomHttp {
    pub method: String,
    /// Final URL: http/https, plain query parameters kept, `+` and `-` ones removed.
    pub url: Url,
    pub auth: Option<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub format: Option<crate::BodyFormat>,
}

/// `discord://[botname@]webhook_id/webhook_token[?tts=yes&avatar_url=..&thread=..]`, or the
/// webhook URL Discord shows (`https://discord.com/api/webhooks/id/token`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discord {
    pub webhook_id: String,
    pub webhook_token: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub thread: Option<String>,
    pub tts: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlackMode {
    /// Incoming webhook: `slack://tokenA/tokenB/tokenC[/#channel]`.
    Webhook {
        token_a: String,
        token_b: String,
        token_c: String,
    },
    /// Bot token: `slack://xoxb-…[/#channel]`, posted with `chat.postMessage`.
    Bot { token: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slack {
    pub mode: SlackMode,
    /// Targets as Slack wants them: `#channel`, `@user` or a bare channel id.
    pub channels: Vec<String>,
    pub botname: Option<String>,
}

/// `tgram://bot_token/chat_id[:topic][/chat_id…][?silent=yes&preview=yes]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Telegram {
    pub bot_token: String,
    pub chats: Vec<(String, Option<String>)>,
    pub silent: bool,
    pub preview: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NtfyAuth {
    None,
    Basic(String, String),
    Token(String),
}

/// `ntfy://topic` (ntfy.sh), `ntfy://[user:pass@]host[:port]/topic[/topic…]`, `ntfys://…`,
/// options `priority=`, `tags=`, `click=`, `delay=`, `email=`, `token=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ntfy {
    /// `None` for the public ntfy.sh service.
    pub server: Option<Url>,
    pub topics: Vec<String>,
    pub auth: NtfyAuth,
    pub priority: Option<String>,
    pub tags: Option<String>,
    pub click: Option<String>,
    pub delay: Option<String>,
    pub email: Option<String>,
}

/// `gotify(s)://host[:port][/path]/token[?priority=normal]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gotify {
    /// Server URL including any path prefix, ending in `/`.
    pub server: Url,
    pub token: String,
    pub priority: i64,
    /// `format=markdown`: the message is markdown and Gotify is told so.
    pub markdown: bool,
}

/// `pover://user_key@token[/device…][?priority=high&sound=…]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushover {
    pub user_key: String,
    pub token: String,
    pub devices: Vec<String>,
    pub priority: i64,
    pub sound: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RocketMode {
    /// An incoming webhook (`rocket://[user:]tokenA/tokenB@host[/targets]`).
    Webhook(String),
    /// A login with user and password, then a logout, around the posts.
    Basic { user: String, password: String },
    /// A personal access token: `X-User-Id` and `X-Auth-Token` headers.
    Token { user: String, token: String },
}

/// `rocket(s)://…@host[:port][/#channel|@user|room_id…][?mode=&avatar=&to=]`, as apprise reads
/// it: the mode is `mode=`, else a webhook when one is given, else a token when the password
/// is longer than 32 characters, else a login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RocketChat {
    /// `http(s)://host[:port]/`.
    pub server: Url,
    pub mode: RocketMode,
    pub channels: Vec<String>,
    pub users: Vec<String>,
    pub rooms: Vec<String>,
    /// Whether posts carry apprise's image as `avatar` (default: not when logging in).
    pub avatar: bool,
}

/// The image apprise 2.0.1 sends as a Rocket.Chat post's avatar for an "info" notification.
pub const APPRISE_INFO_ICON_128: &str = "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/apprise-info-128x128.png";

/// `signal(s)://[user[:password]@]host[:port]/from_phone[/phone|group.id…][?to=&batch=&status=]`:
/// a signal-cli REST API server's `/v2/send`. No target sends to the sender's own number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// `http(s)://host[:port]/`.
    pub server: Url,
    pub auth: Option<(String, String)>,
    /// `+` and the digits.
    pub source: String,
    /// `+digits` or `group.<id>`, in the order written.
    pub targets: Vec<String>,
    /// Up to ten recipients a request instead of one.
    pub batch: bool,
    /// apprise's `[i] ` before the message.
    pub status: bool,
}

/// `pbul://access_token[/device|#channel|email…][?to=…]`: no target sends to all the
/// account's devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushbullet {
    pub token: String,
    /// In apprise's order (sorted, without duplicates): `#tag` a channel, an address an email,
    /// anything else a device id.
    pub targets: Vec<String>,
}

/// `mmost(s)://[botname@]host[:port][/path]/token[?channel=a,b&icon_url=…&image=no]`, an
/// incoming webhook. (apprise's bot mode, `mode=bot`, is relayed.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mattermost {
    /// Server URL including any path prefix, ending in `/`.
    pub server: Url,
    pub token: String,
    /// In apprise's order: sorted, without duplicates.
    pub channels: Vec<String>,
    pub botname: Option<String>,
    /// `icon_url=`, else apprise's "info" image unless `image=no`.
    pub icon_url: Option<String>,
}

/// The image apprise 2.0.1 sends as a Mattermost post's icon for an "info" notification (its
/// default theme, 72×72; upstream's asset changes only the logo, not this).
pub const APPRISE_INFO_ICON_72: &str = "https://github.com/caronc/apprise/raw/master/apprise/assets/themes/default/apprise-info-72x72.png";

/// Microsoft Teams through a Power Automate workflow:
/// `workflow(s)://host[:port]/workflow_id/signature[?pa=yes&ver=…&route=…&wrap=yes]`, or the
/// `https://…/workflows/<id>/triggers/manual/paths/invoke?…&sig=…` URL the workflow shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workflows {
    pub host: String,
    pub port: Option<u16>,
    pub workflow: String,
    pub signature: String,
    pub power_automate: bool,
    pub route: Option<String>,
    pub api_version: String,
    pub wrap: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatrixAuth {
    Password { user: String, password: String },
    Token(String),
}

/// `matrix(s)://user:password@host[:port]/#room[/!room_id:server…]` or
/// `matrix(s)://token@host[:port]/#room`, options `msgtype=text|notice`, `v=2|3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    pub server: Url,
    pub auth: MatrixAuth,
    pub rooms: Vec<String>,
    pub msgtype: String,
    /// Client-server API prefix: `/_matrix/client/v3` (or `r0` with `v=2`).
    pub api_path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureMode {
    Insecure,
    Ssl,
    StartTls,
}

/// An address with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => f.write_str(&self.address),
        }
    }
}

/// `mailto://[user[:password]@]host[:port][/to…][?to=&from=&name=&smtp=&mode=&cc=&bcc=&reply=]`
/// and `mailtos://…` with apprise's defaults: `mailto` is plain SMTP on 25, `mailtos` is
/// STARTTLS on 587, `mode=ssl` is implicit TLS on 465; the sender defaults to `user@host` and
/// the recipient to the sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub smtp_host: String,
    pub port: u16,
    pub mode: SecureMode,
    pub login: Option<(String, String)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppriseApiMethod {
    Form,
    Json,
}

/// `apprise(s)://[user[:password]@]host[:port][/path]/token[?method=form|json&v=1|2&tags=…]`
/// with `+Header=value` entries, as apprise's Apprise API notifier reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppriseApi {
    /// Server URL including any path prefix, ending in `/`.
    pub server: Url,
    /// The configuration key on that server.
    pub token: String,
    pub auth: Option<(String, String)>,
    pub method: AppriseApiMethod,
    /// Version 1 puts the key in the path (`/notify/<token>`); version 2 (the default) sends it
    /// as `X-Apprise-Config-ID`, out of access logs.
    pub key_in_path: bool,
    pub tags: Vec<String>,
    pub headers: Vec<(String, String)>,
}

/// A URL for a service changewatch does not deliver itself, kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    pub url: String,
    pub scheme: String,
    /// The URL's host part (for some services a token): vetted by the SSRF policy when it is
    /// an address or names one, since the Apprise API server would connect to it for us.
    pub host: String,
}

/// Whether `url` is something [`parse`] accepts (comments included, as upstream skips them).
pub fn is_valid(url: &str) -> bool {
    parse(url).is_ok()
}

/// Parses one notification URL.
pub fn parse(url: &str) -> Result<NotifyUrl, InvalidUrl> {
    let trimmed = url.trim();
    if trimmed.starts_with('#') {
        return Ok(NotifyUrl::Skip);
    }
    let invalid = || InvalidUrl {
        url: url.to_string(),
    };
    if let Some((url, webhook)) = rocket_webhook(trimmed) {
        let raw = Raw::split(&url).ok_or_else(invalid)?;
        return rocket(&raw, Some(webhook))
            .map(NotifyUrl::RocketChat)
            .ok_or_else(invalid);
    }
    let raw = Raw::split(trimmed).ok_or_else(invalid)?;
    parse_raw(&raw, trimmed).ok_or_else(invalid)
}

/// apprise's Rocket.Chat webhook form, `rocket(s)://[user:]tokenA/tokenB@host…`: the token
/// holds a `/`, so it is taken out before the URL is split, leaving `[user@]host…`.
fn rocket_webhook(url: &str) -> Option<(String, String)> {
    static RE: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^(?P<schema>rockets?://)((?P<user>[^:]+):)?(?P<webhook>[a-z0-9]+(/|%2F)[a-z0-9]+)@(?P<rest>.+)$",
        )
        .ok()
    });
    let caps = RE.as_ref()?.captures(url)?;
    let user = caps
        .name("user")
        .map(|u| format!("{}@", u.as_str()))
        .unwrap_or_default();
    Some((
        format!("{}{user}{}", &caps["schema"], &caps["rest"]),
        decode(&caps["webhook"], false),
    ))
}

fn parse_raw(raw: &Raw, full: &str) -> Option<NotifyUrl> {
    let scheme = raw.scheme.as_str();
    Some(match scheme {
        "null" => NotifyUrl::Null,
        "json" | "jsons" | "form" | "forms" | "xml" | "xmls" => NotifyUrl::Apprise(apprise(raw)?),
        "get" | "gets" | "post" | "posts" | "put" | "puts" | "patch" | "patchs" | "delete"
        | "deletes" | "head" | "heads" => NotifyUrl::Http(custom_http(raw)?),
        "discord" => NotifyUrl::Discord(discord(raw)?),
        "slack" => NotifyUrl::Slack(slack(raw)?),
        "tgram" => NotifyUrl::Telegram(telegram(raw)?),
        "ntfy" | "ntfys" => NotifyUrl::Ntfy(ntfy(raw)?),
        "gotify" | "gotifys" => NotifyUrl::Gotify(gotify(raw)?),
        "pover" => NotifyUrl::Pushover(pushover(raw)?),
        "pbul" => NotifyUrl::Pushbullet(pushbullet(raw)?),
        // apprise's styled (markdown) mode needs its Signal dialect: relayed.
        "signal" | "signals"
            if raw
                .opt("format")
                .is_some_and(|f| f.eq_ignore_ascii_case("markdown")) =>
        {
            relayed(raw, full)
        }
        "signal" | "signals" => NotifyUrl::Signal(signal(raw)?),
        "rocket" | "rockets" => NotifyUrl::RocketChat(rocket(raw, None)?),
        "mmost" | "mmosts" if mattermost_bot(raw) => relayed(raw, full),
        "mmost" | "mmosts" => NotifyUrl::Mattermost(mattermost(raw)?),
        "workflow" | "workflows" => NotifyUrl::Workflows(workflows(raw)?),
        "matrix" | "matrixs" => NotifyUrl::Matrix(matrix(raw)?),
        "mailto" | "mailtos" => NotifyUrl::Email(email(raw)?),
        "apprise" | "apprises" => NotifyUrl::AppriseApi(apprise_api(raw)?),
        "http" | "https" => native(raw, full)?,
        s if apprise_knows(s) => relayed(raw, full),
        _ => return None,
    })
}

/// Whether apprise 2.0.1 has a notifier for `scheme` (lowercase): the test of a relayed URL.
pub fn apprise_knows(scheme: &str) -> bool {
    APPRISE_SCHEMES.binary_search(&scheme).is_ok()
}

/// Every scheme apprise 2.0.1's plugins register (`NotificationManager().schemas()`), sorted.
/// Those this crate delivers itself are matched before this list is consulted.
#[rustfmt::skip]
pub const APPRISE_SCHEMES: &[&str] = &[
    "46elks", "apprise", "apprises", "aprs", "atalk", "azure", "bark", "barks",
    "blink1", "bluesky", "brevo", "bsky", "bulksms", "bulkvs", "burstsms", "chanify", "chime",
    "clickatell", "clicksend", "d7sms", "dapnet", "dbus", "deltachat", "deltachats", "dingtalk",
    "discord", "dot", "eight00com", "elks", "emby", "embys", "enigma2", "enigma2s", "evolution",
    "evolutions", "exotel", "fcm", "feishu", "flock", "flowtriq", "flowtriqs", "fluxer", "fluxers",
    "form", "forms", "freemobile", "gchat", "gio", "glib", "gnome", "gotify", "gotifys", "groupme",
    "growl", "guilded", "hassio", "hassios", "httpsms", "humhub", "humhubs", "ifttt", "irc", "ircs",
    "jellyfin", "jellyfins", "jira", "join", "json", "jsons", "kavenegar", "kde", "kodi", "kodis",
    "kook", "kumulos", "lametric", "lametrics", "lark", "lauther", "line", "macosx", "mailersend",
    "mailgun", "mailto", "mailtos", "mastodon", "mastodons", "matrix", "matrixs", "misskey",
    "misskeys", "mmost", "mmosts", "mobilemessage", "mobilemsg", "mqtt", "mqtts", "msg91",
    "msgbird", "ncloud", "nclouds", "nctalk", "nctalks", "nexmo", "notica", "noticas", "notifiarr",
    "notifico", "notificos", "notifyre", "ntfy", "ntfys", "o365", "octopush", "onesignal",
    "opsgenie", "pagerduty", "pagertree", "parsep", "parseps", "pbul", "pinglet", "pinglets",
    "pingram", "pjet", "pjets", "plivo", "postmark", "pover", "prowl", "psafer", "psafers", "push",
    "pushdeer", "pushdeers", "pushed", "pushme", "pushplus", "pushward", "pushy", "qq", "qt",
    "reddit", "resend", "revolt", "ringc", "rocket", "rockets", "rsyslog", "ryver", "schan",
    "sendgrid", "sendpulse", "serwersms", "ses", "session", "sessions", "seven", "sfr", "signal",
    "signalgrid", "signals", "signl4", "simplepush", "sinch", "slack", "smpp", "smpps", "smsc",
    "smseagle", "smseagles", "smsmanager", "smsmgr", "smtp2go", "sns", "sogs", "sparkpost", "spike",
    "splunk", "spugpush", "spush", "stackfield", "strmlabs", "synology", "synologys", "syslog",
    "telnyx", "tgram", "threema", "toot", "toots", "trigv", "trigvs", "tweet", "twilio", "twist",
    "twitter", "vapid", "viber", "victorops", "voipms", "vonage", "webex", "wechat", "wecom",
    "wecombot", "whatsapp", "windows", "workflow", "workflows", "wpush", "wxpusher", "wxteams", "x",
    "xbmc", "xbmcs", "xml", "xmls", "xmpp", "xmpps", "youlmk", "zoom", "zulip",
];

/// How a query parameter was prefixed in the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    Plain,
    /// `+name=value`: an HTTP header.
    Plus,
    /// `-name=value`: a GET parameter (apprise) or a removal (custom webhooks).
    Minus,
    /// `:name=value`: a payload field.
    Colon,
}

#[derive(Clone, Debug)]
struct Param {
    prefix: Prefix,
    key: String,
    value: String,
    /// The pair as written, for passing plain parameters through untouched.
    raw: String,
}

/// An apprise URL split into its parts, each percent-decoded.
#[derive(Debug)]
struct Raw {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<u16>,
    /// `host[:port]` as written (decoded): tokens such as `123:abc` live here.
    host_port: String,
    /// Path as written, still percent-encoded.
    raw_path: String,
    /// Decoded non-empty path segments.
    segments: Vec<String>,
    params: Vec<Param>,
}

impl Raw {
    fn split(url: &str) -> Option<Raw> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return None;
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, q),
            None => (rest, ""),
        };
        let (authority, raw_path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(decode(u, false)), Some(decode(p, false))),
                None => (Some(decode(ui, false)), None),
            },
            None => (None, None),
        };
        let (host, port) = split_host_port(hostport)?;
        let segments = raw_path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| decode(s, false))
            .collect();
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let (prefix, k) = match k.as_bytes().first() {
                    Some(b'+') => (Prefix::Plus, &k[1..]),
                    Some(b'-') => (Prefix::Minus, &k[1..]),
                    Some(b':') => (Prefix::Colon, &k[1..]),
                    _ => (Prefix::Plain, k),
                };
                Param {
                    prefix,
                    key: decode(k, true),
                    value: decode(v, true),
                    raw: pair.to_string(),
                }
            })
            .collect();
        Some(Raw {
            scheme: scheme.to_ascii_lowercase(),
            user: user.filter(|u| !u.is_empty()),
            password,
            host: decode(&host, false),
            port,
            host_port: decode(hostport, false),
            raw_path: raw_path.to_string(),
            segments,
            params,
        })
    }

    /// A plain option, matched case-insensitively as apprise does (it lowercases keys).
    fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|p| p.prefix == Prefix::Plain && p.key.eq_ignore_ascii_case(key))
            .map(|p| p.value.as_str())
    }

    /// A non-empty plain option.
    fn opt(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) => parse_bool(v).unwrap_or(default),
            None => default,
        }
    }

    fn prefixed(&self, prefix: Prefix) -> Vec<(String, String)> {
        self.params
            .iter()
            .filter(|p| p.prefix == prefix && !p.key.is_empty())
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    }

    fn format(&self) -> Option<crate::BodyFormat> {
        match self.get("format")?.trim().to_ascii_lowercase().as_str() {
            "text" => Some(crate::BodyFormat::Text),
            "html" => Some(crate::BodyFormat::Html),
            "markdown" => Some(crate::BodyFormat::Markdown),
            _ => None,
        }
    }

    fn secure(&self) -> bool {
        self.scheme.ends_with('s')
    }

    /// `http(s)://host[:port]` for services on a user-supplied host, or `None` when the host is
    /// not one a URL can carry.
    fn base_url(&self, secure: bool, path: &str) -> Option<Url> {
        if self.host.is_empty() {
            return None;
        }
        let scheme = if secure { "https" } else { "http" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let url = Url::parse(&format!("{scheme}://{host}{port}{path}")).ok()?;
        url.host()?;
        Some(url)
    }

    fn auth(&self) -> Option<(String, String)> {
        self.user
            .clone()
            .map(|u| (u, self.password.clone().unwrap_or_default()))
    }
}

fn split_host_port(hostport: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((inner.to_string(), port));
    }
    if let Some((h, p)) = hostport.rsplit_once(':')
        && !p.is_empty()
        && p.bytes().all(|b| b.is_ascii_digit())
    {
        let port: u16 = p.parse().ok()?;
        if port == 0 {
            return None;
        }
        return Some((h.to_string(), Some(port)));
    }
    Some((hostport.to_string(), None))
}

/// Percent-decoding; `+` means a space in query strings only.
fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "t" | "1" | "on" | "enable" | "enabled" | "+" => Some(true),
        "no" | "n" | "false" | "f" | "0" | "off" | "disable" | "disabled" | "-" => Some(false),
        _ => None,
    }
}

/// Splits apprise's list options (`to=a,b c`).
fn split_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split([',', ' ', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

const APPRISE_METHODS: &[&str] = &[
    "POST", "GET", "DELETE", "PUT", "HEAD", "PATCH", "UPDATE", "OPTIONS",
];

fn apprise(raw: &Raw) -> Option<AppriseWebhook> {
    let kind = match raw.scheme.trim_end_matches('s') {
        "json" => WebhookKind::Json,
        "form" => WebhookKind::Form,
        _ => WebhookKind::Xml,
    };
    let mut url = raw.base_url(raw.secure(), &raw.raw_path)?;
    let get_params = raw.prefixed(Prefix::Minus);
    if !get_params.is_empty() {
        url.query_pairs_mut().extend_pairs(get_params);
    }
    let method = raw
        .opt("method")
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| "POST".into());
    if !APPRISE_METHODS.contains(&method.as_str()) {
        return None;
    }
    // Only form:// reads it; apprise refuses a value its pattern does not match.
    let attach_as = match raw.get("attach-as").filter(|v| !v.is_empty()) {
        Some(v) if kind == WebhookKind::Form => AttachAs::parse(v)?,
        _ => AttachAs::default(),
    };
    Some(AppriseWebhook {
        kind,
        url,
        method,
        auth: raw.auth(),
        headers: raw.prefixed(Prefix::Plus),
        payload: raw.prefixed(Prefix::Colon),
        format: raw.format(),
        attach_as,
    })
}

fn custom_http(raw: &Raw) -> Option<CustomHttp> {
    let method = raw.scheme.trim_end_matches('s').to_ascii_uppercase();
    let mut url = raw.base_url(raw.secure(), &raw.raw_path)?;
    // Upstream hands the target every plain parameter (format= included) and drops the `+`
    // (headers) and `-` (removed) ones; the plain ones go through as written.
    let removed: Vec<&str> = raw
        .params
        .iter()
        .filter(|p| p.prefix == Prefix::Minus)
        .map(|p| p.key.as_str())
        .collect();
    let kept: Vec<&str> = raw
        .params
        .iter()
        .filter(|p| p.prefix == Prefix::Plain && !removed.iter().any(|r| *r == p.key))
        .map(|p| p.raw.as_str())
        .collect();
    if !kept.is_empty() {
        url.set_query(Some(&kept.join("&")));
    }
    Some(CustomHttp {
        method,
        url,
        auth: raw.auth(),
        headers: raw.prefixed(Prefix::Plus),
        format: raw.format(),
    })
}

fn discord(raw: &Raw) -> Option<Discord> {
    let webhook_id = raw.host.clone();
    let webhook_token = raw.segments.first()?.clone();
    if webhook_id.is_empty() || webhook_token.is_empty() {
        return None;
    }
    Some(Discord {
        webhook_id,
        webhook_token,
        username: raw.user.clone(),
        avatar_url: raw.opt("avatar_url"),
        thread: raw.opt("thread"),
        tts: raw.flag("tts", false),
    })
}

fn slack_channel(c: &str) -> Option<String> {
    let c = c.trim();
    Some(match c.chars().next()? {
        '+' => c[1..].to_string(),
        '@' | '#' => c.to_string(),
        _ => format!("#{c}"),
    })
}

fn slack(raw: &Raw) -> Option<Slack> {
    let mut entries = raw.segments.clone();
    let first = raw.host_port.clone();
    if first.is_empty() {
        return None;
    }
    let mode = if first.starts_with("xo") {
        SlackMode::Bot { token: first }
    } else {
        if entries.len() < 2 {
            return None;
        }
        let token_b = entries.remove(0);
        let token_c = entries.remove(0);
        SlackMode::Webhook {
            token_a: first,
            token_b,
            token_c,
        }
    };
    let mut channels: Vec<String> = entries.iter().filter_map(|c| slack_channel(c)).collect();
    if let Some(to) = raw.get("to") {
        channels.extend(split_list(to).filter_map(|c| slack_channel(&c)));
    }
    Some(Slack {
        mode,
        channels,
        botname: raw.user.clone(),
    })
}

fn telegram(raw: &Raw) -> Option<Telegram> {
    let token = raw.host_port.trim_start_matches("bot").to_string();
    let (id, secret) = token.split_once(':')?;
    if id.is_empty()
        || !id.bytes().all(|b| b.is_ascii_digit())
        || secret.is_empty()
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let mut targets: Vec<String> = raw.segments.clone();
    if let Some(to) = raw.get("to") {
        targets.extend(split_list(to));
    }
    let default_topic = raw.opt("topic").or_else(|| raw.opt("thread"));
    let chats = targets
        .iter()
        .map(|t| match t.rsplit_once(':') {
            Some((chat, topic)) if topic.bytes().all(|b| b.is_ascii_digit()) => {
                (chat.to_string(), Some(topic.to_string()))
            }
            _ => (t.clone(), default_topic.clone()),
        })
        .collect();
    Some(Telegram {
        bot_token: token,
        chats,
        silent: raw.flag("silent", false),
        preview: raw.flag("preview", false),
    })
}

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        || h.parse::<std::net::IpAddr>().is_ok()
}

fn ntfy_priority(v: &str) -> Option<String> {
    let v = v.trim().to_ascii_lowercase();
    let p = match v.as_str() {
        x if x.starts_with("mi") || x == "1" => "min",
        x if x.starts_with("mo") || x.starts_with('l') || x == "2" => "low",
        x if x.starts_with('n') || x.starts_with('d') || x == "3" => "default",
        x if x.starts_with('h') || x == "4" => "high",
        x if x.starts_with("ma") || x.starts_with('e') || x.starts_with('u') || x == "5" => "max",
        _ => return None,
    };
    Some(p.to_string())
}

fn ntfy(raw: &Raw) -> Option<Ntfy> {
    let mut topics = raw.segments.clone();
    let mode = raw.opt("mode").map(|m| m.to_ascii_lowercase());
    let private = match mode.as_deref() {
        Some("private") => true,
        Some("cloud") => false,
        Some(_) => return None,
        None => is_hostname(&raw.host) && !topics.is_empty(),
    };
    let server = if private {
        if raw.host.eq_ignore_ascii_case("ntfy.sh") {
            None
        } else {
            Some(raw.base_url(raw.secure(), "/")?)
        }
    } else {
        if !raw.host.to_ascii_lowercase().contains("ntfy.sh") && !raw.host.is_empty() {
            topics.insert(0, raw.host.clone());
        }
        None
    };
    if let Some(to) = raw.get("to") {
        topics.extend(split_list(to));
    }
    if topics.is_empty() {
        return None;
    }
    let auth = if let Some(token) = raw.opt("token") {
        NtfyAuth::Token(token)
    } else {
        match (raw.user.clone(), raw.password.clone()) {
            (Some(u), Some(p)) if raw.get("auth") == Some("token") => {
                let _ = u;
                NtfyAuth::Token(p)
            }
            (Some(u), Some(p)) => NtfyAuth::Basic(u, p),
            (Some(u), None) if u.starts_with("tk_") || raw.get("auth") == Some("token") => {
                NtfyAuth::Token(u)
            }
            (Some(u), None) => NtfyAuth::Basic(u, String::new()),
            _ => NtfyAuth::None,
        }
    };
    let priority = match raw.get("priority") {
        Some(p) if !p.trim().is_empty() => Some(ntfy_priority(p)?),
        _ => None,
    };
    Some(Ntfy {
        server,
        topics,
        auth,
        priority,
        tags: raw.opt("tags"),
        click: raw.opt("click"),
        delay: raw.opt("delay"),
        email: raw.opt("email"),
    })
}

/// The last path segment is the token; the rest is the server's path prefix.
fn host_prefix_and_token(raw: &Raw) -> Option<(Url, String)> {
    let mut entries = raw.segments.clone();
    let token = entries.pop()?;
    let prefix = if entries.is_empty() {
        "/".to_string()
    } else {
        format!("/{}/", entries.join("/"))
    };
    Some((raw.base_url(raw.secure(), &prefix)?, token))
}

fn gotify(raw: &Raw) -> Option<Gotify> {
    let (server, token) = host_prefix_and_token(raw)?;
    let priority = match raw.get("priority").map(|p| p.trim().to_ascii_lowercase()) {
        None => 5,
        Some(p) if p.is_empty() => 5,
        Some(p) => match p.parse::<i64>() {
            Ok(n) => n,
            Err(_) if p.starts_with('l') => 0,
            Err(_) if p.starts_with('m') => 3,
            Err(_) if p.starts_with('n') => 5,
            Err(_) if p.starts_with('h') => 8,
            Err(_) if p.starts_with('e') => 10,
            Err(_) => return None,
        },
    };
    Some(Gotify {
        server,
        token,
        priority,
        markdown: raw
            .get("format")
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("markdown")),
    })
}

fn pushover_key(k: &str) -> bool {
    k.len() == 30 && k.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn pushover(raw: &Raw) -> Option<Pushover> {
    let user_key = raw.user.clone()?;
    let token = raw.host.clone();
    if !pushover_key(&user_key) || !pushover_key(&token) {
        return None;
    }
    let mut devices = raw.segments.clone();
    if let Some(to) = raw.get("to") {
        devices.extend(split_list(to));
    }
    let priority = match raw.get("priority").map(|p| p.trim().to_ascii_lowercase()) {
        None => 0,
        Some(p) if p.is_empty() => 0,
        Some(p) => match p.as_str() {
            "-2" => -2,
            "-1" => -1,
            "0" => 0,
            "1" => 1,
            "2" => 2,
            x if x.starts_with('l') => -2,
            x if x.starts_with('m') => -1,
            x if x.starts_with('n') => 0,
            x if x.starts_with('h') => 1,
            x if x.starts_with('e') => 2,
            _ => return None,
        },
    };
    Some(Pushover {
        user_key,
        token,
        devices,
        priority,
        sound: raw.opt("sound"),
    })
}

fn rocket(raw: &Raw, webhook: Option<String>) -> Option<RocketChat> {
    let webhook = raw.opt("webhook").or(webhook);
    let user = raw.user.clone();
    let password = raw.password.clone().filter(|p| !p.is_empty());
    let mode = match raw.opt("mode").map(|m| m.to_ascii_lowercase()).as_deref() {
        Some("webhook") => RocketMode::Webhook(webhook?),
        Some("basic") => RocketMode::Basic {
            user: user?,
            password: password?,
        },
        Some("token") => RocketMode::Token {
            user: user?,
            token: password?,
        },
        Some(_) => return None,
        None => match (webhook, user, password) {
            (Some(w), _, _) => RocketMode::Webhook(w),
            (None, Some(user), Some(token)) if token.len() > 32 => {
                RocketMode::Token { user, token }
            }
            (None, Some(user), Some(password)) => RocketMode::Basic { user, password },
            _ => return None,
        },
    };
    let mut targets: Vec<String> = raw.segments.clone();
    if let Some(to) = raw.get("to") {
        targets.extend(split_list(to));
    }
    targets.sort();
    targets.dedup();
    let name_ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    let (mut channels, mut users, mut rooms) = (Vec::new(), Vec::new(), Vec::new());
    for t in targets {
        if let Some(c) = t.strip_prefix('#').filter(|c| name_ok(c, b"_-")) {
            channels.push(c.to_string());
        } else if name_ok(&t, b"") {
            rooms.push(t);
        } else if let Some(u) = t.strip_prefix('@').filter(|u| name_ok(u, b"._-")) {
            users.push(u.to_string());
        }
    }
    let basic = matches!(mode, RocketMode::Basic { .. });
    if basic && channels.is_empty() && rooms.is_empty() {
        return None;
    }
    Some(RocketChat {
        server: raw.base_url(raw.secure(), "/")?,
        mode,
        channels,
        users,
        rooms,
        avatar: raw.flag("avatar", !basic),
    })
}

/// apprise's phone number: digits with spaces, `+`, `-` and parentheses, 10 to 14 digits.
fn phone(s: &str) -> Option<String> {
    let s = s.trim();
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || " \t)(+-".contains(c))
    {
        return None;
    }
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    (10..=14)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

/// apprise's Signal group: `group.id`, `@id` or `@group.id`.
fn signal_group(s: &str) -> Option<String> {
    let s = s.trim_start();
    let rest = s
        .strip_prefix("%40")
        .or_else(|| s.strip_prefix('@'))
        .map(|r| (true, r))
        .unwrap_or((false, s));
    let (at, rest) = rest;
    let rest = match rest.get(..6) {
        Some(g) if g.eq_ignore_ascii_case("group.") => &rest[6..],
        _ if at => rest,
        _ => return None,
    };
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_=-".contains(*c))
        .collect();
    (!id.is_empty()).then(|| format!("group.{id}"))
}

fn signal(raw: &Raw) -> Option<Signal> {
    let mut entries = raw.segments.clone();
    let source = match raw.opt("from") {
        Some(f) => f,
        None if !entries.is_empty() => entries.remove(0),
        None => return None,
    };
    let source = phone(&source)?;
    if let Some(to) = raw.get("to") {
        entries.extend(split_list(to));
    }
    let targets: Vec<String> = if entries.is_empty() {
        vec![source.clone()]
    } else {
        let valid: Vec<String> = entries
            .iter()
            .filter_map(|t| phone(t).or_else(|| signal_group(t)))
            .collect();
        if valid.is_empty() {
            return None;
        }
        valid
    };
    Some(Signal {
        server: raw.base_url(raw.secure(), "/")?,
        auth: raw
            .user
            .clone()
            .map(|u| (u, raw.password.clone().unwrap_or_default())),
        source,
        targets,
        batch: raw.flag("batch", false),
        status: raw.flag("status", false),
    })
}

fn pushbullet(raw: &Raw) -> Option<Pushbullet> {
    let token = raw.host_port.clone();
    if token.is_empty() {
        return None;
    }
    let mut targets: Vec<String> = raw.segments.clone();
    if let Some(to) = raw.get("to") {
        targets.extend(split_list(to));
    }
    targets.sort();
    targets.dedup();
    Some(Pushbullet { token, targets })
}

/// apprise's bot mode (`mode=bot`, or a `team=` without a mode): posts through the REST API
/// with a bearer token, which changewatch does not speak, so such URLs are relayed.
fn mattermost_bot(raw: &Raw) -> bool {
    match raw.opt("mode") {
        Some(m) => "bot".starts_with(&*m.to_ascii_lowercase()),
        None => raw.opt("team").is_some(),
    }
}

fn mattermost(raw: &Raw) -> Option<Mattermost> {
    let (server, token) = host_prefix_and_token(raw)?;
    // apprise reads `to`, `channel` and `channels`, keeps `#name`, `+name` and bare names made
    // of letters, digits, `_` and `-` (dropping others), then posts to them in sorted order.
    let mut channels = Vec::new();
    for key in ["to", "channel", "channels"] {
        if let Some(v) = raw.get(key) {
            channels.extend(split_list(v).filter_map(|c| {
                let name = c
                    .strip_prefix('#')
                    .or_else(|| c.strip_prefix('+'))
                    .unwrap_or(&c);
                (!name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                .then(|| (c.clone(), name.to_string()))
            }));
        }
    }
    channels.sort();
    channels.dedup();
    if raw
        .opt("mode")
        .is_some_and(|m| !"webhook".starts_with(&*m.to_ascii_lowercase()))
    {
        return None;
    }
    let icon_url = match raw.get("icon_url") {
        Some(v) if !v.is_empty() => Some(v.to_string()),
        _ => raw
            .flag("image", true)
            .then(|| APPRISE_INFO_ICON_72.to_string()),
    };
    Some(Mattermost {
        server,
        token,
        channels: channels.into_iter().map(|(_, name)| name).collect(),
        botname: raw.user.clone().or_else(|| raw.opt("botname")),
        icon_url,
    })
}

fn workflows(raw: &Raw) -> Option<Workflows> {
    let mut entries = raw.segments.clone();
    let workflow = raw
        .opt("workflow")
        .or_else(|| raw.opt("id"))
        .or_else(|| (!entries.is_empty()).then(|| entries.remove(0)))?;
    let signature = raw
        .opt("signature")
        .or_else(|| raw.opt("sig"))
        .or_else(|| (!entries.is_empty()).then(|| entries.remove(0)))?;
    if raw.host.is_empty() {
        return None;
    }
    let power_automate = raw.flag("pa", false) || raw.flag("powerautomate", false);
    let api_version = raw
        .opt("ver")
        .or_else(|| raw.opt("api-version"))
        .unwrap_or_else(|| {
            if power_automate {
                "2022-03-01-preview".into()
            } else {
                "2016-06-01".into()
            }
        });
    Some(Workflows {
        host: raw.host.clone(),
        port: raw.port,
        workflow,
        signature,
        power_automate,
        route: raw.opt("route").or_else(|| raw.opt("routeid")),
        api_version,
        wrap: raw.flag("wrap", true),
    })
}

fn matrix(raw: &Raw) -> Option<Matrix> {
    let server = raw.base_url(raw.secure(), "/")?;
    let auth = match (raw.user.clone(), raw.password.clone()) {
        (Some(user), Some(password)) if !password.is_empty() => {
            MatrixAuth::Password { user, password }
        }
        (Some(token), None) => MatrixAuth::Token(token),
        _ => match raw.opt("token") {
            Some(t) => MatrixAuth::Token(t),
            None => return None,
        },
    };
    let mut rooms: Vec<String> = raw.segments.clone();
    if let Some(to) = raw.get("to") {
        rooms.extend(split_list(to));
    }
    if rooms.is_empty() {
        return None;
    }
    let msgtype = match raw.opt("msgtype").map(|m| m.to_ascii_lowercase()) {
        None => "text".to_string(),
        Some(m) if m == "text" || m == "notice" => m,
        Some(_) => return None,
    };
    let api_path = match raw.opt("v").or_else(|| raw.opt("version")).as_deref() {
        Some("2") | Some("r0") => "/_matrix/client/r0",
        _ => "/_matrix/client/v3",
    };
    Some(Matrix {
        server,
        auth,
        rooms,
        msgtype,
        api_path: api_path.to_string(),
    })
}

fn is_email(s: &str) -> bool {
    let s = s.trim();
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// `Name <addr>` or `addr`.
fn mailbox(s: &str) -> Option<Mailbox> {
    let s = s.trim();
    if let (Some(open), Some(close)) = (s.find('<'), s.rfind('>')) {
        let address = s[open + 1..close].trim();
        let name = s[..open].trim().trim_matches('"').trim();
        return is_email(address).then(|| Mailbox {
            name: (!name.is_empty()).then(|| name.to_string()),
            address: address.to_string(),
        });
    }
    is_email(s).then(|| Mailbox {
        name: None,
        address: s.to_string(),
    })
}

/// Email lists: commas and semicolons separate, and so do spaces between bare addresses.
fn mailboxes(v: &str) -> Vec<Mailbox> {
    v.split([',', ';'])
        .flat_map(|part| {
            if part.contains('<') {
                vec![part.to_string()]
            } else {
                part.split_whitespace().map(str::to_string).collect()
            }
        })
        .filter_map(|p| mailbox(&p))
        .collect()
}

fn email(raw: &Raw) -> Option<Email> {
    let mode = match raw.opt("mode").map(|m| m.to_ascii_lowercase()) {
        Some(m) => match m.as_str() {
            "ssl" => SecureMode::Ssl,
            "starttls" | "tls" => SecureMode::StartTls,
            "insecure" => SecureMode::Insecure,
            _ => return None,
        },
        None if raw.secure() => SecureMode::StartTls,
        None => SecureMode::Insecure,
    };
    let port = raw.port.unwrap_or(match mode {
        SecureMode::Insecure => 25,
        SecureMode::Ssl => 465,
        SecureMode::StartTls => 587,
    });
    let user = raw.opt("user").or_else(|| raw.user.clone());
    let password = raw.opt("pass").or_else(|| raw.password.clone());
    let host = raw.host.clone();
    // apprise's sender default: the login name's local part at the URL's host.
    let mut from = user.as_ref().and_then(|u| {
        let local = u.split(['@', ' ']).next().unwrap_or_default();
        if !host.is_empty() {
            mailbox(&format!("{local}@{host}"))
        } else {
            mailbox(u)
        }
    });
    if let Some(f) = raw.opt("from") {
        match mailbox(&f) {
            Some(mut m) => {
                if m.name.is_none() {
                    m.name = raw.opt("name");
                }
                from = Some(m);
            }
            None => {
                // A bare name: apprise keeps the address and uses this as its display name.
                if let Some(m) = from.as_mut() {
                    m.name = Some(f);
                }
            }
        }
    } else if let (Some(name), Some(m)) = (raw.opt("name"), from.as_mut()) {
        m.name = Some(name);
    }
    let from = from?;
    let smtp_host = raw.opt("smtp").unwrap_or(host);
    if smtp_host.is_empty() {
        return None;
    }
    let mut to: Vec<Mailbox> = raw.segments.iter().filter_map(|s| mailbox(s)).collect();
    if let Some(t) = raw.get("to") {
        to.extend(mailboxes(t));
    }
    if to.is_empty() {
        to.push(Mailbox {
            name: None,
            address: from.address.clone(),
        });
    }
    let login = match (user, password) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    };
    Some(Email {
        smtp_host,
        port,
        mode,
        login,
        from,
        to,
        cc: raw.get("cc").map(mailboxes).unwrap_or_default(),
        bcc: raw.get("bcc").map(mailboxes).unwrap_or_default(),
        reply_to: raw.get("reply").map(mailboxes).unwrap_or_default(),
        headers: raw.prefixed(Prefix::Plus),
    })
}

fn relayed(raw: &Raw, full: &str) -> NotifyUrl {
    NotifyUrl::Relay(Relayed {
        url: full.to_string(),
        scheme: raw.scheme.clone(),
        host: raw.host.clone(),
    })
}

fn apprise_api(raw: &Raw) -> Option<AppriseApi> {
    let mut entries = raw.segments.clone();
    let token = match raw.opt("token").or_else(|| raw.opt("to")) {
        Some(t) => t,
        None => entries.pop()?,
    };
    if token.is_empty()
        || token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let prefix = if entries.is_empty() {
        "/".to_string()
    } else {
        format!("/{}/", entries.join("/"))
    };
    let method = match raw.opt("method").map(|m| m.to_ascii_lowercase()).as_deref() {
        None | Some("form") => AppriseApiMethod::Form,
        Some("json") => AppriseApiMethod::Json,
        Some(_) => return None,
    };
    let key_in_path = match raw.opt("version").or_else(|| raw.opt("v")).as_deref() {
        None | Some("2") => false,
        Some("1") => true,
        Some(_) => return None,
    };
    let auth = (raw.user.is_some() || raw.password.is_some()).then(|| {
        (
            raw.user.clone().unwrap_or_default(),
            raw.password.clone().unwrap_or_default(),
        )
    });
    Some(AppriseApi {
        server: raw.base_url(raw.secure(), &prefix)?,
        token,
        auth,
        method,
        key_in_path,
        tags: raw.get("tags").map(sorted_list).unwrap_or_default(),
        headers: raw.prefixed(Prefix::Plus),
    })
}

/// apprise's `parse_list`: split, de-duplicated and sorted, which decides the order targets
/// are sent to.
fn sorted_list(v: &str) -> Vec<String> {
    let mut items: Vec<String> = split_list(v).collect();
    items.sort();
    items.dedup();
    items
}

/// Webhook URLs as the services show them, which apprise also accepts.
fn native(raw: &Raw, full: &str) -> Option<NotifyUrl> {
    let host = raw.host.to_ascii_lowercase();
    let seg: Vec<&str> = raw.segments.iter().map(String::as_str).collect();
    if matches!(
        host.as_str(),
        "discord.com" | "discordapp.com" | "canary.discord.com" | "ptb.discord.com"
    ) && seg.len() >= 4
        && seg[0] == "api"
        && seg[1] == "webhooks"
    {
        let rebuilt = format!("discord://{}/{}", seg[2], seg[3]);
        let query = full.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let raw2 = Raw::split(&format!("{rebuilt}?{query}"))?;
        return Some(NotifyUrl::Discord(discord(&raw2)?));
    }
    if host == "hooks.slack.com" && seg.len() >= 4 && seg[0] == "services" {
        return Some(NotifyUrl::Slack(Slack {
            mode: SlackMode::Webhook {
                token_a: seg[1].to_string(),
                token_b: seg[2].to_string(),
                token_c: seg[3].to_string(),
            },
            channels: Vec::new(),
            botname: None,
        }));
    }
    // https://host/[powerautomate/automations/direct/[cu/<route>/]]workflows/<id>/triggers/manual/paths/invoke?…sig=…
    if let Some(i) = seg.iter().position(|s| *s == "workflows")
        && seg.len() >= i + 6
        && seg[i + 2..i + 6] == ["triggers", "manual", "paths", "invoke"]
    {
        let power_automate = seg[..i].starts_with(&["powerautomate", "automations", "direct"]);
        let route = (power_automate && seg.len() > 5 && seg[3] == "cu").then(|| seg[4].to_string());
        let signature = raw.opt("sig")?;
        let api_version = raw.opt("api-version").unwrap_or_else(|| {
            if power_automate {
                "2022-03-01-preview".into()
            } else {
                "2016-06-01".into()
            }
        });
        return Some(NotifyUrl::Workflows(Workflows {
            host: raw.host.clone(),
            port: raw.port,
            workflow: seg[i + 1].to_string(),
            signature,
            power_automate,
            route,
            api_version,
            wrap: true,
        }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(u: &str) -> NotifyUrl {
        match parse(u) {
            Ok(n) => n,
            Err(e) => panic!("{u}: {e}"),
        }
    }

    fn bad(u: &str) {
        let err = parse(u).expect_err(u);
        assert_eq!(
            err.to_string(),
            format!("'{u}' is not a valid AppRise URL.")
        );
        assert!(!is_valid(u));
    }

    #[test]
    fn schemes_apprise_knows_are_relayed_as_written() {
        assert!(APPRISE_SCHEMES.windows(2).all(|w| w[0] < w[1]));
        let u = "HASSIO://ha.example.com/#tok?to=x";
        assert_eq!(
            ok(u),
            NotifyUrl::Relay(Relayed {
                url: u.to_string(),
                scheme: "hassio".into(),
                host: "ha.example.com".into(),
            })
        );
        for u in [
            "hassio://127.0.0.1/tok",
            "windows://",
            "o365://a/b/c/d",
            "gchat://w/k/t",
        ] {
            assert!(matches!(ok(u), NotifyUrl::Relay(_)), "{u}");
        }
        // A scheme delivered natively is judged by its own parser, never relayed.
        bad("discord://only-id");
        bad("definitely-not-apprise://x");
    }

    #[test]
    fn apprise_api_urls_follow_apprises_notifier() {
        let NotifyUrl::AppriseApi(a) = ok("apprise://host:8000/KEY_1") else {
            panic!()
        };
        assert_eq!(a.server.as_str(), "http://host:8000/");
        assert_eq!(
            (a.token.as_str(), a.method, a.key_in_path, a.auth.clone()),
            ("KEY_1", AppriseApiMethod::Form, false, None)
        );
        let NotifyUrl::AppriseApi(a) =
            ok("apprises://:pw@host/pre/fix/key?method=JSON&v=1&tags=b,a&+X-T=1")
        else {
            panic!()
        };
        assert_eq!(a.server.as_str(), "https://host/pre/fix/");
        assert_eq!(a.method, AppriseApiMethod::Json);
        assert!(a.key_in_path);
        assert_eq!(a.auth, Some((String::new(), "pw".into())));
        assert_eq!(a.tags, ["a", "b"]);
        assert_eq!(a.headers, [("X-T".to_string(), "1".to_string())]);
        let NotifyUrl::AppriseApi(a) = ok("apprise://host/?to=abc") else {
            panic!()
        };
        assert_eq!(a.token, "abc");
        for u in [
            "apprise://host",
            "apprise://host/bad.key",
            "apprise://host/k?method=xml",
            "apprise://host/k?v=3",
        ] {
            bad(u);
        }
    }

    #[test]
    fn comments_and_null() {
        assert_eq!(ok("#json://example.com"), NotifyUrl::Skip);
        assert_eq!(ok("  # anything at all"), NotifyUrl::Skip);
        assert_eq!(ok("null://"), NotifyUrl::Null);
        assert!(is_valid("null://"));
    }

    #[test]
    fn invalid_urls_have_upstream_message() {
        for u in [
            "",
            "example.com",
            "foo://bar",
            "https://example.com/not-a-known-webhook",
            "discord://only-id",
            "slack://onlyone",
            "tgram://notatoken/123",
            "pover://short@short",
            "gotify://host",
            "json://",
            "json://host?method=FETCH",
            "matrix://user:pass@host",
            "mailto://",
            "mailto://user:pass@host?mode=carrier-pigeon",
            "ntfy://",
            "workflow://host/only-id",
            "post://host:99999/x",
        ] {
            bad(u);
        }
        let e = parse("nope://x").expect_err("invalid");
        assert_eq!(e.to_string(), "'nope://x' is not a valid AppRise URL.");
    }

    #[test]
    fn apprise_json_options() {
        let NotifyUrl::Apprise(w) = ok(
            "jsons://u:p%40ss@example.com:8443/hook/path?method=put&+X-Token=abc&:extra=1&:message=msg&-key=v&format=html",
        ) else {
            panic!("json")
        };
        assert_eq!(w.kind, WebhookKind::Json);
        assert_eq!(w.url.as_str(), "https://example.com:8443/hook/path?key=v");
        assert_eq!(w.method, "PUT");
        assert_eq!(w.auth, Some(("u".into(), "p@ss".into())));
        assert_eq!(w.headers, vec![("X-Token".into(), "abc".into())]);
        assert_eq!(
            w.payload,
            vec![
                ("extra".into(), "1".into()),
                ("message".into(), "msg".into())
            ]
        );
        assert_eq!(w.format, Some(crate::BodyFormat::Html));
        let NotifyUrl::Apprise(x) = ok("xml://localhost") else {
            panic!("xml")
        };
        assert_eq!(x.kind, WebhookKind::Xml);
        assert_eq!(x.url.as_str(), "http://localhost/");
    }

    #[test]
    fn form_attach_as_follows_apprise_pattern() {
        let field = |u: &str, no: usize| match ok(u) {
            NotifyUrl::Apprise(w) => w.attach_as.field(no),
            other => panic!("{u}: {other:?}"),
        };
        assert_eq!(field("form://h", 1), "file01");
        assert_eq!(field("form://h?attach-as=", 2), "file02");
        assert_eq!(field("form://h?attach-as=file*", 3), "file03");
        assert_eq!(field("form://h?attach-as=*meta", 1), "01meta");
        assert_eq!(field("form://h?attach-as=img%3F%3Fx", 12), "img12x");
        assert_eq!(field("form://h?attach-as=document", 2), "document");
        assert_eq!(field("form://h?attach-as=doc%20ument", 1), "doc");
        assert_eq!(field("form://h?ATTACH-AS=pic.", 4), "pic04");
        bad("form://h?attach-as=%20");
        bad("form://h?attach-as=*");
        bad("form://h?attach-as=%23x");
        // Only form:// reads it.
        assert!(is_valid("json://h?attach-as=*"));
    }

    #[test]
    fn custom_http_params() {
        let NotifyUrl::Http(h) = ok(
            "posts://user:pw@example.com/api/hook?+Authorization=Bearer%20x&-secret=1&secret=drop&keep=yes&Case=Kept",
        ) else {
            panic!("post")
        };
        assert_eq!(h.method, "POST");
        assert_eq!(
            h.url.as_str(),
            "https://example.com/api/hook?keep=yes&Case=Kept"
        );
        assert_eq!(h.auth, Some(("user".into(), "pw".into())));
        assert_eq!(h.headers, vec![("Authorization".into(), "Bearer x".into())]);
        for (scheme, method) in [
            ("get", "GET"),
            ("put", "PUT"),
            ("patch", "PATCH"),
            ("delete", "DELETE"),
            ("head", "HEAD"),
            ("heads", "HEAD"),
        ] {
            let NotifyUrl::Http(h) = ok(&format!("{scheme}://example.com")) else {
                panic!("{scheme}")
            };
            assert_eq!(h.method, method);
            assert_eq!(
                h.url.scheme(),
                if scheme.ends_with('s') {
                    "https"
                } else {
                    "http"
                }
            );
        }
    }

    #[test]
    fn chat_services() {
        let NotifyUrl::Discord(d) = ok("discord://bot@1234/abcd-efg?tts=yes&thread=99") else {
            panic!("discord")
        };
        assert_eq!(
            (d.webhook_id.as_str(), d.webhook_token.as_str()),
            ("1234", "abcd-efg")
        );
        assert_eq!(d.username.as_deref(), Some("bot"));
        assert!(d.tts);
        assert_eq!(d.thread.as_deref(), Some("99"));
        let NotifyUrl::Discord(n) = ok("https://discord.com/api/webhooks/42/tok") else {
            panic!("native discord")
        };
        assert_eq!(
            (n.webhook_id.as_str(), n.webhook_token.as_str()),
            ("42", "tok")
        );

        let NotifyUrl::Slack(s) = ok("slack://T1/B2/C3/#general/@bob/+C999/random") else {
            panic!("slack")
        };
        assert_eq!(
            s.mode,
            SlackMode::Webhook {
                token_a: "T1".into(),
                token_b: "B2".into(),
                token_c: "C3".into()
            }
        );
        assert_eq!(s.channels, vec!["#general", "@bob", "C999", "#random"]);
        let NotifyUrl::Slack(b) = ok("slack://xoxb-1-2-3/%23alerts") else {
            panic!("slack bot")
        };
        assert_eq!(
            b.mode,
            SlackMode::Bot {
                token: "xoxb-1-2-3".into()
            }
        );
        assert_eq!(b.channels, vec!["#alerts"]);

        let NotifyUrl::Telegram(t) = ok("tgram://123456:ABC-def_9/-100123/@chan:7?silent=yes")
        else {
            panic!("tgram")
        };
        assert_eq!(t.bot_token, "123456:ABC-def_9");
        assert_eq!(
            t.chats,
            vec![("-100123".into(), None), ("@chan".into(), Some("7".into()))]
        );
        assert!(t.silent);

        let NotifyUrl::Mattermost(m) =
            ok("mmosts://bot@chat.example.com:8443/prefix/tok?channel=town,#dev")
        else {
            panic!("mmost")
        };
        assert_eq!(m.server.as_str(), "https://chat.example.com:8443/prefix/");
        assert_eq!(m.token, "tok");
        // apprise's order: the list sorted as written (`#dev` before `town`).
        assert_eq!(m.channels, vec!["dev", "town"]);
        assert_eq!(m.botname.as_deref(), Some("bot"));
        assert_eq!(m.icon_url.as_deref(), Some(APPRISE_INFO_ICON_72));
        let NotifyUrl::Mattermost(m) = ok("mmost://h/tok?image=no&to=a,bad.name&botname=b") else {
            panic!("mmost")
        };
        assert_eq!(
            (m.channels, m.icon_url, m.botname),
            (vec!["a".to_string()], None, Some("b".into()))
        );
        assert!(matches!(ok("mmost://h/tok?mode=bot"), NotifyUrl::Relay(_)));
        assert!(matches!(ok("mmost://h/tok?team=t"), NotifyUrl::Relay(_)));

        let NotifyUrl::Pushbullet(p) = ok("pbul://o.tok/dev2/%23chan?to=a@b.example,dev1") else {
            panic!("pbul")
        };
        assert_eq!(p.token, "o.tok");
        assert_eq!(p.targets, ["#chan", "a@b.example", "dev1", "dev2"]);
        bad("pbul://");

        let NotifyUrl::RocketChat(r) =
            ok("rockets://bot:AbC/dEf@chat.example.com/%23gen/@ann/ROOM1?avatar=no")
        else {
            panic!("rocket")
        };
        assert_eq!(r.mode, RocketMode::Webhook("AbC/dEf".into()));
        assert_eq!(r.server.as_str(), "https://chat.example.com/");
        assert_eq!(
            (r.channels, r.users, r.rooms, r.avatar),
            (
                vec!["gen".to_string()],
                vec!["ann".to_string()],
                vec!["ROOM1".to_string()],
                false
            )
        );
        let NotifyUrl::RocketChat(r) = ok("rocket://u:p@h/%23gen") else {
            panic!("rocket")
        };
        assert_eq!(
            r.mode,
            RocketMode::Basic {
                user: "u".into(),
                password: "p".into()
            }
        );
        assert!(!r.avatar);
        let long = "t".repeat(33);
        let NotifyUrl::RocketChat(r) = ok(&format!("rocket://u:{long}@h/@ann")) else {
            panic!("rocket")
        };
        assert_eq!(
            r.mode,
            RocketMode::Token {
                user: "u".into(),
                token: long
            }
        );
        assert!(r.avatar);
        bad("rocket://u:p@h/@only-users");
        bad("rocket://h/%23gen");
        bad("rocket://u:p@h/%23gen?mode=carrier");

        let NotifyUrl::Signal(g) = ok(
            "signals://u:p@sig.example:8443/+1 (555) 123-4567/15551234568/group.abc/@def?batch=yes",
        ) else {
            panic!("signal")
        };
        assert_eq!(g.server.as_str(), "https://sig.example:8443/");
        assert_eq!(g.source, "+15551234567");
        assert_eq!(g.targets, ["+15551234568", "group.abc", "group.def"]);
        assert_eq!(g.auth, Some(("u".into(), "p".into())));
        assert!(g.batch && !g.status);
        let NotifyUrl::Signal(g) = ok("signal://h/15551234567") else {
            panic!("signal")
        };
        assert_eq!(g.targets, ["+15551234567"]);
        assert!(matches!(
            ok("signal://h/15551234567?format=markdown"),
            NotifyUrl::Relay(_)
        ));
        bad("signal://h/123");
        bad("signal://h/15551234567/not-a-target");
        bad("mmost://h/tok?mode=x");

        let NotifyUrl::Workflows(w) =
            ok("workflows://prod.westus.logic.azure.com:443/wfid/sigval?pa=yes")
        else {
            panic!("workflow")
        };
        assert_eq!(w.workflow, "wfid");
        assert_eq!(w.signature, "sigval");
        assert!(w.power_automate);
        assert_eq!(w.api_version, "2022-03-01-preview");
        let NotifyUrl::Workflows(n) = ok(
            "https://prod.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=S1",
        ) else {
            panic!("native workflow")
        };
        assert_eq!((n.workflow.as_str(), n.signature.as_str()), ("abc", "S1"));
        assert!(!n.power_automate);
    }

    #[test]
    fn push_services() {
        let NotifyUrl::Ntfy(c) = ok("ntfy://mytopic?priority=high&tags=warning") else {
            panic!("ntfy")
        };
        assert_eq!(c.server, None);
        assert_eq!(c.topics, vec!["mytopic"]);
        assert_eq!(c.priority.as_deref(), Some("high"));
        let NotifyUrl::Ntfy(p) = ok("ntfys://user:pw@ntfy.example.com/alerts/other") else {
            panic!("ntfy private")
        };
        assert_eq!(
            p.server.map(|u| u.to_string()),
            Some("https://ntfy.example.com/".into())
        );
        assert_eq!(p.topics, vec!["alerts", "other"]);
        assert_eq!(p.auth, NtfyAuth::Basic("user".into(), "pw".into()));
        let NotifyUrl::Ntfy(t) = ok("ntfy://tk_abc@host.lan/t") else {
            panic!("ntfy token")
        };
        assert_eq!(t.auth, NtfyAuth::Token("tk_abc".into()));
        let NotifyUrl::Ntfy(s) = ok("ntfy://ntfy.sh/topic") else {
            panic!("ntfy.sh")
        };
        assert_eq!((s.server, s.topics), (None, vec!["topic".to_string()]));

        let NotifyUrl::Gotify(g) = ok("gotifys://push.example.com/sub/path/AbCdEf?priority=high")
        else {
            panic!("gotify")
        };
        assert_eq!(g.server.as_str(), "https://push.example.com/sub/path/");
        assert_eq!((g.token.as_str(), g.priority), ("AbCdEf", 8));

        let user = "u".repeat(30);
        let token = "t".repeat(30);
        let NotifyUrl::Pushover(p) = ok(&format!(
            "pover://{user}@{token}/phone?priority=emergency&sound=magic"
        )) else {
            panic!("pover")
        };
        assert_eq!(
            (p.user_key.as_str(), p.token.as_str()),
            (user.as_str(), token.as_str())
        );
        assert_eq!(p.devices, vec!["phone"]);
        assert_eq!(p.priority, 2);
        assert_eq!(p.sound.as_deref(), Some("magic"));
    }

    #[test]
    fn matrix_forms() {
        let NotifyUrl::Matrix(m) =
            ok("matrixs://bot:secret@matrix.example.org/#alerts/!abc:example.org")
        else {
            panic!("matrix")
        };
        assert_eq!(m.server.as_str(), "https://matrix.example.org/");
        assert_eq!(
            m.auth,
            MatrixAuth::Password {
                user: "bot".into(),
                password: "secret".into()
            }
        );
        assert_eq!(m.rooms, vec!["#alerts", "!abc:example.org"]);
        assert_eq!(m.api_path, "/_matrix/client/v3");
        let NotifyUrl::Matrix(t) =
            ok("matrix://syt_token@localhost:8008/%23room?msgtype=notice&v=2")
        else {
            panic!("matrix token")
        };
        assert_eq!(t.auth, MatrixAuth::Token("syt_token".into()));
        assert_eq!(t.rooms, vec!["#room"]);
        assert_eq!(t.msgtype, "notice");
        assert_eq!(t.api_path, "/_matrix/client/r0");
    }

    #[test]
    fn email_defaults_follow_apprise() {
        let NotifyUrl::Email(e) = ok("mailto://alice:pw@example.com") else {
            panic!("mailto")
        };
        assert_eq!(e.smtp_host, "example.com");
        assert_eq!((e.port, e.mode), (25, SecureMode::Insecure));
        assert_eq!(e.from.address, "alice@example.com");
        assert_eq!(e.to[0].address, "alice@example.com");
        assert_eq!(e.login, Some(("alice".into(), "pw".into())));

        let NotifyUrl::Email(s) = ok(
            "mailtos://bob:pw@example.com?smtp=smtp.example.net&from=alerts@example.com&name=Alerts&to=a@x.org,b@y.org&cc=c@z.org&bcc=d@z.org",
        ) else {
            panic!("mailtos")
        };
        assert_eq!((s.port, s.mode), (587, SecureMode::StartTls));
        assert_eq!(s.smtp_host, "smtp.example.net");
        assert_eq!(s.from.to_string(), "Alerts <alerts@example.com>");
        assert_eq!(
            s.to.iter().map(|m| m.address.as_str()).collect::<Vec<_>>(),
            vec!["a@x.org", "b@y.org"]
        );
        assert_eq!(s.cc[0].address, "c@z.org");
        assert_eq!(s.bcc[0].address, "d@z.org");

        let NotifyUrl::Email(ssl) = ok("mailtos://u:p@mail.example.com/r@example.com?mode=ssl")
        else {
            panic!("ssl")
        };
        assert_eq!((ssl.port, ssl.mode), (465, SecureMode::Ssl));
        assert_eq!(ssl.to[0].address, "r@example.com");
    }
}
