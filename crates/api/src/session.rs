//! The dashboard password, its session cookie and the login throttle.
//!
//! The password is stored as upstream stores it (base64 of a 32-byte salt followed by
//! PBKDF2-HMAC-SHA256 with 100 000 rounds), so a settings document carried over from
//! changedetection.io keeps its password.
//!
//! Sessions are stateless, so any process of AWS mode can check a cookie another one issued: the
//! cookie is `<id>.<expiry>.<mac>`, HMAC-SHA256 keyed by a random secret kept in the settings
//! ([`SessionKeys`], generated on first need, never in an API response). The MAC also covers a
//! digest of the password hash in force, so changing or removing the password ends every
//! session at once, and holding the hash alone (`SALTED_PASS`, a backup of the hash) mints
//! nothing. Logging out records the session's id as revoked until its expiry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use changewatch_core::model::{SessionKeys, Settings};

use crate::state::Access;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const COOKIE: &str = "changewatch_session";
/// Header the dashboard sends with every request. A cross-site page cannot set it without a CORS
/// preflight, which this server never grants, so cookie-authenticated requests carrying it are
/// same-origin: the CSRF guard.
pub const UI_HEADER: &str = "x-changewatch-ui";
/// Lifetime of a session without "remember me"; its cookie also ends with the browser session.
pub const SESSION_SECS: i64 = 24 * 3600;
/// Lifetime of a remembered session (a persistent cookie).
pub const REMEMBER_SECS: i64 = 30 * 24 * 3600;
/// Revoked sessions kept at most; past this the secret is rotated instead (every session ends),
/// so a flood of logouts cannot grow the settings document without bound.
const MAX_REVOKED: usize = 1000;

const SALT_LEN: usize = 32;
const ROUNDS: u32 = 100_000;

/// Hashes a new password the way upstream's settings form does. Slow by design (PBKDF2): call it
/// off the async runtime's threads.
pub fn hash_password(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    encode(&salt, password)
}

fn encode(salt: &[u8], password: &str) -> String {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, ROUNDS, &mut key);
    let mut out = salt.to_vec();
    out.extend_from_slice(&key);
    STANDARD.encode(out)
}

/// Checks a password against a stored hash; a malformed hash matches nothing. Slow by design
/// (PBKDF2): call it off the async runtime's threads.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let Ok(raw) = STANDARD.decode(stored.trim()) else {
        return false;
    };
    if raw.len() <= SALT_LEN {
        return false;
    }
    let expected = encode(&raw[..SALT_LEN], password);
    constant_time_eq(expected.as_bytes(), stored.trim().as_bytes())
}

/// Fresh signing state: a 256-bit random secret, nothing revoked.
pub fn new_keys() -> SessionKeys {
    let secret: [u8; 32] = rand::random();
    SessionKeys {
        secret: hex(&secret),
        revoked: Default::default(),
    }
}

/// What ties a session to the password in force: the MAC covers this digest of the hash, so a
/// new password ends old sessions while the hash itself never keys anything.
fn password_binding(stored_hash: &str) -> String {
    let mut d = Sha256::new();
    d.update(b"changewatch-password|");
    d.update(stored_hash.trim().as_bytes());
    hex(&d.finalize())
}

