//! Validation: the config as written ([`super::raw`]) checked for meaning and completed with
//! defaults. Every problem is collected with its config path (`seeds.gmail.port: expected
//! 1..65535, got 0`), so that all of them are reported at once.
//!
//! Routes (SMTP submission) and seeds (IMAP mailboxes) share one connection validator: host,
//! port, TLS mode, CA file and login. Default ports: 587 with STARTTLS (RFC 6409 §3.1), 465 and
//! 993 with implicit TLS (RFC 8314 §3), 143 for IMAP with STARTTLS (RFC 9051 §6.2.1), 25 for
//! plain SMTP. Addresses are RFC 5322 §3.4 mailboxes (`Name <addr>` or `addr`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use croner::errors::CronError;

use super::oauth::{Grant, Login, OAuth2, OAuthPreset, TokenCache, TokenState};
use super::provider::{self, Preset};
use super::raw::{
    RawBounceMailbox, RawConfig, RawDkim, RawMessage, RawOAuth2, RawProbe, RawReportMailbox,
    RawRoute, RawSeed,
};
use super::secret::{Secret, SecretSource, permission_warning};
use super::{
    Cleanup, Config, Credentials, DEFAULT_DNSBL_ZONES, DEFAULT_REPORTERS, DkimSigning,
    DnsAuditConfig, MessageTemplate, ProbeConfig, ReportMailbox, Route, Seed, TlsMode, domain_of,
};

/// One problem in the config: where it is and what is wrong, as the user reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    /// The config path: `routes`, `probe.timeout`, `seeds.gmail.port`.
    pub path: String,
    /// What is wrong with it, in one sentence.
    pub problem: String,
}

/// Collects errors with their config path, so that all of them are reported at once, and the
/// warnings (secret files others can read) of a config that is valid all the same.
#[derive(Default)]
struct Errors(Vec<FieldError>, Context, Warnings);

/// Warnings, one per secret file however many options name it.
#[derive(Default)]
struct Warnings {
    list: Vec<FieldError>,
    files_seen: std::collections::BTreeSet<PathBuf>,
}

/// What the config is validated for.
#[derive(Default, Clone, Copy)]
struct Context {
    /// `oauth login` creates refresh token files: one that does not exist yet is no error.
    for_oauth_login: bool,
}

impl Errors {
    fn push(&mut self, path: impl fmt::Display, problem: impl fmt::Display) {
        self.0.push(FieldError {
            path: path.to_string(),
            problem: problem.to_string(),
        });
    }

    /// Warns once about a secret file that others can read ([`permission_warning`]); `path`
    /// is the option that names it.
    fn check_secret_file(&mut self, path: impl fmt::Display, file: &Path) {
        if !self.2.files_seen.insert(file.to_path_buf()) {
            return;
        }
        if let Some(problem) = permission_warning(file) {
            self.2.list.push(FieldError {
                path: path.to_string(),
                problem,
            });
        }
    }
}

/// The config, or every error found in it, in file order: probe, routes, seeds, dns_audit.
pub(super) fn config(
    raw: RawConfig,
    base: &Path,
    for_oauth_login: bool,
) -> Result<Config, Vec<FieldError>> {
    let mut errs = Errors(Vec::new(), Context { for_oauth_login }, Warnings::default());
    let probe = validate_probe(&raw.probe, base, &mut errs);
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
    let bounce_mailboxes: Vec<Seed> = raw
        .bounce_mailboxes
        .iter()
        .filter_map(|(name, b)| validate_bounce_mailbox(name, b, base, &mut errs))
        .collect();
    let report_mailboxes: Vec<ReportMailbox> = raw
        .reports
        .iter()
        .filter_map(|(name, r)| validate_report_mailbox(name, r, base, &mut errs))
        .collect();
    for (name, r) in &raw.routes {
        if let Some(b) = &r.bounces
            && !raw.bounce_mailboxes.contains_key(b)
        {
            errs.push(
                format!("routes.{name}.bounces"),
                format!("no [bounce_mailboxes.{b}] table"),
            );
        }
    }
    match (probe, dns_audit) {
        (Some(probe), Some(dns_audit)) if errs.0.is_empty() => {
            let mut config = Config {
                probe,
                routes,
                seeds,
                dns_audit,
                bounce_mailboxes,
                report_mailboxes,
                warnings: errs.2.list,
            };
            share_token_caches(&mut config);
            Ok(config)
        }
        _ => Err(errs.0),
    }
}

fn validate_probe(p: &RawProbe, base: &Path, errs: &mut Errors) -> Option<ProbeConfig> {
    let timing = probe_timing(p, errs);
    let cleanup = cleanup(
        errs,
        "probe.cleanup",
        p.cleanup.as_deref().unwrap_or("delete"),
    );
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
    let token_key = token_key(p, base, errs);
    let concurrency = match p.concurrency.unwrap_or(32) {
        0 => {
            errs.push("probe.concurrency", "must be at least 1");
            1
        }
        n => n as usize,
    };
    let instance = match instance_name(p.instance.as_deref(), host_name) {
        Ok(name) => Some(name),
        Err(problem) => {
            errs.push("probe.instance", problem);
            None
        }
    };
    let timing = timing?;
    Some(ProbeConfig {
        schedule: timing.schedule,
        interval: timing.interval,
        jitter: timing.jitter,
        timeout: timing.timeout,
        late_window: timing.late_window,
        cleanup: cleanup?,
        listen: listen?,
        state,
        retention: timing.retention,
        token_key: token_key?,
        concurrency,
        instance: instance?,
    })
}

