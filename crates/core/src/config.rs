//! Process configuration from environment variables, read in one place.
//!
//! Names are upstream's where upstream has the knob, so existing deployments' settings carry
//! over; the README's configuration table lists them all.

use std::time::Duration;

use crate::fetch::{DEFAULT_USER_AGENT, FetcherConfig};
use crate::ssrf::AddressPolicy;

/// A variable that is set but cannot be used; startup stops with this rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Settings every mode reads.
#[derive(Clone, Debug)]
pub struct Config {
    /// `ALLOW_PRIVATE_ADDRESSES` (alias `ALLOW_IANA_RESTRICTED_ADDRESSES`): fetch private,
    /// loopback and other restricted addresses. Off by default.
    pub allow_private_addresses: bool,
    /// `ALLOW_PRIVATE_HOSTS`: comma-separated host names exempt from the address check.
    pub allowed_private_hosts: Vec<String>,
    /// `DEFAULT_SETTINGS_REQUESTS_TIMEOUT`, seconds (default 45).
    pub request_timeout: Duration,
    /// `FETCH_MAX_BYTES`: largest reply accepted (default 10 MiB).
    pub fetch_max_bytes: usize,
    /// `DEFAULT_USER_AGENT`: the User-Agent sent unless a watch sets its own.
    pub user_agent: String,
    /// `REQUESTS_RETRY_MAX_COUNT` (default 6, upstream's): how many times a request that
    /// failed to connect, or whose reply broke off before its headers, is tried again.
    pub fetch_retries: u32,
    /// `REQUESTS_RETRY_BACKOFF_FACTOR` (default 0.5 s, upstream's): the wait before the n-th
    /// retry is this × 2^(n−1), none before the first, as urllib3 counts it.
    pub fetch_retry_backoff: Duration,
    /// `PLAYWRIGHT_DRIVER_URL`: a remote browser's CDP WebSocket (`ws://…`) for watches with
    /// `fetch_backend: html_webdriver`, as upstream users set it. Unset, a local Chromium is
    /// launched when one is found (`browser_executable`).
    pub playwright_driver_url: Option<String>,
    /// `CW_CHROME_PATH`: the Chrome/Chromium to launch without `PLAYWRIGHT_DRIVER_URL`
    /// (default: the first of /usr/bin/chromium, chromium-browser, google-chrome that exists).
    pub browser_executable: Option<std::path::PathBuf>,
    /// `WEBDRIVER_DELAY_BEFORE_CONTENT_READY` (upstream's, default 5 s): every browser check
    /// waits this long after the page's load, plus the watch's (or settings') `webdriver_delay`.
    pub browser_settle: Duration,
    /// `CW_BROWSER_STEP_SETTLE_MS` (default 1500, upstream's pause): the time a page is given
    /// after each browser step before the next (a load the step started is waited for too).
    pub browser_step_settle: Duration,
    /// `SCREENSHOT_MAX_HEIGHT` (upstream's, default 20000): the tallest browser screenshot in
    /// CSS pixels; 0 takes none.
    pub screenshot_max_height: u32,
    /// `JQ_ALLOW_RISKY_EXPRESSIONS`: allow jq builtins that read the environment or files.
    pub jq_allow_risky: bool,
    /// `DATASTORE_PATH`: where embedded mode keeps its SQLite file (default `./data`).
    pub datastore_path: std::path::PathBuf,
    /// `CHANGEDETECTION_HOST` (default `127.0.0.1`: a first run is reachable from this machine
    /// only; listening on the network needs a dashboard password, see `allow_no_password`).
    pub host: String,
    /// `CHANGEDETECTION_PORT` (default 5000).
    pub port: u16,
    /// `FETCH_WORKERS`: concurrent checks in embedded mode (default 10).
    pub fetch_workers: usize,
    /// `MINIMUM_SECONDS_RECHECK_TIME` (default 3).
    pub minimum_recheck_secs: u64,
    /// `PAGE_WATCH_LIMIT`: most watches allowed (unset: no limit).
    pub page_watch_limit: Option<usize>,
    /// `BASE_URL`: the public address of the dashboard, for links in notifications.
    pub base_url: Option<String>,
    /// `API_ACCESS_TOKEN`: fixes the API key instead of the generated one.
    pub api_access_token: Option<String>,
    /// `SALTED_PASS`: the dashboard password hash (upstream's format), fixed by the deployment;
    /// it wins over the one stored in the settings, as upstream.
    pub salted_pass: Option<String>,
    /// `CW_ALLOW_NO_PASSWORD`: serve the dashboard without a password although the server is
    /// reachable from the network (upstream's "trusted network" default, now opt-in). Without
    /// it, no password means open only on a loopback address; see
    /// [`Config::no_password_is_open`].
    pub allow_no_password: bool,
    /// `CW_TRUSTED_PROXY_HOPS` (default 0): how many proxies in front of the server append to
    /// `X-Forwarded-For` (1 behind the AWS stack's load balancer). The client is then that many
    /// entries from the right, so the login throttle counts clients, not the proxy; 0 ignores
    /// the header (a client could write anything into it).
    pub trusted_proxy_hops: usize,
    /// `DASHBOARD_DIR`: the built dashboard (`dashboard/dist`); unset, it is looked for beside
    /// the working directory and the executable.
    pub dashboard_dir: Option<std::path::PathBuf>,
    /// `NOTIFICATION_MAX_ATTEMPTS`: tries per notification before it is recorded as failed
    /// (default 5; AWS mode's queue redrive count must match).
    pub notification_max_attempts: u32,
    /// `NOTIFICATION_RETRY_DELAY_SECS`: wait after the first failed try, doubled after each
    /// further one (default 10, capped at 15 minutes).
    pub notification_retry_delay: Duration,
    /// `NOTIFICATION_TIMEOUT_SECS`: how long one delivery may take (default 30).
    pub notification_timeout: Duration,
    /// `APPRISE_API_URL`: an Apprise API server (`http(s)://host[:port][/prefix]`, or the
    /// `apprise(s)://` form of the same) that delivers notification URLs whose service
    /// changewatch does not speak itself, through its stateless `POST /notify`. Kept as the base
    /// ending in `/`. It is the operator's, so it may be a private or loopback address.
    pub apprise_api_url: Option<url::Url>,
    /// `ALLOWED_HOSTS`: host names the HTTP server answers to besides IP addresses and
    /// `localhost` (comma-separated; `.example.com` = the domain and its subdomains; `*` = any).
    /// Unset (`None`), other names are answered only while a dashboard password is set and the
    /// API key is required: a page that rebinds its own name to this server must find nothing
    /// open. Checked by `changewatch_api::hosts`.
    pub allowed_hosts: Option<Vec<String>>,
    /// `CW_ALLOWED_ORIGINS`: comma-separated origins (`https://host[:port]`) whose pages may
    /// open the Socket.IO connection besides the server's own origin (a cross-site page must
    /// not drive the dashboard's socket).
    pub allowed_origins: Vec<String>,
    /// `CW_SANDBOX_*`: the budgets of the child processes that run filters, rules and
    /// templates.
    pub sandbox: SandboxLimits,
}

