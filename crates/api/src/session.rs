//! The dashboard password and its session cookie.
//!
//! The password is stored as upstream stores it (base64 of a 32-byte salt followed by
//! PBKDF2-HMAC-SHA256 with 100 000 rounds), so a settings document carried over from
//! changedetection.io keeps its password. Sessions are stateless: the cookie is an expiry signed
//! with HMAC keyed by the stored password hash. Nothing is kept server-side, so any process of AWS
//! mode can check a cookie another one issued, and changing or removing the password ends every
//! session at once.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const COOKIE: &str = "changewatch_session";
/// Header the dashboard sends with every request. A cross-site page cannot set it without a CORS
/// preflight, which this server never grants, so cookie-authenticated requests carrying it are
/// same-origin: the CSRF guard.
pub const UI_HEADER: &str = "x-changewatch-ui";
pub const SESSION_SECS: i64 = 7 * 24 * 3600;

const SALT_LEN: usize = 32;
const ROUNDS: u32 = 100_000;

/// Hashes a new password the way upstream's settings form does.
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

/// Checks a password against a stored hash; a malformed hash matches nothing.
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

fn mac(stored_hash: &str, expires: i64) -> Option<String> {
    let mut m = Hmac::<Sha256>::new_from_slice(stored_hash.as_bytes()).ok()?;
    m.update(format!("changewatch-session|{expires}").as_bytes());
    Some(hex(&m.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cookie value valid until `now + SESSION_SECS`.
pub fn issue(stored_hash: &str, now: i64) -> Option<String> {
    let expires = now + SESSION_SECS;
    Some(format!("{expires}.{}", mac(stored_hash, expires)?))
}

/// Whether a cookie value was issued under this password hash and has not expired.
pub fn valid(stored_hash: &str, value: &str, now: i64) -> bool {
    let Some((exp, sig)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = exp.parse::<i64>() else {
        return false;
    };
    if expires < now {
        return false;
    }
    mac(stored_hash, expires).is_some_and(|m| constant_time_eq(m.as_bytes(), sig.as_bytes()))
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
pub fn set_cookie(value: Option<&str>) -> String {
    match value {
        Some(v) => {
            format!("{COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}")
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

/// Whether a request comes from a dashboard allowed in: the UI header, and with a password set,
/// a valid session cookie. `password` is the stored hash (`None` when no password is set).
pub fn dashboard_allowed(headers: &HeaderMap, password: Option<&str>, now: i64) -> bool {
    if !headers.contains_key(UI_HEADER) {
        return false;
    }
    session_ok(headers, password, now)
}

/// The session half of [`dashboard_allowed`], for the socket handshake, which cannot carry
/// custom headers from a browser (its cookie is same-site already).
pub fn session_ok(headers: &HeaderMap, password: Option<&str>, now: i64) -> bool {
    match password {
        None => true,
        Some(hash) => cookie_value(headers).is_some_and(|c| valid(hash, &c, now)),
    }
}

/// Compares without an early exit, so response timing does not leak how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let h = hash_password("a");
        let c = issue(&h, 1000).unwrap();
        assert!(valid(&h, &c, 1000));
        assert!(valid(&h, &c, 1000 + SESSION_SECS));
        assert!(!valid(&h, &c, 1001 + SESSION_SECS), "expired");
        let other = hash_password("a");
        assert!(!valid(&other, &c, 1000), "a new password ends old sessions");
        let (exp, sig) = c.split_once('.').unwrap();
        let forged = format!("{}.{sig}", exp.parse::<i64>().unwrap() + 1000);
        assert!(!valid(&h, &forged, 1000), "the expiry is signed");
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; changewatch_session=xyz.abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz.abc"));
    }
}