fn mac(keys: &SessionKeys, stored_hash: &str, id: &str, expires: i64) -> Option<String> {
    if keys.secret.len() < 32 {
        return None;
    }
    let mut m = Hmac::<Sha256>::new_from_slice(keys.secret.as_bytes()).ok()?;
    m.update(
        format!(
            "changewatch-session|v2|{id}|{expires}|{}",
            password_binding(stored_hash)
        )
        .as_bytes(),
    );
    Some(hex(&m.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session: its cookie value and how long it lasts.
#[derive(Clone, Debug)]
pub struct Issued {
    pub value: String,
    /// `Some(secs)` for a remembered session (persistent cookie); `None`: a browser-session
    /// cookie.
    pub max_age: Option<i64>,
}

/// A cookie value for a new session under `stored_hash`, valid for [`SESSION_SECS`] (or
/// [`REMEMBER_SECS`] when remembered). `None` when the keys have no usable secret.
pub fn issue(keys: &SessionKeys, stored_hash: &str, now: i64, remember: bool) -> Option<Issued> {
    let life = if remember {
        REMEMBER_SECS
    } else {
        SESSION_SECS
    };
    let id: [u8; 16] = rand::random();
    let id = hex(&id);
    let expires = now + life;
    let sig = mac(keys, stored_hash, &id, expires)?;
    Some(Issued {
        value: format!("{id}.{expires}.{sig}"),
        max_age: remember.then_some(life),
    })
}

/// A cookie value's parts: session id and expiry, when it has the shape of one.
pub fn parse(value: &str) -> Option<(&str, i64)> {
    let mut parts = value.split('.');
    let (id, exp, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((id, exp.parse().ok()?))
}

/// Whether a cookie value was issued under these keys and this password hash, has not expired
/// and was not logged out.
pub fn valid(keys: Option<&SessionKeys>, stored_hash: &str, value: &str, now: i64) -> bool {
    let Some(keys) = keys else {
        return false;
    };
    let Some((id, expires)) = parse(value) else {
        return false;
    };
    if expires < now || keys.revoked.contains_key(id) {
        return false;
    }
    let Some((_, sig)) = value.rsplit_once('.') else {
        return false;
    };
    mac(keys, stored_hash, id, expires)
        .is_some_and(|m| constant_time_eq(m.as_bytes(), sig.as_bytes()))
}

/// Records a session as logged out until its expiry, dropping entries that have expired. Past
/// [`MAX_REVOKED`] the secret is rotated instead, which ends every session.
pub fn revoke(keys: &mut SessionKeys, id: &str, expires: i64, now: i64) {
    keys.revoked.retain(|_, exp| *exp >= now);
    if keys.revoked.len() >= MAX_REVOKED {
        *keys = new_keys();
        return;
    }
    keys.revoked.insert(id.to_string(), expires);
}

/// The session cookie's value in a request, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for a session; `None` clears it.
pub fn set_cookie(session: Option<&Issued>) -> String {
    match session {
        Some(Issued {
            value,
            max_age: Some(age),
        }) => format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}"),
        Some(Issued {
            value,
            max_age: None,
        }) => format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// Whether a request comes from a dashboard allowed in: the UI header, and with a password set,
/// a valid session cookie; with no password, only where [`Access::Open`] says so.
pub fn dashboard_allowed(
    headers: &HeaderMap,
    settings: &Settings,
    access: Access,
    now: i64,
) -> bool {
    if !headers.contains_key(UI_HEADER) {
        return false;
    }
    session_ok(headers, settings, access, now)
}

/// The session half of [`dashboard_allowed`], for the socket handshake, which cannot carry
/// custom headers from a browser (its cookie is same-site already).
pub fn session_ok(headers: &HeaderMap, settings: &Settings, access: Access, now: i64) -> bool {
    match access {
        Access::Open => true,
        Access::KeyOnly => false,
        Access::Password(hash) => cookie_value(headers)
            .is_some_and(|c| valid(settings.application.session_keys.as_ref(), hash, &c, now)),
    }
}

/// Compares without an early exit, so response timing does not leak how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token bucket: `burst` attempts at once, refilled at `per_sec`.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub burst: f64,
    pub per_sec: f64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * rate.per_sec).min(rate.burst);
        self.at = now;
    }

    /// Time until one token is there.
    fn wait(&self, rate: Rate) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / rate.per_sec.max(f64::MIN_POSITIVE))
    }
}

/// Login attempts per client address and in total: every attempt costs a PBKDF2 run, and the
/// password is the only thing between a network attacker and the dashboard. The global bucket
/// bounds guessing from many addresses (at the price of slowing the owner's login during an
/// attack); the per-address one keeps a single client from using it all. In memory: each
/// process counts for itself.
#[derive(Debug)]
pub struct LoginLimiter {
    per_client: Rate,
    global: Rate,
    state: Mutex<LimiterState>,
}

#[derive(Debug)]
struct LimiterState {
    global: Bucket,
    clients: HashMap<IpAddr, Bucket>,
}

/// Clients tracked at most; full buckets are dropped first (they carry no information).
const MAX_CLIENTS: usize = 10_000;

impl Default for LoginLimiter {
    /// 10 attempts per client, then one every 6 s; 30 in total, then one a second.
    fn default() -> Self {
        LoginLimiter::new(
            Rate {
                burst: 10.0,
                per_sec: 1.0 / 6.0,
            },
            Rate {
                burst: 30.0,
                per_sec: 1.0,
            },
        )
    }
}

impl LoginLimiter {
    pub fn new(per_client: Rate, global: Rate) -> Self {
        LoginLimiter {
            per_client,
            global,
            state: Mutex::new(LimiterState {
                global: Bucket::full(global, Instant::now()),
                clients: HashMap::new(),
            }),
        }
    }

