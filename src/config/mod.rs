//! Configuration: strict TOML, validated up front, every error reported at once with its path.
//!
//! `load` reads the file (`raw`: unknown keys are rejected by serde), then `validate` (one file
//! per kind of section) checks meaning and fills defaults. Secrets are loaded during
//! validation, so a missing password file is a config error at start-up, not a failed probe at
//! 3 a.m. A config is plain data: validating one has no effect on the process (the OAuth2 token
//! caches are shared by the running setup, [`crate::oauth::caches`]). Deprecated keys still
//! read (`[reports.NAME]`) and secret files others can read are listed in [`Config::warnings`].

mod audit_targets;
pub mod oauth2;
mod provider;
mod raw;
pub mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit_targets::audit_targets;
pub use oauth2::{Grant, Login, OAuth2, TokenCache};
pub use provider::{PRESETS, Preset};
pub use secret::{Secret, SecretError, SecretSource};
pub use validate::{FieldError, ScheduleError, address_of, cron_schedule};

use raw::RawConfig;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub probe: ProbeConfig,
    pub routes: Vec<Route>,
    pub seeds: Vec<Seed>,
    pub dns_audit: DnsAuditConfig,
    /// Mailboxes that receive routes' bounces, read like seeds (their `inbox_folder` is the
    /// folder bounces arrive in).
    pub bounce_mailboxes: Vec<Seed>,
    /// Mailboxes that receive the domain's DMARC aggregate and TLS reports
    /// (`[report_mailboxes.NAME]`).
    pub report_mailboxes: Vec<ReportMailbox>,
    /// What is valid but unwise, with its config path: deprecated keys still read
    /// (`[reports.NAME]`) and secret files others can read (one warning per file). Logged at
    /// every load (start-up, reload), printed by `check-config`: the file works as written.
    pub warnings: Vec<FieldError>,
}

/// A report mailbox (`[report_mailboxes.NAME]`): read on its schedule; each report about one of
/// `domains` is stored once and counted.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMailbox {
    /// Connection settings, the folder reports arrive in (`inbox_folder`) and whose
    /// Authentication-Results say which reporter a mail is authenticated for (`authserv_ids`),
    /// as a seed's.
    pub mailbox: Seed,
    /// The domains we own, lower case.
    pub domains: Vec<String>,
    /// What happens to a message once every report in it is stored.
    pub after: Cleanup,
    /// Six-field cron expression.
    pub schedule: String,
    /// Reporters with their own metric label, lower case, earned by a mail authenticated for
    /// them; everything else is `other`.
    pub reporters: Vec<String>,
}

/// Reporters that get their own label when the config names none: the big mailbox
/// providers that send aggregate reports, matched in the report's org name or e-mail domain.
pub const DEFAULT_REPORTERS: &[&str] = &[
    "google.com",
    "microsoft.com",
    "yahoo",
    "apple.com",
    "fastmail",
    "comcast",
    "mail.ru",
    "zoho",
    "proton",
];

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Six-field cron expression (seconds first), as tokio-cron-scheduler wants it.
    pub schedule: String,
    /// Seconds between two scheduled rounds (exported so alerts need no hard-coded interval).
    pub interval: Duration,
    pub jitter: Duration,
    pub timeout: Duration,
    pub late_window: Duration,
    /// A probe not found this long after its acceptance is overdue and its pair gets a
    /// confirmation probe; `None`: only bad outcomes are confirmed.
    pub confirm_after: Option<Duration>,
    pub cleanup: Cleanup,
    pub listen: SocketAddr,
    pub state: PathBuf,
    pub retention: Duration,
    pub token_key: Secret,
    pub concurrency: usize,
    /// This instance's name: in its probe tokens and its state rows. Instances sharing seed
    /// mailboxes and the token key judge, count and clean up only their own probes.
    pub instance: String,
}

