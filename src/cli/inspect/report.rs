//! `mailcanary inspect` on a DMARC aggregate report (RFC 7489 Appendix C, RFC 9990) or an SMTP
//! TLS report (RFC 8460) — as `.xml`, `.json`, gzip, zip or inside a mail — read by
//! [`crate::reports`]: who reported, the period, which sources passed or failed alignment,
//! which TLS sessions failed and why.
//!
//! JSON contract: `{"kind": "dmarc_aggregate", "dmarc_aggregate": {...}}` or `{"kind":
//! "tls_report", "tls_report": {...}}`, the report as `crate::reports` serialises it.

use std::collections::BTreeMap;

use serde::Serialize;

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
                kind: "dmarc_aggregate",
                dmarc_aggregate: r,
            })? + "\n"
        }
        (Report::Tlsrpt(r), true) => {
            serde_json::to_string_pretty(&TlsJson {
                kind: "tls_report",
                tls_report: r,
            })? + "\n"
        }
        (Report::Dmarc(r), false) => dmarc_summary(r),
        (Report::Tlsrpt(r), false) => tls_summary(r),
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
    let mut out = format!(
        "DMARC aggregate report {} from {} for {} (p={}), {}\n",
        r.report_id,
        r.org_name,
        r.policy_published.domain,
        r.policy_published.p.as_deref().unwrap_or("?"),
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
        out.push_str(&format!("  {ip:<40} {pass:>7}  {fail:>7}\n"));
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
        r.report_id,
        r.org_name,
        period(r.begin, r.end)
    );
    for p in &r.policies {
        out.push_str(&format!(
            "  {} ({}): {} sessions succeeded, {} failed\n",
            p.policy_domain, p.policy_type, p.successful, p.failed
        ));
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &p.failures {
            let sessions = by_type.entry(f.result_type.as_str()).or_default();
            *sessions = sessions.saturating_add(f.count);
        }
        for (kind, count) in by_type {
            out.push_str(&format!("    {kind}: {count}\n"));
        }
    }
    out
}