    /// Takes one attempt for `client` (IPv6 clients count per /64, what one host usually
    /// holds); `Err` says how long until the next one is allowed. Nothing is taken when refused.
    pub fn attempt(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let key = client.map(|ip| match ip {
            IpAddr::V6(v6) => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::from(s)
            }
            v4 => v4,
        });
        st.global.refill(self.global, now);
        let mut client_bucket = key.map(|k| {
            let mut b = st
                .clients
                .get(&k)
                .copied()
                .unwrap_or_else(|| Bucket::full(self.per_client, now));
            b.refill(self.per_client, now);
            (k, b)
        });
        let client_wait = client_bucket
            .as_ref()
            .map_or(Duration::ZERO, |(_, b)| b.wait(self.per_client));
        let wait = client_wait.max(st.global.wait(self.global));
        if !wait.is_zero() {
            return Err(wait);
        }
        st.global.tokens -= 1.0;
        if let Some((k, b)) = client_bucket.as_mut() {
            b.tokens -= 1.0;
            if st.clients.len() >= MAX_CLIENTS {
                let rate = self.per_client;
                st.clients.retain(|_, b| {
                    let mut b = *b;
                    b.refill(rate, now);
                    b.tokens < rate.burst
                });
            }
            if st.clients.len() < MAX_CLIENTS {
                st.clients.insert(*k, *b);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_with(keys: &SessionKeys) -> Settings {
        let mut s = Settings::default();
        s.application.session_keys = Some(keys.clone());
        s
    }

    #[test]
    fn password_round_trip_and_upstream_format() {
        let h = hash_password("s3cret");
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert!(!verify_password("not base64!", "x"));
        // 32-byte salt + 32-byte key, base64: upstream's layout.
        assert_eq!(STANDARD.decode(&h).unwrap().len(), 64);
    }

    #[test]
    fn known_vector_matches_python_hashlib() {
        // hashlib.pbkdf2_hmac('sha256', b'password', b'\x00'*32, 100000)
        let stored = encode(&[0u8; 32], "password");
        let raw = STANDARD.decode(&stored).unwrap();
        assert_eq!(
            hex(&raw[32..]),
            "b77d007d1a6135515a1eb9811639e4a96b1fd4ba2b2b8ed389383f81979a42d2"
        );
        assert!(verify_password(&stored, "password"));
    }

    #[test]
    fn sessions_expire_and_die_with_the_password() {
        let h = encode(&[1u8; 32], "a");
        let keys = new_keys();
        let c = issue(&keys, &h, 1000, false).unwrap();
        assert_eq!(c.max_age, None, "a browser-session cookie");
        assert!(valid(Some(&keys), &h, &c.value, 1000));
        assert!(valid(Some(&keys), &h, &c.value, 1000 + SESSION_SECS));
        assert!(
            !valid(Some(&keys), &h, &c.value, 1001 + SESSION_SECS),
            "expired"
        );
        let r = issue(&keys, &h, 1000, true).unwrap();
        assert_eq!(r.max_age, Some(REMEMBER_SECS));
        assert!(valid(Some(&keys), &h, &r.value, 1000 + REMEMBER_SECS));
        assert!(!valid(Some(&keys), &h, &r.value, 1001 + REMEMBER_SECS));

        let other = encode(&[2u8; 32], "a");
        assert!(
            !valid(Some(&keys), &other, &c.value, 1000),
            "a new password ends old sessions"
        );
        assert!(
            !valid(Some(&new_keys()), &h, &c.value, 1000),
            "another secret"
        );
        assert!(
            !valid(None, &h, &c.value, 1000),
            "no secret yet: nothing is valid"
        );
        let (id, exp) = parse(&c.value).unwrap();
        let sig = c.value.rsplit_once('.').unwrap().1;
        let forged = format!("{id}.{}.{sig}", exp + 1000);
        assert!(
            !valid(Some(&keys), &h, &forged, 1000),
            "the expiry is signed"
        );
        assert!(!valid(Some(&keys), &h, &format!("{}.x", c.value), 1000));
    }

    #[test]
    fn the_password_hash_alone_mints_nothing() {
        let h = encode(&[1u8; 32], "a");
        let keys = new_keys();
        // The old scheme: HMAC keyed by the stored hash over the expiry.
        let mut m = Hmac::<Sha256>::new_from_slice(h.as_bytes()).unwrap();
        m.update(b"changewatch-session|253402300799");
        let old = format!("253402300799.{}", hex(&m.finalize().into_bytes()));
        assert!(!valid(Some(&keys), &h, &old, 1000));
        // The new layout keyed by the hash instead of the secret.
        let as_secret = SessionKeys {
            secret: h.clone(),
            revoked: Default::default(),
        };
        let minted = issue(&as_secret, &h, 1000, true).unwrap();
        assert!(!valid(Some(&keys), &h, &minted.value, 1000));
        // A secret too short to be one of ours signs nothing.
        let weak = SessionKeys {
            secret: "short".into(),
            revoked: Default::default(),
        };
        assert!(issue(&weak, &h, 1000, false).is_none());
    }

    #[test]
    fn logout_revokes_one_session_until_it_expires() {
        let h = encode(&[1u8; 32], "a");
        let mut keys = new_keys();
        let a = issue(&keys, &h, 1000, false).unwrap();
        let b = issue(&keys, &h, 1000, false).unwrap();
        let (id, exp) = parse(&a.value).unwrap();
        revoke(&mut keys, id, exp, 1000);
        assert!(!valid(Some(&keys), &h, &a.value, 1000), "logged out");
        assert!(
            valid(Some(&keys), &h, &b.value, 1000),
            "the other session lives"
        );
        // Expired entries are dropped by the next revocation.
        let late = issue(&keys, &h, exp + 10, false).unwrap();
        let (lid, lexp) = parse(&late.value).unwrap();
        revoke(&mut keys, lid, lexp, exp + 10);
        assert_eq!(keys.revoked.len(), 1);
        let s = settings_with(&keys);
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("{COOKIE}={}", b.value).parse().unwrap(),
        );
        assert!(session_ok(&headers, &s, Access::Password(&h), 1000));
        assert!(
            !dashboard_allowed(&headers, &s, Access::Password(&h), 1000),
            "no UI header"
        );
        let mut ui = HeaderMap::new();
        ui.insert(UI_HEADER, "1".parse().unwrap());
        assert!(dashboard_allowed(&ui, &s, Access::Open, 1000));
        assert!(
            !dashboard_allowed(&ui, &s, Access::KeyOnly, 1000),
            "the UI header alone never opens a network-facing server"
        );
    }

    #[test]
    fn too_many_revocations_rotate_the_secret() {
        let h = encode(&[1u8; 32], "a");
        let mut keys = new_keys();
        let live = issue(&keys, &h, 1000, false).unwrap();
        for i in 0..=MAX_REVOKED {
            revoke(&mut keys, &format!("{i:032x}"), 5000, 1000);
        }
        assert!(keys.revoked.len() <= MAX_REVOKED);
        assert!(keys.revoked.is_empty(), "rotated");
        assert!(!valid(Some(&keys), &h, &live.value, 1000));
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; changewatch_session=xyz.abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz.abc"));
        assert!(set_cookie(None).contains("Max-Age=0"));
    }

    #[test]
    fn limiter_per_client_and_global() {
        let limiter = LoginLimiter::new(
            Rate {
                burst: 3.0,
                per_sec: 1.0,
            },
            Rate {
                burst: 5.0,
                per_sec: 0.5,
            },
        );
        let t0 = Instant::now();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert!(limiter.attempt(a, t0).is_ok());
        }
        let wait = limiter.attempt(a, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && !wait.is_zero());
        // Another client still gets in, until the global bucket is empty.
        assert!(limiter.attempt(b, t0).is_ok());
        assert!(limiter.attempt(b, t0).is_ok());
        assert!(limiter.attempt(b, t0).is_err(), "global burst used up");
        // A second later: one more for `a` per client, but the global bucket refills at 0.5/s.
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.attempt(a, t1).is_err());
        let t2 = t0 + Duration::from_secs(2);
        assert!(limiter.attempt(a, t2).is_ok());
        // IPv6 addresses in one /64 share a bucket.
        let l6 = LoginLimiter::new(
            Rate {
                burst: 1.0,
                per_sec: 0.001,
            },
            Rate {
                burst: 100.0,
                per_sec: 1.0,
            },
        );
        let x: IpAddr = "2001:db8::1".parse().unwrap();
        let y: IpAddr = "2001:db8::2".parse().unwrap();
        let z: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert!(l6.attempt(Some(x), t0).is_ok());
        assert!(l6.attempt(Some(y), t0).is_err());
        assert!(l6.attempt(Some(z), t0).is_ok());
    }
}