/// What happens to a probe message of ours once it has been judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    Delete,
    Keep,
    Move(String),
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Implicit TLS (SMTP 465, IMAP 993).
    Tls,
    /// Plain connection upgraded with STARTTLS (SMTP 587, IMAP 143); refuses to go on without it.
    Starttls,
    /// No TLS at all (only for a test server you trust).
    None,
}

/// A login: the user name and how it authenticates (password, or OAuth2 token).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub login: Login,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub auth: Option<Credentials>,
    /// The From header: a mailbox, optionally with a display name.
    pub from: String,
    /// The From address alone.
    pub from_address: String,
    pub envelope_from: String,
    pub helo: Option<String>,
    pub timeout: Duration,
    /// How many probes may follow one another over one SMTP session (1: each its own).
    pub probes_per_session: u32,
    pub sending_ips: Vec<IpAddr>,
    /// The server's signing key, for the audit's published-key comparison.
    pub dkim_key_file: Option<PathBuf>,
    /// DNSBL zones for this route's audit; `None`: `dns_audit.dnsbl_zones`.
    pub dnsbl_zones: Option<Vec<String>>,
    pub dkim_selector: Option<String>,
    pub dkim: Option<DkimSigning>,
    pub message: MessageTemplate,
    /// The name of the bounce mailbox that receives this route's bounces, if any.
    pub bounces: Option<String>,
    /// The Gmail tab its probes should land in; an inbox hit in another tab is a warning
    /// (cause `gmail_tab`). Only seeds whose server speaks Gmail's extensions report a tab.
    pub expect_tab: Option<crate::gmail::Tab>,
    /// The route sends bulk mail: the providers' requirements for bulk senders (RFC 8058
    /// one-click unsubscribe) are scored for it too (`crate::requirements`).
    pub bulk: bool,
    /// Which way the route's probes travel: our server's mail to the seeds (`outbound`), or the
    /// world's mail to our own mailbox (`inbound`).
    pub direction: Direction,
}

/// Which way a route's probes travel, and so whose server a result judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Submitted through our own server to seed mailboxes at the providers (or ours): how the
    /// world receives our mail. The DNS audit and the sender requirements are about these.
    #[default]
    Outbound,
    /// Submitted through a provider's server (an account there) to our own mailbox: how our
    /// MX receives the world's mail (refused, junked, authentication judged by our MX).
    Inbound,
}

impl Direction {
    pub const NAMES: [&'static str; 2] = ["outbound", "inbound"];

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

impl Route {
    /// The From address's domain.
    pub fn from_domain(&self) -> &str {
        domain_of(&self.from_address)
    }
}

/// DKIM signing inside the probe (mail-auth, relaxed/relaxed).
#[derive(Debug, Clone)]
pub struct DkimSigning {
    pub domain: String,
    pub selector: String,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct MessageTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub list_unsubscribe: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub name: String,
    pub provider: &'static str,
    pub address: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub login: Login,
    pub authserv_ids: Vec<String>,
    pub inbox_folder: String,
    /// Configured spam folder; `None` means: find it by SPECIAL-USE `\Junk`, else the preset's.
    pub spam_folder: Option<String>,
    pub preset_spam_folder: Option<String>,
    pub poll_interval: Duration,
    /// Confirmation probes this seed may be sent per hour (a sliding hour).
    pub confirmations_per_hour: u32,
    pub routes: Vec<String>,
}

impl Seed {
    /// Whether a connection made for `self` is as good for `other`: same server, TLS, login and
    /// folders (a reload keeps the connection then; other settings take effect next round).
    pub fn same_mailbox(&self, other: &Seed) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.tls == other.tls
            && self.ca_file == other.ca_file
            && self.username == other.username
            && self.login == other.login
            && self.inbox_folder == other.inbox_folder
            && self.spam_folder == other.spam_folder
            && self.preset_spam_folder == other.preset_spam_folder
    }
}

#[derive(Debug, Clone)]
pub struct DnsAuditConfig {
    pub schedule: String,
    pub nameserver: Option<SocketAddr>,
    pub dnsbl_zones: Vec<String>,
}

/// DNSBL zones queried when the config names none (documented in the README).
pub const DEFAULT_DNSBL_ZONES: &[&str] = &[
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
];

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key the config does not know (`deny_unknown_fields`).
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// The TOML is well formed but its values are not usable: every problem, in file order.
    #[error("config file {path} has {} error(s):\n{}", .errors.len(), ErrorList(.errors))]
    Invalid {
        path: PathBuf,
        errors: Vec<FieldError>,
    },
}