/// The instance name: `probe.instance`, else the host name up to its first dot. `host_name`
/// is asked only when the config names none (the kernel's name in this UTS namespace: a
/// container's or pod's own name).
fn instance_name(
    configured: Option<&str>,
    host_name: impl FnOnce() -> Option<String>,
) -> Result<String, String> {
    if let Some(name) = configured {
        return if is_plain_name(name) {
            Ok(name.to_string())
        } else {
            Err(format!(
                "names may use only letters, digits, '-' and '_' (at most 64), got {name:?}"
            ))
        };
    }
    let Some(host) = host_name() else {
        return Err("cannot read the host name to default to; set probe.instance".to_string());
    };
    let short = host.trim().split('.').next().unwrap_or_default();
    if is_plain_name(short) {
        Ok(short.to_string())
    } else {
        Err(format!(
            "the host name {short:?} is not a valid instance name (letters, digits, '-' and '_', at most 64); set probe.instance"
        ))
    }
}

/// The host name, as Linux reports it (`/proc/sys/kernel/hostname`), else `$HOSTNAME`.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// When the probe runs and how long it waits, watches and keeps.
struct Timing {
    schedule: String,
    interval: Duration,
    jitter: Duration,
    timeout: Duration,
    late_window: Duration,
    retention: Duration,
}

