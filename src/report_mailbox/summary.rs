//! What the stored reports say, for people: the newest reports, alignment per domain and
//! reporter, the busiest sources failing DMARC (with their reverse names), TLS failures, and
//! the complaints (ARF feedback reports) per domain, reporter and type.
//! Pure: the caller reads the reports and the names from the store. Served as
//! `/api/reports` and shown on the status page.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::reports::arf::FeedbackType;
use crate::reports::dmarc::AggregateReport;
use crate::reports::labels;
use crate::reports::{Report, ReportKind, saturating_sum};
use crate::state::reports::StoredReport;

/// How many reports, sources and TLS lines the view lists.
pub const LIST_LIMIT: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportsView {
    /// The window the figures cover, in days back from now.
    pub window_days: u32,
    /// The newest reports, newest first.
    pub reports: Vec<ReportLine>,
    /// DMARC alignment per domain and reporter.
    pub alignment: Vec<Alignment>,
    /// The sources that sent the most mail failing DMARC (neither aligned DKIM nor SPF).
    pub failing_sources: Vec<Source>,
    /// TLS failures per domain and RFC 8460 result type.
    pub tls_failures: Vec<TlsFailures>,
    /// Complaint feedback reports (ARF, RFC 5965) per domain, reporter and feedback type.
    pub complaints: Vec<Complaints>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Complaints {
    pub domain: String,
    pub reporter: String,
    /// `abuse`, `fraud`, `virus`, `not-spam`, `auth-failure`, `other` (RFC 5965 §7.3).
    pub feedback_type: FeedbackType,
    /// Reports received.
    pub reports: u64,
    /// Incidents they stand for (`Incidents`, RFC 5965 §3.2; 1 when a report states none).
    pub incidents: u64,
    /// Of the reports, those about one of our probes (the reported message carries the probe
    /// header).
    pub about_probes: u64,
    /// When the newest complained-of mail arrived (Unix seconds).
    pub latest: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportLine {
    /// `dmarc_aggregate` or `tls_report` in JSON (the `inspect` kinds).
    #[serde(serialize_with = "json_kind")]
    pub kind: ReportKind,
    pub domain: String,
    pub reporter: String,
    pub org_name: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
    pub received_at: f64,
    /// Messages (DMARC) or sessions (TLS) the report covers.
    pub total: u64,
    /// Of those, failing DMARC (neither aligned DKIM nor SPF) or failed TLS sessions.
    pub failing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    pub domain: String,
    pub reporter: String,
    pub messages: u64,
    pub dkim_aligned: u64,
    pub spf_aligned: u64,
    /// Neither aligned: DMARC fails.
    pub failing: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub source_ip: String,
    /// Its reverse (PTR) name, when one was found.
    pub name: Option<String>,
    pub domain: String,
    pub messages: u64,
    pub failing: u64,
    pub reporters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsFailures {
    pub domain: String,
    pub result_type: String,
    pub sessions: u64,
}

/// The view of `reports` (those received in the window); `name` gives a source IP's reverse
/// name, if one is known.
pub fn view(
    reports: &[StoredReport],
    window_days: u32,
    name: impl Fn(&str) -> Option<String>,
) -> ReportsView {
    let mut alignment: BTreeMap<(String, String), Alignment> = BTreeMap::new();
    let mut sources: BTreeMap<(String, String), Source> = BTreeMap::new();
    let mut tls: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut complaints: BTreeMap<(String, String, &'static str), Complaints> = BTreeMap::new();
    for s in reports {
        match &s.report {
            Report::Arf(c) => {
                let kind = c.report.feedback_type;
                let entry = complaints
                    .entry((s.domain.clone(), s.reporter.clone(), kind.as_str()))
                    .or_insert_with(|| Complaints {
                        domain: s.domain.clone(),
                        reporter: s.reporter.clone(),
                        feedback_type: kind,
                        reports: 0,
                        incidents: 0,
                        about_probes: 0,
                        latest: 0,
                    });
                entry.reports = entry.reports.saturating_add(1);
                entry.incidents = entry.incidents.saturating_add(c.incidents());
                if c.report.probe_token.is_some() {
                    entry.about_probes = entry.about_probes.saturating_add(1);
                }
                entry.latest = entry.latest.max(c.at());
            }
            Report::Dmarc(r) => {
                let a = alignment
                    .entry((s.domain.clone(), s.reporter.clone()))
                    .or_insert_with(|| Alignment {
                        domain: s.domain.clone(),
                        reporter: s.reporter.clone(),
                        messages: 0,
                        dkim_aligned: 0,
                        spf_aligned: 0,
                        failing: 0,
                    });
                for rec in &r.records {
                    let dkim = labels::aligned(rec.dkim.as_deref()) == "pass";
                    let spf = labels::aligned(rec.spf.as_deref()) == "pass";
                    // Counts are capped at parse time; sums saturate all the same, so that
                    // no report can wrap a figure (crate::reports, "Counts and periods").
                    a.messages = a.messages.saturating_add(rec.count);
                    if dkim {
                        a.dkim_aligned = a.dkim_aligned.saturating_add(rec.count);
                    }
                    if spf {
                        a.spf_aligned = a.spf_aligned.saturating_add(rec.count);
                    }
                    let failing = if dkim || spf { 0 } else { rec.count };
                    a.failing = a.failing.saturating_add(failing);
                    let src = sources
                        .entry((s.domain.clone(), rec.source_ip.clone()))
                        .or_insert_with(|| Source {
                            source_ip: rec.source_ip.clone(),
                            name: None,
                            domain: s.domain.clone(),
                            messages: 0,
                            failing: 0,
                            reporters: Vec::new(),
                        });
                    src.messages = src.messages.saturating_add(rec.count);
                    src.failing = src.failing.saturating_add(failing);
                    if !src.reporters.contains(&s.reporter) {
                        src.reporters.push(s.reporter.clone());
                    }
                }
            }
            Report::Tlsrpt(r) => {
                for p in &r.policies {
                    if !p.policy_domain.eq_ignore_ascii_case(&s.domain) {
                        continue;
                    }
                    for f in &p.failures {
                        let sessions = tls
                            .entry((
                                s.domain.clone(),
                                labels::tls_result_type(&f.result_type).to_string(),
                            ))
                            .or_default();
                        *sessions = sessions.saturating_add(f.count);
                    }
                }
            }
        }
    }
    let mut failing_sources: Vec<Source> =
        sources.into_values().filter(|s| s.failing > 0).collect();
    failing_sources.sort_by(|a, b| {
        b.failing
            .cmp(&a.failing)
            .then_with(|| a.source_ip.cmp(&b.source_ip))
    });
    failing_sources.truncate(LIST_LIMIT);
    for s in &mut failing_sources {
        s.name = name(&s.source_ip);
    }
    let mut tls_failures: Vec<TlsFailures> = tls
        .into_iter()
        .map(|((domain, result_type), sessions)| TlsFailures {
            domain,
            result_type,
            sessions,
        })
        .collect();
    tls_failures.sort_by_key(|t| std::cmp::Reverse(t.sessions));
    tls_failures.truncate(LIST_LIMIT);
    ReportsView {
        window_days,
        reports: reports.iter().take(LIST_LIMIT).map(line).collect(),
        alignment: alignment.into_values().collect(),
        failing_sources,
        tls_failures,
        complaints: complaints.into_values().collect(),
    }
}

fn line(s: &StoredReport) -> ReportLine {
    let (total, failing) = match &s.report {
        Report::Dmarc(r) => (
            saturating_sum(r.records.iter().map(|x| x.count)),
            saturating_sum(r.records.iter().filter(|x| !passes(x)).map(|x| x.count)),
        ),
        Report::Tlsrpt(r) => (
            saturating_sum(
                r.policies
                    .iter()
                    .map(|p| p.successful.saturating_add(p.failed)),
            ),
            saturating_sum(r.policies.iter().map(|p| p.failed)),
        ),
        // A complaint: the incidents it stands for, every one of them a complaint.
        Report::Arf(c) => (c.incidents(), c.incidents()),
    };
    let (begin, end) = s.report.period();
    ReportLine {
        kind: s.report.kind(),
        domain: s.domain.clone(),
        reporter: s.reporter.clone(),
        org_name: s.report.org_name().to_string(),
        report_id: s.report.report_id().to_string(),
        begin,
        end,
        received_at: s.received_at,
        total,
        failing,
    }
}

/// A report kind as `inspect --json` and `/api/reports` spell it.
fn json_kind<S: serde::Serializer>(kind: &ReportKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.json_kind())
}

/// Whether a record passes DMARC: aligned DKIM or aligned SPF (RFC 7489 §6.6.2).
fn passes(r: &crate::reports::dmarc::Record) -> bool {
    labels::aligned(r.dkim.as_deref()) == "pass" || labels::aligned(r.spf.as_deref()) == "pass"
}

/// The source IPs of a report that sent the most mail failing DMARC, at most `n`.
pub fn failing_sources(r: &AggregateReport, n: usize) -> Vec<String> {
    let mut by_ip: BTreeMap<&str, u64> = BTreeMap::new();
    for rec in r.records.iter().filter(|x| !passes(x)) {
        let failing = by_ip.entry(rec.source_ip.as_str()).or_default();
        *failing = failing.saturating_add(rec.count);
    }
    let mut v: Vec<(&str, u64)> = by_ip.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .take(n)
        .map(|(ip, _)| ip.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::Complaint;
    use crate::reports::arf::ComplaintReport;

    fn complaint(kind: FeedbackType, incidents: Option<u32>, probe: bool, at: i64) -> StoredReport {
        StoredReport {
            reporter_key: "yahoo".into(),
            reporter: "yahoo".into(),
            domain: "sender.test".into(),
            mailbox: "rua".into(),
            received_at: 0.0,
            report: Report::Arf(Complaint {
                report_message_id: format!("<{at}@yahoo.com>"),
                received: at,
                report: ComplaintReport {
                    feedback_type: kind,
                    feedback_type_word: None,
                    user_agent: None,
                    version: None,
                    source_ip: None,
                    reported_domains: vec![],
                    original_mail_from: None,
                    original_rcpt_to: None,
                    arrival_date: None,
                    arrival_timestamp: None,
                    reporting_mta: None,
                    incidents,
                    original_message_id: None,
                    probe_token: probe.then(|| "token".to_string()),
                    original_from: None,
                },
            }),
        }
    }

    #[test]
    fn complaints_are_counted_per_domain_reporter_and_type() {
        let stored = [
            complaint(FeedbackType::Abuse, None, true, 100),
            complaint(FeedbackType::Abuse, Some(3), false, 300),
            complaint(FeedbackType::NotSpam, None, false, 200),
        ];
        let v = view(&stored, 7, |_| None);
        assert_eq!(v.complaints.len(), 2, "{:?}", v.complaints);
        let abuse = &v.complaints[0];
        assert_eq!(abuse.feedback_type, FeedbackType::Abuse);
        assert_eq!(
            (abuse.reports, abuse.incidents, abuse.about_probes),
            (2, 4, 1)
        );
        assert_eq!(abuse.latest, 300);
        assert_eq!(v.complaints[1].feedback_type, FeedbackType::NotSpam);
        // Each complaint is a report line too, its incidents all failing.
        assert_eq!((v.reports[1].total, v.reports[1].failing), (3, 3));
    }
}