/// What one unit of user-driven work (a page through the filters and rules, a notification
/// template) may use before it is stopped and reported as that watch's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// `CW_SANDBOX_TIMEOUT_SECS` (default 60): wall-clock time per page or render.
    pub timeout: Duration,
    /// `CW_SANDBOX_MEMORY_MB` (default 1024): address-space cap of a child process.
    pub memory_mb: u64,
    /// `CW_SANDBOX_STACK_MB` (default 64): stack of a child's work thread.
    pub stack_mb: u64,
    /// Idle children kept for reuse (as many as may run at once).
    pub max_idle: usize,
    /// `CW_SANDBOX_CHILDREN`: children working at once. From the environment it defaults to
    /// the number of CPUs (at least 2): the work is CPU-bound, so more children only add
    /// memory (a few MB each) and time-slice the same cores. The checker function sets it
    /// from its memory (`changewatch_aws::config::CheckerSizing`).
    pub max_running: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            timeout: Duration::from_secs(60),
            memory_mb: 1024,
            stack_mb: 64,
            max_idle: 10,
            max_running: usize::MAX,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow_private_addresses: false,
            allowed_private_hosts: Vec::new(),
            request_timeout: Duration::from_secs(45),
            fetch_max_bytes: 10 * 1024 * 1024,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            fetch_retries: 6,
            fetch_retry_backoff: Duration::from_millis(500),
            playwright_driver_url: None,
            browser_executable: None,
            browser_settle: Duration::from_secs(5),
            browser_step_settle: Duration::from_millis(1500),
            screenshot_max_height: 20_000,
            jq_allow_risky: false,
            datastore_path: std::path::PathBuf::from("./data"),
            host: "127.0.0.1".to_string(),
            port: 5000,
            fetch_workers: 10,
            minimum_recheck_secs: 3,
            page_watch_limit: None,
            base_url: None,
            api_access_token: None,
            dashboard_dir: None,
            salted_pass: None,
            allow_no_password: false,
            trusted_proxy_hops: 0,
            notification_max_attempts: 5,
            notification_retry_delay: Duration::from_secs(10),
            notification_timeout: Duration::from_secs(30),
            apprise_api_url: None,
            allowed_hosts: None,
            allowed_origins: Vec::new(),
            sandbox: SandboxLimits::default(),
        }
    }
}

