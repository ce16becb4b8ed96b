//! The guarded relay: an HTTP forward proxy in this process that a launched Chrome makes
//! every connection through, one relay per check.
//!
//! The `Fetch`-domain guard judges each request by its URL, resolving the name here; two
//! things pass it by. WebSocket connections are never paused by `Fetch`, and Chrome resolves
//! the name again when it connects, so a name that answered a public address to the guard
//! can answer a private one to Chrome (DNS rebinding). Through the relay, Chrome resolves
//! nothing: every connection, a WebSocket's included, reaches the relay as a `CONNECT` or an
//! absolute-form request, and the relay resolves the name once, vets every answer with the
//! same [`AddressPolicy`] and connects to the addresses it vetted.
//!
//! A watch's own proxy sits behind the relay: `http://` proxies get the `CONNECT` tunnels and
//! the absolute-form requests with the proxy's credentials; `socks5://` (names resolved and
//! vetted here, the address handed on) and `socks5h://` (the name vetted where this machine
//! can resolve it, then handed on) with username/password when the URL has them, which
//! Chrome alone cannot do. What the relay stops is logged by target for the check's error.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use changewatch_core::ssrf::{AddressPolicy, Refusal};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;
use tracing::debug;

type Body = BoxBody<Bytes, hyper::Error>;

/// Where the relay sends a connection the guard passed.
#[derive(Clone, Debug)]
pub(crate) enum Upstream {
    Direct,
    /// An HTTP proxy; its credentials as a ready `Proxy-Authorization` value.
    Http {
        proxy: Uri,
        auth: Option<HeaderValue>,
    },
    /// A SOCKS5 proxy; `remote_dns` (socks5h) hands it the name instead of an address.
    Socks5 {
        proxy: Uri,
        auth: Option<(String, String)>,
        remote_dns: bool,
    },
}

/// Why the relay did not connect a target.
#[derive(Clone, Debug)]
pub(crate) enum Stopped {
    Refused(Refusal),
    /// The watch's proxy answered 407: no credentials, or wrong ones.
    ProxyAuth,
}

/// A target as `host` (an IPv6 address without brackets) and port: how the log is keyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    fn uri(&self) -> Result<Uri, Failure> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}", self.port)
            .parse()
            .map_err(|_| Failure::BadRequest)
    }

    fn from_authority(authority: &hyper::http::uri::Authority, default_port: u16) -> Target {
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Target {
            host: host.to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        }
    }
}

/// One check's relay. Dropping it closes the listener and every connection it carries.
#[derive(Debug)]
pub(crate) struct Relay {
    addr: SocketAddr,
    log: Log,
    _closed: watch::Sender<()>,
    accept: tokio::task::JoinHandle<()>,
}

type Log = Arc<Mutex<Vec<(Target, Stopped)>>>;

#[derive(Debug)]
struct Ctx {
    policy: AddressPolicy,
    upstream: Upstream,
    log: Log,
    closed: watch::Receiver<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// How long one connection may take to open (the check's own timeout ends it sooner).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl Relay {
    /// Listens on a loopback port of its own until dropped.
    pub(crate) async fn start(policy: AddressPolicy, upstream: Upstream) -> std::io::Result<Relay> {
        let listener = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        let addr = listener.local_addr()?;
        let (closed_tx, closed) = watch::channel(());
        let log = Log::default();
        let ctx = Arc::new(Ctx {
            policy,
            upstream,
            log: log.clone(),
            closed,
        });
        let accept = tokio::spawn(accept_loop(listener, ctx));
        Ok(Relay {
            addr,
            log,
            _closed: closed_tx,
            accept,
        })
    }

    /// The proxy server to give Chrome.
    pub(crate) fn server(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the relay stopped for `target`, first first.
    pub(crate) fn stopped(&self, target: &Target) -> Option<Stopped> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, s)| s.clone())
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: give the open ones time to close.
                debug!(error = %e, "relay accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let mut closed = ctx.closed.clone();
        tokio::spawn(async move {
            let svc_ctx = ctx.clone();
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |req| handle(svc_ctx.clone(), req)),
                )
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = closed.changed() => {}
            }
        });
    }
}

#[derive(Debug)]
enum Failure {
    Stopped(Stopped),
    BadRequest,
    Unreachable(String),
}

async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let answer = if req.method() == Method::CONNECT {
        tunnel(&ctx, req).await
    } else {
        forward(&ctx, req).await
    };
    Ok(answer.unwrap_or_else(|(target, failure)| refuse(&ctx, target, failure)))
}