fn probe_timing(p: &RawProbe, errs: &mut Errors) -> Option<Timing> {
    let schedule = match cron_schedule(p.schedule.as_deref().unwrap_or("*/5 * * * *")) {
        Ok(schedule) => Some(schedule),
        Err(e) => {
            errs.push("probe.schedule", e);
            None
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
    let (schedule, interval) = schedule?;
    Some(Timing {
        schedule,
        interval,
        jitter: jitter?,
        timeout: timeout?,
        late_window: late_window?,
        retention: retention?,
    })
}

fn cleanup(errs: &mut Errors, path: &str, value: &str) -> Option<Cleanup> {
    match value {
        "delete" => Some(Cleanup::Delete),
        "keep" => Some(Cleanup::Keep),
        other => match other.strip_prefix("move:") {
            Some(folder) if !folder.trim().is_empty() => Some(Cleanup::Move(folder.to_string())),
            _ => {
                errs.push(
                    path,
                    format!("expected \"delete\", \"keep\" or \"move:<folder>\", got {other:?}"),
                );
                None
            }
        },
    }
}

/// The probe-token HMAC key (`token_key_env` or `token_key_file`), at least 16 characters.
fn token_key(p: &RawProbe, base: &Path, errs: &mut Errors) -> Option<Secret> {
    let path = "probe.token_key";
    match secret(errs, path, &p.token_key_env, &p.token_key_file, base) {
        Some(key) if key.expose().len() >= 16 => Some(key),
        Some(_) => {
            errs.push(path, "must be at least 16 characters long");
            None
        }
        None if p.token_key_env.is_none() && p.token_key_file.is_none() => {
            errs.push(
                path,
                "set token_key_env or token_key_file (the HMAC key that marks our probe messages)",
            );
            None
        }
        // The source was set but could not be used: `secret` said why.
        None => None,
    }
}

/// Why a cron schedule cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Neither 5 fields (minute first) nor 6 (seconds first).
    #[error("expected a cron expression of 5 or 6 fields, got {fields} in {expr:?}")]
    FieldCount { expr: String, fields: usize },
    /// The cron parser rejects the expression (a value out of range, an unknown name...).
    #[error("invalid cron expression {expr:?}: {error}")]
    Invalid { expr: String, error: CronError },
    /// The expression parses but matches no time (`0 0 30 2 *`: February 30th).
    #[error("cron expression {expr:?} never runs: {error}")]
    NeverRuns { expr: String, error: CronError },
    /// The expression matches one time only: it has no interval.
    #[error("cron expression {expr:?} runs only once: {error}")]
    RunsOnce { expr: String, error: CronError },
}

/// Accepts 5-field cron (minute first) or 6-field (seconds first); returns the 6-field form and
/// the interval between its next two runs.
pub fn cron_schedule(expr: &str) -> Result<(String, Duration), ScheduleError> {
    let fields = expr.split_whitespace().count();
    let six = match fields {
        5 => format!("0 {}", expr.trim()),
        6 => expr.trim().to_string(),
        fields => {
            return Err(ScheduleError::FieldCount {
                expr: expr.to_string(),
                fields,
            });
        }
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six)
        .map_err(|error| ScheduleError::Invalid {
            expr: expr.to_string(),
            error,
        })?;
    let now = chrono::Utc::now();
    let first =
        cron.find_next_occurrence(&now, false)
            .map_err(|error| ScheduleError::NeverRuns {
                expr: expr.to_string(),
                error,
            })?;
    let second =
        cron.find_next_occurrence(&first, false)
            .map_err(|error| ScheduleError::RunsOnce {
                expr: expr.to_string(),
                error,
            })?;
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

/// The secret of a `*_env` / `*_file` pair, loaded now. `None` when neither is set, or when the
/// pair is unusable (the error is pushed).
fn secret(
    errs: &mut Errors,
    path: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
) -> Option<Secret> {
    let file = file.clone().map(|f| resolve(base, f));
    match SecretSource::from_pair(env, &file) {
        Ok(Some(src)) => match src.load() {
            Ok(s) => {
                if let SecretSource::File(f) = &src {
                    errs.check_secret_file(format!("{path}_file"), f);
                }
                Some(s)
            }
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
    if !is_plain_name(name) {
        errs.push(
            format!("{section}.{name}"),
            "names may use only letters, digits, '-' and '_' (at most 64)",
        );
    }
}

/// Letters, digits, `-` and `_`, 1 to 64 of them: a metric label value and a token field.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
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

/// The connection fields routes and seeds share, as written.
struct RawConnection<'a> {
    host: Option<&'a str>,
    port: Option<i64>,
    tls: Option<&'a str>,
    ca_file: &'a Option<PathBuf>,
    username: Option<&'a str>,
    password_env: &'a Option<String>,
    password_file: &'a Option<PathBuf>,
    auth: Option<&'a str>,
    oauth2: Option<&'a RawOAuth2>,
}

/// What differs between a route's SMTP connection and a seed's IMAP connection.
struct ConnectionRules<'a> {
    /// Why the host is required, shown in the error.
    host_hint: &'static str,
    default_tls: TlsMode,
    ports: DefaultPorts,
    login: LoginRule<'a>,
    /// The provider's OAuth2 defaults (a seed's preset); routes have none.
    oauth_preset: Option<&'static OAuthPreset>,
}

/// The port used when none is given, per TLS mode.
struct DefaultPorts {
    tls: u16,
    starttls: u16,
    plain: u16,
}

impl DefaultPorts {
    fn for_mode(&self, tls: TlsMode) -> u16 {
        match tls {
            TlsMode::Tls => self.tls,
            TlsMode::Starttls => self.starttls,
            TlsMode::None => self.plain,
        }
    }
}

/// How a connection logs in.
enum LoginRule<'a> {
    /// SMTP AUTH (RFC 4954) only when configured: username and password come together.
    Optional,
    /// IMAP always logs in (RFC 9051 §6.2.3): the password is required, the username defaults
    /// to `default_username` (the mailbox address).
    Required { default_username: &'a str },
}

/// A validated connection.
struct Connection {
    host: String,
    port: u16,
    tls: TlsMode,
    ca_file: Option<PathBuf>,
    /// `None` for a route without SMTP AUTH, and when the login is incomplete (errors pushed).
    auth: Option<Credentials>,
}

/// Validates the connection fields of `section` (`routes.NAME` or `seeds.NAME`), in the order
/// the errors are reported: host, tls, port, ca_file, the login, then TLS for the password.
fn connection(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Connection {
    let at = |k: &str| format!("{section}.{k}");
    let host = match raw.host {
        Some(h) if !h.trim().is_empty() => h.to_string(),
        _ => {
            errs.push(at("host"), format!("required ({})", rules.host_hint));
            String::new()
        }
    };
    let tls = tls_mode(errs, &at("tls"), raw.tls, rules.default_tls);
    let port = port(errs, &at("port"), raw.port, rules.ports.for_mode(tls));
    let ca_file = ca_file(errs, &at("ca_file"), base, raw.ca_file);
    let auth = credentials(errs, section, base, raw, rules);
    let sends_password = auth.is_some() || matches!(rules.login, LoginRule::Required { .. });
    if sends_password && tls == TlsMode::None {
        // The connection's default mode is named first.
        let modes = match rules.default_tls {
            TlsMode::Tls => "\"tls\" or \"starttls\"",
            TlsMode::Starttls | TlsMode::None => "\"starttls\" or \"tls\"",
        };
        errs.push(
            at("tls"),
            format!("refusing to send a password without TLS; use {modes}"),
        );
    }
    Connection {
        host,
        port,
        tls,
        ca_file,
        auth,
    }
}

/// The login of a connection: `auth = "password"` (the default) or `auth = "oauth2"`.
fn credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    match raw.auth.unwrap_or("password") {
        "password" => {
            if raw.oauth2.is_some() {
                errs.push(at("oauth2"), "set auth = \"oauth2\" to use it");
            }
            password_credentials(errs, section, base, raw, &rules.login)
        }
        "oauth2" => oauth2_credentials(errs, section, base, raw, rules),
        other => {
            errs.push(
                at("auth"),
                format!("expected \"password\" or \"oauth2\", got {other:?}"),
            );
            None
        }
    }
}

/// Username and password, by the rules of `login`.
fn password_credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    login: &LoginRule<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    let password = secret(
        errs,
        &at("password"),
        raw.password_env,
        raw.password_file,
        base,
    );
    // A password source that is set but unusable has already been reported.
    let source_set = raw.password_env.is_some() || raw.password_file.is_some();
    match login {
        LoginRule::Optional => match (raw.username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.to_string(),
                login: Login::Password(password),
            }),
            (None, None) => None,
            (Some(_), None) => {
                if !source_set {
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
        },
        LoginRule::Required { default_username } => {
            if password.is_none() && !source_set {
                errs.push(
                    at("password"),
                    "set password_env or password_file (for Gmail/Outlook: an app password)",
                );
            }
            Some(Credentials {
                username: raw.username.unwrap_or(default_username).to_string(),
                login: Login::Password(password?),
            })
        }
    }
}

/// `auth = "oauth2"`: the user name the token is for, and the `[oauth2]` client (RFC 6749).
fn oauth2_credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    if raw.password_env.is_some() || raw.password_file.is_some() {
        errs.push(
            at("password"),
            "auth = \"oauth2\" sends no password: remove password_env/password_file",
        );
    }
    let username = match (&rules.login, raw.username) {
        (_, Some(u)) => Some(u.to_string()),
        (LoginRule::Required { default_username }, None) => Some(default_username.to_string()),
        (LoginRule::Optional, None) => {
            errs.push(
                at("username"),
                "required with auth = \"oauth2\" (the user the token is for)",
            );
            None
        }
    };
    let Some(o) = raw.oauth2 else {
        errs.push(
            at("oauth2"),
            "required with auth = \"oauth2\": client_id and the token source",
        );
        return None;
    };
    let oauth = oauth2_client(errs, &at("oauth2"), base, o, rules.oauth_preset);
    Some(Credentials {
        username: username?,
        login: Login::OAuth2(Box::new(oauth?)),
    })
}