impl Config {
    /// Whether an instance without a dashboard password may let the dashboard in on its UI
    /// header alone: only when it listens on a loopback address, or the operator said the
    /// network is trusted (`CW_ALLOW_NO_PASSWORD`). Anywhere else the first visitor could read
    /// the API key and set the password. AWS mode never listens on loopback, so there it is
    /// the flag alone (the caller decides that).
    pub fn no_password_is_open(&self) -> bool {
        self.allow_no_password || is_loopback_host(&self.host)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Config::default();
        let text = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        fn parse_num<T: std::str::FromStr>(
            name: &'static str,
            v: Option<String>,
            reason: &'static str,
        ) -> Result<Option<T>, ConfigError> {
            match v {
                Some(v) => v
                    .parse::<T>()
                    .map(Some)
                    .map_err(|_| invalid(name, v, reason)),
                None => Ok(None),
            }
        }
        let flag = |name: &'static str| -> Result<Option<bool>, ConfigError> {
            get(name).map(|v| parse_bool(name, &v)).transpose()
        };
        let allow_private = flag("ALLOW_PRIVATE_ADDRESSES")?
            .or(flag("ALLOW_IANA_RESTRICTED_ADDRESSES")?)
            .unwrap_or(false);
        let timeout = match get("DEFAULT_SETTINGS_REQUESTS_TIMEOUT") {
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                _ => {
                    return Err(invalid(
                        "DEFAULT_SETTINGS_REQUESTS_TIMEOUT",
                        v,
                        "expected a positive number of seconds",
                    ));
                }
            },
            None => d.request_timeout,
        };
        let max_bytes = match get("FETCH_MAX_BYTES") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(
                        "FETCH_MAX_BYTES",
                        v,
                        "expected a positive number of bytes",
                    ));
                }
            },
            None => d.fetch_max_bytes,
        };
        let retry_backoff = match get("REQUESTS_RETRY_BACKOFF_FACTOR") {
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if (0.0..=60.0).contains(&s) => Duration::from_secs_f64(s),
                _ => {
                    return Err(invalid(
                        "REQUESTS_RETRY_BACKOFF_FACTOR",
                        v,
                        "expected a number of seconds from 0 to 60",
                    ));
                }
            },
            None => d.fetch_retry_backoff,
        };
        let positive = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match parse_num::<u64>(name, text(name), "expected a positive whole number")? {
                Some(0) => Err(invalid(
                    name,
                    "0".into(),
                    "expected a positive whole number",
                )),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        let sandbox = SandboxLimits {
            timeout: Duration::from_secs(positive(
                "CW_SANDBOX_TIMEOUT_SECS",
                d.sandbox.timeout.as_secs(),
            )?),
            memory_mb: positive("CW_SANDBOX_MEMORY_MB", d.sandbox.memory_mb)?,
            stack_mb: positive("CW_SANDBOX_STACK_MB", d.sandbox.stack_mb)?,
            max_idle: d.sandbox.max_idle,
            max_running: usize::try_from(positive(
                "CW_SANDBOX_CHILDREN",
                default_sandbox_children() as u64,
            )?)
            .unwrap_or(usize::MAX),
        };
        let mut config = Config {
            allow_private_addresses: allow_private,
            allowed_private_hosts: get("ALLOW_PRIVATE_HOSTS")
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            request_timeout: timeout,
            fetch_max_bytes: max_bytes,
            user_agent: get("DEFAULT_USER_AGENT")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or(d.user_agent),
            fetch_retries: parse_num(
                "REQUESTS_RETRY_MAX_COUNT",
                text("REQUESTS_RETRY_MAX_COUNT"),
                "expected a number of retries",
            )?
            .unwrap_or(d.fetch_retries),
            fetch_retry_backoff: retry_backoff,
            playwright_driver_url: match text("PLAYWRIGHT_DRIVER_URL") {
                Some(v) if v.starts_with("ws://") || v.starts_with("wss://") => Some(v),
                Some(v) => {
                    return Err(invalid(
                        "PLAYWRIGHT_DRIVER_URL",
                        v,
                        "expected a ws:// or wss:// DevTools URL",
                    ));
                }
                None => None,
            },
            browser_executable: text("CW_CHROME_PATH")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    [
                        "/usr/bin/chromium",
                        "/usr/bin/chromium-browser",
                        "/usr/bin/google-chrome",
                    ]
                    .into_iter()
                    .map(std::path::PathBuf::from)
                    .find(|p| p.exists())
                }),
            browser_settle: parse_num::<u64>(
                "WEBDRIVER_DELAY_BEFORE_CONTENT_READY",
                text("WEBDRIVER_DELAY_BEFORE_CONTENT_READY"),
                "expected a number of seconds",
            )?
            .map_or(d.browser_settle, Duration::from_secs),
            browser_step_settle: parse_num::<u64>(
                "CW_BROWSER_STEP_SETTLE_MS",
                text("CW_BROWSER_STEP_SETTLE_MS"),
                "expected a number of milliseconds",
            )?
            .map_or(d.browser_step_settle, Duration::from_millis),
            screenshot_max_height: parse_num::<u32>(
                "SCREENSHOT_MAX_HEIGHT",
                text("SCREENSHOT_MAX_HEIGHT"),
                "expected a number of pixels",
            )?
            .unwrap_or(d.screenshot_max_height),
            jq_allow_risky: flag("JQ_ALLOW_RISKY_EXPRESSIONS")?.unwrap_or(false),
            dashboard_dir: text("DASHBOARD_DIR").map(std::path::PathBuf::from),
            salted_pass: text("SALTED_PASS"),
            allow_no_password: flag("CW_ALLOW_NO_PASSWORD")?.unwrap_or(false),
            trusted_proxy_hops: parse_num(
                "CW_TRUSTED_PROXY_HOPS",
                text("CW_TRUSTED_PROXY_HOPS"),
                "expected a number of proxies",
            )?
            .unwrap_or(0),
            datastore_path: text("DATASTORE_PATH")
                .map(std::path::PathBuf::from)
                .unwrap_or(d.datastore_path),
            host: text("CHANGEDETECTION_HOST").unwrap_or(d.host),
            port: parse_num(
                "CHANGEDETECTION_PORT",
                text("CHANGEDETECTION_PORT"),
                "expected a port number",
            )?
            .unwrap_or(d.port),
            fetch_workers: match parse_num::<usize>(
                "FETCH_WORKERS",
                text("FETCH_WORKERS"),
                "expected a positive number of workers",
            )? {
                Some(0) => {
                    return Err(invalid(
                        "FETCH_WORKERS",
                        "0".into(),
                        "expected a positive number of workers",
                    ));
                }
                Some(n) => n,
                None => d.fetch_workers,
            },
            minimum_recheck_secs: parse_num(
                "MINIMUM_SECONDS_RECHECK_TIME",
                text("MINIMUM_SECONDS_RECHECK_TIME"),
                "expected a number of seconds",
            )?
            .unwrap_or(d.minimum_recheck_secs),
            page_watch_limit: parse_num(
                "PAGE_WATCH_LIMIT",
                text("PAGE_WATCH_LIMIT"),
                "expected a number of watches",
            )?,
            base_url: text("BASE_URL"),
            api_access_token: text("API_ACCESS_TOKEN"),
            notification_max_attempts: match parse_num::<u32>(
                "NOTIFICATION_MAX_ATTEMPTS",
                text("NOTIFICATION_MAX_ATTEMPTS"),
                "expected a number of tries",
            )? {
                Some(0) => {
                    return Err(invalid(
                        "NOTIFICATION_MAX_ATTEMPTS",
                        "0".into(),
                        "at least one try is needed",
                    ));
                }
                Some(n) => n,
                None => d.notification_max_attempts,
            },
            notification_retry_delay: parse_num::<u64>(
                "NOTIFICATION_RETRY_DELAY_SECS",
                text("NOTIFICATION_RETRY_DELAY_SECS"),
                "expected a number of seconds",
            )?
            .map_or(d.notification_retry_delay, Duration::from_secs),
            notification_timeout: parse_num::<u64>(
                "NOTIFICATION_TIMEOUT_SECS",
                text("NOTIFICATION_TIMEOUT_SECS"),
                "expected a number of seconds",
            )?
            .map(|s| Duration::from_secs(s.max(1)))
            .unwrap_or(d.notification_timeout),
            apprise_api_url: text("APPRISE_API_URL")
                .map(|v| {
                    apprise_api_base(&v).ok_or_else(|| {
                        invalid(
                            "APPRISE_API_URL",
                            v,
                            "expected the Apprise API server's URL, like http://apprise:8000",
                        )
                    })
                })
                .transpose()?,
            allowed_hosts: text("ALLOWED_HOSTS")
                .map(|v| allowed_hosts(&v))
                .transpose()?,
            allowed_origins: match get("CW_ALLOWED_ORIGINS") {
                Some(v) => allowed_origins(&v)?,
                None => Vec::new(),
            },
            sandbox,
        };
        config.sandbox.max_idle = config.sandbox.max_running.min(config.fetch_workers);
        Ok(config)
    }

    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy {
            allow_private: self.allow_private_addresses,
            allowed_hosts: self.allowed_private_hosts.clone(),
        }
    }

    pub fn fetcher_config(&self) -> FetcherConfig {
        FetcherConfig {
            policy: self.address_policy(),
            max_bytes: self.fetch_max_bytes,
            user_agent: self.user_agent.clone(),
            retries: self.fetch_retries,
            retry_backoff: self.fetch_retry_backoff,
        }
    }
}