/// The failure as Chrome is told it; a stop is logged for the check. A 407 of the watch's
/// proxy becomes a 502: a 407 from the relay would be Chrome's to answer.
fn refuse(ctx: &Ctx, target: Option<Target>, failure: Failure) -> Response<Body> {
    let (status, text) = match &failure {
        Failure::Stopped(Stopped::Refused(r)) => (StatusCode::FORBIDDEN, r.to_string()),
        Failure::Stopped(Stopped::ProxyAuth) => (
            StatusCode::BAD_GATEWAY,
            "the proxy refused the credentials".into(),
        ),
        Failure::BadRequest => (StatusCode::BAD_REQUEST, "not a proxy request".into()),
        Failure::Unreachable(e) => (StatusCode::BAD_GATEWAY, e.clone()),
    };
    debug!(?target, %text, "the browser's connection stopped by the relay");
    if let (Some(target), Failure::Stopped(stopped)) = (target, failure) {
        ctx.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((target, stopped));
    }
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("changewatch: {text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp
}

type Answer = Result<Response<Body>, (Option<Target>, Failure)>;

/// `CONNECT host:port`: HTTPS and every WebSocket. The tunnel opens only once the target
/// passed; then bytes are copied both ways until either side closes or the relay is dropped.
async fn tunnel(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Answer {
    let Some(authority) = req.uri().authority() else {
        return Err((None, Failure::BadRequest));
    };
    let target = Target::from_authority(authority, 443);
    let mut stream = open(ctx, &target, true)
        .await
        .map_err(|f| (Some(target.clone()), f))?;
    let mut closed = ctx.closed.clone();
    tokio::spawn(async move {
        let copy = async {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let mut upgraded = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut stream).await;
            }
        };
        tokio::select! {
            _ = copy => {}
            _ = closed.changed() => {}
        }
    });
    Ok(Response::new(
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed(),
    ))
}

/// An absolute-form `http://` request: sent on a connection of its own to the vetted target
/// in origin form, or to the watch's HTTP proxy as it came with the proxy's credentials.
async fn forward(ctx: &Arc<Ctx>, req: Request<Incoming>) -> Answer {
    let (mut parts, body) = req.into_parts();
    let Some(authority) = parts.uri.authority().cloned() else {
        return Err((None, Failure::BadRequest));
    };
    if parts.uri.scheme_str() != Some("http") {
        return Err((None, Failure::BadRequest));
    }
    let target = Target::from_authority(&authority, 80);
    let fail = |f| (Some(target.clone()), f);
    let stream = open(ctx, &target, false).await.map_err(fail)?;
    parts.headers.remove("proxy-connection");
    parts.headers.remove(header::PROXY_AUTHORIZATION);
    if !parts.headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    let via_http_proxy = match &ctx.upstream {
        Upstream::Http { auth, .. } => {
            if let Some(auth) = auth {
                parts
                    .headers
                    .insert(header::PROXY_AUTHORIZATION, auth.clone());
            }
            true
        }
        _ => {
            let origin = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(|_| fail(Failure::BadRequest))?;
            parts.uri = origin;
            false
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(Failure::Unreachable(e.to_string())))?;
    let mut closed = ctx.closed.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = conn => {}
            _ = closed.changed() => {}
        }
    });
    let resp = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| fail(Failure::Unreachable(e.to_string())))?;
    if via_http_proxy && resp.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        return Err(fail(Failure::Stopped(Stopped::ProxyAuth)));
    }
    Ok(resp.map(BodyExt::boxed))
}

