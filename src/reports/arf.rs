//! Complaint feedback reports in the Abuse Reporting Format (ARF, RFC 5965), as the feedback
//! loops send them: Yahoo's Complaint Feedback Loop, Microsoft's Junk Mail Reporting Program,
//! and any receiver that reports a user's "this is spam" (RFC 6650 §3 describes their use) or
//! an authentication failure (`Feedback-Type: auth-failure`, RFC 6591).
//!
//! A report is a `multipart/report; report-type=feedback-report` (RFC 5965 §2): a human-readable
//! part, a `message/feedback-report` part of header-like fields (§3.1, §3.2), and the reported
//! message (`message/rfc822`) or its header section (`text/rfc822-headers`). [`parse`] reads:
//!
//! - `Feedback-Type` (required, §3.1): `abuse`, `fraud`, `virus`, `other`, `not-spam`
//!   (RFC 6430), `auth-failure` (RFC 6591); any other word is `other`, the word kept;
//! - `User-Agent` and `Version` (required by §3.1, tolerated when missing: Microsoft's JMRP
//!   writes `Version: 0.1`, some generators none);
//! - `Source-IP`, `Original-Mail-From`, `Original-Rcpt-To`, `Arrival-Date` (and Yahoo's
//!   `Received-Date`), `Reporting-MTA`, `Incidents`, `Reported-Domain` (§3.2);
//! - from the reported message's header section: its Message-ID, and the probe header
//!   (`X-Mailcanary-Probe`) when the complaint is about a probe.
//!
//! mail-auth 0.13.3 has an ARF parser (`mail_auth::report::Feedback::parse_arf`), but behind its
//! `report` feature, which brings quick-xml 0.42 and zip 8 into the build beside the 0.38 and 9
//! this crate reads DMARC and TLS reports with; and its `parse_rfc5322` walks the MIME tree with
//! `MessageParser::parse`, which follows nested messages without a depth limit (the reason
//! `verdict::dsn::mime` exists). The fields are few and header-like, so they are read here with
//! the same bounded splitter and MIME walker as bounces.
//!
//! # Limits
//!
//! Input is at most [`super::MAX_INPUT_BYTES`]; MIME is followed [`MAX_DEPTH`] levels and
//! [`MAX_PARTS`] parts; the reported message is read for its header section only; every stored
//! string is cut to [`MAX_VALUE_CHARS`] characters and at most [`MAX_DOMAINS`] reported domains
//! are kept.

use std::net::IpAddr;

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use serde::{Deserialize, Serialize};

use super::{ReportError, check_input};
use crate::verdict::dsn::mime::{ContentType, decode, split_entity, split_multipart};
use crate::verdict::headers::{self, Field};

/// How many multipart levels are followed.
pub const MAX_DEPTH: usize = 8;
/// How many MIME parts are looked at, in all.
pub const MAX_PARTS: usize = 64;
/// The longest stored string, in characters.
pub const MAX_VALUE_CHARS: usize = 255;
/// The most `Reported-Domain` values kept.
pub const MAX_DOMAINS: usize = 16;

/// The probe header of a reported message (a copy of the probe's header name: this library
/// imports nothing of the application).
const PROBE_HEADER: &str = "X-Mailcanary-Probe";

/// What kind of feedback (RFC 5965 §7.3 registry; RFC 6430 `not-spam`; RFC 6591
/// `auth-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackType {
    /// Unsolicited or otherwise abusive mail: a user's spam complaint.
    Abuse,
    /// Fraudulent mail (phishing).
    Fraud,
    /// Mail carrying a virus.
    Virus,
    /// Mail wrongly classified as spam (RFC 6430).
    NotSpam,
    /// An authentication failure report (RFC 6591).
    AuthFailure,
    /// `other`, or a word not registered.
    Other,
}

impl FeedbackType {
    /// Every type (the bounded `type` label of `mailcanary_complaints_total`).
    pub const ALL: [FeedbackType; 6] = [
        FeedbackType::Abuse,
        FeedbackType::Fraud,
        FeedbackType::Virus,
        FeedbackType::NotSpam,
        FeedbackType::AuthFailure,
        FeedbackType::Other,
    ];

