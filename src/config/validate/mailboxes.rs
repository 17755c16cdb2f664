//! The mailboxes read over IMAP: `[seeds.NAME]` (judged), `[bounce_mailboxes.NAME]` and
//! `[report_mailboxes.NAME]` (read, not judged; `[reports.NAME]` is the old name), with
//! provider presets.

use super::login::{ConnectionRules, DefaultPorts, LoginRule, RawConnection, connection};
use super::*;

pub(super) fn validate_seed(
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
    if let Some(n) = s.confirmations_per_hour {
        match u32::try_from(n) {
            Ok(n) if n <= 3600 => seed.confirmations_per_hour = n,
            _ => errs.push(
                format!("seeds.{name}.confirmations_per_hour"),
                format!("expected 0..3600, got {n}"),
            ),
        }
    }
    seed.routes = seed_routes;
    Some(seed)
}

/// A bounce mailbox: connection settings as a seed's (a provider preset, host, login), the
/// folder bounces arrive in. It is read like a seed, so it is kept as one.
pub(super) fn validate_bounce_mailbox(
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
pub(super) fn unjudged(mut mailbox: Seed, folder: Option<&String>) -> Seed {
    mailbox.authserv_ids = Vec::new();
    mailbox.preset_spam_folder = None;
    if let Some(folder) = folder {
        mailbox.inbox_folder = folder.clone();
    }
    mailbox
}

/// The report mailboxes, `[report_mailboxes.NAME]` and those still written under their old
/// name `[reports.NAME]` (each with a deprecation warning; a name under both is an error).
pub(super) fn validate_report_mailboxes(
    raw: &RawConfig,
    base: &Path,
    errs: &mut Errors,
) -> Vec<ReportMailbox> {
    for name in raw.reports.keys() {
        if raw.report_mailboxes.contains_key(name) {
            errs.push(
                format!("reports.{name}"),
                format!("also defined as [report_mailboxes.{name}]; keep that one only"),
            );
        } else {
            errs.warn(
                format!("reports.{name}"),
                format!(
                    "[reports.NAME] is deprecated, write [report_mailboxes.{name}] (same keys)"
                ),
            );
        }
    }
    let tables = raw
        .report_mailboxes
        .iter()
        .map(|(name, r)| ("report_mailboxes", name, r))
        .chain(raw.reports.iter().map(|(name, r)| ("reports", name, r)));
    tables
        .filter_map(|(table, name, r)| validate_report_mailbox(table, name, r, base, errs))
        .collect()
}

/// A report mailbox: connection settings as a seed's, the domains we own, what happens to a
/// stored report, when it is read, and which reporters get their own label. `table` is the
/// name it was written under (errors name the path as written).
pub(super) fn validate_report_mailbox(
    table: &str,
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
    let mailbox = imap_mailbox(errs, table, name, base, &fields);
    let at = |k: &str| format!("{table}.{name}.{k}");
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
pub(super) fn report_domains(
    errs: &mut Errors,
    path: &str,
    listed: Option<&[String]>,
) -> Option<Vec<String>> {
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
pub(super) fn is_reporter_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s != "other"
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
}

/// The fields every mailbox read over IMAP has (seeds, bounce mailboxes), as written.
pub(super) struct MailboxFields<'a> {
    pub(super) provider: Option<&'a str>,
    pub(super) address: Option<&'a str>,
    /// What to say when the address is missing or not an address.
    pub(super) address_problem: &'static str,
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<i64>,
    pub(super) tls: Option<&'a str>,
    pub(super) ca_file: &'a Option<PathBuf>,
    pub(super) username: Option<&'a str>,
    pub(super) password_env: &'a Option<String>,
    pub(super) password_file: &'a Option<PathBuf>,
    pub(super) auth: Option<&'a str>,
    pub(super) oauth2: Option<&'a RawOAuth2>,
    pub(super) poll_interval: Option<&'a str>,
}

/// Validates a mailbox of `family` (`seeds`, `bounce_mailboxes`): its name, provider preset,
/// address, connection (IMAP: login required, TLS by default) and poll interval, in that
/// order. The result has the preset's defaults (authserv-ids, spam folder, INBOX) and no
/// routes; the caller applies what its table adds.
pub(super) fn imap_mailbox(
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
        confirmations_per_hour: preset.confirmations_per_hour,
        routes: Vec::new(),
    })
}

/// The routes that send to a seed: the listed ones, each of which must exist, or all.
pub(super) fn seed_routes(
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
pub(super) fn preset(errs: &mut Errors, path: &str, name: &str) -> &'static Preset {
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
