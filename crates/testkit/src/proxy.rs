//! Real forward proxies for the fetcher's proxy tests, each recording what clients asked it
//! for: an HTTP proxy (absolute-form requests and `CONNECT` tunnels, optional Basic
//! `Proxy-Authorization`) and a SOCKS5 proxy (RFC 1928 `CONNECT`, optional RFC 1929
//! username/password). Plain threads and blocking sockets, one thread per connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// One request a proxy took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxied {
    /// `http` (an absolute-form request), `connect` (an HTTP tunnel) or `socks5`.
    pub via: &'static str,
    /// What the client asked for: the absolute URL (`http`), or `host:port` as sent (a SOCKS5
    /// name stays a name, an address stays an address).
    pub target: String,
    /// The credentials the client presented, if any.
    pub auth: Option<(String, String)>,
    /// Whether the proxy let it through (credentials right, target reachable).
    pub allowed: bool,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Http,
    Socks5,
}

/// A running proxy; it stops with the test process.
#[derive(Debug)]
pub struct ProxyServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Proxied>>>,
}

impl ProxyServer {
    /// An HTTP proxy; with `auth`, requests without those Basic credentials get a 407.
    pub fn http(auth: Option<(&str, &str)>) -> ProxyServer {
        Self::start(Kind::Http, auth)
    }

    /// A SOCKS5 proxy; with `auth`, only username/password authentication with those.
    pub fn socks5(auth: Option<(&str, &str)>) -> ProxyServer {
        Self::start(Kind::Socks5, auth)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the proxy was asked for so far.
    pub fn requests(&self) -> Vec<Proxied> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn start(kind: Kind, auth: Option<(&str, &str)>) -> ProxyServer {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => panic!("a test proxy needs a port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("a test proxy needs its address: {e}"),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        let shared = log.clone();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = shared.clone();
                let auth = auth.clone();
                thread::spawn(move || {
                    let _ = match kind {
                        Kind::Http => serve_http(conn, auth.as_ref(), &log),
                        Kind::Socks5 => serve_socks5(conn, auth.as_ref(), &log),
                    };
                });
            }
        });
        ProxyServer { addr, log }
    }
}

fn record(log: &Mutex<Vec<Proxied>>, entry: Proxied) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(entry);
}

/// Copies both ways until either side closes, then closes both.
fn tunnel(a: TcpStream, b: TcpStream) -> io::Result<()> {
    let (mut a_read, mut b_write) = (a.try_clone()?, b.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(Shutdown::Write);
    });
    let (mut b_read, mut a_write) = (b, a);
    let _ = io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(Shutdown::Both);
    let _ = upstream.join();
    Ok(())
}

/// The head of an HTTP message: its lines without their CRLF, up to the empty line.
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn basic_credentials(value: Option<&str>) -> Option<(String, String)> {
    let encoded = value?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn serve_http(
    client: TcpStream,
    auth: Option<&(String, String)>,
    log: &Mutex<Vec<Proxied>>,
) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;
    let mut parts = head.first().map(|l| l.split(' ')).into_iter().flatten();
    let (method, target) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let presented = basic_credentials(header(&head, "proxy-authorization"));
    let mut client = client;
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let entry = |allowed| Proxied {
        via: if connect { "connect" } else { "http" },
        target: target.clone(),
        auth: presented.clone(),
        allowed,
    };
    if auth.is_some() && presented.as_ref() != auth {
        record(log, entry(false));
        client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\ncontent-type: text/html\r\ncontent-length: 29\r\nconnection: close\r\n\r\n<p>Authentication needed.</p>",
        )?;
        return Ok(());
    }
    if connect {
        let Ok(upstream) = TcpStream::connect(&target) else {
            record(log, entry(false));
            client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")?;
            return Ok(());
        };
        record(log, entry(true));
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        return tunnel(client, upstream);
    }
    // Absolute form: http://host[:port]/path → origin form to that host, one request per
    // connection (the reply is sent with `connection: close`).
    let rest = target.strip_prefix("http://").unwrap_or(&target);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut upstream) = TcpStream::connect(&host_port) else {
        record(log, entry(false));
        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")?;
        return Ok(());
    };
    record(log, entry(true));
    let path = if path.is_empty() { "/" } else { path };
    let mut out = format!(
        "{method} {path} {}\r\n",
        head[0].rsplit(' ').next().unwrap_or("HTTP/1.1")
    );
    for line in head.iter().skip(1) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if ["proxy-authorization", "proxy-connection", "connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes())?;
    let body_len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; body_len];
    reader.read_exact(&mut body)?;
    upstream.write_all(&body)?;
    // The reply, with `connection: close` so the client does not reuse this connection.
    let mut replies = BufReader::new(upstream);
    let reply_head = read_head(&mut replies)?;
    let mut reply = String::new();
    for line in &reply_head {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    reply.push_str("connection: close\r\n\r\n");
    client.write_all(reply.as_bytes())?;
    io::copy(&mut replies, &mut client)?;
    client.shutdown(Shutdown::Both)
}

fn serve_socks5(
    mut client: TcpStream,
    auth: Option<&(String, String)>,
    log: &Mutex<Vec<Proxied>>,
) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut read_byte = |s: &mut TcpStream| -> io::Result<u8> {
        s.read_exact(&mut byte)?;
        Ok(byte[0])
    };
    // Greeting: VER NMETHODS METHODS...
    if read_byte(&mut client)? != 5 {
        return Ok(());
    }
    let n = read_byte(&mut client)?;
    let mut methods = vec![0u8; usize::from(n)];
    client.read_exact(&mut methods)?;
    let wanted = if auth.is_some() { 2 } else { 0 };
    if !methods.contains(&wanted) {
        client.write_all(&[5, 0xff])?;
        return Ok(());
    }
    client.write_all(&[5, wanted])?;
    let mut presented = None;
    if wanted == 2 {
        // RFC 1929: VER ULEN UNAME PLEN PASSWD
        let _ver = read_byte(&mut client)?;
        let ulen = read_byte(&mut client)?;
        let mut user = vec![0u8; usize::from(ulen)];
        client.read_exact(&mut user)?;
        let plen = read_byte(&mut client)?;
        let mut pass = vec![0u8; usize::from(plen)];
        client.read_exact(&mut pass)?;
        let given = (
            String::from_utf8_lossy(&user).into_owned(),
            String::from_utf8_lossy(&pass).into_owned(),
        );
        let ok = Some(&given) == auth;
        presented = Some(given);
        client.write_all(&[1, if ok { 0 } else { 1 }])?;
        if !ok {
            record(
                log,
                Proxied {
                    via: "socks5",
                    target: String::new(),
                    auth: presented,
                    allowed: false,
                },
            );
            return Ok(());
        }
    }
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut req = [0u8; 4];
    client.read_exact(&mut req)?;
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a)?;
            Ipv4Addr::from(a).to_string()
        }
        3 => {
            let len = read_byte(&mut client)?;
            let mut name = vec![0u8; usize::from(len)];
            client.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a)?;
            format!("[{}]", Ipv6Addr::from(a))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port)?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    let upstream = (req[1] == 1)
        .then(|| TcpStream::connect(&target).ok())
        .flatten();
    record(
        log,
        Proxied {
            via: "socks5",
            target,
            auth: presented,
            allowed: upstream.is_some(),
        },
    );
    let Some(upstream) = upstream else {
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
    tunnel(client, upstream)
}