/// The `[oauth2]` table: grant, endpoints (from the provider preset unless given), client,
/// scope and the refresh token, loaded now (unless `oauth login` is about to create it).
fn oauth2_client(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    o: &RawOAuth2,
    seed_preset: Option<&'static OAuthPreset>,
) -> Option<OAuth2> {
    let at = |k: &str| format!("{section}.{k}");
    let preset = match o.provider.as_deref() {
        None => seed_preset,
        Some(name) => match provider::oauth_preset(name) {
            Some(p) => Some(p),
            None => {
                errs.push(
                    at("provider"),
                    format!(
                        "no OAuth2 defaults for {name:?}; expected one of {}",
                        provider::oauth_names()
                    ),
                );
                None
            }
        },
    };
    let grant = match o.grant.as_deref().unwrap_or("refresh_token") {
        "refresh_token" => Some(Grant::RefreshToken),
        "client_credentials" => Some(Grant::ClientCredentials),
        other => {
            errs.push(
                at("grant"),
                format!("expected \"refresh_token\" or \"client_credentials\", got {other:?}"),
            );
            None
        }
    };
    let token_url = http_url(
        errs,
        &at("token_url"),
        o.token_url.as_deref().or(preset.map(|p| p.token_url)),
    );
    let device_authorization_url = match o
        .device_authorization_url
        .as_deref()
        .or(preset.map(|p| p.device_authorization_url))
    {
        Some(u) => http_url(errs, &at("device_authorization_url"), Some(u)),
        None => None,
    };
    let client_id = match o.client_id.as_deref() {
        Some(c) if !c.trim().is_empty() => Some(c.to_string()),
        _ => {
            errs.push(at("client_id"), "required (from your app registration)");
            None
        }
    };
    let scope = match o.scope.as_deref().or(preset.map(|p| p.scope)) {
        Some(s) if !s.trim().is_empty() => Some(s.to_string()),
        _ => {
            errs.push(at("scope"), "required (no provider preset gives one)");
            None
        }
    };
    let client_secret = secret(
        errs,
        &at("client_secret"),
        &o.client_secret_env,
        &o.client_secret_file,
        base,
    );
    let refresh_file = o.refresh_token_file.clone().map(|f| resolve(base, f));
    let refresh_source = match SecretSource::from_pair(&o.refresh_token_env, &refresh_file) {
        Ok(s) => s,
        Err(e) => {
            errs.push(at("refresh_token"), e);
            None
        }
    };
    let set = o.refresh_token_env.is_some() || o.refresh_token_file.is_some();
    let mut refresh_token = None;
    match grant {
        Some(Grant::RefreshToken) => match &refresh_source {
            None if !set => errs.push(
                at("refresh_token"),
                "set refresh_token_env or refresh_token_file (`mailcanary oauth login` gets one)",
            ),
            None => {}
            Some(SecretSource::File(p)) if errs.1.for_oauth_login && !p.exists() => {}
            Some(SecretSource::File(p)) if !p.exists() => errs.push(
                at("refresh_token"),
                format!(
                    "no such file: {} (`mailcanary oauth login` creates it)",
                    p.display()
                ),
            ),
            Some(src) => match src.load() {
                Ok(t) => {
                    if let SecretSource::File(f) = src {
                        errs.check_secret_file(at("refresh_token_file"), f);
                    }
                    refresh_token = Some(t);
                }
                Err(e) => errs.push(at("refresh_token"), e),
            },
        },
        Some(Grant::ClientCredentials) => {
            if set {
                errs.push(
                    at("refresh_token"),
                    "not used with grant = \"client_credentials\": remove it",
                );
            }
            if client_secret.is_none()
                && o.client_secret_env.is_none()
                && o.client_secret_file.is_none()
            {
                errs.push(
                    at("client_secret"),
                    "required with grant = \"client_credentials\": set client_secret_env or client_secret_file",
                );
            }
        }
        None => {}
    }
    let cache = TokenCache::default();
    if let Ok(mut state) = cache.state.try_lock() {
        *state = TokenState {
            access: None,
            refresh_token,
        };
    }
    Some(OAuth2 {
        grant: grant?,
        token_url: token_url?,
        device_authorization_url,
        client_id: client_id?,
        client_secret,
        scope: scope?,
        refresh_token_source: refresh_source,
        cache,
    })
}

