//! The status page's "Reports" section: what the domain's DMARC aggregate and TLS reports say
//! (from [`crate::report_mailbox::summary`]): the newest reports, the busiest sources failing DMARC
//! with the reverse name of each, TLS failures, and complaints (ARF feedback reports) per domain,
//! reporter and type, beside them. Every value shown came from a report, that
//! is from anyone who can mail the report address: all of it is escaped.

use crate::report_mailbox::summary::ReportsView;
use crate::serve::html::{esc, utc};

/// The section, or nothing when no report mailbox is configured.
pub fn render(view: &ReportsView, now: f64) -> String {
    let mut html = format!(
        "<section class=\"history-section\" id=\"reports\"><h2>Reports from receivers \
(last {} days)</h2>",
        view.window_days
    );
    if view.reports.is_empty() {
        html.push_str("<p>No DMARC or TLS report has arrived yet.</p></section>");
        return html;
    }
    html.push_str(
        "<div class=\"wrap\"><table><thead><tr><th>reporter</th><th>domain</th><th>kind</th>\
<th>period</th><th>total</th><th>failing</th></tr></thead><tbody>",
    );
    for r in &view.reports {
        let kind = r.kind.word();
        html.push_str(&format!(
            "<tr data-report-id=\"{}\"><td>{}</td><td>{}</td><td>{kind}</td><td>{} – {}</td>\
<td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&r.report_id),
            esc(&r.org_name),
            esc(&r.domain),
            esc(&utc(r.begin as f64)),
            esc(&utc(r.end as f64)),
            r.total,
            if r.failing > 0 { "crit" } else { "ok" },
            r.failing
        ));
    }
    html.push_str("</tbody></table></div>");
    if !view.failing_sources.is_empty() {
        html.push_str(
            "<h3>Sources failing DMARC</h3><div class=\"wrap\"><table><thead><tr><th>source</th>\
<th>reverse name</th><th>domain</th><th>failing</th><th>of</th><th>reported by</th></tr></thead><tbody>",
        );
        for s in &view.failing_sources {
            html.push_str(&format!(
                "<tr data-source-ip=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.source_ip),
                esc(&s.source_ip),
                esc(s.name.as_deref().unwrap_or("(none)")),
                esc(&s.domain),
                s.failing,
                s.messages,
                esc(&s.reporters.join(", "))
            ));
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str(&complaints(view));
    if !view.tls_failures.is_empty() {
        html.push_str("<h3>TLS failures</h3><ul>");
        for t in &view.tls_failures {
            html.push_str(&format!(
                "<li>{}: {} × {}</li>",
                esc(&t.domain),
                t.sessions,
                esc(&t.result_type)
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str(&format!(
        "<p>Details: <a href=\"/api/reports\">/api/reports</a> (page rendered {}).</p></section>",
        esc(&utc(now))
    ));
    html
}

/// The complaints table: per domain, reporter and feedback type, how many reports and
/// incidents, how many about our own probes, and the newest.
fn complaints(view: &ReportsView) -> String {
    if view.complaints.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<h3>Complaints (feedback loops)</h3><div class=\"wrap\"><table><thead><tr>\
<th>domain</th><th>reporter</th><th>type</th><th>reports</th><th>incidents</th>\
<th>about probes</th><th>latest</th></tr></thead><tbody>",
    );
    for c in &view.complaints {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.domain),
            esc(&c.reporter),
            if c.feedback_type == crate::reports::arf::FeedbackType::NotSpam { "ok" } else { "crit" },
            esc(c.feedback_type.as_str()),
            c.reports,
            c.incidents,
            c.about_probes,
            esc(&utc(c.latest as f64))
        ));
    }
    html.push_str("</tbody></table></div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_mailbox::summary::{ReportLine, ReportsView, Source};

    #[test]
    fn report_values_are_escaped_and_sources_named() {
        let view = ReportsView {
            window_days: 7,
            reports: vec![ReportLine {
                kind: crate::reports::ReportKind::Dmarc,
                domain: "example.com".into(),
                reporter: "other".into(),
                org_name: "<script>alert(1)</script>".into(),
                report_id: "\"id".into(),
                begin: 0,
                end: 86_400,
                received_at: 1.0,
                total: 8,
                failing: 3,
            }],
            alignment: vec![],
            failing_sources: vec![Source {
                source_ip: "198.51.100.7".into(),
                name: Some("mx.bad.example".into()),
                domain: "example.com".into(),
                messages: 3,
                failing: 3,
                reporters: vec!["other".into()],
            }],
            tls_failures: vec![],
            complaints: vec![],
        };
        let html = render(&view, 100.0);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("data-report-id=\"&quot;id\""));
        assert!(html.contains("<td>mx.bad.example</td>"));
        let empty = ReportsView {
            window_days: 7,
            reports: vec![],
            alignment: vec![],
            failing_sources: vec![],
            tls_failures: vec![],
            complaints: vec![],
        };
        assert!(render(&empty, 0.0).contains("No DMARC or TLS report has arrived yet."));
    }

    #[test]
    fn complaints_are_listed_beside_the_reports() {
        use crate::report_mailbox::summary::{Complaints, ReportLine};
        use crate::reports::ReportKind;
        use crate::reports::arf::FeedbackType;
        let view = ReportsView {
            window_days: 7,
            reports: vec![ReportLine {
                kind: ReportKind::Arf,
                domain: "example.com".into(),
                reporter: "yahoo".into(),
                org_name: "Yahoo!-Mail-Feedback/2.0".into(),
                report_id: "<1@yahoo.com>".into(),
                begin: 0,
                end: 0,
                received_at: 1.0,
                total: 1,
                failing: 1,
            }],
            alignment: vec![],
            failing_sources: vec![],
            tls_failures: vec![],
            complaints: vec![Complaints {
                domain: "example.com".into(),
                reporter: "<yahoo>".into(),
                feedback_type: FeedbackType::Abuse,
                reports: 2,
                incidents: 4,
                about_probes: 1,
                latest: 86_400,
            }],
        };
        let html = render(&view, 100.0);
        assert!(
            html.contains("<h3>Complaints (feedback loops)</h3>"),
            "{html}"
        );
        assert!(
            html.contains("<td>example.com</td><td>&lt;yahoo&gt;</td><td class=\"crit\">abuse</td><td>2</td><td>4</td><td>1</td>"),
            "{html}"
        );
    }
}
