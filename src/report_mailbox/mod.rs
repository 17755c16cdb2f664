//! Report mailboxes (`[report_mailboxes.NAME]`): where receivers send the domain's DMARC
//! aggregate reports (RFC 7489 §7.2, the `rua=` address) and SMTP TLS reports (RFC 8460 §3,
//! the `TLSRPT` `rua=` address), and where feedback loops send complaints (ARF, RFC 5965:
//! Yahoo's CFL, Microsoft's JMRP). Read on their own schedule with the shared IMAP client
//! ([`crate::imap`]):
//! header-first, every new mail's Message-ID looked up before its body is fetched, the body
//! read whole in pieces, unpacked and parsed by the pure [`crate::reports`] readers. Each report
//! about one of our domains is stored once ([`crate::state::reports`]) and counted once in the metrics. A mail
//! is moved or deleted (`after`) only once every report in it is stored; anything that is not
//! a report of ours is never touched.

pub mod summary;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::now;
use crate::config::ReportMailbox;
use crate::dns_audit::dns::{Answer, Dns};
use crate::imap::{Candidate, FolderConn, ImapError};
use crate::metrics::Metrics;
use crate::reports::{self, Report, ReportError, labels};
use crate::state::StateError;
use crate::state::reports::{ReportStore, StoredReport};

/// The largest mail read whole: the report reader's own input limit.
pub const MAX_WHOLE_BYTES: u32 = reports::MAX_INPUT_BYTES as u32;

/// Why reading a report mailbox stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl ReadError {
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::Imap(e) => e.reason(),
            ReadError::State(e) => e.reason(),
        }
    }
}

/// What one read of a mailbox brought in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// New mails looked at.
    pub messages: usize,
    /// Reports stored for the first time.
    pub new_reports: usize,
    /// Reports stored before (counted then, not now).
    pub duplicates: usize,
    /// Mails that looked like a report and could not be read.
    pub unreadable: usize,
    /// Mails without a report, or with reports about other domains only: left alone.
    pub ignored: usize,
}

/// How many failing sources of one report get their reverse name looked up.
const NAMES_PER_REPORT: usize = 10;
/// How long one reverse lookup may take.
const NAME_TIMEOUT: Duration = Duration::from_secs(2);

/// One report mailbox, its connection kept between reads.
pub struct ReportReader {
    pub mailbox: ReportMailbox,
    conn: FolderConn,
    store: Arc<ReportStore>,
    metrics: Arc<Metrics>,
    /// Reverse lookups of failing source IPs (for people, never for labels).
    names: Option<Dns>,
    retention: Duration,
}

