//! `changewatch healthcheck`: asks the local `serve` for `/healthz` and exits 0 only on a 200.
//! The container image's `HEALTHCHECK` runs it: the image has no shell and no curl, and the
//! server's own executable knows where it listens (the same variables as `serve`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use changewatch_core::Config;
use clap::Args;

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's port (env PORT, then CHANGEDETECTION_PORT, default 5000).
    #[arg(short = 'p', long, env = "PORT")]
    pub port: Option<u16>,
    /// The server's listening address (env LISTEN_HOST, then CHANGEDETECTION_HOST); an
    /// unspecified one (0.0.0.0, ::) is asked on loopback.
    #[arg(long, env = "LISTEN_HOST")]
    pub host: Option<String>,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub fn run(args: HealthcheckArgs) -> ExitCode {
    match check(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("changewatch healthcheck: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where the server is reached from this machine: its listening address, or loopback when it
/// listens on every address.
fn target(config: &Config, host: Option<&str>, port: Option<u16>) -> SocketAddr {
    let port = port.unwrap_or(config.port);
    let ip = match host.unwrap_or(&config.host).parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv6() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    SocketAddr::new(ip, port)
}

fn check(args: HealthcheckArgs) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let addr = target(&config, args.host.as_deref(), args.port);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let host = match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot ask {addr}: {e}"))?;
    let mut reply = Vec::new();
    conn.take(64 * 1024)
        .read_to_end(&mut reply)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.lines().next().unwrap_or("");
    if status.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").trim();
        Err(format!("{addr} answered {status:?} {body}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_unspecified_listening_address_is_asked_on_loopback() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(
            target(&config, Some("0.0.0.0"), Some(5000)).to_string(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            target(&config, Some("::"), Some(5000)).to_string(),
            "[::1]:5000"
        );
        assert_eq!(
            target(&config, Some("10.1.2.3"), None).to_string(),
            "10.1.2.3:5000"
        );
        assert_eq!(target(&config, None, Some(8)).to_string(), "127.0.0.1:8");
    }
}
