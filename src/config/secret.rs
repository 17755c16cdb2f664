//! Secrets (passwords, the probe-token key): read from an environment variable or a file, never
//! written inline by default, never shown by `Debug`, logs or metrics.
//!
//! A secret file that others can read gets a warning ([`permission_warning`]), as ssh warns
//! about a private key that is too open — a warning, not ssh's refusal: a Kubernetes Secret
//! volume is mounted 0644 unless `defaultMode` says otherwise, a Docker secret 0444, and
//! refusing to start there would turn a hardening hint into an outage. The warning says what
//! to change.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a secret cannot be had. The messages name the variable or the file, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Both `*_env` and `*_file` are set: which one is meant?
    #[error("set only one of `_env` and `_file`")]
    BothSources,
    /// `*_env` is the empty string.
    #[error("`_env` must name a variable")]
    EmptyEnvName,
    /// The environment variable is not set (or not valid Unicode).
    #[error("environment variable {name} is not set")]
    EnvUnset { name: String },
    /// The environment variable is set to the empty string.
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    /// The secret file cannot be read.
    #[error("cannot read secret file {}: {source}", .path.display())]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The secret file is empty (or holds only line breaks).
    #[error("secret file {} is empty", .path.display())]
    FileEmpty { path: PathBuf },
}

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
    pub fn from_pair(
        env: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Result<Option<Self>, SecretError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(SecretError::BothSources),
            (Some(e), None) if e.is_empty() => Err(SecretError::EmptyEnvName),
            (Some(e), None) => Ok(Some(SecretSource::Env(e.clone()))),
            (None, Some(f)) => Ok(Some(SecretSource::File(f.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// Reads the secret now. Trailing newlines of a file are dropped (they come from editors).
    pub fn load(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(SecretError::EnvEmpty { name: name.clone() }),
                Err(_) => Err(SecretError::EnvUnset { name: name.clone() }),
            },
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\r', '\n']).to_string();
                    if v.is_empty() {
                        Err(SecretError::FileEmpty { path: path.clone() })
                    } else {
                        Ok(Secret(v))
                    }
                }
                Err(source) => Err(SecretError::FileUnreadable {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}

/// Why a secret file is too open, or `None`: readable or writable by others (`o+r`, `o+w`),
/// or by a group other than the one mailcanary runs as (`g+r`, `g+w`). A file of
/// mailcanary's own group may be group-readable: that is how a root-owned secret is shared
/// with one service (`root:mailcanary 0640`), and what a Kubernetes `fsGroup` does. The file's
/// target is checked when it is a symlink (Kubernetes mounts secrets as symlinks). `None` too
/// when the file cannot be looked at (its reading reports that) and off Unix.
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        // SAFETY: getegid(2) cannot fail and touches no memory of ours.
        let our_group = unsafe { libc::getegid() };
        too_open(meta.mode(), meta.gid(), our_group).map(|who| {
            format!(
                "secret file {} is readable or writable by {who} (mode {:04o}): run \
                 `chmod 600` on it, or `chmod 640` with mailcanary's group as its group",
                path.display(),
                meta.mode() & 0o7777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Who besides mailcanary may read or write a file of `mode` and group `gid`, when we run as
/// group `our_gid`: `"others"`, `"its group"`, both, or `None`.
#[cfg(unix)]
fn too_open(mode: u32, gid: u32, our_gid: u32) -> Option<&'static str> {
    let others = mode & 0o006 != 0;
    let group = mode & 0o060 != 0 && gid != our_gid;
    match (group, others) {
        (true, true) => Some("its group and others"),
        (false, true) => Some("others"),
        (true, false) => Some("its group"),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn files_others_can_read_are_too_open() {
        assert_eq!(too_open(0o600, 5, 7), None);
        assert_eq!(too_open(0o400, 5, 7), None);
        assert_eq!(too_open(0o644, 5, 7), Some("its group and others"));
        assert_eq!(too_open(0o604, 7, 7), Some("others"));
        assert_eq!(too_open(0o602, 7, 7), Some("others"));
        assert_eq!(too_open(0o640, 5, 7), Some("its group"));
        assert_eq!(too_open(0o620, 5, 7), Some("its group"));
        // Our own group (a `root:mailcanary 0640` file, a Kubernetes fsGroup): no warning.
        assert_eq!(too_open(0o640, 7, 7), None);
        assert_eq!(too_open(0o440, 7, 7), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_warning_names_the_file_its_mode_and_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(permission_warning(&p), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).expect("chmod");
        assert_eq!(
            permission_warning(&p),
            Some(format!(
                "secret file {} is readable or writable by others (mode 0604): run `chmod 600` \
                 on it, or `chmod 640` with mailcanary's group as its group",
                p.display()
            ))
        );
        // Through a symlink (as Kubernetes mounts secrets), the target's mode counts.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).expect("symlink");
        assert!(permission_warning(&link).is_some());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(permission_warning(&link), None);
        assert_eq!(permission_warning(&dir.path().join("missing")), None);
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn exactly_one_source() {
        assert!(matches!(
            SecretSource::from_pair(&Some("A".into()), &Some("/x".into())),
            Err(SecretError::BothSources)
        ));
        assert!(matches!(
            SecretSource::from_pair(&Some(String::new()), &None),
            Err(SecretError::EmptyEnvName)
        ));
        assert!(matches!(SecretSource::from_pair(&None, &None), Ok(None)));
        assert_eq!(
            SecretSource::from_pair(&Some("A".into()), &None).expect("one source"),
            Some(SecretSource::Env("A".into()))
        );
    }

    #[test]
    fn unusable_sources_say_which() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let err = SecretSource::File(empty.clone()).load().expect_err("empty");
        assert!(matches!(err, SecretError::FileEmpty { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("secret file {} is empty", empty.display())
        );
        let missing = dir.path().join("missing");
        let err = SecretSource::File(missing).load().expect_err("missing");
        assert!(matches!(err, SecretError::FileUnreadable { .. }), "{err:?}");
        let err = SecretSource::Env("MAILCANARY_TEST_NEVER_SET_4F1B".into())
            .load()
            .expect_err("unset");
        assert_eq!(
            err.to_string(),
            "environment variable MAILCANARY_TEST_NEVER_SET_4F1B is not set"
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
