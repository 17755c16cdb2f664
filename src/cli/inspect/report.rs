//! `mailcanary inspect` on a DMARC aggregate report (RFC 7489 Appendix C, RFC 9990) or an SMTP
//! TLS report (RFC 8460) — as `.xml`, `.json`, gzip, zip or inside a mail — read by
//! [`crate::reports`]: who reported, the period, which sources passed or failed alignment,
//! which TLS sessions failed and why.
//!
//! JSON contract: `{"kind": "dmarc_aggregate", "dmarc_aggregate": {...}}` or `{"kind":
//! "tls_report", "tls_report": {...}}`, the report as `crate::reports` serialises it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::terminal::escape;
use crate::reports::Report;
use crate::reports::dmarc::AggregateReport;
use crate::reports::tlsrpt::TlsReport;

#[derive(Serialize)]
struct DmarcJson<'a> {
    kind: &'static str,
    dmarc_aggregate: &'a AggregateReport,
}

#[derive(Serialize)]
struct TlsJson<'a> {
    kind: &'static str,
    tls_report: &'a TlsReport,
}

/// The JSON contract or the summary for a person.
pub fn render(report: &Report, json: bool) -> Result<String, serde_json::Error> {
    let text = match (report, json) {
        (Report::Dmarc(r), true) => {
            serde_json::to_string_pretty(&DmarcJson {
                kind: report.kind().json_kind(),
                dmarc_aggregate: r,
            })? + "\n"
        }
        (Report::Tlsrpt(r), true) => {
            serde_json::to_string_pretty(&TlsJson {
                kind: report.kind().json_kind(),
                tls_report: r,
            })? + "\n"
        }
        (Report::Dmarc(r), false) => dmarc_summary(r),
        (Report::Tlsrpt(r), false) => tls_summary(r),
        // A complaint is read from a mail of its own and explained by `complaint`.
        (Report::Arf(c), json) => super::complaint::render(&c.report, json)?,
    };
    Ok(text)
}

fn period(begin: i64, end: i64) -> String {
    let day = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    format!("{} to {}", day(begin), day(end))
}

/// Reporter, period, and per source IP (top 10 by volume) the messages that passed DMARC
/// (an aligned DKIM or SPF pass) and those that failed.
fn dmarc_summary(r: &AggregateReport) -> String {
    // Every value is the reporter's (or whoever mailed the report): escaped.
    let mut out = format!(
        "DMARC aggregate report {} from {} for {} (p={}), {}\n",
        escape(&r.report_id),
        escape(&r.org_name),
        escape(&r.policy_published.domain),
        escape(r.policy_published.p.as_deref().unwrap_or("?")),
        period(r.begin, r.end)
    );
    let mut by_ip: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for rec in &r.records {
        let aligned = rec.dkim.as_deref() == Some("pass") || rec.spf.as_deref() == Some("pass");
        let entry = by_ip.entry(rec.source_ip.as_str()).or_default();
        // Counts are capped at parse time; sums saturate all the same (never wrap).
        if aligned {
            entry.0 = entry.0.saturating_add(rec.count);
        } else {
            entry.1 = entry.1.saturating_add(rec.count);
        }
    }
    let mut rows: Vec<(&str, u64, u64)> =
        by_ip.into_iter().map(|(ip, (p, f))| (ip, p, f)).collect();
    rows.sort_by(|a, b| {
        (b.1.saturating_add(b.2))
            .cmp(&a.1.saturating_add(a.2))
            .then(a.0.cmp(b.0))
    });
    out.push_str("  source IP                                passing  failing\n");
    for (ip, pass, fail) in rows.iter().take(10) {
        out.push_str(&format!("  {:<40} {pass:>7}  {fail:>7}\n", escape(ip)));
    }
    if rows.len() > 10 {
        out.push_str(&format!("  … and {} more sources\n", rows.len() - 10));
    }
    out
}

/// Reporter, period, and per policy the sessions that succeeded and failed, failures by type.
fn tls_summary(r: &TlsReport) -> String {
    let mut out = format!(
        "SMTP TLS report {} from {}, {}\n",
        escape(&r.report_id),
        escape(&r.org_name),
        period(r.begin, r.end)
    );
    for p in &r.policies {
        out.push_str(&format!(
            "  {} ({}): {} sessions succeeded, {} failed\n",
            escape(&p.policy_domain),
            escape(&p.policy_type),
            p.successful,
            p.failed
        ));
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &p.failures {
            let sessions = by_type.entry(f.result_type.as_str()).or_default();
            *sessions = sessions.saturating_add(f.count);
        }
        for (kind, count) in by_type {
            out.push_str(&format!("    {}: {count}\n", escape(kind)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::dmarc::{PolicyPublished, Record};
    use crate::reports::tlsrpt::{Failure, Policy};

    /// ESC, OSC with BEL, C1 CSI, CR, a line break and a right-to-left override.
    const HOSTILE: &str = "x\x1b[2J\x1b]0;pwned\x07\u{9b}1m\r\nforged line\u{202e}";

    fn assert_clean(text: &str) {
        for c in text.chars() {
            assert!(
                c == '\n' || !(c.is_control() || c == '\u{202e}'),
                "{c:?} reached the output: {text:?}"
            );
        }
    }

    #[test]
    fn a_hostile_dmarc_report_prints_no_control_characters() {
        let record = |ip: &str, count| Record {
            source_ip: ip.into(),
            count,
            dkim: Some("fail".into()),
            header_from: "example.com".into(),
            ..Default::default()
        };
        let report = AggregateReport {
            org_name: HOSTILE.into(),
            report_id: HOSTILE.into(),
            begin: 0,
            end: 86_400,
            policy_published: PolicyPublished {
                domain: HOSTILE.into(),
                p: Some(HOSTILE.into()),
                ..Default::default()
            },
            // Counts the parser refuses (over 10^9), summed: saturated, never "failing 1".
            records: vec![record(HOSTILE, u64::MAX), record(HOSTILE, 2)],
            ..Default::default()
        };
        let text = dmarc_summary(&report);
        assert_clean(&text);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("x\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"), "{text}");
        assert!(text.contains(&u64::MAX.to_string()), "{text}");
    }

    #[test]
    fn a_hostile_tls_report_prints_no_control_characters() {
        let report = TlsReport {
            org_name: HOSTILE.into(),
            report_id: HOSTILE.into(),
            begin: 0,
            end: 86_400,
            contact: None,
            policies: vec![Policy {
                policy_type: HOSTILE.into(),
                policy_domain: HOSTILE.into(),
                successful: 1,
                failed: 2,
                failures: vec![
                    Failure {
                        result_type: HOSTILE.into(),
                        sending_mta_ip: None,
                        receiving_mx_hostname: None,
                        count: u64::MAX,
                    },
                    Failure {
                        result_type: HOSTILE.into(),
                        sending_mta_ip: None,
                        receiving_mx_hostname: None,
                        count: 2,
                    },
                ],
            }],
        };
        let text = tls_summary(&report);
        assert_clean(&text);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.ends_with(&format!(": {}\n", u64::MAX)), "{text}");
    }
}
