//! The web config file of `run --web.config.file` (and `check-config --web.config.file`): TLS and
//! basic auth for every HTTP endpoint, in the YAML format of the Prometheus exporter toolkit
//! (`docs/web-configuration.md` there), so that a Prometheus user's file works unchanged as long
//! as it stays within what mailcanary supports:
//!
//! - `tls_server_config`: `cert_file`, `key_file` (both required), `client_auth_type`
//!   (`NoClientCert`, `VerifyClientCertIfGiven`, `RequireAndVerifyClientCert`), `client_ca_file`,
//!   `min_version` / `max_version` (`TLS12`, `TLS13`), `cipher_suites` (Go's names of the
//!   suites rustls has), `curve_preferences` (`X25519`, `CurveP256`, `CurveP384`),
//!   `prefer_server_cipher_suites`;
//! - `basic_auth_users`: user name → bcrypt hash.
//!
//! Everything else the toolkit knows is refused with the reason (inline `cert`/`key`/
//! `client_ca`, `client_allowed_sans`, the client-auth types that ask for a certificate without
//! verifying it, TLS 1.0/1.1, CBC suites, P-521, `http_server_config`, `rate_limit`), and any
//! other key is an error (`deny_unknown_fields`). Like the main config, every problem is
//! reported at once with its path; relative file names are relative to the web config file.
//! The certificate and key files are read here too, so a file that `check-config` passes
//! starts serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustls::SupportedCipherSuite;
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::ring as provider;
use serde::Deserialize;

use crate::config::FieldError;
use crate::serve::tls::{ClientAuth, TlsSettings};

/// A validated web config.
#[derive(Clone)]
pub struct WebConfig {
    /// The file it was read from (messages name it).
    pub path: PathBuf,
    /// `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    /// User name → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
}

impl std::fmt::Debug for WebConfig {
    // The hashes are not secrets, but they are offline-guessable: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a web config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, a value of the wrong type, or a key the format does not know.
    #[error("web config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// Every problem of a well-formed file, in file order.
    #[error("web config file {path} has {} error(s):\n{}", .errors.len(), list(.errors))]
    Invalid {
        path: PathBuf,
        errors: Vec<FieldError>,
    },
}

impl WebConfigError {
    /// A fixed label for logs.
    pub fn reason(&self) -> &'static str {
        "web_config"
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    // Known to the toolkit, refused here with the reason.
    http_server_config: Option<serde_yaml_ng::Value>,
    rate_limit: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    // Known to the toolkit, refused here with the reason.
    cert: Option<serde_yaml_ng::Value>,
    key: Option<serde_yaml_ng::Value>,
    client_ca: Option<serde_yaml_ng::Value>,
    client_allowed_sans: Option<serde_yaml_ng::Value>,
}

/// Reads and validates a web config file.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates web config text; `path` names the file in messages and resolves the
/// relative file names inside it.
pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
    // An empty file (or only comments) is valid: no TLS, no authentication, as in the toolkit.
    let raw: Option<RawWebConfig> =
        serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let raw = raw.unwrap_or_default();
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errors = Errors::default();
    let tls = raw
        .tls_server_config
        .and_then(|t| tls_settings(t, base, &mut errors));
    let mut users = BTreeMap::new();
    for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
        let at = format!("basic_auth_users.{user}");
        if user.is_empty() {
            errors.push("basic_auth_users", "a user name must not be empty");
        } else if user.contains(':') || user.chars().any(char::is_control) {
            // RFC 7617 §2: the user-id ends at the first colon; control characters cannot be
            // sent.
            errors.push(&at, "a user name cannot contain ':' or control characters");
        } else if let Some(problem) = bcrypt_problem(&hash) {
            errors.push(
                &at,
                format_args!(
                    "expected a bcrypt hash such as `mailcanary hash-password` prints ($2y$10$…): {problem}"
                ),
            );
        } else {
            users.insert(user, hash);
        }
    }
    if raw.http_server_config.is_some() {
        errors.push(
            "http_server_config",
            "not supported: mailcanary serves HTTP/1.1 and always sends its own security headers \
             (Content-Security-Policy, X-Content-Type-Options, X-Frame-Options, Referrer-Policy)",
        );
    }
    if raw.rate_limit.is_some() {
        errors.push(
            "rate_limit",
            "not supported: mailcanary limits the connections of each client instead",
        );
    }
    if errors.0.is_empty() {
        Ok(WebConfig {
            path: path.to_path_buf(),
            tls,
            users,
        })
    } else {
        Err(WebConfigError::Invalid {
            path: path.to_path_buf(),
            errors: errors.0,
        })
    }
}

