//! Configuration: strict TOML, validated up front, every error reported at once with its path.
//!
//! `load` reads the file (unknown keys are rejected by serde), then `validate` checks meaning and
//! fills defaults. Secrets are loaded during validation, so a missing password file is a config
//! error at start-up, not a failed probe at 3 a.m.

mod audit_targets;
mod provider;
mod raw;
pub mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audit_targets::audit_targets;
pub use provider::{PRESETS, Preset};
pub use secret::{Secret, SecretSource};

use raw::{RawConfig, RawRoute, RawSeed};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub probe: ProbeConfig,
    pub routes: Vec<Route>,
    pub seeds: Vec<Seed>,
    pub dns_audit: DnsAuditConfig,
}

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Six-field cron expression (seconds first), as tokio-cron-scheduler wants it.
    pub schedule: String,
    /// Seconds between two scheduled rounds (exported so alerts need no hard-coded interval).
    pub interval: Duration,
    pub jitter: Duration,
    pub timeout: Duration,
    pub late_window: Duration,
    pub cleanup: Cleanup,
    pub listen: SocketAddr,
    pub state: PathBuf,
    pub retention: Duration,
    pub token_key: Secret,
    pub concurrency: usize,
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

#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
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
    pub sending_ips: Vec<IpAddr>,
    /// The server's signing key, for the audit's published-key comparison.
    pub dkim_key_file: Option<PathBuf>,
    /// DNSBL zones for this route's audit; `None`: `dns_audit.dnsbl_zones`.
    pub dnsbl_zones: Option<Vec<String>>,
    pub dkim_selector: Option<String>,
    pub dkim: Option<DkimSigning>,
    pub message: MessageTemplate,
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

#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub provider: &'static str,
    pub address: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    pub authserv_ids: Vec<String>,
    pub inbox_folder: String,
    /// Configured spam folder; `None` means: find it by SPECIAL-USE `\Junk`, else the preset's.
    pub spam_folder: Option<String>,
    pub preset_spam_folder: Option<String>,
    pub poll_interval: Duration,
    pub routes: Vec<String>,
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
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path} has {} error(s):\n{}", .errors.len(), ErrorList(.errors))]
    Invalid { path: PathBuf, errors: Vec<String> },
}

impl ConfigError {
    pub fn reason(&self) -> &'static str {
        "config"
    }
}

struct ErrorList<'a>(&'a [String]);

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

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `path` only names the file in messages and resolves
/// relative paths inside it.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.message().to_string() + &location(text, e.span()),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    validate(raw, base).map_err(|errors| ConfigError::Invalid {
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

/// Collects errors with their config path, so that all of them are reported at once.
#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, path: impl fmt::Display, msg: impl fmt::Display) {
        self.0.push(format!("{path}: {msg}"));
    }
}

fn validate(raw: RawConfig, base: &Path) -> Result<Config, Vec<String>> {
    let mut errs = Errors::default();
    let probe = validate_probe(&raw, base, &mut errs);
    if raw.routes.is_empty() {
        errs.push("routes", "at least one route is required");
    }
    if raw.seeds.is_empty() {
        errs.push("seeds", "at least one seed mailbox is required");
    }
    let routes: Vec<Route> = raw
        .routes
        .iter()
        .filter_map(|(name, r)| validate_route(name, r, base, &mut errs))
        .collect();
    let route_names: Vec<String> = raw.routes.keys().cloned().collect();
    let seeds: Vec<Seed> = raw
        .seeds
        .iter()
        .filter_map(|(name, s)| validate_seed(name, s, base, &route_names, &mut errs))
        .collect();
    let dns_audit = validate_dns_audit(&raw, &mut errs);
    match (probe, dns_audit) {
        (Some(probe), Some(dns_audit)) if errs.0.is_empty() => Ok(Config {
            probe,
            routes,
            seeds,
            dns_audit,
        }),
        _ => Err(errs.0),
    }
}

