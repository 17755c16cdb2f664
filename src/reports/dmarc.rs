//! DMARC aggregate reports: the XML of RFC 7489 §7.2 and Appendix C, and of DMARCbis
//! (RFC 9990, namespace `urn:ietf:params:xml:ns:dmarc-2.0`).
//!
//! Elements are matched by local name, so a report reads the same with the DMARCbis namespace,
//! with the draft namespace some reporters use, or with none (RFC 7489 Appendix C has none).
//! Real reporters' quirks are tolerated: results in upper case (`PASS`) are lower-cased, white
//! space around values is trimmed, an empty `<reason/>` is skipped, unknown elements (DMARCbis
//! `np`, `testing`, `discovery_method`, `extension`) are ignored, and an optional element that
//! is missing is `null`.
//!
//! `row/count` is at most [`super::MAX_COUNT`] and the date range a sane period
//! ([`super::MAX_PERIOD_SECONDS`]), else the report is refused.
//!
//! Required (the parse fails without them): `report_metadata/org_name`, `report_id`,
//! `date_range/begin` and `end`, `policy_published/domain`, and in each record `row/source_ip`,
//! `row/count` and `identifiers/header_from` (RFC 7489 Appendix C, RFC 9990 Appendix A).
//!
//! No DTD is processed: quick-xml never resolves external entities, and a `<!DOCTYPE>` is
//! refused outright. Only the five predefined entities and character references are expanded
//! (XML 1.0 §4.6, §4.1).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

use super::{ReportError, capped, check_input, check_period, quoted};

/// How many elements deep the XML may nest.
pub const MAX_DEPTH: usize = 16;
/// The most `<record>` elements read.
pub const MAX_RECORDS: usize = 100_000;

/// An aggregate report (RFC 7489 Appendix C `feedback`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AggregateReport {
    pub org_name: String,
    pub email: Option<String>,
    pub report_id: String,
    /// Start of the reporting period, Unix seconds.
    pub begin: i64,
    /// End of the reporting period, Unix seconds.
    pub end: i64,
    pub policy_published: PolicyPublished,
    pub records: Vec<Record>,
}

/// The DMARC record the reporter found (RFC 7489 §6.3 tags).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyPublished {
    pub domain: String,
    pub p: Option<String>,
    pub sp: Option<String>,
    pub pct: Option<u32>,
    pub adkim: Option<String>,
    pub aspf: Option<String>,
}

/// One row of the report: a source IP and what was done with its mail.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    pub source_ip: String,
    pub count: u64,
    /// `none`, `quarantine` or `reject` (RFC 7489 §6.3 `p`), lower-cased.
    pub disposition: Option<String>,
    /// The DKIM result as DMARC evaluated it, with alignment: `pass` or `fail`.
    pub dkim: Option<String>,
    /// The SPF result as DMARC evaluated it, with alignment: `pass` or `fail`.
    pub spf: Option<String>,
    pub header_from: String,
    pub envelope_from: Option<String>,
    /// Why the disposition differs from the policy (RFC 7489 Appendix C `PolicyOverrideReason`).
    pub reasons: Vec<Reason>,
    pub auth_results: AuthResults,
    /// Google's "Sender requirement failed: 550-5.7.1" comment (a reason of type
    /// `local_policy`, from September 2025): the SMTP reply code Gmail gave these messages for
    /// not meeting its sender requirements, as written after the fixed prefix (`550-5.7.1`).
    /// `None` when no reason carries it.
    #[serde(default)]
    pub sender_requirement_failed: Option<String>,
}

/// A policy override reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reason {
    /// `forwarded`, `sampled_out`, `trusted_forwarder`, `mailing_list`, `local_policy`,
    /// `other`, lower-cased.
    #[serde(rename = "type")]
    pub kind: String,
    pub comment: Option<String>,
}

/// The raw, unaligned authentication results.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthResults {
    pub dkim: Vec<DkimResult>,
    pub spf: Vec<SpfResult>,
}

/// One DKIM signature's result (RFC 7489 Appendix C `DKIMAuthResultType`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DkimResult {
    pub domain: Option<String>,
    pub selector: Option<String>,
    /// RFC 8601 §2.7.1 result, lower-cased.
    pub result: Option<String>,
}

/// The SPF result (RFC 7489 Appendix C `SPFAuthResultType`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpfResult {
    pub domain: Option<String>,
    /// `mfrom` or `helo`, lower-cased.
    pub scope: Option<String>,
    /// RFC 8601 §2.7.2 result, lower-cased.
    pub result: Option<String>,
}

/// The fixed prefix of Google's sender-requirement comments in `policy_evaluated/reason/comment`
/// (Valimail, "Google's DMARC report update", 2025:
/// `<reason><type>local_policy</type><comment>Sender requirement failed: 550-5.7.1</comment>`).
pub const SENDER_REQUIREMENT_PREFIX: &str = "Sender requirement failed:";

/// The longest code kept from a sender-requirement comment.
const MAX_REQUIREMENT_CODE_CHARS: usize = 32;

