//! The reports family: what the report mailboxes brought in — DMARC aggregate reports and the
//! messages they count, TLS sessions and failures, complaints (ARF feedback reports),
//! unreadable reports, when each mailbox was last read.

use prometheus::{GaugeVec, IntCounterVec, Registry};

use super::{counter, gauge};
use crate::reports::arf::FeedbackType;

/// The `mailcanary_dmarc_*`, `mailcanary_tls_*` and `mailcanary_report_*` series. Labels are
/// a configured domain, a reporter label from [`crate::reports::labels`] (a configured list plus
/// `other`) and fixed result words: never a source IP, a report id or anything else a report
/// says as written.
pub struct ReportMetrics {
    pub dmarc_messages: IntCounterVec,
    pub dmarc_reports: IntCounterVec,
    pub dmarc_last_report: GaugeVec,
    pub tls_sessions: IntCounterVec,
    pub tls_failures: IntCounterVec,
    pub complaints: IntCounterVec,
    pub errors: IntCounterVec,
    pub last_read: GaugeVec,
}

/// The `reason` of `mailcanary_report_errors_total`: the report reader's fixed reasons.
pub const REPORT_ERROR_REASONS: [&str; 15] = [
    "empty",
    "too_large",
    "too_many",
    "not_xml",
    "not_json",
    "doctype",
    "not_feedback",
    "missing_element",
    "bad_number",
    "bad_date",
    "corrupt",
    "unsupported_compression",
    "count_too_large",
    "bad_period",
    "state",
];