/// Logins with the same token endpoint, client, scope and refresh token source (a seed and a
/// route of one account, or the same login in a reloaded config) share one token cache for
/// the life of the process: one refresh serves all, and a refresh token the server rotates is
/// never presented twice (which a rotating server treats as theft). A refresh token file whose
/// content changed since (a new `oauth login`) replaces the cached token.
fn share_token_caches(config: &mut Config) {
    static CACHES: std::sync::OnceLock<std::sync::Mutex<Vec<(String, TokenCache)>>> =
        std::sync::OnceLock::new();
    let mut caches = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let logins = config
        .seeds
        .iter_mut()
        .chain(config.bounce_mailboxes.iter_mut())
        .chain(config.report_mailboxes.iter_mut().map(|r| &mut r.mailbox))
        .map(|s| &mut s.login)
        .chain(
            config
                .routes
                .iter_mut()
                .filter_map(|r| r.auth.as_mut().map(|a| &mut a.login)),
        );
    for login in logins {
        let Login::OAuth2(o) = login else { continue };
        let key = format!(
            "{}\n{}\n{}\n{:?}\n{}",
            o.token_url,
            o.client_id,
            o.scope,
            o.refresh_token_source,
            o.grant.as_str()
        );
        let Some((_, cache)) = caches.iter().find(|(k, _)| *k == key) else {
            caches.push((key, o.cache.clone()));
            continue;
        };
        let loaded = o
            .cache
            .state
            .try_lock()
            .ok()
            .and_then(|s| s.refresh_token.clone());
        if let (Some(loaded), Some(SecretSource::File(_)), Ok(mut shared)) =
            (loaded, &o.refresh_token_source, cache.state.try_lock())
            && shared.refresh_token.as_ref() != Some(&loaded)
        {
            shared.refresh_token = Some(loaded);
            shared.access = None;
        }
        o.cache = cache.clone();
    }
}

/// An `http://` or `https://` URL (plain http only makes sense for a test server).
fn http_url(errs: &mut Errors, path: &str, value: Option<&str>) -> Option<String> {
    match value {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u.to_string()),
        Some(u) => {
            errs.push(path, format!("expected an https:// URL, got {u:?}"));
            None
        }
        None => {
            errs.push(path, "required (no provider preset gives one)");
            None
        }
    }
}

fn validate_route(name: &str, r: &RawRoute, base: &Path, errs: &mut Errors) -> Option<Route> {
    let section = format!("routes.{name}");
    let at = |k: &str| format!("{section}.{k}");
    check_name(errs, "routes", name);
    let raw = RawConnection {
        host: r.host.as_deref(),
        port: r.port,
        tls: r.tls.as_deref(),
        ca_file: &r.ca_file,
        username: r.username.as_deref(),
        password_env: &r.password_env,
        password_file: &r.password_file,
        auth: r.auth.as_deref(),
        oauth2: r.oauth2.as_ref(),
    };
    let rules = ConnectionRules {
        host_hint: "the SMTP server to send through",
        default_tls: TlsMode::Starttls,
        ports: DefaultPorts {
            tls: 465,
            starttls: 587,
            plain: 25,
        },
        login: LoginRule::Optional,
        oauth_preset: None,
    };
    let connection = connection(errs, &section, base, &raw, &rules);
    let (from, from_address, envelope_from) = sender(errs, &section, r);
    let timeout = duration(errs, &at("timeout"), r.timeout.as_deref(), "30s");
    let mut sending_ips = Vec::new();
    for ip in &r.sending_ips {
        match ip.parse::<IpAddr>() {
            Ok(a) => sending_ips.push(a),
            Err(_) => errs.push(at("sending_ips"), format!("not an IP address: {ip:?}")),
        }
    }
    let dkim = r
        .dkim
        .as_ref()
        .and_then(|d| dkim_signing(errs, &section, base, d, &from_address));
    let expect_tab = r.expect_tab.as_deref().and_then(|t| {
        let tab = crate::gmail::Tab::parse(t);
        if tab.is_none() {
            errs.push(
                at("expect_tab"),
                format!(
                    "unknown Gmail tab {t:?}; expected one of {}",
                    crate::gmail::Tab::names()
                ),
            );
        }
        tab
    });
    // The audit's `dkim_key_file` is the mail server's signing key, read for its public half:
    // shared with the signing daemon by group as a rule (`root:_rspamd 0640`), its mode is
    // the mail server's business, not a secret of ours to warn about.
    let dkim_key_file = r.dkim_key_file.clone().map(|k| resolve(base, k));
    Some(Route {
        name: name.to_string(),
        host: connection.host,
        port: connection.port,
        tls: connection.tls,
        ca_file: connection.ca_file,
        auth: connection.auth,
        from,
        from_address,
        envelope_from,
        helo: r.helo.clone(),
        timeout: timeout?,
        sending_ips,
        dnsbl_zones: r.dnsbl_zones.clone(),
        dkim_key_file,
        dkim_selector: r
            .dkim_selector
            .clone()
            .or_else(|| r.dkim.as_ref().and_then(|d| d.selector.clone())),
        dkim,
        message: message_template(&r.message),
        bounces: r.bounces.clone(),
        expect_tab,
    })
}

/// The From header (RFC 5322 §3.6.2), its address, and the envelope sender (RFC 5321 MAIL
/// FROM; default: the From address).
fn sender(errs: &mut Errors, section: &str, r: &RawRoute) -> (String, String, String) {
    let from = r.from.clone().unwrap_or_default();
    let from_address = match address_of(&from) {
        Some(a) => a,
        None => {
            errs.push(
                format!("{section}.from"),
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
                    format!("{section}.envelope_from"),
                    format!("expected an address, got {e:?}"),
                );
                String::new()
            }
        },
        None => from_address.clone(),
    };
    (from, from_address, envelope_from)
}