impl AggregateReport {
    /// How many messages the report says failed a sender requirement (the sum of the `count`
    /// of the records with [`Record::sender_requirement_failed`]).
    pub fn sender_requirement_failures(&self) -> u64 {
        self.records
            .iter()
            .filter(|record| record.sender_requirement_failed.is_some())
            .map(|record| record.count)
            .fold(0, u64::saturating_add)
    }
}

/// The code of a sender-requirement comment, when the comment is one.
fn sender_requirement(comment: &str) -> Option<String> {
    let comment = comment.trim();
    let prefix = comment.get(..SENDER_REQUIREMENT_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(SENDER_REQUIREMENT_PREFIX) {
        return None;
    }
    let code: String = comment[SENDER_REQUIREMENT_PREFIX.len()..]
        .trim()
        .chars()
        .filter(|ch| !ch.is_control())
        .take(MAX_REQUIREMENT_CODE_CHARS)
        .collect();
    Some(if code.is_empty() {
        "unknown".to_string()
    } else {
        code
    })
}

/// Reads one aggregate report from its XML.
pub fn parse(bytes: &[u8]) -> Result<AggregateReport, ReportError> {
    check_input(bytes)?;
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    let mut builder = Builder::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut seen_root = false;
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(not_xml)?;
        match event {
            Event::Start(start) => {
                open(&mut builder, &mut path, &mut seen_root, &start)?;
                text.clear();
            }
            Event::Empty(start) => {
                open(&mut builder, &mut path, &mut seen_root, &start)?;
                builder.close(&path, "")?;
                path.pop();
            }
            Event::Text(raw) => text.push_str(&raw.xml_content().map_err(not_xml)?),
            Event::CData(raw) => text.push_str(&raw.decode().map_err(not_xml)?),
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(not_xml)?;
                // Only predefined entities and character references: there is no DTD to
                // declare any other (XML 1.0 §4.6, §4.1).
                let reference = format!("&{name};");
                let expanded = quick_xml::escape::unescape(&reference)
                    .map_err(|_| not_xml(format!("undeclared entity &{};", quoted(&name))))?;
                text.push_str(&expanded);
            }
            Event::End(_) => {
                builder.close(&path, text.trim())?;
                path.pop();
                text.clear();
            }
            Event::DocType(_) => return Err(ReportError::Doctype),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(not_xml("no root element"));
    }
    if !path.is_empty() {
        return Err(not_xml("unclosed elements at the end of the input"));
    }
    builder.finish()
}

/// An element opened: checks the root and the depth, and pushes it on `path`.
fn open(
    builder: &mut Builder,
    path: &mut Vec<String>,
    seen_root: &mut bool,
    start: &BytesStart<'_>,
) -> Result<(), ReportError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    if path.is_empty() {
        if *seen_root {
            return Err(not_xml("more than one root element"));
        }
        *seen_root = true;
        if name != "feedback" {
            return Err(ReportError::NotFeedback {
                root: quoted(&name),
            });
        }
    }
    if path.len() >= MAX_DEPTH {
        return Err(ReportError::TooMany {
            what: "nested XML elements",
            limit: MAX_DEPTH,
        });
    }
    path.push(name);
    builder.open(path)
}

fn not_xml(err: impl std::fmt::Display) -> ReportError {
    ReportError::NotXml {
        detail: err.to_string(),
    }
}

/// The report as it is read, element by element.
#[derive(Default)]
struct Builder {
    report: AggregateReport,
    begin: Option<i64>,
    end: Option<i64>,
    /// Per record: whether `row/count` was seen.
    counts_seen: Vec<bool>,
}