/// Vets `target` and opens the way to it: the target itself at a vetted address, a SOCKS5
/// session, a `CONNECT` tunnel through the HTTP proxy (`tunnel`), or a connection to the HTTP
/// proxy for an absolute-form request.
async fn open(ctx: &Ctx, target: &Target, tunnel: bool) -> Result<TcpStream, Failure> {
    let vetted = vet(&ctx.policy, target).await?;
    let unreachable = |e: &dyn std::fmt::Display| Failure::Unreachable(e.to_string());
    let opening = async {
        match &ctx.upstream {
            Upstream::Direct => {
                if vetted.is_empty() {
                    return Err(Failure::Unreachable(format!(
                        "cannot resolve {}",
                        target.host
                    )));
                }
                TcpStream::connect(&vetted[..])
                    .await
                    .map_err(|e| unreachable(&e))
            }
            Upstream::Socks5 {
                proxy,
                auth,
                remote_dns,
            } => {
                // socks5: the address vetted here, so the proxy cannot resolve it otherwise.
                let dst = match (remote_dns, vetted.first()) {
                    (false, Some(addr)) => Target {
                        host: addr.ip().to_string(),
                        port: target.port,
                    },
                    (false, None) => {
                        return Err(Failure::Unreachable(format!(
                            "cannot resolve {}",
                            target.host
                        )));
                    }
                    (true, _) => target.clone(),
                };
                let mut socks = SocksV5::new(proxy.clone(), HttpConnector::new());
                if let Some((user, pass)) = auth {
                    socks = socks.with_auth(user.clone(), pass.clone());
                }
                let io = call(&mut socks, dst.uri()?)
                    .await
                    .map_err(|e| unreachable(&e))?;
                Ok(io.into_inner())
            }
            Upstream::Http { proxy, auth } if tunnel => {
                let mut connect = Tunnel::new(proxy.clone(), HttpConnector::new());
                if let Some(auth) = auth {
                    connect = connect.with_auth(auth.clone());
                }
                match call(&mut connect, target.uri()?).await {
                    Ok(io) => Ok(io.into_inner()),
                    // hyper-util does not export its `TunnelError`: the variant's name is the
                    // only handle on a 407. An upgrade that renames it fails the browser
                    // test `pages_go_through_the_watch_proxy_with_its_credentials` (wrong
                    // credentials must be the check's 407), not users' checks silently.
                    Err(e) if format!("{e:?}") == "ProxyAuthRequired" => {
                        Err(Failure::Stopped(Stopped::ProxyAuth))
                    }
                    Err(e) => Err(unreachable(&e)),
                }
            }
            Upstream::Http { proxy, .. } => {
                let io = call(&mut HttpConnector::new(), proxy.clone())
                    .await
                    .map_err(|e| unreachable(&e))?;
                Ok(io.into_inner())
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, opening)
        .await
        .unwrap_or_else(|_| Err(Failure::Unreachable("connection timed out".into())))
}

async fn call<S: Service<Uri>>(svc: &mut S, uri: Uri) -> Result<S::Response, S::Error> {
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    svc.call(uri).await
}

/// The guard: an address is checked; a name is resolved once and refused when any answer is
/// restricted (unless the name is exempt). The addresses are what a direct connection uses,
/// so nothing is resolved again. A name this machine cannot resolve gives none: only a
/// proxy that resolves names can still reach it.
async fn vet(policy: &AddressPolicy, target: &Target) -> Result<Vec<SocketAddr>, Failure> {
    let refused = |r| Failure::Stopped(Stopped::Refused(r));
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        policy.check(ip).map_err(refused)?;
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let addrs: Vec<SocketAddr> =
        match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => return Ok(Vec::new()),
        };
    if !policy.host_exempt(&target.host) {
        for a in &addrs {
            policy.check(a.ip()).map_err(refused)?;
        }
    }
    Ok(addrs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn strict() -> AddressPolicy {
        AddressPolicy {
            allow_private: false,
            allowed_hosts: Vec::new(),
        }
    }

    /// Sends `head` to the relay and returns what it answered up to `limit` bytes.
    async fn ask(relay: &Relay, head: &str) -> String {
        let mut s = TcpStream::connect(relay.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn loopback_and_metadata_targets_are_refused_and_logged() {
        let relay = Relay::start(strict(), Upstream::Direct).await.unwrap();
        let reply = ask(
            &relay,
            "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        let reply = ask(
            &relay,
            "GET http://169.254.169.254/latest/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        let reply = ask(
            &relay,
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        assert!(matches!(
            relay.stopped(&Target {
                host: "127.0.0.1".into(),
                port: 9
            }),
            Some(Stopped::Refused(_))
        ));
        assert!(matches!(
            relay.stopped(&Target {
                host: "::1".into(),
                port: 443
            }),
            Some(Stopped::Refused(_))
        ));
        // A name is judged by what it resolves to.
        let reply = ask(
            &relay,
            "CONNECT localhost:9 HTTP/1.1\r\nHost: localhost:9\r\n\r\n",
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    }

    #[tokio::test]
    async fn a_passed_target_is_tunnelled_and_an_origin_request_forwarded() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = upstream.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let n = s.read(&mut buf).await.unwrap();
                    let first = String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let body = format!("saw {first}");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(reply.as_bytes()).await.unwrap();
                });
            }
        });
        let relay = Relay::start(AddressPolicy::allow_all(), Upstream::Direct)
            .await
            .unwrap();
        // Absolute form in, origin form out.
        let reply = ask(
            &relay,
            &format!("GET http://127.0.0.1:{port}/a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Connection: keep-alive\r\n\r\n"),
        )
        .await;
        assert!(reply.contains("saw GET /a?b=1 HTTP/1.1"), "{reply}");
        // A tunnel carries bytes as they are.
        let mut s = TcpStream::connect(relay.addr).await.unwrap();
        s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        s.write_all(b"PING /raw HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert!(
            String::from_utf8_lossy(&got).contains("saw PING /raw"),
            "{got:?}"
        );
        // Garbage is a 400, not a crash.
        let reply = ask(&relay, "GET /relative HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    }

    #[tokio::test]
    async fn dropping_the_relay_closes_its_tunnels() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let held = tokio::spawn(async move { upstream.accept().await.unwrap().0 });
        let relay = Relay::start(AddressPolicy::allow_all(), Upstream::Direct)
            .await
            .unwrap();
        let mut s = TcpStream::connect(relay.addr).await.unwrap();
        s.write_all(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0; 1024];
        let _ = s.read(&mut buf).await.unwrap();
        let mut far = held.await.unwrap();
        drop(relay);
        // The far side sees its connection end.
        let n = tokio::time::timeout(Duration::from_secs(5), far.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
    }
}