impl ReportMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        ReportMetrics {
            dmarc_messages: counter(
                r,
                "mailcanary_dmarc_messages_total",
                "Messages claiming the domain that receivers counted in DMARC aggregate reports, by the disposition applied and the policy-evaluated (aligned) DKIM and SPF result. Counted when a report is read, once per report.",
                &["domain", "reporter", "disposition", "dkim", "spf"],
            ),
            dmarc_reports: counter(
                r,
                "mailcanary_dmarc_reports_total",
                "DMARC aggregate reports read (each reporter + report id once).",
                &["domain", "reporter"],
            ),
            dmarc_last_report: gauge(
                r,
                "mailcanary_dmarc_last_report_timestamp_seconds",
                "End of the period covered by the newest DMARC aggregate report of this reporter (restored from the state database at start-up).",
                &["domain", "reporter"],
            ),
            tls_sessions: counter(
                r,
                "mailcanary_tls_sessions_total",
                "SMTP TLS sessions to the domain's MX that receivers reported in TLS reports (RFC 8460), by result (successful, failed).",
                &["domain", "reporter", "result"],
            ),
            tls_failures: counter(
                r,
                "mailcanary_tls_failures_total",
                "Failed SMTP TLS sessions reported in TLS reports, by RFC 8460 result type (other: a type outside RFC 8460).",
                &["domain", "reporter", "result_type"],
            ),
            complaints: counter(
                r,
                "mailcanary_complaints_total",
                "Complaints about mail claiming the domain, from complaint feedback reports (ARF, RFC 5965: Yahoo CFL, Microsoft JMRP) read in a report mailbox, by feedback type (abuse, fraud, virus, not-spam, auth-failure, other); the incidents each report stands for, each report once.",
                &["domain", "reporter", "type"],
            ),
            errors: counter(
                r,
                "mailcanary_report_errors_total",
                "Messages in a report mailbox that looked like a report but could not be read, by fixed reason.",
                &["mailbox", "reason"],
            ),
            last_read: gauge(
                r,
                "mailcanary_report_mailbox_last_read_timestamp_seconds",
                "When the report mailbox was last read completely.",
                &["mailbox"],
            ),
        }
    }

    /// The series a report mailbox always has.
    pub(super) fn preset(&self, m: &crate::config::ReportMailbox) {
        let name = m.mailbox.name.as_str();
        for reason in REPORT_ERROR_REASONS {
            self.errors.with_label_values(&[name, reason]);
        }
        for domain in &m.domains {
            for reporter in m.reporters.iter().map(String::as_str).chain(["other"]) {
                self.dmarc_reports.with_label_values(&[domain, reporter]);
                // Every combination, so `increase()` sees a report's first messages too.
                for disposition in ["none", "quarantine", "reject", "other"] {
                    for dkim in ["pass", "fail"] {
                        for spf in ["pass", "fail"] {
                            self.dmarc_messages.with_label_values(&[
                                domain,
                                reporter,
                                disposition,
                                dkim,
                                spf,
                            ]);
                        }
                    }
                }
                for result in ["successful", "failed"] {
                    self.tls_sessions
                        .with_label_values(&[domain, reporter, result]);
                }
                // The first complaint must be an increase, not a new series.
                for kind in FeedbackType::ALL {
                    self.complaints
                        .with_label_values(&[domain, reporter, kind.as_str()]);
                }
            }
        }
    }

    /// Counts one newly stored DMARC aggregate report (never a duplicate).
    pub fn dmarc_report(
        &self,
        mailbox: &str,
        domain: &str,
        reporter: &str,
        report: &crate::reports::dmarc::AggregateReport,
    ) {
        use crate::reports::labels;
        let messages = crate::reports::saturating_sum(report.records.iter().map(|r| r.count));
        tracing::info!(
            mailbox,
            domain,
            reporter,
            org_name = %report.org_name,
            report_id = %report.report_id,
            records = report.records.len(),
            messages,
            "DMARC aggregate report stored"
        );
        self.dmarc_reports
            .with_label_values(&[domain, reporter])
            .inc();
        for rec in &report.records {
            let counter = self.dmarc_messages.with_label_values(&[
                domain,
                reporter,
                labels::disposition(rec.disposition.as_deref()),
                labels::aligned(rec.dkim.as_deref()),
                labels::aligned(rec.spf.as_deref()),
            ]);
            inc_saturating(&counter, rec.count);
        }
        self.dmarc_report_seen(domain, reporter, report.end as f64);
    }

    /// Moves the newest-report time forward (a report read late never moves it back).
    pub fn dmarc_report_seen(&self, domain: &str, reporter: &str, end: f64) {
        let g = self
            .dmarc_last_report
            .with_label_values(&[domain, reporter]);
        if end > g.get() {
            g.set(end);
        }
    }

    /// Counts one newly stored TLS report's policies about `domain`.
    pub fn tls_report(
        &self,
        mailbox: &str,
        domain: &str,
        reporter: &str,
        report: &crate::reports::tlsrpt::TlsReport,
        policies: &[&crate::reports::tlsrpt::Policy],
    ) {
        use crate::reports::labels;
        let (ok, failed) = policies.iter().fold((0u64, 0u64), |(o, f), p| {
            (o.saturating_add(p.successful), f.saturating_add(p.failed))
        });
        tracing::info!(
            mailbox,
            domain,
            reporter,
            org_name = %report.org_name,
            report_id = %report.report_id,
            successful = ok,
            failed,
            "TLS report stored"
        );
        inc_saturating(
            &self
                .tls_sessions
                .with_label_values(&[domain, reporter, "successful"]),
            ok,
        );
        inc_saturating(
            &self
                .tls_sessions
                .with_label_values(&[domain, reporter, "failed"]),
            failed,
        );
        for p in policies {
            for f in &p.failures {
                let counter = self.tls_failures.with_label_values(&[
                    domain,
                    reporter,
                    labels::tls_result_type(&f.result_type),
                ]);
                inc_saturating(&counter, f.count);
            }
        }
    }

    /// Counts one newly stored complaint feedback report (never a duplicate): the incidents it
    /// stands for, under its feedback type.
    pub fn complaint_report(
        &self,
        mailbox: &str,
        domain: &str,
        reporter: &str,
        complaint: &crate::reports::Complaint,
    ) {
        let kind = complaint.report.feedback_type.as_str();
        tracing::warn!(
            mailbox,
            domain,
            reporter,
            feedback_type = kind,
            incidents = complaint.incidents(),
            about_a_probe = complaint.report.probe_token.is_some(),
            source_ip = %complaint.report.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "complaint feedback report stored"
        );
        inc_saturating(
            &self.complaints.with_label_values(&[domain, reporter, kind]),
            complaint.incidents(),
        );
    }

    /// Counts a message that looked like a report and could not be read, and logs why.
    pub fn report_error(
        &self,
        mailbox: &str,
        message_id: &str,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        tracing::warn!(mailbox, message_id, reason, error = %error, "report not readable; left in the mailbox");
        self.errors.with_label_values(&[mailbox, reason]).inc();
    }

    /// A report mailbox was read completely.
    pub fn mailbox_read(&self, mailbox: &str, at: f64, new_reports: usize) {
        tracing::debug!(mailbox, new_reports, "report mailbox read");
        self.last_read.with_label_values(&[mailbox]).set(at);
    }
}

/// Adds a count from a report to a counter, stopping at `u64::MAX` instead of wrapping (a
/// wrapped counter goes backwards, which Prometheus reads as a reset). Counts are capped at
/// parse time (`crate::reports::MAX_COUNT`), so this is a last line, not the rule.
fn inc_saturating(counter: &prometheus::IntCounter, n: u64) {
    counter.inc_by(n.min(u64::MAX - counter.get()));
}
