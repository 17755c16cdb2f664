//! Secrets (passwords, the probe-token key): read from an environment variable or a file, never
//! written inline by default, never shown by `Debug`, logs or metrics.

use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from, as written in the config (`*_env` or `*_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// A loaded secret. Its `Debug` prints `"***"`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret's value, for the one place that needs it (SMTP AUTH, IMAP LOGIN, HMAC).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl SecretSource {
    /// Resolves `*_env` / `*_file`: exactly one of them must be set.
    pub fn from_pair(env: &Option<String>, file: &Option<PathBuf>) -> Result<Option<Self>, String> {
        match (env, file) {
            (Some(_), Some(_)) => Err("set only one of `_env` and `_file`".to_string()),
            (Some(e), None) if e.is_empty() => Err("`_env` must name a variable".to_string()),
            (Some(e), None) => Ok(Some(SecretSource::Env(e.clone()))),
            (None, Some(f)) => Ok(Some(SecretSource::File(f.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// Reads the secret now. Trailing newlines of a file are dropped (they come from editors).
    pub fn load(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            },
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\r', '\n']).to_string();
                    if v.is_empty() {
                        Err(format!("secret file {} is empty", path.display()))
                    } else {
                        Ok(Secret(v))
                    }
                }
                Err(e) => Err(format!("cannot read secret file {}: {e}", path.display())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn exactly_one_source() {
        assert!(SecretSource::from_pair(&Some("A".into()), &Some("/x".into())).is_err());
        assert_eq!(SecretSource::from_pair(&None, &None), Ok(None));
        assert_eq!(
            SecretSource::from_pair(&Some("A".into()), &None),
            Ok(Some(SecretSource::Env("A".into())))
        );
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").expect("write");
        let s = SecretSource::File(p).load().expect("load");
        assert_eq!(s.expose(), "s3cret");
    }
}