fn validate_probe(raw: &RawConfig, base: &Path, errs: &mut Errors) -> Option<ProbeConfig> {
    let p = &raw.probe;
    let schedule = p.schedule.as_deref().unwrap_or("*/5 * * * *");
    let (schedule, interval) = match cron_schedule(schedule) {
        Ok(v) => (Some(v.0), v.1),
        Err(e) => {
            errs.push("probe.schedule", e);
            (None, Duration::ZERO)
        }
    };
    let jitter = duration(errs, "probe.jitter", p.jitter.as_deref(), "0s");
    let timeout = duration(errs, "probe.timeout", p.timeout.as_deref(), "10m");
    let late_window = duration(errs, "probe.late_window", p.late_window.as_deref(), "2h");
    let retention = duration(errs, "probe.retention", p.retention.as_deref(), "30d");
    if let (Some(t), Some(l)) = (timeout, late_window)
        && l < t
    {
        errs.push(
            "probe.late_window",
            format!(
                "must be at least probe.timeout ({})",
                humantime::format_duration(t)
            ),
        );
    }
    if let (Some(t), Some(_)) = (timeout, schedule.as_ref())
        && t.is_zero()
    {
        errs.push("probe.timeout", "must be greater than 0");
    }
    let cleanup = match p.cleanup.as_deref().unwrap_or("delete") {
        "delete" => Some(Cleanup::Delete),
        "keep" => Some(Cleanup::Keep),
        other => match other.strip_prefix("move:") {
            Some(folder) if !folder.trim().is_empty() => Some(Cleanup::Move(folder.to_string())),
            _ => {
                errs.push(
                    "probe.cleanup",
                    format!("expected \"delete\", \"keep\" or \"move:<folder>\", got {other:?}"),
                );
                None
            }
        },
    };
    let listen_text = p.listen.as_deref().unwrap_or("127.0.0.1:9925");
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(
                "probe.listen",
                format!("expected an address like 127.0.0.1:9925, got {listen_text:?}"),
            );
            None
        }
    };
    let state = resolve(
        base,
        p.state
            .clone()
            .unwrap_or_else(|| PathBuf::from("mailcanary.sqlite")),
    );
    let token_key_file = p.token_key_file.clone().map(|f| resolve(base, f));
    let token_key = match SecretSource::from_pair(&p.token_key_env, &token_key_file) {
        Ok(Some(src)) => match src.load() {
            Ok(k) if k.expose().len() >= 16 => Some(k),
            Ok(_) => {
                errs.push("probe.token_key", "must be at least 16 characters long");
                None
            }
            Err(e) => {
                errs.push("probe.token_key", e);
                None
            }
        },
        Ok(None) => {
            errs.push(
                "probe.token_key",
                "set token_key_env or token_key_file (the HMAC key that marks our probe messages)",
            );
            None
        }
        Err(e) => {
            errs.push("probe.token_key", e);
            None
        }
    };
    let concurrency = match p.concurrency.unwrap_or(32) {
        0 => {
            errs.push("probe.concurrency", "must be at least 1");
            1
        }
        n => n as usize,
    };
    Some(ProbeConfig {
        schedule: schedule?,
        interval,
        jitter: jitter?,
        timeout: timeout?,
        late_window: late_window?,
        cleanup: cleanup?,
        listen: listen?,
        state,
        retention: retention?,
        token_key: token_key?,
        concurrency,
    })
}