/// What is wrong with a bcrypt hash, if anything.
fn bcrypt_problem(hash: &str) -> Option<String> {
    match hash.parse::<bcrypt::HashParts>() {
        Ok(parts) if !(4..=31).contains(&parts.get_cost()) => {
            Some(format!("its cost {} is outside 4..31", parts.get_cost()))
        }
        Ok(_) => None,
        Err(bcrypt::BcryptError::InvalidHash(why)) => Some(why.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl std::fmt::Display, problem: impl std::fmt::Display) {
        self.0.push(FieldError {
            path: path.to_string(),
            problem: problem.to_string(),
        });
    }
}

const TLS: &str = "tls_server_config";

fn tls_settings(raw: RawTls, base: &Path, errors: &mut Errors) -> Option<TlsSettings> {
    let before = errors.0.len();
    let refused = [
        (
            "cert",
            raw.cert.is_some(),
            "inline certificates are not supported; name the file with cert_file",
        ),
        (
            "key",
            raw.key.is_some(),
            "inline keys are not supported (a secret never goes in a config file); name the file with key_file",
        ),
        (
            "client_ca",
            raw.client_ca.is_some(),
            "inline CA certificates are not supported; name the file with client_ca_file",
        ),
        (
            "client_allowed_sans",
            raw.client_allowed_sans.is_some(),
            "not supported: trust only the client certificates of a CA of your own in client_ca_file",
        ),
    ];
    for (key, present, why) in refused {
        if present {
            errors.push(format_args!("{TLS}.{key}"), why);
        }
    }
    let file = |name: &str, value: Option<String>, errors: &mut Errors| -> Option<PathBuf> {
        match value.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(
                    format_args!("{TLS}.{name}"),
                    "required: the PEM file of the server's certificate chain and its key go in cert_file and key_file",
                );
                None
            }
            Some(v) => Some(base.join(v)),
        }
    };
    let cert_file = file("cert_file", raw.cert_file, errors);
    let key_file = file("key_file", raw.key_file, errors);
    let client_auth = match raw.client_auth_type.as_deref() {
        None | Some("" | "NoClientCert") => Some(ClientAuth::NoClientCert),
        Some("VerifyClientCertIfGiven") => Some(ClientAuth::VerifyClientCertIfGiven),
        Some("RequireAndVerifyClientCert") => Some(ClientAuth::RequireAndVerifyClientCert),
        Some(v @ ("RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert")) => {
            errors.push(
                format_args!("{TLS}.client_auth_type"),
                format_args!(
                    "{v} asks for a client certificate without verifying it, which proves nothing: use RequireAndVerifyClientCert with client_ca_file"
                ),
            );
            None
        }
        Some(v) => {
            errors.push(
                format_args!("{TLS}.client_auth_type"),
                format_args!(
                    "expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert, got {v:?}"
                ),
            );
            None
        }
    };
    let client_ca_file = raw
        .client_ca_file
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| base.join(v));
    match (client_auth, &client_ca_file) {
        (Some(ClientAuth::NoClientCert), Some(_)) => errors.push(
            format_args!("{TLS}.client_ca_file"),
            "set without a client_auth_type that verifies client certificates (RequireAndVerifyClientCert or VerifyClientCertIfGiven)",
        ),
        (Some(a), None) if a != ClientAuth::NoClientCert => errors.push(
            format_args!("{TLS}.client_ca_file"),
            format_args!(
                "required with client_auth_type {}: the CA that signs the client certificates",
                a.as_str()
            ),
        ),
        _ => {}
    }
    let min = version("min_version", raw.min_version.as_deref(), 12, errors);
    let max = version("max_version", raw.max_version.as_deref(), 13, errors);
    let versions = match (min, max) {
        (Some(min), Some(max)) if min > max => {
            errors.push(
                format_args!("{TLS}.min_version"),
                format_args!("TLS{min} is above max_version TLS{max}"),
            );
            Vec::new()
        }
        (Some(min), Some(max)) => [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect(),
        _ => Vec::new(),
    };
    let cipher_suites = cipher_suites(raw.cipher_suites.unwrap_or_default(), errors);
    let kx_groups = curves(raw.curve_preferences.unwrap_or_default(), errors);
    if errors.0.len() > before {
        return None;
    }
    let settings = TlsSettings {
        cert_file: cert_file?,
        key_file: key_file?,
        client_auth: client_auth?,
        client_ca_file,
        versions,
        cipher_suites,
        kx_groups,
        prefer_server_order: raw.prefer_server_cipher_suites.unwrap_or(true),
    };
    // The files themselves: a file check-config passes must also start serving.
    if let Err(problems) = crate::serve::tls::server_config(&settings) {
        for p in problems {
            errors.push(format_args!("{TLS}.{}", p.key), p.problem);
        }
        return None;
    }
    Some(settings)
}