    /// Reads a `Feedback-Type` value, case-insensitively.
    pub fn parse(word: &str) -> FeedbackType {
        match word.trim().to_ascii_lowercase().as_str() {
            "abuse" => FeedbackType::Abuse,
            "fraud" => FeedbackType::Fraud,
            "virus" => FeedbackType::Virus,
            "not-spam" => FeedbackType::NotSpam,
            "auth-failure" => FeedbackType::AuthFailure,
            _ => FeedbackType::Other,
        }
    }

    /// The registered word (the bounded `type` label).
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackType::Abuse => "abuse",
            FeedbackType::Fraud => "fraud",
            FeedbackType::Virus => "virus",
            FeedbackType::NotSpam => "not-spam",
            FeedbackType::AuthFailure => "auth-failure",
            FeedbackType::Other => "other",
        }
    }
}

/// One complaint (or other feedback) report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintReport {
    /// `Feedback-Type`.
    pub feedback_type: FeedbackType,
    /// The `Feedback-Type` word as written, when it is not a registered one.
    pub feedback_type_word: Option<String>,
    /// `User-Agent`: the software that wrote the report (`Yahoo!-Mail-Feedback/2.0`).
    pub user_agent: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Source-IP`: the address the reported message came from.
    pub source_ip: Option<IpAddr>,
    /// `Reported-Domain`: the domains the reporter holds responsible.
    pub reported_domains: Vec<String>,
    /// `Original-Mail-From`, without `<>`.
    pub original_mail_from: Option<String>,
    /// `Original-Rcpt-To`, without `<>` (feedback loops often redact it).
    pub original_rcpt_to: Option<String>,
    /// `Arrival-Date` (or Yahoo's `Received-Date`), as written.
    pub arrival_date: Option<String>,
    /// The same date, Unix seconds, when it parses.
    pub arrival_timestamp: Option<i64>,
    /// `Reporting-MTA`, type prefix removed.
    pub reporting_mta: Option<String>,
    /// `Incidents` (how many such messages the report stands for; RFC 5965 §3.2).
    pub incidents: Option<u32>,
    /// The Message-ID of the reported message, with `<>`.
    pub original_message_id: Option<String>,
    /// The reported message's `X-Mailcanary-Probe`: the complaint is about a probe.
    pub probe_token: Option<String>,
    /// The reported message's From field, as written.
    pub original_from: Option<String>,
}

/// Reads an ARF report from a mail. Fails with [`ReportError::NotFeedbackReport`] when the mail
/// is not one, and with [`ReportError::Missing`] when its feedback part has no `Feedback-Type`.
pub fn parse(raw: &[u8]) -> Result<ComplaintReport, ReportError> {
    check_input(raw)?;
    let fields = headers::split(raw).map_err(|_| ReportError::NotFeedbackReport)?;
    let mut found = Found::default();
    let (_, body) = split_entity(raw);
    walk(&fields, body, 0, false, &mut found);
    let feedback = found.feedback.ok_or(ReportError::NotFeedbackReport)?;
    report(&feedback, found.original.as_deref())
}

/// What the MIME walk found.
#[derive(Default)]
struct Found {
    /// The body of the first `message/feedback-report` part inside a feedback report.
    feedback: Option<Vec<u8>>,
    /// The header section of the reported message.
    original: Option<Vec<u8>>,
    parts: usize,
}

fn walk(fields: &[Field<'_>], body: &[u8], depth: usize, in_report: bool, found: &mut Found) {
    let content_type = ContentType::of(fields);
    if content_type.kind == "multipart" {
        let is_report = content_type.subtype == "report"
            && content_type
                .param("report-type")
                .is_some_and(|kind| kind.eq_ignore_ascii_case("feedback-report"));
        let Some(boundary) = content_type.param("boundary").filter(|b| !b.is_empty()) else {
            return;
        };
        if depth >= MAX_DEPTH {
            return;
        }
        for part in split_multipart(body, boundary.as_bytes()) {
            if found.parts >= MAX_PARTS {
                return;
            }
            found.parts += 1;
            let (head, part_body) = split_entity(part);
            let part_fields = headers::split(head).unwrap_or_default();
            walk(
                &part_fields,
                part_body,
                depth + 1,
                in_report || is_report,
                found,
            );
        }
        return;
    }
    if !in_report {
        return;
    }
    match (content_type.kind.as_str(), content_type.subtype.as_str()) {
        ("message", "feedback-report") if found.feedback.is_none() => {
            found.feedback = Some(decode(fields, body).into_owned());
        }
        ("message", "rfc822") | ("text", "rfc822-headers") if found.original.is_none() => {
            let decoded = decode(fields, body);
            let (head, _) = split_entity(&decoded);
            found.original = Some(head.to_vec());
        }
        _ => {}
    }
}

/// The report from the feedback part's fields and the reported message's header section.
fn report(feedback: &[u8], original: Option<&[u8]>) -> Result<ComplaintReport, ReportError> {
    let fields = headers::split(feedback).map_err(|_| ReportError::Missing {
        element: "Feedback-Type",
    })?;
    let first = |name: &str| {
        fields
            .iter()
            .find(|field| field.is(name))
            .map(|field| field.value())
    };
    let word = first("Feedback-Type")
        .and_then(|value| clean(&value))
        .ok_or(ReportError::Missing {
            element: "Feedback-Type",
        })?;
    let feedback_type = FeedbackType::parse(&word);
    let arrival_date = first("Arrival-Date")
        .or_else(|| first("Received-Date"))
        .and_then(|value| clean(&value));
    let reported_domains = fields
        .iter()
        .filter(|field| field.is("Reported-Domain"))
        .filter_map(|field| clean(&field.value()))
        .take(MAX_DOMAINS)
        .collect();
    let original_fields = original.and_then(|head| headers::split(head).ok());
    let original_value = |name: &str| {
        original_fields.as_ref().and_then(|fields| {
            fields
                .iter()
                .find(|field| field.is(name))
                .map(|field| field.value())
        })
    };
    Ok(ComplaintReport {
        feedback_type_word: (feedback_type == FeedbackType::Other
            && !word.eq_ignore_ascii_case("other"))
        .then(|| word.clone()),
        feedback_type,
        user_agent: first("User-Agent").and_then(|value| clean(&value)),
        version: first("Version").and_then(|value| clean(&value)),
        source_ip: first("Source-IP").and_then(|value| {
            let value = value.trim().trim_start_matches('[').trim_end_matches(']');
            value.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
        }),
        reported_domains,
        original_mail_from: first("Original-Mail-From").and_then(|value| address(&value)),
        original_rcpt_to: first("Original-Rcpt-To").and_then(|value| address(&value)),
        arrival_timestamp: arrival_date.as_deref().and_then(timestamp),
        arrival_date,
        reporting_mta: first("Reporting-MTA").and_then(|value| {
            // `dns; mail.example.com` (RFC 3464 §2.1.2 typed value).
            let value = value.split_once(';').map_or(value.as_str(), |(_, v)| v);
            clean(value)
        }),
        incidents: first("Incidents").and_then(|value| value.trim().parse().ok()),
        original_message_id: original_value("Message-ID").and_then(|value| message_id(&value)),
        probe_token: original_value(PROBE_HEADER).and_then(|value| clean(&value)),
        original_from: original_value("From").and_then(|value| clean(&value)),
    })
}

/// An RFC 5322 date-time as Unix seconds.
fn timestamp(value: &str) -> Option<i64> {
    let bytes = format!("{value}\n");
    match MessageStream::new(bytes.as_bytes()).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    }
}

/// An address field without `<>`.
fn address(value: &str) -> Option<String> {
    let value = value.trim();
    let value = value
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(value);
    clean(value)
}

/// A Message-ID with its `<>`: the first `<...>` in the value, else the value wrapped.
fn message_id(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(open) = value.find('<')
        && let Some(close) = value[open..].find('>')
    {
        return clean(&value[open..open + close + 1]);
    }
    let word = value.split_whitespace().next()?;
    clean(&format!("<{word}>"))
}

/// Control characters dropped, white space collapsed, cut to [`MAX_VALUE_CHARS`]; `None`
/// when nothing is left.
fn clean(value: &str) -> Option<String> {
    crate::truncate::field(value, MAX_VALUE_CHARS)
}