/// `[dkim]`: signing inside the probe (RFC 6376), the domain defaulting to the From domain.
fn dkim_signing(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    d: &RawDkim,
    from_address: &str,
) -> Option<DkimSigning> {
    let domain = d
        .domain
        .clone()
        .unwrap_or_else(|| domain_of(from_address).to_string());
    let selector = d.selector.clone();
    let key_file = d.key_file.clone().map(|k| resolve(base, k));
    if selector.is_none() {
        errs.push(
            format!("{section}.dkim.selector"),
            "required when [dkim] is set",
        );
    }
    let key_path = format!("{section}.dkim.key_file");
    match &key_file {
        None => errs.push(
            key_path,
            "required when [dkim] is set (a PEM RSA private key)",
        ),
        Some(k) if !k.is_file() => errs.push(key_path, format!("no such file: {}", k.display())),
        // The key mailcanary signs with itself is as secret as a password.
        Some(k) => errs.check_secret_file(key_path, k),
    }
    Some(DkimSigning {
        domain,
        selector: selector?,
        key_file: key_file?,
    })
}

fn message_template(m: &RawMessage) -> MessageTemplate {
    MessageTemplate {
        subject: m
            .subject
            .clone()
            .unwrap_or_else(|| "Your weekly account summary".to_string()),
        text: m.text.clone().unwrap_or_else(|| DEFAULT_TEXT.to_string()),
        html: m.html.clone().unwrap_or_else(|| DEFAULT_HTML.to_string()),
        list_unsubscribe: m.list_unsubscribe.clone(),
    }
}

fn validate_seed(
    name: &str,
    s: &RawSeed,
    base: &Path,
    routes: &[String],
    errs: &mut Errors,
) -> Option<Seed> {
    let fields = MailboxFields {
        provider: s.provider.as_deref(),
        address: s.address.as_deref(),
        address_problem: "required: the seed mailbox's email address (where probes are sent)",
        host: s.host.as_deref(),
        port: s.port,
        tls: s.tls.as_deref(),
        ca_file: &s.ca_file,
        username: s.username.as_deref(),
        password_env: &s.password_env,
        password_file: &s.password_file,
        auth: s.auth.as_deref(),
        oauth2: s.oauth2.as_ref(),
        poll_interval: s.poll_interval.as_deref(),
    };
    let mailbox = imap_mailbox(errs, "seeds", name, base, &fields);
    let seed_routes = seed_routes(
        errs,
        &format!("seeds.{name}.routes"),
        s.routes.as_deref(),
        routes,
    );
    let mut seed = mailbox?;
    if let Some(ids) = &s.authserv_ids {
        seed.authserv_ids = ids.clone();
    }
    if let Some(folder) = &s.inbox_folder {
        seed.inbox_folder = folder.clone();
    }
    seed.spam_folder = s.spam_folder.clone();
    seed.routes = seed_routes;
    Some(seed)
}

/// A bounce mailbox: connection settings as a seed's (a provider preset, host, login), the
/// folder bounces arrive in. It is read like a seed, so it is kept as one.
fn validate_bounce_mailbox(
    name: &str,
    b: &RawBounceMailbox,
    base: &Path,
    errs: &mut Errors,
) -> Option<Seed> {
    let fields = MailboxFields {
        provider: b.provider.as_deref(),
        address: b.address.as_deref(),
        address_problem: "required: the address the routes' bounces are delivered to",
        host: b.host.as_deref(),
        port: b.port,
        tls: b.tls.as_deref(),
        ca_file: &b.ca_file,
        username: b.username.as_deref(),
        password_env: &b.password_env,
        password_file: &b.password_file,
        auth: b.auth.as_deref(),
        oauth2: b.oauth2.as_ref(),
        poll_interval: b.poll_interval.as_deref(),
    };
    let mailbox = imap_mailbox(errs, "bounce_mailboxes", name, base, &fields)?;
    Some(unjudged(mailbox, b.folder.as_ref()))
}

/// A mailbox whose mail is read, not judged (bounces, reports): no authserv-ids, no spam
/// folder, and `folder` (default INBOX) as the one folder it is read in.
fn unjudged(mut mailbox: Seed, folder: Option<&String>) -> Seed {
    mailbox.authserv_ids = Vec::new();
    mailbox.preset_spam_folder = None;
    if let Some(folder) = folder {
        mailbox.inbox_folder = folder.clone();
    }
    mailbox
}

/// A report mailbox: connection settings as a seed's, the domains we own, what happens to a
/// stored report, when it is read, and which reporters get their own label.
fn validate_report_mailbox(
    name: &str,
    r: &RawReportMailbox,
    base: &Path,
    errs: &mut Errors,
) -> Option<ReportMailbox> {
    let fields = MailboxFields {
        provider: r.provider.as_deref(),
        address: r.address.as_deref(),
        address_problem: "required: the address reports are sent to (the rua= address)",
        host: r.host.as_deref(),
        port: r.port,
        tls: r.tls.as_deref(),
        ca_file: &r.ca_file,
        username: r.username.as_deref(),
        password_env: &r.password_env,
        password_file: &r.password_file,
        auth: r.auth.as_deref(),
        oauth2: r.oauth2.as_ref(),
        poll_interval: None,
    };
    let mailbox = imap_mailbox(errs, "reports", name, base, &fields);
    let at = |k: &str| format!("reports.{name}.{k}");
    let domains = report_domains(errs, &at("domains"), r.domains.as_deref());
    let after = cleanup(errs, &at("after"), r.after.as_deref().unwrap_or("keep"));
    let schedule = match cron_schedule(r.schedule.as_deref().unwrap_or("0 */15 * * * *")) {
        Ok((s, _)) => Some(s),
        Err(e) => {
            errs.push(at("schedule"), e);
            None
        }
    };
    let reporters = match &r.reporters {
        None => DEFAULT_REPORTERS.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            let list: Vec<String> = list.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
            if let Some(bad) = list.iter().find(|s| !is_reporter_token(s)) {
                errs.push(
                    at("reporters"),
                    format!("{bad:?} is not a reporter name (letters, digits, '.', '-', '_'; not \"other\")"),
                );
            }
            list
        }
    };
    let mailbox = mailbox?;
    // A report mail's authentication (which reporter label it earns) is read as a seed's
    // verdict is: from the trusted Authentication-Results of the mailbox's own receiver.
    let authserv_ids = match &r.authserv_ids {
        Some(ids) => ids.clone(),
        None => mailbox.authserv_ids.clone(),
    };
    let mut mailbox = unjudged(mailbox, r.folder.as_ref());
    mailbox.authserv_ids = authserv_ids;
    Some(ReportMailbox {
        mailbox,
        domains: domains?,
        after: after?,
        schedule: schedule?,
        reporters,
    })
}

