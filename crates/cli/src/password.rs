//! `changewatch hash-password`: the dashboard password as a `SALTED_PASS` value (upstream's
//! format), for deployments that fix the password in their environment: the AWS stack's
//! `DashboardPasswordHash` parameter, or `serve` on a network address.

use std::io::Read;
use std::process::ExitCode;

/// Longest password read: PBKDF2 takes any length, but a runaway pipe should not be hashed.
const MAX_LEN: usize = 4096;

/// Reads the password from standard input (one line; the line end is not part of it), so it
/// never appears in the process list or the shell history, and prints its hash.
pub fn run() -> ExitCode {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin()
        .take(MAX_LEN as u64 + 2)
        .read_to_end(&mut raw)
    {
        eprintln!("changewatch hash-password: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    match hash_line(&raw) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("changewatch hash-password: {e}");
            ExitCode::from(2)
        }
    }
}

fn hash_line(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "the password is not UTF-8 text")?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err("give the password on standard input, e.g. `read -rs PW && printf '%s' \"$PW\" | changewatch hash-password`".into());
    }
    if line.len() > MAX_LEN {
        return Err(format!("the password is longer than {MAX_LEN} bytes"));
    }
    if text.lines().nth(1).is_some_and(|l| !l.is_empty()) {
        return Err("more than one line on standard input".into());
    }
    Ok(changewatch_api::session::hash_password(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_verifies_and_the_line_end_is_not_part_of_it() {
        for input in ["s3cret\n", "s3cret", "s3cret\r\n"] {
            let hash = hash_line(input.as_bytes()).unwrap();
            assert!(
                changewatch_api::session::verify_password(&hash, "s3cret"),
                "{input:?}"
            );
            assert_eq!(hash.len(), 88, "upstream's SALTED_PASS: base64 of 64 bytes");
        }
    }

    #[test]
    fn nothing_to_hash_is_refused() {
        assert!(hash_line(b"").is_err());
        assert!(hash_line(b"\n").is_err());
        assert!(hash_line(b"a\nb\n").is_err());
        assert!(hash_line(&[0xff, 0xfe]).is_err());
    }
}