impl Builder {
    /// An element opened; `path` ends with it.
    fn open(&mut self, path: &[String]) -> Result<(), ReportError> {
        let rel: Vec<&str> = path.iter().skip(1).map(String::as_str).collect();
        match rel.as_slice() {
            ["record"] => {
                if self.report.records.len() >= MAX_RECORDS {
                    return Err(ReportError::TooMany {
                        what: "records",
                        limit: MAX_RECORDS,
                    });
                }
                self.report.records.push(Record::default());
                self.counts_seen.push(false);
            }
            ["record", "auth_results", "dkim"] => {
                if let Some(record) = self.report.records.last_mut() {
                    record.auth_results.dkim.push(DkimResult::default());
                }
            }
            ["record", "auth_results", "spf"] => {
                if let Some(record) = self.report.records.last_mut() {
                    record.auth_results.spf.push(SpfResult::default());
                }
            }
            ["record", "row", "policy_evaluated", "reason"] => {
                if let Some(record) = self.report.records.last_mut() {
                    record.reasons.push(Reason::default());
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An element closed with `text` (trimmed) as its content; `path` ends with it.
    fn close(&mut self, path: &[String], text: &str) -> Result<(), ReportError> {
        let rel: Vec<&str> = path.iter().skip(1).map(String::as_str).collect();
        let value = || (!text.is_empty()).then(|| text.to_string());
        let lower = || (!text.is_empty()).then(|| text.to_ascii_lowercase());
        let report = &mut self.report;
        match rel.as_slice() {
            ["report_metadata", "org_name"] => report.org_name = text.to_string(),
            ["report_metadata", "email"] => report.email = value(),
            ["report_metadata", "report_id"] => report.report_id = text.to_string(),
            ["report_metadata", "date_range", "begin"] => {
                self.begin = Some(number(text, "report_metadata/date_range/begin")?);
            }
            ["report_metadata", "date_range", "end"] => {
                self.end = Some(number(text, "report_metadata/date_range/end")?);
            }
            ["policy_published", "domain"] => report.policy_published.domain = text.to_string(),
            ["policy_published", "p"] => report.policy_published.p = lower(),
            ["policy_published", "sp"] => report.policy_published.sp = lower(),
            ["policy_published", "adkim"] => report.policy_published.adkim = lower(),
            ["policy_published", "aspf"] => report.policy_published.aspf = lower(),
            ["policy_published", "pct"] if !text.is_empty() => {
                report.policy_published.pct = Some(number(text, "policy_published/pct")?);
            }
            ["record", rest @ ..] => {
                if let Some(record) = report.records.last_mut() {
                    let count_seen = self.counts_seen.last_mut();
                    close_record(record, count_seen, rest, text)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<AggregateReport, ReportError> {
        let mut report = self.report;
        require(&report.org_name, "report_metadata/org_name")?;
        require(&report.report_id, "report_metadata/report_id")?;
        report.begin = self.begin.ok_or(ReportError::Missing {
            element: "report_metadata/date_range/begin",
        })?;
        report.end = self.end.ok_or(ReportError::Missing {
            element: "report_metadata/date_range/end",
        })?;
        check_period(report.begin, report.end)?;
        require(&report.policy_published.domain, "policy_published/domain")?;
        for (record, count_seen) in report.records.iter().zip(&self.counts_seen) {
            require(&record.source_ip, "record/row/source_ip")?;
            if !count_seen {
                return Err(ReportError::Missing {
                    element: "record/row/count",
                });
            }
            require(&record.header_from, "record/identifiers/header_from")?;
        }
        Ok(report)
    }
}

/// A `<record>` descendant closed; `rest` is its path below `record`.
fn close_record(
    record: &mut Record,
    count_seen: Option<&mut bool>,
    rest: &[&str],
    text: &str,
) -> Result<(), ReportError> {
    let value = || (!text.is_empty()).then(|| text.to_string());
    let lower = || (!text.is_empty()).then(|| text.to_ascii_lowercase());
    match rest {
        ["row", "source_ip"] => record.source_ip = text.to_string(),
        ["row", "count"] => {
            record.count = capped(number(text, "record/row/count")?, "record/row/count")?;
            if let Some(seen) = count_seen {
                *seen = true;
            }
        }
        ["row", "policy_evaluated", "disposition"] => record.disposition = lower(),
        ["row", "policy_evaluated", "dkim"] => record.dkim = lower(),
        ["row", "policy_evaluated", "spf"] => record.spf = lower(),
        ["row", "policy_evaluated", "reason", "type"] => {
            if let Some(reason) = record.reasons.last_mut() {
                reason.kind = text.to_ascii_lowercase();
            }
        }
        ["row", "policy_evaluated", "reason", "comment"] => {
            if let Some(reason) = record.reasons.last_mut() {
                reason.comment = value();
            }
            if record.sender_requirement_failed.is_none() {
                record.sender_requirement_failed = sender_requirement(text);
            }
        }
        // An empty `<reason/>` (some reporters write one) says nothing: drop it.
        ["row", "policy_evaluated", "reason"]
            if record.reasons.last().is_some_and(|r| r.kind.is_empty()) =>
        {
            record.reasons.pop();
        }
        ["identifiers", "header_from"] => record.header_from = text.to_string(),
        ["identifiers", "envelope_from"] => record.envelope_from = value(),
        ["auth_results", "dkim", field] => {
            if let Some(dkim) = record.auth_results.dkim.last_mut() {
                match *field {
                    "domain" => dkim.domain = value(),
                    "selector" => dkim.selector = value(),
                    "result" => dkim.result = lower(),
                    _ => {}
                }
            }
        }
        ["auth_results", "spf", field] => {
            if let Some(spf) = record.auth_results.spf.last_mut() {
                match *field {
                    "domain" => spf.domain = value(),
                    "scope" => spf.scope = lower(),
                    "result" => spf.result = lower(),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn require(value: &str, element: &'static str) -> Result<(), ReportError> {
    if value.is_empty() {
        return Err(ReportError::Missing { element });
    }
    Ok(())
}

fn number<T: std::str::FromStr>(text: &str, element: &'static str) -> Result<T, ReportError> {
    if text.is_empty() {
        return Err(ReportError::Missing { element });
    }
    text.parse().map_err(|_| ReportError::BadNumber {
        element,
        value: quoted(text),
    })
}