/// `CW_ALLOWED_ORIGINS` entries, serialised as browsers send them in `Origin` (lowercase, no
/// default port, no trailing `/`); each must be a bare `http(s)://host[:port]` (see
/// [`parse_origin`]), or it could never match.
fn allowed_origins(v: &str) -> Result<Vec<String>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            parse_origin(entry)
                .map(|o| o.ascii_serialization())
                .ok_or_else(|| {
                    invalid(
                        "CW_ALLOWED_ORIGINS",
                        v.to_string(),
                        "expected comma-separated origins like https://example.com:8443",
                    )
                })
        })
        .collect()
}

/// An origin as browsers write it in `Origin`: `http(s)://host[:port]` (a trailing `/`
/// tolerated) and nothing else; `None` for anything else, `null` included. Two origins compare
/// equal with default ports made explicit (`https://x` = `https://x:443`). Shared by
/// `CW_ALLOWED_ORIGINS` and the socket's check, so an entry accepted here always takes part.
pub fn parse_origin(s: &str) -> Option<url::Origin> {
    let url = url::Url::parse(s.trim()).ok()?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    bare.then(|| url.origin())
}

/// `ALLOWED_HOSTS` entries, lowercased, without a trailing dot or IPv6 brackets. A URL or a
/// `host:port` is refused rather than kept: browsers send the bare name in `Host` (the port is
/// not compared), so such an entry could never match and the user would be locked out.
fn allowed_hosts(v: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let e = entry.to_ascii_lowercase();
        let e = e.trim_end_matches('.');
        let bare = e
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(e);
        let is_v6 = bare.parse::<std::net::Ipv6Addr>().is_ok();
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let ok = bare == "*"
            || is_v6
            || bare.strip_prefix('.').is_some_and(name_ok)
            || (!bare.starts_with('.') && name_ok(bare));
        if !ok {
            return Err(invalid(
                "ALLOWED_HOSTS",
                v.to_string(),
                "expected comma-separated host names without scheme, port or path, like \
                 changes.example.com,.example.org (or * for any)",
            ));
        }
        out.push(bare.to_string());
    }
    Ok(out)
}

