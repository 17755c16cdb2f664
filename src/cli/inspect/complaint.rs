//! `mailcanary inspect` on a complaint feedback report (ARF, RFC 5965; RFC 6591 for
//! authentication failures), read by [`crate::reports::arf`]: what kind of feedback, who sent
//! it, which address and domains it blames, and which message (or probe) it is about.
//!
//! JSON contract: `{"kind": "arf", "arf": {...}}`, the report as
//! [`crate::reports::arf::ComplaintReport`] serialises it (`feedback_type` is one of `abuse`,
//! `fraud`, `virus`, `not-spam`, `auth-failure`, `other`; unknown fields `null`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::reports::ReportKind;
use crate::reports::arf::{ComplaintReport, FeedbackType};

#[derive(Serialize)]
struct Json<'a> {
    kind: &'static str,
    arf: &'a ComplaintReport,
}

/// The JSON contract or the explanation for a person.
pub fn render(report: &ComplaintReport, json: bool) -> Result<String, serde_json::Error> {
    if json {
        return serde_json::to_string_pretty(&Json {
            kind: ReportKind::Arf.json_kind(),
            arf: report,
        })
        .map(|j| j + "\n");
    }
    Ok(explain(report))
}

/// What the feedback means for the sender.
fn meaning(kind: FeedbackType) -> &'static str {
    match kind {
        FeedbackType::Abuse => {
            "a recipient marked the message as spam; complaints count toward the provider's \
             spam complaint rate"
        }
        FeedbackType::Fraud => "the message was reported as fraud or phishing",
        FeedbackType::Virus => "the message was reported as carrying a virus",
        FeedbackType::NotSpam => "a recipient marked the message as not spam",
        FeedbackType::AuthFailure => "the message failed authentication at the receiver (RFC 6591)",
        FeedbackType::Other => "feedback of another kind",
    }
}

fn explain(report: &ComplaintReport) -> String {
    let word = report
        .feedback_type_word
        .as_deref()
        .unwrap_or(report.feedback_type.as_str());
    let mut out = format!(
        "A complaint feedback report ({}, Feedback-Type: {})",
        ReportKind::Arf.word(),
        clean(word)
    );
    if let Some(agent) = &report.user_agent {
        let _ = write!(out, " from {}", clean(agent));
    }
    let _ = writeln!(out, ":\n  {}.", meaning(report.feedback_type));
    let lines = [
        ("Source IP", report.source_ip.map(|ip| ip.to_string())),
        (
            "Reported domain",
            (!report.reported_domains.is_empty()).then(|| report.reported_domains.join(", ")),
        ),
        ("Envelope sender", report.original_mail_from.clone()),
        ("Recipient", report.original_rcpt_to.clone()),
        ("Arrived", report.arrival_date.clone()),
        ("Reporting MTA", report.reporting_mta.clone()),
        ("Incidents", report.incidents.map(|n| n.to_string())),
        ("From", report.original_from.clone()),
    ];
    for (label, value) in lines {
        if let Some(value) = value {
            let _ = writeln!(out, "  {label}: {}", clean(&value));
        }
    }
    let names: Vec<String> = [
        report
            .probe_token
            .as_deref()
            .map(|t| format!("probe token {}", clean(t))),
        report
            .original_message_id
            .as_deref()
            .map(|m| format!("Message-ID {}", clean(m))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if names.is_empty() {
        out.push_str("It does not name the message.\n");
    } else {
        let _ = writeln!(out, "It names the message by {}.", names.join(", "));
    }
    out
}

/// A value from the report (that is, from whoever sent it), made safe for a terminal.
fn clean(text: &str) -> String {
    crate::cli::terminal::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_a_complaint_about_a_probe() {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/arf/yahoo-cfl-probe.eml"
        ))
        .expect("fixture");
        let report = crate::reports::arf::parse(&raw).expect("ARF");
        let text = render(&report, false).expect("text");
        assert!(
            text.starts_with(
                "A complaint feedback report (ARF, Feedback-Type: abuse) from \
                 Yahoo!-Mail-Feedback/2.0:\n  a recipient marked the message as spam;"
            ),
            "{text}"
        );
        assert!(text.contains("  Reported domain: sender.test\n"), "{text}");
        assert!(
            text.contains("It names the message by probe token v1."),
            "{text}"
        );
    }
}