impl ReportReader {
    pub fn new(
        mailbox: &ReportMailbox,
        store: Arc<ReportStore>,
        metrics: Arc<Metrics>,
        nameserver: Option<std::net::SocketAddr>,
        retention: Duration,
    ) -> Self {
        let names = match Dns::new(nameserver, NAME_TIMEOUT) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "no resolver for report source names; shown without");
                None
            }
        };
        ReportReader {
            mailbox: mailbox.clone(),
            conn: FolderConn::for_reports(&mailbox.mailbox, MAX_WHOLE_BYTES),
            store,
            metrics,
            names,
            retention,
        }
    }

    pub fn name(&self) -> &str {
        &self.mailbox.mailbox.name
    }

    /// Reads every new mail of the mailbox once. An IMAP error ends the read (the next one
    /// picks up where this one stopped: the connection's watermark moves only past read mails).
    pub async fn read(&mut self) -> Result<ReadSummary, ReadError> {
        let result = self.read_inner().await;
        if let Err(ReadError::Imap(e)) = &result {
            self.metrics.imap_error(&self.mailbox.mailbox.name, e);
        }
        result
    }

    async fn read_inner(&mut self) -> Result<ReadSummary, ReadError> {
        let name = self.mailbox.mailbox.name.clone();
        let seen = self.store.seen_messages(&name)?;
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(30));
        let mut too_large = Vec::new();
        let found = self
            .conn
            .check(since, true, &[], |c| wanted(c, &seen, &mut too_large))
            .await?;
        let mut summary = ReadSummary {
            messages: found.len() + too_large.len(),
            ..ReadSummary::default()
        };
        for key in too_large {
            let e = ReportError::TooLarge {
                what: "the mail",
                limit: MAX_WHOLE_BYTES as usize,
            };
            self.metrics
                .reports
                .report_error(&name, &key, e.reason(), &e);
            self.store
                .remember_message(&name, &key, "unreadable", now())?;
            summary.unreadable += 1;
        }
        for (fetched, key) in found {
            let outcome = self.take(&key, &fetched.raw).await?;
            self.store
                .remember_message(&name, &key, outcome.as_str(), now())?;
            match outcome {
                Outcome::Stored { new, duplicates } => {
                    summary.new_reports += new;
                    summary.duplicates += duplicates;
                    if let Err(e) = self.conn.cleanup(&[fetched.uid], &self.mailbox.after).await {
                        tracing::warn!(mailbox = %name, error = %e, "report mail not moved/deleted; kept");
                    }
                }
                Outcome::Unreadable => summary.unreadable += 1,
                Outcome::Ignored => summary.ignored += 1,
            }
        }
        self.metrics
            .reports
            .mailbox_read(&name, now(), summary.new_reports);
        Ok(summary)
    }

    /// Stores and counts the reports of one mail.
    async fn take(&self, key: &str, raw: &[u8]) -> Result<Outcome, StateError> {
        let name = self.mailbox.mailbox.name.as_str();
        let read = complaint_in(raw, key, &self.mailbox, now() as i64)
            .transpose()
            .unwrap_or_else(|| reports_in(raw, &self.mailbox, now() as i64));
        let found = match read {
            Ok(f) => f,
            Err(ReportError::NotAReport) => return Ok(Outcome::Ignored),
            Err(e) => {
                self.metrics.reports.report_error(name, key, e.reason(), &e);
                return Ok(Outcome::Unreadable);
            }
        };
        if found.is_empty() {
            tracing::info!(
                mailbox = name,
                message_id = key,
                "report about other domains; ignored"
            );
            return Ok(Outcome::Ignored);
        }
        let (mut new, mut duplicates) = (0, 0);
        for f in found {
            let stored = StoredReport {
                reporter_key: labels::reporter_key(f.report.org_name()),
                reporter: f.reporter.clone(),
                domain: f.domain.clone(),
                mailbox: name.to_string(),
                received_at: now(),
                report: f.report.clone(),
            };
            if !self.store.insert(&stored)? {
                tracing::info!(mailbox = name, message_id = key, reporter = %f.reporter, "report already stored; not counted again");
                duplicates += 1;
                continue;
            }
            new += 1;
            match &f.report {
                Report::Dmarc(r) => {
                    self.metrics
                        .reports
                        .dmarc_report(name, &f.domain, &f.reporter, r);
                    self.name_sources(r).await;
                }
                Report::Tlsrpt(r) => {
                    let policies: Vec<_> = r
                        .policies
                        .iter()
                        .filter(|p| ours(&p.policy_domain, &self.mailbox.domains).is_some())
                        .collect();
                    self.metrics
                        .reports
                        .tls_report(name, &f.domain, &f.reporter, r, &policies);
                }
                Report::Arf(c) => {
                    self.metrics
                        .reports
                        .complaint_report(name, &f.domain, &f.reporter, c);
                }
            }
        }
        Ok(Outcome::Stored { new, duplicates })
    }

    /// Looks up the reverse names of a report's busiest failing sources, once per address.
    async fn name_sources(&self, r: &reports::dmarc::AggregateReport) {
        let Some(dns) = &self.names else { return };
        for ip in summary::failing_sources(r, NAMES_PER_REPORT) {
            let Ok(addr) = ip.parse::<IpAddr>() else {
                continue;
            };
            if matches!(self.store.source_name(&ip), Ok(Some(_))) {
                continue;
            }
            let name = match tokio::time::timeout(NAME_TIMEOUT, dns.ptr(addr)).await {
                Ok(Ok(Answer::Found(names))) => names.into_iter().next(),
                Ok(Ok(_)) => None,
                // A failed lookup is not remembered: the next report asks again.
                Ok(Err(_)) | Err(_) => continue,
            };
            if let Err(e) = self.store.set_source_name(&ip, name.as_deref(), now()) {
                tracing::warn!(error = %e, "cannot store a source name");
            }
        }
    }
}