/// Accepts 5-field cron (minute first) or 6-field (seconds first); returns the 6-field form and
/// the interval between its next two runs.
pub fn cron_schedule(expr: &str) -> Result<(String, Duration), String> {
    let fields = expr.split_whitespace().count();
    let six = match fields {
        5 => format!("0 {}", expr.trim()),
        6 => expr.trim().to_string(),
        n => {
            return Err(format!(
                "expected a cron expression of 5 or 6 fields, got {n} in {expr:?}"
            ));
        }
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
    let now = chrono::Utc::now();
    let first = cron
        .find_next_occurrence(&now, false)
        .map_err(|e| format!("cron expression {expr:?} never runs: {e}"))?;
    let second = cron
        .find_next_occurrence(&first, false)
        .map_err(|e| format!("cron expression {expr:?} runs only once: {e}"))?;
    let interval = (second - first).to_std().unwrap_or(Duration::ZERO);
    Ok((six, interval))
}

fn duration(errs: &mut Errors, path: &str, value: Option<&str>, default: &str) -> Option<Duration> {
    let text = value.unwrap_or(default);
    match humantime::parse_duration(text) {
        Ok(d) => Some(d),
        Err(e) => {
            errs.push(
                path,
                format!("expected a duration like \"30s\" or \"10m\", got {text:?} ({e})"),
            );
            None
        }
    }
}

fn port(errs: &mut Errors, path: &str, value: Option<i64>, default: u16) -> u16 {
    match value {
        None => default,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => {
            errs.push(path, format!("expected 1..65535, got {p}"));
            default
        }
    }
}

fn tls_mode(errs: &mut Errors, path: &str, value: Option<&str>, default: TlsMode) -> TlsMode {
    match value {
        None => default,
        Some("tls") => TlsMode::Tls,
        Some("starttls") => TlsMode::Starttls,
        Some("none") => TlsMode::None,
        Some(other) => {
            errs.push(
                path,
                format!("expected \"tls\", \"starttls\" or \"none\", got {other:?}"),
            );
            default
        }
    }
}

fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { base.join(p) }
}

fn ca_file(errs: &mut Errors, path: &str, base: &Path, value: &Option<PathBuf>) -> Option<PathBuf> {
    let p = resolve(base, value.clone()?);
    if !p.is_file() {
        errs.push(path, format!("no such file: {}", p.display()));
    }
    Some(p)
}

fn password(
    errs: &mut Errors,
    path: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
) -> Option<Secret> {
    let file = file.clone().map(|f| resolve(base, f));
    match SecretSource::from_pair(env, &file) {
        Ok(Some(src)) => match src.load() {
            Ok(s) => Some(s),
            Err(e) => {
                errs.push(path, e);
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            errs.push(path, e);
            None
        }
    }
}

/// Names become metric labels and parts of the probe token: keep them short and plain.
fn check_name(errs: &mut Errors, section: &str, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errs.push(
            format!("{section}.{name}"),
            "names may use only letters, digits, '-' and '_' (at most 64)",
        );
    }
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// Extracts the address from `Name <addr>` or `addr`.
pub fn address_of(mailbox: &str) -> Option<String> {
    let m = mailbox.trim();
    let addr = match (m.rfind('<'), m.rfind('>')) {
        (Some(a), Some(b)) if a < b => &m[a + 1..b],
        (None, None) => m,
        _ => return None,
    };
    let (local, domain) = addr.rsplit_once('@')?;
    let valid = !local.is_empty()
        && domain.contains('.')
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c.is_control());
    valid.then(|| addr.to_string())
}

