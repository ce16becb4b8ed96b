//! A small real SMTP receiver (RFC 5321, no TLS) for email notification tests: EHLO/HELO,
//! AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It accepts any credentials, records
//! the envelope and the message data, and can be told to refuse recipients with a given reply
//! code to exercise permanent (5xx) and transient (4xx) failures.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// One message as received.
#[derive(Clone, Debug, Default)]
pub struct ReceivedMail {
    pub helo: String,
    /// (user, password) from AUTH, when the client authenticated.
    pub auth: Option<(String, String)>,
    pub auth_mechanism: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA section, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// A header of the message (first match, unfolded), case-insensitive.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_string());
            }
        }
        found
    }
}

#[derive(Debug, Default)]
struct Shared {
    mails: Vec<ReceivedMail>,
    /// Reply codes for the next RCPT commands, first one next.
    rcpt_rejections: Vec<u16>,
}

type SharedState = Arc<Mutex<Shared>>;

/// An SMTP server on `127.0.0.1:0`, running on its own thread.
pub struct SmtpServer {
    addr: SocketAddr,
    state: SharedState,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl SmtpServer {
    /// Starts the server and returns once it is listening.
    ///
    /// # Panics
    /// When the loopback socket cannot be bound: a test environment fault, not a test outcome.
    #[allow(clippy::expect_used)]
    pub fn start() -> Self {
        let state: SharedState = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, mut shutdown_rx) = oneshot::channel::<()>();
        let app_state = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("smtp runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind smtp server");
                addr_tx
                    .send(listener.local_addr().expect("smtp addr"))
                    .expect("report smtp addr");
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(session(stream, app_state.clone()));
                            }
                        }
                        _ = &mut shutdown_rx => break,
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("smtp server started");
        SmtpServer {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Messages received so far, oldest first.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.lock().mails.clone()
    }

    /// Answers the next `n` RCPT commands with `code` (e.g. 550 or 451).
    pub fn reject_rcpt(&self, n: usize, code: u16) {
        self.lock()
            .rcpt_rejections
            .extend(std::iter::repeat_n(code, n));
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn decode_b64(s: &str) -> String {
    B64.decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The address inside `FROM:<a@b> PARAMS` / `TO:<a@b>`.
fn path_arg(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_string(),
        _ => arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

async fn session(stream: TcpStream, state: SharedState) {
    let _ = run_session(stream, state).await;
}

async fn run_session(stream: TcpStream, state: SharedState) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut mail = ReceivedMail::default();
    write.write_all(b"220 testkit ESMTP ready\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd_line = line.trim_end_matches(['\r', '\n']).to_string();
        let (verb, arg) = match cmd_line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (cmd_line.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                mail.helo = arg.trim().to_string();
                write
                    .write_all(
                        b"250-testkit greets you\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 20000000\r\n",
                    )
                    .await?;
            }
            "HELO" => {
                mail.helo = arg.trim().to_string();
                write.write_all(b"250 testkit\r\n").await?;
            }
            "AUTH" => {
                let mut parts = arg.split_whitespace();
                let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                let mut read_reply = async |prompt: &[u8]| -> std::io::Result<String> {
                    write.write_all(prompt).await?;
                    let mut reply = String::new();
                    lines.read_line(&mut reply).await?;
                    Ok(reply.trim_end().to_string())
                };
                match mechanism.as_str() {
                    "PLAIN" => {
                        let response = match initial {
                            Some(i) => i,
                            None => read_reply(b"334 \r\n").await?,
                        };
                        let decoded = decode_b64(&response);
                        let mut fields = decoded.split('\0');
                        let _authzid = fields.next();
                        let user = fields.next().unwrap_or_default().to_string();
                        let pass = fields.next().unwrap_or_default().to_string();
                        mail.auth = Some((user, pass));
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(i) => i,
                            None => read_reply(b"334 VXNlcm5hbWU6\r\n").await?,
                        };
                        let pass = read_reply(b"334 UGFzc3dvcmQ6\r\n").await?;
                        mail.auth = Some((decode_b64(&user), decode_b64(&pass)));
                    }
                    _ => {
                        write
                            .write_all(b"504 5.5.4 Unrecognized authentication type\r\n")
                            .await?;
                        continue;
                    }
                }
                mail.auth_mechanism = Some(mechanism);
                write
                    .write_all(b"235 2.7.0 Authentication successful\r\n")
                    .await?;
            }
            "MAIL" => {
                mail.mail_from = path_arg(arg.split_once(':').map(|x| x.1).unwrap_or_default());
                mail.rcpt_to.clear();
                write.write_all(b"250 2.1.0 Ok\r\n").await?;
            }
            "RCPT" => {
                let rejection = {
                    let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
                    (!shared.rcpt_rejections.is_empty()).then(|| shared.rcpt_rejections.remove(0))
                };
                match rejection {
                    Some(code) => {
                        let text = if code >= 500 {
                            "5.1.1 Recipient refused"
                        } else {
                            "4.3.0 Try again later"
                        };
                        write
                            .write_all(format!("{code} {text}\r\n").as_bytes())
                            .await?;
                    }
                    None => {
                        mail.rcpt_to.push(path_arg(
                            arg.split_once(':').map(|x| x.1).unwrap_or_default(),
                        ));
                        write.write_all(b"250 2.1.5 Ok\r\n").await?;
                    }
                }
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    let content = l.trim_end_matches(['\r', '\n']);
                    if content == "." {
                        break;
                    }
                    let unstuffed = content.strip_prefix('.').unwrap_or(content);
                    data.push_str(unstuffed);
                    data.push_str("\r\n");
                }
                let mut received = mail.clone();
                received.data = data;
                state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .mails
                    .push(received);
                mail.rcpt_to.clear();
                write.write_all(b"250 2.0.0 Ok: queued\r\n").await?;
            }
            "RSET" => {
                mail.mail_from.clear();
                mail.rcpt_to.clear();
                write.write_all(b"250 2.0.0 Ok\r\n").await?;
            }
            "NOOP" => write.write_all(b"250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => {
                write
                    .write_all(b"502 5.5.2 Command not recognized\r\n")
                    .await?;
            }
        }
    }
}