/// The domains a report mailbox counts reports for: at least one, each a domain name.
fn report_domains(errs: &mut Errors, path: &str, listed: Option<&[String]>) -> Option<Vec<String>> {
    let Some(listed) = listed.filter(|l| !l.is_empty()) else {
        errs.push(
            path,
            "required: the domains whose reports are counted, e.g. [\"example.com\"]",
        );
        return None;
    };
    let domains: Vec<String> = listed
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    for d in &domains {
        let ok = d.contains('.')
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            errs.push(path, format!("{d:?} is not a domain name"));
            return None;
        }
    }
    Some(domains)
}

/// A reporter label: short, lower-case, from a fixed alphabet, and never the catch-all.
fn is_reporter_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s != "other"
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
}

/// The fields every mailbox read over IMAP has (seeds, bounce mailboxes), as written.
struct MailboxFields<'a> {
    provider: Option<&'a str>,
    address: Option<&'a str>,
    /// What to say when the address is missing or not an address.
    address_problem: &'static str,
    host: Option<&'a str>,
    port: Option<i64>,
    tls: Option<&'a str>,
    ca_file: &'a Option<PathBuf>,
    username: Option<&'a str>,
    password_env: &'a Option<String>,
    password_file: &'a Option<PathBuf>,
    auth: Option<&'a str>,
    oauth2: Option<&'a RawOAuth2>,
    poll_interval: Option<&'a str>,
}

/// Validates a mailbox of `family` (`seeds`, `bounce_mailboxes`): its name, provider preset,
/// address, connection (IMAP: login required, TLS by default) and poll interval, in that
/// order. The result has the preset's defaults (authserv-ids, spam folder, INBOX) and no
/// routes; the caller applies what its table adds.
fn imap_mailbox(
    errs: &mut Errors,
    family: &str,
    name: &str,
    base: &Path,
    f: &MailboxFields<'_>,
) -> Option<Seed> {
    let section = format!("{family}.{name}");
    let at = |k: &str| format!("{section}.{k}");
    check_name(errs, family, name);
    let preset = preset(errs, &at("provider"), f.provider.unwrap_or("generic"));
    let address = match f.address.and_then(address_of) {
        Some(a) => a,
        None => {
            errs.push(at("address"), f.address_problem);
            String::new()
        }
    };
    let raw = RawConnection {
        host: f.host.or(preset.host),
        port: f.port,
        tls: f.tls,
        ca_file: f.ca_file,
        username: f.username,
        password_env: f.password_env,
        password_file: f.password_file,
        auth: f.auth,
        oauth2: f.oauth2,
    };
    let rules = ConnectionRules {
        host_hint: "no provider preset gives one",
        default_tls: TlsMode::Tls,
        ports: DefaultPorts {
            tls: preset.port,
            starttls: 143,
            plain: 143,
        },
        login: LoginRule::Required {
            default_username: &address,
        },
        oauth_preset: preset.oauth,
    };
    let connection = connection(errs, &section, base, &raw, &rules);
    let poll_default = format!("{}ms", preset.poll_interval_ms);
    let poll_interval = duration(errs, &at("poll_interval"), f.poll_interval, &poll_default);
    let Credentials { username, login } = connection.auth?;
    Some(Seed {
        name: name.to_string(),
        provider: preset.name,
        address,
        host: connection.host,
        port: connection.port,
        tls: connection.tls,
        ca_file: connection.ca_file,
        username,
        login,
        authserv_ids: preset.authserv_ids.iter().map(|s| s.to_string()).collect(),
        inbox_folder: "INBOX".to_string(),
        spam_folder: None,
        preset_spam_folder: preset.spam_folder.map(str::to_string),
        poll_interval: poll_interval?,
        routes: Vec::new(),
    })
}

/// The routes that send to a seed: the listed ones, each of which must exist, or all.
fn seed_routes(
    errs: &mut Errors,
    path: &str,
    listed: Option<&[String]>,
    routes: &[String],
) -> Vec<String> {
    let Some(listed) = listed else {
        return routes.to_vec();
    };
    for r in listed {
        if !routes.contains(r) {
            errs.push(path, format!("no route named {r:?}"));
        }
    }
    listed.to_vec()
}

/// The provider preset a seed starts from; an unknown name is reported and `generic` used.
fn preset(errs: &mut Errors, path: &str, name: &str) -> &'static Preset {
    match provider::preset(name) {
        Some(p) => p,
        None => {
            errs.push(
                path,
                format!(
                    "unknown provider {name:?}; expected one of {}",
                    provider::names()
                ),
            );
            &provider::PRESETS[0]
        }
    }
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

