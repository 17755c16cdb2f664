//! `mailcanary hash-password`: the bcrypt hash of a password, for the web config's
//! `basic_auth_users` (what `htpasswd -nBC 10 "" | tr -d ':\n'` prints), so that making a web
//! config needs nothing but mailcanary itself (scripts/web-secrets uses it; the container image
//! has it). The hash is `$2y$`, the prefix htpasswd writes and the exporter toolkit's examples
//! show; bcrypt's `$2b$` is the same algorithm.
//!
//! The password is read from standard input — one line, its line ending dropped — never from
//! the command line, where `ps` and shell histories would show it. bcrypt's key is at most 72
//! bytes, the password and its terminating NUL; a longer password is refused rather than
//! silently cut.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use bcrypt::{BcryptError, Version};

use crate::status::exit;

/// The longest password bcrypt reads whole: its key is 72 bytes, the terminating NUL included
/// (the bcrypt crate's non-truncating hash refuses 72 bytes and more).
pub const MAX_PASSWORD_BYTES: usize = 71;

#[derive(clap::Args)]
pub struct HashPasswordArgs {
    /// bcrypt cost: 2^COST rounds (10, as `htpasswd -B` and the toolkit's examples use; every
    /// login costs the server one such hash, once per cache miss).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// Why no hash was printed.
#[derive(Debug, thiserror::Error)]
pub enum HashPasswordError {
    #[error("cannot read the password from standard input: {0}")]
    Read(#[from] std::io::Error),
    #[error(
        "no password on standard input (give one line, e.g. `mailcanary hash-password < FILE`)"
    )]
    Empty,
    #[error(
        "the password is {0} bytes long; bcrypt reads at most {MAX_PASSWORD_BYTES}: use a shorter one"
    )]
    TooLong(usize),
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] BcryptError),
}

impl HashPasswordError {
    /// A fixed label for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            HashPasswordError::Read(_) => "read",
            HashPasswordError::Empty => "empty",
            HashPasswordError::TooLong(_) => "too_long",
            HashPasswordError::Bcrypt(_) => "bcrypt",
        }
    }
}

pub fn run(args: &HashPasswordArgs) -> Result<ExitCode, ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "mailcanary: type the password and press Enter (it is shown as typed; pipe it in to avoid that)"
        );
    }
    let mut line = String::new();
    let hashed = stdin
        .lock()
        .read_line(&mut line)
        .map_err(HashPasswordError::from)
        .and_then(|_| hash(&line, args.cost));
    match hashed {
        Ok(h) => {
            println!("{h}");
            Ok(ExitCode::from(exit::OK))
        }
        Err(e) => Err(super::fail(e)),
    }
}

/// The `$2y$` bcrypt hash of the password on `line` (its `\n` or `\r\n` dropped).
pub fn hash(line: &str, cost: u32) -> Result<String, HashPasswordError> {
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(line);
    if password.is_empty() {
        return Err(HashPasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(HashPasswordError::TooLong(password.len()));
    }
    Ok(bcrypt::non_truncating_hash_with_result(password, cost)?.format_for_version(Version::TwoY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_verifies_the_password_without_its_line_ending() {
        for line in ["correct horse\n", "correct horse\r\n", "correct horse"] {
            let h = hash(line, 4).expect("hash");
            assert!(h.starts_with("$2y$04$"), "{h}");
            assert_eq!(h.len(), 60);
            assert!(
                bcrypt::verify("correct horse", &h).expect("verify"),
                "{line:?}"
            );
            assert!(!bcrypt::verify("correct horse\n", &h).expect("verify"));
        }
    }

    #[test]
    fn spaces_are_part_of_the_password() {
        let h = hash(" pw \n", 4).expect("hash");
        assert!(bcrypt::verify(" pw ", &h).expect("verify"));
        assert!(!bcrypt::verify("pw", &h).expect("verify"));
    }

    #[test]
    fn empty_and_over_long_passwords_are_refused() {
        for line in ["", "\n", "\r\n"] {
            let e = hash(line, 4).expect_err("empty");
            assert_eq!(e.reason(), "empty", "{line:?}");
        }
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        let e = hash(&long, 4).expect_err("too long");
        assert_eq!(
            e.to_string(),
            "the password is 72 bytes long; bcrypt reads at most 71: use a shorter one"
        );
        assert!(hash(&"x".repeat(MAX_PASSWORD_BYTES), 4).is_ok());
    }

    #[test]
    fn the_hash_is_what_the_web_config_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("web.yml");
        let h = hash("pw\n", 4).expect("hash");
        std::fs::write(&file, format!("basic_auth_users:\n  prometheus: {h}\n")).expect("write");
        let web = crate::serve::web_config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(web.users.get("prometheus"), Some(&h));
    }
}