/// `http(s)://host[:port][/prefix]` or `apprise(s)://…` as the base the stateless endpoint
/// `notify` is joined to; a URL already ending in `/notify` names that endpoint.
fn apprise_api_base(v: &str) -> Option<url::Url> {
    let v = v.trim();
    let (scheme, rest) = v.split_once("://")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "apprise" => "http",
        "https" | "apprises" => "https",
        _ => return None,
    };
    let mut url = url::Url::parse(&format!("{scheme}://{rest}")).ok()?;
    if url.host_str().is_none_or(str::is_empty) || url.query().is_some() || url.fragment().is_some()
    {
        return None;
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/notify").unwrap_or(path).to_string();
    url.set_path(&format!("{path}/"));
    Some(url)
}

fn invalid(name: &'static str, value: String, reason: &'static str) -> ConfigError {
    ConfigError {
        name,
        value,
        reason,
    }
}

/// Upstream's strtobool: true/false, yes/no, on/off, 1/0, case-insensitive.
pub fn parse_bool(name: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" | "t" => Ok(true),
        "0" | "false" | "no" | "n" | "off" | "f" | "" => Ok(false),
        _ => Err(invalid(name, v.to_string(), "expected true or false")),
    }
}

/// A listen address that only this machine can reach: `localhost` or a loopback IP.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `CW_SANDBOX_CHILDREN`'s default: one child per CPU, at least two so that one slow page
/// does not hold up every other check.
fn default_sandbox_children() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert!(!c.allow_private_addresses);
        assert_eq!(c.request_timeout, Duration::from_secs(45));
        assert_eq!(c.fetch_max_bytes, 10 * 1024 * 1024);
        assert_eq!(
            (c.fetch_retries, c.fetch_retry_backoff),
            (6, Duration::from_millis(500))
        );
    }

    #[test]
    fn fetch_retries() {
        let c = cfg(&[
            ("REQUESTS_RETRY_MAX_COUNT", "0"),
            ("REQUESTS_RETRY_BACKOFF_FACTOR", "0.05"),
        ])
        .unwrap();
        assert_eq!(
            (c.fetch_retries, c.fetch_retry_backoff),
            (0, Duration::from_millis(50))
        );
        let f = c.fetcher_config();
        assert_eq!((f.retries, f.retry_backoff), (0, Duration::from_millis(50)));
        for (name, value) in [
            ("REQUESTS_RETRY_MAX_COUNT", "-1"),
            ("REQUESTS_RETRY_BACKOFF_FACTOR", "soon"),
            ("REQUESTS_RETRY_BACKOFF_FACTOR", "61"),
        ] {
            assert_eq!(cfg(&[(name, value)]).unwrap_err().name, name);
        }
    }

    #[test]
    fn upstream_alias_and_overrides() {
        assert!(
            cfg(&[("ALLOW_IANA_RESTRICTED_ADDRESSES", "True")])
                .unwrap()
                .allow_private_addresses
        );
        assert!(
            !cfg(&[
                ("ALLOW_PRIVATE_ADDRESSES", "false"),
                ("ALLOW_IANA_RESTRICTED_ADDRESSES", "true")
            ])
            .unwrap()
            .allow_private_addresses
        );
        let c = cfg(&[
            ("DEFAULT_SETTINGS_REQUESTS_TIMEOUT", "2.5"),
            ("FETCH_MAX_BYTES", "100"),
            ("ALLOW_PRIVATE_HOSTS", "Router.lan, nas"),
        ])
        .unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(2500));
        assert_eq!(c.fetch_max_bytes, 100);
        assert_eq!(c.allowed_private_hosts, vec!["router.lan", "nas"]);
    }

    #[test]
    fn bad_values_are_refused_with_the_name() {
        assert_eq!(
            cfg(&[("FETCH_MAX_BYTES", "lots")]).unwrap_err().name,
            "FETCH_MAX_BYTES"
        );
        assert_eq!(
            cfg(&[("ALLOW_PRIVATE_ADDRESSES", "maybe")])
                .unwrap_err()
                .name,
            "ALLOW_PRIVATE_ADDRESSES"
        );
        assert!(cfg(&[("DEFAULT_SETTINGS_REQUESTS_TIMEOUT", "-1")]).is_err());
    }

    #[test]
    fn allowed_hosts_are_bare_names() {
        assert_eq!(cfg(&[]).unwrap().allowed_hosts, None);
        assert_eq!(cfg(&[("ALLOWED_HOSTS", " ")]).unwrap().allowed_hosts, None);
        let c = cfg(&[(
            "ALLOWED_HOSTS",
            " Changes.Example.com. , .lan,[::1],10.0.0.5, * ",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_hosts.unwrap(),
            vec!["changes.example.com", ".lan", "::1", "10.0.0.5", "*"]
        );
        for bad in [
            "https://changes.example.com",
            "changes.example.com:5000",
            "example.com/path",
            "user@example.com",
            ".",
            "a b",
        ] {
            assert_eq!(
                cfg(&[("ALLOWED_HOSTS", bad)]).unwrap_err().name,
                "ALLOWED_HOSTS",
                "{bad}"
            );
        }
    }

    #[test]
    fn apprise_api_url_is_a_base_for_notify() {
        for (given, base) in [
            ("http://apprise:8000", "http://apprise:8000/"),
            (
                "https://n.example.com/apprise/",
                "https://n.example.com/apprise/",
            ),
            ("http://127.0.0.1:8000/notify", "http://127.0.0.1:8000/"),
            ("apprise://localhost:8000", "http://localhost:8000/"),
            (
                "apprises://n.example.com/x/notify/",
                "https://n.example.com/x/",
            ),
        ] {
            let c = cfg(&[("APPRISE_API_URL", given)]).unwrap();
            assert_eq!(c.apprise_api_url.map(String::from).as_deref(), Some(base));
        }
        assert_eq!(cfg(&[]).unwrap().apprise_api_url, None);
        for bad in ["apprise", "ftp://x", "http://", "http://x/?a=b", "json://x"] {
            assert_eq!(
                cfg(&[("APPRISE_API_URL", bad)]).unwrap_err().name,
                "APPRISE_API_URL",
                "{bad}"
            );
        }
    }

    #[test]
    fn allowed_origins_are_bare_origins() {
        let c = cfg(&[(
            "CW_ALLOWED_ORIGINS",
            " https://Dash.example.com/ , http://127.0.0.1:8080",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            vec!["https://dash.example.com", "http://127.0.0.1:8080"]
        );
        for bad in ["dash.example.com", "https://x/path", "*", "ftp://x"] {
            assert_eq!(
                cfg(&[("CW_ALLOWED_ORIGINS", bad)]).unwrap_err().name,
                "CW_ALLOWED_ORIGINS"
            );
        }
    }

    #[test]
    fn only_loopback_listeners_are_open_without_a_password() {
        for h in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["0.0.0.0", "::", "192.168.1.5", "example.com", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
        let mut c = Config::default();
        assert!(c.no_password_is_open(), "the default listens on loopback");
        c.host = "0.0.0.0".into();
        assert!(!c.no_password_is_open());
        c.allow_no_password = true;
        assert!(c.no_password_is_open());
    }
}