const DEFAULT_TEXT: &str = "Hello,\n\nHere is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.\n\nYou can review your notification preferences at any time from your account page.\n\nThank you,\nThe Operations Team\n";

const DEFAULT_HTML: &str = "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<p>Hello,</p>\n<p>Here is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.</p>\n<p>You can review your notification preferences at any time from your account page.</p>\n<p>Thank you,<br>The Operations Team</p>\n</body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// A config whose seed and route log in with the same OAuth2 client and refresh token.
    fn oauth_config(dir: &Path, token_url: &str) -> Config {
        let text = format!(
            "[probe]\ntoken_key_file = \"key\"\n\n\
             [routes.r]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\nusername = \"u@example.com\"\n\
             auth = \"oauth2\"\noauth2 = {{ token_url = \"{token_url}\", client_id = \"c\", scope = \"s\", refresh_token_file = \"rt\" }}\n\n\
             [seeds.s]\naddress = \"u@example.com\"\nhost = \"imap.example.com\"\nauth = \"oauth2\"\n\
             oauth2 = {{ token_url = \"{token_url}\", client_id = \"c\", scope = \"s\", refresh_token_file = \"rt\" }}\n"
        );
        crate::config::parse(&text, &dir.join("c.toml")).expect("valid")
    }

    fn cache_of(c: &Config) -> (TokenCache, TokenCache) {
        let seed = c.seeds[0].login.oauth2().expect("oauth").cache.clone();
        let route = c.routes[0]
            .auth
            .as_ref()
            .and_then(|a| a.login.oauth2())
            .expect("oauth")
            .cache
            .clone();
        (seed, route)
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_others_can_read_are_warned_about_once_each() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |name: &str, mode| {
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode))
                .expect("chmod")
        };
        std::fs::write(dir.path().join("key"), "0123456789abcdef0123").expect("key");
        std::fs::write(dir.path().join("rt"), "rt-1\n").expect("rt");
        mode("key", 0o644);
        mode("rt", 0o604);
        // The seed and the route name the same refresh token file: one warning for it.
        let c = oauth_config(dir.path(), "https://token.example/warnings");
        let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["probe.token_key_file", "routes.r.oauth2.refresh_token_file"]
        );
        assert!(
            c.warnings[0].problem.contains("(mode 0644)")
                && c.warnings[0].problem.contains("chmod 600"),
            "{}",
            c.warnings[0]
        );
        mode("key", 0o600);
        mode("rt", 0o400);
        let c = oauth_config(dir.path(), "https://token.example/warnings");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn one_account_has_one_token_cache_across_logins_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key"), "0123456789abcdef0123").expect("key");
        std::fs::write(dir.path().join("rt"), "rt-1\n").expect("rt");
        // A token URL of this test only: the cache registry lives as long as the process.
        let url = "https://token.example/one-account";
        let first = oauth_config(dir.path(), url);
        let (seed, route) = cache_of(&first);
        assert!(
            std::sync::Arc::ptr_eq(&seed.state, &route.state),
            "seed and route share"
        );
        let reloaded = oauth_config(dir.path(), url);
        assert!(
            std::sync::Arc::ptr_eq(&cache_of(&reloaded).0.state, &seed.state),
            "a reload keeps the cache"
        );
        // A new `oauth login` wrote another token: the next load adopts it.
        std::fs::write(dir.path().join("rt"), "rt-2\n").expect("rt");
        let after_login = oauth_config(dir.path(), url);
        let state = cache_of(&after_login).0.state;
        let token = state.try_lock().expect("idle").refresh_token.clone();
        assert_eq!(token.as_ref().map(Secret::expose), Some("rt-2"));
    }

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
    fn instance_defaults_to_the_short_host_name() {
        let never = || -> Option<String> { panic!("host name asked although configured") };
        assert_eq!(
            instance_name(Some("site-a"), never),
            Ok("site-a".to_string())
        );
        assert_eq!(
            instance_name(None, || Some("probe-7.example.net\n".to_string())),
            Ok("probe-7".to_string())
        );
        assert_eq!(
            instance_name(None, || Some("mailcanary-6f7d9c-x2kqp".to_string())),
            Ok("mailcanary-6f7d9c-x2kqp".to_string())
        );
        assert_eq!(
            instance_name(Some("site a"), never),
            Err(
                "names may use only letters, digits, '-' and '_' (at most 64), got \"site a\""
                    .to_string()
            )
        );
        assert_eq!(
            instance_name(None, || Some("bad+host".to_string())),
            Err("the host name \"bad+host\" is not a valid instance name (letters, digits, '-' and '_', at most 64); set probe.instance".to_string())
        );
        assert_eq!(
            instance_name(None, || None),
            Err("cannot read the host name to default to; set probe.instance".to_string())
        );
    }

    #[test]
    fn five_field_cron_gets_seconds() {
        let (six, interval) = cron_schedule("*/5 * * * *").expect("valid");
        assert_eq!(six, "0 */5 * * * *");
        assert_eq!(interval, Duration::from_secs(300));
        assert!(matches!(
            cron_schedule("* *"),
            Err(ScheduleError::FieldCount { fields: 2, .. })
        ));
        assert!(matches!(
            cron_schedule("99 * * * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert!(matches!(
            cron_schedule("0 0 30 2 *"),
            Err(ScheduleError::NeverRuns { .. })
        ));
    }
}
