//! Email over SMTP, with apprise's `mailto://` semantics (see [`crate::url::Email`]).
//!
//! The SMTP host is user-supplied, so it is resolved and vetted here and the connection goes to
//! the vetted address; the host name is still used for TLS verification.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as LettreAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart,
};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::format::convert;
use super::{Deliverer, DeliveryError};
use crate::url::{Email, Mailbox, SecureMode};
use crate::{BodyFormat, Message};

fn config(reason: impl Into<String>) -> DeliveryError {
    DeliveryError::Config {
        service: "Email",
        reason: reason.into(),
    }
}

fn mailbox(m: &Mailbox) -> Result<LettreMailbox, DeliveryError> {
    let address = m
        .address
        .parse()
        .map_err(|e| config(format!("invalid address '{}': {e}", m.address)))?;
    Ok(LettreMailbox::new(m.name.clone(), address))
}

fn build(cfg: &Email, msg: &Message) -> Result<lettre::Message, DeliveryError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(&cfg.from)?)
        .subject(msg.title.clone())
        .user_agent(concat!("changewatch/", env!("CARGO_PKG_VERSION")).to_string());
    for m in &cfg.to {
        b = b.to(mailbox(m)?);
    }
    for m in &cfg.cc {
        b = b.cc(mailbox(m)?);
    }
    for m in &cfg.bcc {
        b = b.bcc(mailbox(m)?);
    }
    for m in &cfg.reply_to {
        b = b.reply_to(mailbox(m)?);
    }
    for (k, v) in &cfg.headers {
        let name = HeaderName::new_from_ascii(k.clone())
            .map_err(|_| config(format!("invalid header name '{k}'")))?;
        b = b.raw_header(HeaderValue::new(name, v.clone()));
    }
    let built = match (msg.format, msg.attachments.is_empty()) {
        (BodyFormat::Text, true) => b.header(ContentType::TEXT_PLAIN).body(msg.body.clone()),
        (BodyFormat::Text, false) => {
            let text = SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(msg.body.clone());
            b.multipart(with_attachments(MultiPart::mixed().singlepart(text), msg)?)
        }
        // HTML mail goes with a text alternative for clients (and filters) that want one.
        (f, no_files) => {
            let html = convert(&msg.body, f, BodyFormat::Html);
            let text = convert(&msg.body, f, BodyFormat::Text);
            let body = MultiPart::alternative_plain_html(text, html);
            if no_files {
                b.multipart(body)
            } else {
                b.multipart(with_attachments(MultiPart::mixed().multipart(body), msg)?)
            }
        }
    };
    built.map_err(|e| config(format!("could not build the message: {e}")))
}

/// The message's files as attachments after its body (`multipart/mixed`), as apprise's email
/// sends them.
fn with_attachments(mut mixed: MultiPart, msg: &Message) -> Result<MultiPart, DeliveryError> {
    for a in &msg.attachments {
        let kind = ContentType::parse(&a.mimetype)
            .map_err(|e| config(format!("attachment type '{}': {e}", a.mimetype)))?;
        mixed =
            mixed.singlepart(LettreAttachment::new(a.filename.clone()).body(a.data.clone(), kind));
    }
    Ok(mixed)
}

pub(crate) async fn send(d: &Deliverer, cfg: &Email, msg: &Message) -> Result<(), DeliveryError> {
    let mail = build(cfg, msg)?;
    let addr = d.resolve_vetted("Email", &cfg.smtp_host, cfg.port).await?;
    let tls_params = || {
        TlsParameters::new(cfg.smtp_host.clone())
            .map_err(|e| config(format!("TLS setup for '{}' failed: {e}", cfg.smtp_host)))
    };
    let tls = match cfg.mode {
        SecureMode::Insecure => Tls::None,
        SecureMode::StartTls => Tls::Required(tls_params()?),
        SecureMode::Ssl => Tls::Wrapper(tls_params()?),
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .tls(tls)
            .timeout(Some(d.options().timeout));
    if let Some((user, password)) = &cfg.login {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    let transport = builder.build();
    transport.send(mail).await.map_err(|e| {
        let host = format!("{}:{}", cfg.smtp_host, cfg.port);
        if e.is_timeout() {
            return DeliveryError::Timeout {
                service: "Email",
                host,
                secs: d.options().timeout.as_secs(),
            };
        }
        // 5xx replies are final (bad recipient, authentication refused); 4xx replies and broken
        // connections may work next time.
        DeliveryError::Smtp {
            reason: format!("sending through {host} failed: {}", chain(&e)),
            permanent: e.is_permanent(),
        }
    })?;
    Ok(())
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