/// What one mail turned out to be.
enum Outcome {
    /// Reports of ours: `new` stored now, `duplicates` stored before.
    Stored { new: usize, duplicates: usize },
    /// It looked like a report and could not be read (counted, logged, left in place).
    Unreadable,
    /// No report, or reports about other domains only (left in place).
    Ignored,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Stored { new: 0, .. } => "duplicate",
            Outcome::Stored { .. } => "stored",
            Outcome::Unreadable => "unreadable",
            Outcome::Ignored => "ignored",
        }
    }
}

/// The candidate filter: a mail not read before (by Message-ID, else UID) and not too large.
fn wanted(c: &Candidate, seen: &HashSet<String>, too_large: &mut Vec<String>) -> Option<String> {
    let key = message_key(c);
    if seen.contains(&key) {
        return None;
    }
    if c.size.is_some_and(|s| s > MAX_WHOLE_BYTES) {
        too_large.push(key);
        return None;
    }
    Some(key)
}

/// A mail's Message-ID (`<...>`), or `uid:N` for a mail without one.
fn message_key(c: &Candidate) -> String {
    mail_parser::MessageParser::new()
        .parse_headers(&c.fields)
        .and_then(|h| h.message_id().map(|m| format!("<{m}>")))
        .unwrap_or_else(|| format!("uid:{}", c.uid))
}

/// A report about one of our domains, with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub domain: String,
    pub reporter: String,
    pub report: Report,
}

/// The reports in a mail that are about one of the mailbox's domains. Pure (`now`, Unix
/// seconds, is the caller's clock). An unreadable report anywhere in the mail makes the whole
/// mail unreadable: it stays in the mailbox for a person to look at, and nothing of it is
/// counted. So does a report whose period ends in the future ([`Report::check_not_future`]).
pub fn reports_in(
    raw: &[u8],
    mailbox: &ReportMailbox,
    now: i64,
) -> Result<Vec<Found>, ReportError> {
    let authenticated = authenticated_domains(raw, &mailbox.mailbox.authserv_ids);
    let mut out = Vec::new();
    for doc in reports::unpack(None, raw)? {
        let report = doc.parse()?;
        report.check_not_future(now)?;
        let (domain, email) = match &report {
            Report::Dmarc(r) => (
                ours(&r.policy_published.domain, &mailbox.domains),
                r.email.as_deref(),
            ),
            Report::Tlsrpt(r) => (
                r.policies
                    .iter()
                    .find_map(|p| ours(&p.policy_domain, &mailbox.domains)),
                r.contact.as_deref(),
            ),
            // A complaint is a mail of its own (`complaint_in`); `unpack` never yields one.
            Report::Arf(_) => (None, None),
        };
        let Some(domain) = domain else { continue };
        let reporter =
            labels::reporter(report.org_name(), email, &mailbox.reporters, &authenticated);
        out.push(Found {
            domain: domain.to_string(),
            reporter: reporter.to_string(),
            report,
        });
    }
    Ok(out)
}