impl ConfigError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        "config"
    }
}

struct ErrorList<'a>(&'a [FieldError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Reads and validates a config file, and logs its [`Config::warnings`] (start-up and every
/// reload; a command that keeps no log prints them: `cli::load_config`).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config = parse(&text, path)?;
    for w in &config.warnings {
        tracing::warn!(path = %path.display(), option = %w.path, "{}", w.problem);
    }
    Ok(config)
}

/// Reads and validates a config file for `oauth login`, which creates the refresh token files:
/// a refresh token file that does not exist yet is no error there.
pub fn load_for_oauth_login(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_with(&text, path, true)
}

/// Parses and validates config text; `path` only names the file in messages and resolves
/// relative paths inside it.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(text, path, false)
}

fn parse_with(text: &str, path: &Path, for_oauth_login: bool) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.message().to_string() + &location(text, e.span()),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    validate::config(raw, base, for_oauth_login).map_err(|errors| ConfigError::Invalid {
        path: path.to_path_buf(),
        errors,
    })
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// The domain of an address (what follows the last `@`).
fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

impl Config {
    /// The route × seed pairs one round probes, in config order.
    pub fn pairs(&self) -> Vec<(&Route, &Seed)> {
        let mut out = Vec::new();
        for seed in &self.seeds {
            for route in &self.routes {
                if seed.routes.contains(&route.name) {
                    out.push((route, seed));
                }
            }
        }
        out
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The routes that measure our own sending (`direction = "outbound"`): what the DNS audit
    /// and the providers' sender requirements are about. An inbound route sends as a provider,
    /// to our own mailbox.
    pub fn outbound_routes(&self) -> impl Iterator<Item = &Route> {
        self.routes
            .iter()
            .filter(|r| r.direction == Direction::Outbound)
    }

    /// Whether `route` sends to `seed` in this config.
    pub fn pair(&self, route: &str, seed: &str) -> bool {
        self.route(route).is_some()
            && self
                .seed(seed)
                .is_some_and(|s| s.routes.iter().any(|r| r == route))
    }

    pub fn seed(&self, name: &str) -> Option<&Seed> {
        self.seeds.iter().find(|s| s.name == name)
    }

    /// Every OAuth2 login of the config, by kind (`seed`, `bounce_mailbox`, `report_mailbox`,
    /// `route`) and name.
    pub fn oauth_logins(&self) -> Vec<(&'static str, &str, &OAuth2)> {
        let mut out = Vec::new();
        for s in &self.seeds {
            if let Some(o) = s.login.oauth2() {
                out.push(("seed", s.name.as_str(), o));
            }
        }
        for b in &self.bounce_mailboxes {
            if let Some(o) = b.login.oauth2() {
                out.push(("bounce_mailbox", b.name.as_str(), o));
            }
        }
        for r in &self.report_mailboxes {
            if let Some(o) = r.mailbox.login.oauth2() {
                out.push(("report_mailbox", r.mailbox.name.as_str(), o));
            }
        }
        for r in &self.routes {
            if let Some(o) = r.auth.as_ref().and_then(|a| a.login.oauth2()) {
                out.push(("route", r.name.as_str(), o));
            }
        }
        out
    }

    /// Route names → seed names, for pre-initialising metric series.
    pub fn pair_names(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (r, s) in self.pairs() {
            m.entry(r.name.clone()).or_default().push(s.name.clone());
        }
        m
    }
}
