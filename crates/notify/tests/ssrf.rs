//! The SSRF guard on notification URLs: the same `AddressPolicy` as fetches, so the local-use
//! NAT64 prefix and IP-literal allow-list entries behave here as they do for watches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use changewatch_core::ssrf::AddressPolicy;
use changewatch_notify::{BodyFormat, Deliverer, DeliveryError, DeliveryOptions, Message};
use testkit::{CaptureServer, SmtpServer};

fn deliverer(cap: &CaptureServer, allowed_hosts: &[&str]) -> Deliverer {
    Deliverer::new(DeliveryOptions {
        timeout: Duration::from_secs(10),
        policy: AddressPolicy {
            allow_private: false,
            allowed_hosts: allowed_hosts.iter().map(|h| h.to_string()).collect(),
        },
        service_base: Some(url::Url::parse(&cap.base()).unwrap()),
        apprise_api: None,
    })
    .unwrap()
}

fn text() -> Message {
    Message {
        title: "t".into(),
        body: "b".into(),
        format: BodyFormat::Text,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn local_use_nat64_literals_are_refused() {
    let cap = CaptureServer::start();
    let d = deliverer(&cap, &[]);
    let port = cap.addr().port();
    // 127.0.0.1 and 169.254.169.254 behind an operator's NAT64 prefix (RFC 8215).
    for host in ["[64:ff9b:1::7f00:1]", "[64:ff9b:1:a9fe:a9:fe00::]"] {
        for url in [
            format!("json://{host}:{port}/x"),
            format!("post://{host}:{port}/x"),
        ] {
            let err = d.deliver(&url, &text()).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::Blocked { .. }),
                "{url}: {err:?}"
            );
            assert!(err.to_string().contains("local-use NAT64"), "{err}");
            assert!(err.is_permanent());
        }
    }
    let err = d
        .deliver(
            "mailto://[64:ff9b:1::7f00:1]:25?from=a@example.com&to=b@example.com",
            &text(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Blocked { .. }), "{err:?}");
    assert!(cap.requests().is_empty());
}

#[tokio::test]
async fn allow_list_matches_ip_literals() {
    let cap = CaptureServer::start();
    let smtp = SmtpServer::start();
    let listed = deliverer(&cap, &["127.0.0.1"]);
    listed
        .deliver(&format!("json://{}/x", cap.host_port()), &text())
        .await
        .unwrap();
    assert_eq!(cap.take().len(), 1);
    listed
        .deliver(
            &format!(
                "mailto://127.0.0.1:{}?from=a@example.com&to=b@example.com",
                smtp.port()
            ),
            &text(),
        )
        .await
        .unwrap();
    assert_eq!(smtp.mails().len(), 1);

    // Another loopback address is not the listed one.
    let other = deliverer(&cap, &["127.0.0.2", "[::1]"]);
    let err = other
        .deliver(&format!("json://{}/x", cap.host_port()), &text())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Blocked { .. }), "{err:?}");
    assert!(cap.requests().is_empty());
}
