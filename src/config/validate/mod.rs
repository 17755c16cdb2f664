//! Validation: the config as written ([`super::raw`]) checked for meaning and completed with
//! defaults. Every problem is collected with its config path (`seeds.gmail.port: expected
//! 1..65535, got 0`), so that all of them are reported at once.
//!
//! One file per kind of section: [`probe`], [`routes`], [`mailboxes`] (seeds, bounce and
//! report mailboxes), [`audit`] (`[dns_audit]`); routes and mailboxes share one connection
//! and login validator ([`login`]). This file holds what they all use: the error collector and
//! the field validators (durations, ports, TLS modes, files, secrets, names, cron schedules).
//! Validating has no effect beyond the config it returns (secrets are read, nothing is
//! shared): the running setup shares OAuth2 token caches ([`crate::oauth::caches`]).

mod audit;
mod login;
mod mailboxes;
mod probe;
mod routes;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use croner::errors::CronError;

use crate::config::oauth2::{Grant, Login, OAuth2, OAuthPreset, TokenCache, TokenState};
use crate::config::provider::{self, Preset};
use crate::config::raw::{
    RawBounceMailbox, RawConfig, RawDkim, RawMessage, RawOAuth2, RawProbe, RawReportMailbox,
    RawRoute, RawSeed,
};
use crate::config::secret::{Secret, SecretSource, permission_warning};
use crate::config::{
    Cleanup, Config, Credentials, DEFAULT_DNSBL_ZONES, DEFAULT_REPORTERS, DkimSigning,
    DnsAuditConfig, MessageTemplate, ProbeConfig, ReportMailbox, Route, Seed, TlsMode, domain_of,
};

use audit::validate_dns_audit;
use mailboxes::{validate_bounce_mailbox, validate_report_mailboxes, validate_seed};
use probe::validate_probe;
use routes::validate_route;

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
/// warnings (deprecated keys, secret files others can read) of a config that is valid all the
/// same.
#[derive(Default)]
struct Errors(Vec<FieldError>, Context, Warnings);

/// Warnings in file order, one per secret file however many options name it.
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

    /// Something valid but unwise, at `path`: the config loads, the warning is logged.
    fn warn(&mut self, path: impl fmt::Display, problem: impl fmt::Display) {
        self.2.list.push(FieldError {
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
            self.warn(path, problem);
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
    let report_mailboxes = validate_report_mailboxes(&raw, base, &mut errs);
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
            let config = Config {
                probe,
                routes,
                seeds,
                dns_audit,
                bounce_mailboxes,
                report_mailboxes,
                warnings: errs.2.list,
            };
            Ok(config)
        }
        _ => Err(errs.0),
    }
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