fn validate_route(name: &str, r: &RawRoute, base: &Path, errs: &mut Errors) -> Option<Route> {
    let at = |k: &str| format!("routes.{name}.{k}");
    check_name(errs, "routes", name);
    let host = match r.host.as_deref() {
        Some(h) if !h.trim().is_empty() => h.to_string(),
        _ => {
            errs.push(at("host"), "required (the SMTP server to send through)");
            String::new()
        }
    };
    let tls = tls_mode(errs, &at("tls"), r.tls.as_deref(), TlsMode::Starttls);
    let default_port = match tls {
        TlsMode::Tls => 465,
        TlsMode::Starttls => 587,
        TlsMode::None => 25,
    };
    let port = port(errs, &at("port"), r.port, default_port);
    let ca_file = ca_file(errs, &at("ca_file"), base, &r.ca_file);
    let password = password(
        errs,
        &at("password"),
        &r.password_env,
        &r.password_file,
        base,
    );
    let auth = match (&r.username, password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p,
        }),
        (None, None) => None,
        (Some(_), None) => {
            if r.password_env.is_none() && r.password_file.is_none() {
                errs.push(
                    at("password"),
                    "username is set: set password_env or password_file too",
                );
            }
            None
        }
        (None, Some(_)) => {
            errs.push(at("username"), "a password is set: set the username too");
            None
        }
    };
    if auth.is_some() && tls == TlsMode::None {
        errs.push(
            at("tls"),
            "refusing to send a password without TLS; use \"starttls\" or \"tls\"",
        );
    }
    let from = r.from.clone().unwrap_or_default();
    let from_address = match address_of(&from) {
        Some(a) => a,
        None => {
            errs.push(
                at("from"),
                format!("expected an address like \"Probe <probe@example.com>\", got {from:?}"),
            );
            String::new()
        }
    };
    let envelope_from = match &r.envelope_from {
        Some(e) => match address_of(e) {
            Some(a) => a,
            None => {
                errs.push(
                    at("envelope_from"),
                    format!("expected an address, got {e:?}"),
                );
                String::new()
            }
        },
        None => from_address.clone(),
    };
    let timeout = duration(errs, &at("timeout"), r.timeout.as_deref(), "30s");
    let mut sending_ips = Vec::new();
    for ip in &r.sending_ips {
        match ip.parse::<IpAddr>() {
            Ok(a) => sending_ips.push(a),
            Err(_) => errs.push(at("sending_ips"), format!("not an IP address: {ip:?}")),
        }
    }
    let dkim = r.dkim.as_ref().and_then(|d| {
        let domain = d
            .domain
            .clone()
            .unwrap_or_else(|| domain_of(&from_address).to_string());
        let selector = d.selector.clone();
        let key_file = d.key_file.clone().map(|k| resolve(base, k));
        if selector.is_none() {
            errs.push(at("dkim.selector"), "required when [dkim] is set");
        }
        match &key_file {
            None => errs.push(
                at("dkim.key_file"),
                "required when [dkim] is set (a PEM RSA private key)",
            ),
            Some(k) if !k.is_file() => errs.push(
                at("dkim.key_file"),
                format!("no such file: {}", k.display()),
            ),
            Some(_) => {}
        }
        Some(DkimSigning {
            domain,
            selector: selector?,
            key_file: key_file?,
        })
    });
    let m = &r.message;
    let message = MessageTemplate {
        subject: m
            .subject
            .clone()
            .unwrap_or_else(|| "Your weekly account summary".to_string()),
        text: m.text.clone().unwrap_or_else(|| DEFAULT_TEXT.to_string()),
        html: m.html.clone().unwrap_or_else(|| DEFAULT_HTML.to_string()),
        list_unsubscribe: m.list_unsubscribe.clone(),
    };
    Some(Route {
        name: name.to_string(),
        host,
        port,
        tls,
        ca_file,
        auth,
        from,
        from_address,
        envelope_from,
        helo: r.helo.clone(),
        timeout: timeout?,
        sending_ips,
        dnsbl_zones: r.dnsbl_zones.clone(),
        dkim_key_file: r.dkim_key_file.clone().map(|k| resolve(base, k)),
        dkim_selector: r
            .dkim_selector
            .clone()
            .or_else(|| r.dkim.as_ref().and_then(|d| d.selector.clone())),
        dkim,
        message,
    })
}