/// `TLS12` → 12, `TLS13` → 13; `default` when unset.
fn version(key: &str, value: Option<&str>, default: u8, errors: &mut Errors) -> Option<u8> {
    match value {
        None | Some("") => Some(default),
        Some("TLS12") => Some(12),
        Some("TLS13") => Some(13),
        Some(v @ ("TLS10" | "TLS11")) => {
            errors.push(
                format_args!("{TLS}.{key}"),
                format_args!("{v} is not supported (obsolete, RFC 8996): use TLS12 or TLS13"),
            );
            None
        }
        Some(v) => {
            errors.push(
                format_args!("{TLS}.{key}"),
                format_args!("expected TLS12 or TLS13, got {v:?}"),
            );
            None
        }
    }
}

/// Go's names (`crypto/tls` constants) of the TLS 1.2 suites rustls implements with ring.
const TLS12_SUITES: &[(&str, SupportedCipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// TLS 1.3 suites: Go accepts their names but does not let them be chosen (all stay on), and
/// neither does mailcanary.
const TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// The provider's TLS 1.3 suites, then the chosen TLS 1.2 ones in the order given (all of
/// them, in ring's order, when none is named).
fn cipher_suites(names: Vec<String>, errors: &mut Errors) -> Vec<SupportedCipherSuite> {
    let all = provider::default_provider().cipher_suites;
    let mut out: Vec<SupportedCipherSuite> = all
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    if names.is_empty() {
        out.extend(
            all.iter()
                .filter(|s| s.version() == &rustls::version::TLS12),
        );
        return out;
    }
    for (i, name) in names.iter().enumerate() {
        if let Some((_, suite)) = TLS12_SUITES.iter().find(|(n, _)| n == name) {
            if !out.contains(suite) {
                out.push(*suite);
            }
        } else if TLS13_SUITES.contains(&name.as_str()) {
        } else if name.contains("_CBC_") || name.contains("_RC4_") || name.contains("3DES") {
            errors.push(
                format_args!("{TLS}.cipher_suites[{i}]"),
                format_args!(
                    "{name} is not supported (CBC, RC4 and 3DES suites are not offered): use an ECDHE GCM or CHACHA20_POLY1305 suite"
                ),
            );
        } else {
            errors.push(
                format_args!("{TLS}.cipher_suites[{i}]"),
                format_args!("unknown cipher suite {name:?}"),
            );
        }
    }
    out
}

/// `curve_preferences` (Go's names) as key-exchange groups, in the order given.
fn curves(names: Vec<String>, errors: &mut Errors) -> Vec<&'static dyn SupportedKxGroup> {
    if names.is_empty() {
        return provider::default_provider().kx_groups;
    }
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let group: &'static dyn SupportedKxGroup = match name.as_str() {
            "X25519" => provider::kx_group::X25519,
            "CurveP256" => provider::kx_group::SECP256R1,
            "CurveP384" => provider::kx_group::SECP384R1,
            "CurveP521" => {
                errors.push(
                    format_args!("{TLS}.curve_preferences[{i}]"),
                    "CurveP521 is not supported: use X25519, CurveP256 or CurveP384",
                );
                continue;
            }
            other => {
                errors.push(
                    format_args!("{TLS}.curve_preferences[{i}]"),
                    format_args!("expected X25519, CurveP256 or CurveP384, got {other:?}"),
                );
                continue;
            }
        };
        if !out.iter().any(|g| g.name() == group.name()) {
            out.push(group);
        }
    }
    out
}

impl WebConfig {
    /// One line for `check-config` and the start-up log.
    pub fn summary(&self) -> String {
        let tls = match &self.tls {
            None => "no TLS".to_string(),
            Some(t) => {
                let versions: Vec<&str> = t
                    .versions
                    .iter()
                    .map(|v| match v.version {
                        rustls::ProtocolVersion::TLSv1_2 => "1.2",
                        _ => "1.3",
                    })
                    .collect();
                let clients = match t.client_auth {
                    ClientAuth::NoClientCert => "",
                    ClientAuth::VerifyClientCertIfGiven => {
                        ", client certificates verified if given"
                    }
                    ClientAuth::RequireAndVerifyClientCert => ", client certificates required",
                };
                format!("TLS {}{clients}", versions.join(" and "))
            }
        };
        let auth = match self.users.len() {
            0 => "no basic auth".to_string(),
            1 => "basic auth, 1 user".to_string(),
            n => format!("basic auth, {n} users"),
        };
        format!("{tls}, {auth}")
    }
}

#[cfg(test)]
mod tests;