/// The complaint in a mail, when it is a complaint feedback report (ARF, RFC 5965): `None`
/// when the mail is not one (then it may hold other reports, [`reports_in`]); no [`Found`]
/// when the complaint is about none of the mailbox's domains. The domain is the first of the
/// report's `Reported-Domain`s, `Original-Mail-From` domain and reported From domain that is
/// ours; the reporter the `User-Agent` (or `Reporting-MTA`) and the report mail's From, counted
/// as a configured reporter only when the mail is authenticated for it, as for every report.
/// `key` is the mail's Message-ID (`uid:N` without one): the id the complaint is stored once
/// under. Pure (`now`, Unix seconds, is the caller's clock).
pub fn complaint_in(
    raw: &[u8],
    key: &str,
    mailbox: &ReportMailbox,
    now: i64,
) -> Result<Option<Vec<Found>>, ReportError> {
    let report = match reports::arf::parse(raw) {
        Ok(report) => report,
        Err(ReportError::NotFeedbackReport) => return Ok(None),
        Err(e) => return Err(e),
    };
    let domain_of = |address: &str| {
        address
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').trim().to_string())
    };
    let candidates = report
        .reported_domains
        .iter()
        .cloned()
        .chain(report.original_mail_from.as_deref().and_then(domain_of))
        .chain(report.original_from.as_deref().and_then(domain_of));
    let domain = candidates
        .into_iter()
        .find_map(|d| ours(&d, &mailbox.domains).cloned());
    let complaint = reports::Complaint {
        report_message_id: key.to_string(),
        received: now,
        report,
    };
    let report = Report::Arf(complaint);
    report.check_not_future(now)?;
    let Some(domain) = domain else {
        return Ok(Some(Vec::new()));
    };
    let authenticated = authenticated_domains(raw, &mailbox.mailbox.authserv_ids);
    let from = crate::verdict::headers::split(raw).ok().and_then(|fields| {
        fields
            .iter()
            .find(|field| field.is("From"))
            .map(|field| field.value())
    });
    let reporter = labels::reporter(
        report.org_name(),
        from.as_deref(),
        &mailbox.reporters,
        &authenticated,
    );
    Ok(Some(vec![Found {
        domain,
        reporter: reporter.to_string(),
        report,
    }]))
}

/// The domains the mail is authenticated for, as the report mailbox's own receiver wrote in
/// its trusted `Authentication-Results` (RFC 8601; trusted as a seed's are, by
/// `authserv_ids`, else the top-most header): the `header.d` of every passing DKIM signature
/// (RFC 6376 §3.5 `d=`) and the From domain when DMARC passes (RFC 7489 §3.1). RFC 8460 §3
/// has TLS reports sent by mail DKIM-signed by the reporter; DMARC reporters sign theirs too.
/// Empty for a bare report file or a mail its receiver did not authenticate.
pub fn authenticated_domains(raw: &[u8], trusted_authserv_ids: &[String]) -> Vec<String> {
    use crate::verdict::Method;
    let Ok(inspection) = crate::verdict::inspect(raw, trusted_authserv_ids) else {
        return Vec::new();
    };
    let dkim = inspection
        .results_for(Method::Dkim)
        .filter(|r| r.result.is_pass())
        .filter_map(|r| {
            r.property("header.d").or_else(|| {
                r.property("header.i")
                    .and_then(|i| i.rsplit_once('@').map(|(_, d)| d))
            })
        });
    let dmarc = inspection
        .decided_by(Method::Dmarc)
        .filter(|r| r.result.is_pass())
        .and_then(|r| r.property("header.from"));
    dkim.chain(dmarc)
        // Some receivers write an address where RFC 7489 §11.2 has the domain.
        .map(|d| d.rsplit('@').next().unwrap_or(d))
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The configured domain `domain` is (or is a subdomain of), if any.
fn ours<'a>(domain: &str, domains: &'a [String]) -> Option<&'a String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    domains
        .iter()
        .find(|o| d == **o || d.ends_with(&format!(".{o}")))
}

#[cfg(test)]
mod tests;