fn validate_seed(
    name: &str,
    s: &RawSeed,
    base: &Path,
    routes: &[String],
    errs: &mut Errors,
) -> Option<Seed> {
    let at = |k: &str| format!("seeds.{name}.{k}");
    check_name(errs, "seeds", name);
    let provider_name = s.provider.as_deref().unwrap_or("generic");
    let preset = match provider::preset(provider_name) {
        Some(p) => p,
        None => {
            errs.push(
                at("provider"),
                format!(
                    "unknown provider {provider_name:?}; expected one of {}",
                    provider::names()
                ),
            );
            &provider::PRESETS[0]
        }
    };
    let address = match s.address.as_deref().and_then(address_of) {
        Some(a) => a,
        None => {
            errs.push(
                at("address"),
                "required: the seed mailbox's email address (where probes are sent)",
            );
            String::new()
        }
    };
    let host = match s.host.clone().or(preset.host.map(str::to_string)) {
        Some(h) if !h.trim().is_empty() => h,
        _ => {
            errs.push(at("host"), "required (no provider preset gives one)");
            String::new()
        }
    };
    let tls = tls_mode(errs, &at("tls"), s.tls.as_deref(), TlsMode::Tls);
    let default_port = match tls {
        TlsMode::Tls => preset.port,
        _ => 143,
    };
    let port = port(errs, &at("port"), s.port, default_port);
    let ca_file = ca_file(errs, &at("ca_file"), base, &s.ca_file);
    let username = s.username.clone().unwrap_or_else(|| address.clone());
    let password = password(
        errs,
        &at("password"),
        &s.password_env,
        &s.password_file,
        base,
    );
    if password.is_none() && s.password_env.is_none() && s.password_file.is_none() {
        errs.push(
            at("password"),
            "set password_env or password_file (for Gmail/Outlook: an app password)",
        );
    }
    if tls == TlsMode::None {
        errs.push(
            at("tls"),
            "refusing to send a password without TLS; use \"tls\" or \"starttls\"",
        );
    }
    let poll_default = format!("{}ms", preset.poll_interval_ms);
    let poll_interval = duration(
        errs,
        &at("poll_interval"),
        s.poll_interval.as_deref(),
        &poll_default,
    );
    let seed_routes = match &s.routes {
        None => routes.to_vec(),
        Some(list) => {
            for r in list {
                if !routes.contains(r) {
                    errs.push(at("routes"), format!("no route named {r:?}"));
                }
            }
            list.clone()
        }
    };
    Some(Seed {
        name: name.to_string(),
        provider: preset.name,
        address,
        host,
        port,
        tls,
        ca_file,
        username,
        password: password?,
        authserv_ids: s
            .authserv_ids
            .clone()
            .unwrap_or_else(|| preset.authserv_ids.iter().map(|s| s.to_string()).collect()),
        inbox_folder: s
            .inbox_folder
            .clone()
            .unwrap_or_else(|| "INBOX".to_string()),
        spam_folder: s.spam_folder.clone(),
        preset_spam_folder: preset.spam_folder.map(str::to_string),
        poll_interval: poll_interval?,
        routes: seed_routes,
    })
}

fn validate_dns_audit(raw: &RawConfig, errs: &mut Errors) -> Option<DnsAuditConfig> {
    let d = &raw.dns_audit;
    let schedule = match cron_schedule(d.schedule.as_deref().unwrap_or("7 * * * *")) {
        Ok((s, _)) => Some(s),
        Err(e) => {
            errs.push("dns_audit.schedule", e);
            None
        }
    };
    let nameserver = match &d.nameserver {
        None => None,
        Some(n) => match n
            .parse::<SocketAddr>()
            .or_else(|_| n.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        {
            Ok(a) => Some(a),
            Err(_) => {
                errs.push(
                    "dns_audit.nameserver",
                    format!("expected an address like 127.0.0.53:53, got {n:?}"),
                );
                None
            }
        },
    };
    let dnsbl_zones = d
        .dnsbl_zones
        .clone()
        .unwrap_or_else(|| DEFAULT_DNSBL_ZONES.iter().map(|s| s.to_string()).collect());
    Some(DnsAuditConfig {
        schedule: schedule?,
        nameserver,
        dnsbl_zones,
    })
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

    pub fn seed(&self, name: &str) -> Option<&Seed> {
        self.seeds.iter().find(|s| s.name == name)
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

const DEFAULT_TEXT: &str = "Hello,\n\nHere is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.\n\nYou can review your notification preferences at any time from your account page.\n\nThank you,\nThe Operations Team\n";

const DEFAULT_HTML: &str = "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<p>Hello,</p>\n<p>Here is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.</p>\n<p>You can review your notification preferences at any time from your account page.</p>\n<p>Thank you,<br>The Operations Team</p>\n</body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        assert_eq!(
            address_of("Probe <p@example.com>").as_deref(),
            Some("p@example.com")
        );
        assert_eq!(
            address_of("p@example.com").as_deref(),
            Some("p@example.com")
        );
        assert_eq!(address_of("p@localhost"), None);
        assert_eq!(address_of("<p@example.com"), None);
        assert_eq!(address_of("a b@example.com"), None);
    }

    #[test]
    fn five_field_cron_gets_seconds() {
        let (six, interval) = cron_schedule("*/5 * * * *").expect("valid");
        assert_eq!(six, "0 */5 * * * *");
        assert_eq!(interval, Duration::from_secs(300));
        assert!(cron_schedule("* *").is_err());
        assert!(cron_schedule("99 * * * *").is_err());
    }
}
