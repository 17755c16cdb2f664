//! Reads the reports receivers send back about a domain's mail: DMARC aggregate reports
//! (RFC 7489 §7.2 and Appendix C; DMARCbis, RFC 9990, namespace
//! `urn:ietf:params:xml:ns:dmarc-2.0`) and SMTP TLS reports (RFC 8460 §4).
//!
//! This module is pure: it takes bytes and returns values, with no network, no clock, no file
//! system and no config. It imports nothing of the application, only the MIME helpers of
//! [`crate::verdict`].
//!
//! - [`unpack`] finds the reports in what a receiver sent: a bare XML or JSON document, a
//!   `.gz` (RFC 1952) or `.zip` file, or a mail whose MIME parts carry one of those
//!   (RFC 7489 §7.2.1.1, RFC 8460 §5.3).
//! - [`dmarc::parse`] reads one aggregate report, [`tlsrpt::parse`] one TLS report;
//!   [`Unpacked::parse`] picks the right one; [`ReportKind`] is the one table of how each kind
//!   is spelt (stored, in JSON, for people).
//! - [`arf::parse`] reads a complaint feedback report (RFC 5965 ARF), a mail of its own.
//!
//! # Limits
//!
//! Reports are attacker-controlled input (anyone can mail the `rua` address). Input is at most
//! [`MAX_INPUT_BYTES`]; all that one call to [`unpack`] decompresses is at most
//! [`MAX_DECOMPRESSED_BYTES`] together, refused past it while decompressing (never by trusting
//! a declared size); at most [`MAX_FILES`] reports are taken from one input, MIME is followed
//! [`attachments::MAX_DEPTH`] levels and [`attachments::MAX_PARTS`] parts deep, and XML [`dmarc::MAX_DEPTH`]
//! elements deep. No DTD is read and no entity other than the five predefined ones and
//! character references is expanded: a `<!DOCTYPE` is refused ([`ReportError::Doctype`]).
//!
//! # Counts and periods
//!
//! A count (messages of a DMARC record, sessions of a TLS policy or failure) over [`MAX_COUNT`]
//! is refused ([`ReportError::CountTooLarge`]), so is a period that begins after it ends,
//! before 1970, or lasts more than [`MAX_PERIOD_SECONDS`] ([`ReportError::BadPeriod`]). Whoever
//! mails the report chooses these numbers: a count of 2^64 − 1 next to one of 2 would wrap a
//! sum to 1 and send a Prometheus counter backwards. Below the cap, sums of a report's counts
//! stay exact in a `u64` and in the `f64` of a Prometheus sample (100,000 records × 10^9 =
//! 10^14 < 2^53); readers of counts still add them saturating.

pub mod arf;
mod attachments;
pub mod dmarc;
mod kind;
pub mod labels;
pub mod tlsrpt;
mod unpack;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use kind::ReportKind;
pub use unpack::unpack;

/// The largest input [`unpack`], [`dmarc::parse`] or [`tlsrpt::parse`] accepts.
pub const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;
/// The most bytes one call to [`unpack`] decompresses, all files together.
pub const MAX_DECOMPRESSED_BYTES: usize = 32 * 1024 * 1024;
/// The most reports taken from one input (zip entries, MIME parts).
pub const MAX_FILES: usize = 16;
/// The largest count a report may give: messages from one source IP in one DMARC record, or
/// sessions in one TLS policy summary or failure line. A record covers one source IP over one
/// reporting period (a day, RFC 7489 §7.2); 10^9 messages a day is 11,574 a second from one
/// address to one receiver, all day, and 10^9 TLS sessions a day to one domain's MX from one
/// reporter is more than any MX run by a mailcanary user accepts. No real report comes near;
/// a larger number is a forgery or a bug, and the report is refused.
pub const MAX_COUNT: u64 = 1_000_000_000;
/// The longest period a report may cover. Reporters send daily (RFC 7489 §7.2 `ri`, default
/// 86,400 s; RFC 8460 §4.1: a UTC day), some hourly, a few weekly; a month is generous.
pub const MAX_PERIOD_SECONDS: i64 = 31 * 86_400;

/// One report document found by [`unpack`], decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The file name it came under (zip entry, MIME filename, or the hint), if any.
    pub name: Option<String>,
    /// XML (DMARC) or JSON (TLS-RPT); never [`ReportKind::Arf`].
    pub kind: ReportKind,
    /// The document.
    pub bytes: Vec<u8>,
}

/// A parsed report of either kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// A DMARC aggregate report.
    Dmarc(dmarc::AggregateReport),
    /// An SMTP TLS report.
    Tlsrpt(tlsrpt::TlsReport),
    /// A complaint feedback report (ARF), a mail of its own.
    Arf(Complaint),
}

/// A complaint feedback report as a report mailbox keeps it: the ARF fields, and what the
/// reader adds — the report mail's own Message-ID (the id it is stored once under) and when it
/// was received (its period when the report states no `Arrival-Date`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    /// The report mail's Message-ID (`<...>`), or `uid:N` without one.
    pub report_message_id: String,
    /// When the report mail was read, Unix seconds.
    pub received: i64,
    /// The report.
    #[serde(flatten)]
    pub report: arf::ComplaintReport,
}

impl Complaint {
    /// Who sent it, as a name: its `User-Agent` (`Yahoo!-Mail-Feedback/2.0`), else its
    /// `Reporting-MTA`, else the empty name.
    pub fn reporter_name(&self) -> &str {
        self.report
            .user_agent
            .as_deref()
            .or(self.report.reporting_mta.as_deref())
            .unwrap_or("")
    }

    /// The incidents it stands for (`Incidents`, RFC 5965 §3.2), 1 when it states none; capped
    /// at [`MAX_COUNT`] like every count of a report.
    pub fn incidents(&self) -> u64 {
        u64::from(self.report.incidents.unwrap_or(1).max(1)).min(MAX_COUNT)
    }

    /// When the complained-of mail arrived (`Arrival-Date`), else when the report was read.
    pub fn at(&self) -> i64 {
        self.report.arrival_timestamp.unwrap_or(self.received)
    }
}

impl Report {
    /// The reporter's organisation (`org_name`, RFC 7489 Appendix C; `organization-name`,
    /// RFC 8460 §4.4).
    pub fn org_name(&self) -> &str {
        match self {
            Report::Dmarc(r) => &r.org_name,
            Report::Tlsrpt(r) => &r.org_name,
            Report::Arf(c) => c.reporter_name(),
        }
    }

    /// The id the reporter gave the report.
    pub fn report_id(&self) -> &str {
        match self {
            Report::Dmarc(r) => &r.report_id,
            Report::Tlsrpt(r) => &r.report_id,
            Report::Arf(c) => &c.report_message_id,
        }
    }

    /// Which kind of report it is.
    pub fn kind(&self) -> ReportKind {
        match self {
            Report::Dmarc(_) => ReportKind::Dmarc,
            Report::Tlsrpt(_) => ReportKind::Tlsrpt,
            Report::Arf(_) => ReportKind::Arf,
        }
    }

    /// The period the report covers, Unix seconds (begin, end).
    pub fn period(&self) -> (i64, i64) {
        match self {
            Report::Dmarc(r) => (r.begin, r.end),
            Report::Tlsrpt(r) => (r.begin, r.end),
            Report::Arf(c) => (c.at(), c.at()),
        }
    }
}

impl Unpacked {
    /// Parses the document with the parser of its kind.
    pub fn parse(&self) -> Result<Report, ReportError> {
        match self.kind {
            ReportKind::Dmarc => dmarc::parse(&self.bytes).map(Report::Dmarc),
            ReportKind::Tlsrpt => tlsrpt::parse(&self.bytes).map(Report::Tlsrpt),
            // A complaint is a mail of its own ([`arf::parse`]); `unpack` never yields one.
            ReportKind::Arf => Err(ReportError::NotAReport),
        }
    }
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Zero bytes of input.
    #[error("the input is empty")]
    Empty,
    /// The input, or what it decompresses to, is over a limit.
    #[error("{what} is over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// More files or parts than [`MAX_FILES`], or XML nested deeper than allowed.
    #[error("too many {what}: the limit is {limit}")]
    TooMany {
        /// What there were too many of.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Not well-formed XML (XML 1.0 §2.1).
    #[error("not well-formed XML: {detail}")]
    NotXml {
        /// What the XML reader said.
        detail: String,
    },
    /// Not JSON (RFC 8259), or JSON of the wrong shape for RFC 8460 §4.4.
    #[error("not an RFC 8460 JSON report: {detail}")]
    NotJson {
        /// What the JSON reader said.
        detail: String,
    },
    /// The document has a DTD. Reports never need one, and a DTD is how entity expansion
    /// attacks start: it is refused, never read.
    #[error("the XML has a <!DOCTYPE>: refused, DTDs and entities are never processed")]
    Doctype,
    /// XML whose root element is not `<feedback>` (RFC 7489 Appendix C).
    #[error("the root element is <{root}>, not <feedback> (RFC 7489 Appendix C)")]
    NotFeedback {
        /// The root element's local name, cut to a readable length.
        root: String,
    },
    /// A required element or member is missing or empty.
    #[error("missing required element {element}")]
    Missing {
        /// Its path, e.g. `report_metadata/org_name`.
        element: &'static str,
    },
    /// A number that does not parse.
    #[error("bad number in {element}: {value}")]
    BadNumber {
        /// Its path, e.g. `record/row/count`.
        element: &'static str,
        /// The value, quoted and cut to a readable length.
        value: String,
    },
    /// A date that does not parse (RFC 8460 §4.4 asks for RFC 3339 date-times).
    #[error("bad date in {element}: {value}")]
    BadDate {
        /// Its path.
        element: &'static str,
        /// The value, quoted and cut to a readable length.
        value: String,
    },
    /// A compressed file that does not decompress (truncated, bad checksum, not an archive).
    #[error("corrupt {format} data: {detail}")]
    Corrupt {
        /// `gzip` or `zip`.
        format: &'static str,
        /// What the decompressor said.
        detail: String,
    },
    /// A compression we do not read (bzip2, xz, zstd, a zip method other than stored or
    /// deflate, an encrypted zip entry).
    #[error("unsupported compression: {what}")]
    UnsupportedCompression {
        /// What it is.
        what: String,
    },
    /// Neither XML, JSON, gzip, zip, nor a mail carrying one of them.
    #[error("not a report: neither XML, JSON, gzip, zip nor a mail with a report attached")]
    NotAReport,
    /// A mail that is not an ARF report: no `multipart/report; report-type=feedback-report`
    /// with a `message/feedback-report` part (RFC 5965 §2).
    #[error(
        "not a feedback report: no multipart/report; report-type=feedback-report with a \
         message/feedback-report part (RFC 5965 §2)"
    )]
    NotFeedbackReport,
    /// A message or session count over [`MAX_COUNT`].
    #[error("{element} is over the maximum of {limit}: no real report counts that many")]
    CountTooLarge {
        /// Its path, e.g. `record/row/count`.
        element: &'static str,
        /// [`MAX_COUNT`].
        limit: u64,
    },
    /// A reporting period that cannot be: it begins after it ends, before 1970, lasts more
    /// than [`MAX_PERIOD_SECONDS`], or ends in the future (checked where the clock is known).
    #[error("bad reporting period: {problem}")]
    BadPeriod {
        /// What is wrong with it, a fixed sentence.
        problem: &'static str,
    },
}

impl ReportError {
    /// A fixed label for metrics and logs; never input-derived text.
    pub fn reason(&self) -> &'static str {
        match self {
            ReportError::Empty => "empty",
            ReportError::TooLarge { .. } => "too_large",
            ReportError::TooMany { .. } => "too_many",
            ReportError::NotXml { .. } => "not_xml",
            ReportError::NotJson { .. } => "not_json",
            ReportError::Doctype => "doctype",
            ReportError::NotFeedback { .. } => "not_feedback",
            ReportError::Missing { .. } => "missing_element",
            ReportError::BadNumber { .. } => "bad_number",
            ReportError::BadDate { .. } => "bad_date",
            ReportError::Corrupt { .. } => "corrupt",
            ReportError::UnsupportedCompression { .. } => "unsupported_compression",
            ReportError::NotAReport => "not_a_report",
            ReportError::NotFeedbackReport => "not_arf",
            ReportError::CountTooLarge { .. } => "count_too_large",
            ReportError::BadPeriod { .. } => "bad_period",
        }
    }
}

/// The sum of report counts, saturating at `u64::MAX` instead of wrapping.
pub fn saturating_sum(counts: impl IntoIterator<Item = u64>) -> u64 {
    counts.into_iter().fold(0, u64::saturating_add)
}

/// A count as read, refused over [`MAX_COUNT`].
fn capped(count: u64, element: &'static str) -> Result<u64, ReportError> {
    if count > MAX_COUNT {
        return Err(ReportError::CountTooLarge {
            element,
            limit: MAX_COUNT,
        });
    }
    Ok(count)
}

/// Refuses a period (Unix seconds) that begins after it ends, before 1970, or is longer than
/// [`MAX_PERIOD_SECONDS`].
fn check_period(begin: i64, end: i64) -> Result<(), ReportError> {
    let problem = if begin > end {
        "it begins after it ends"
    } else if begin < 0 {
        "it begins before 1970"
    } else if end - begin > MAX_PERIOD_SECONDS {
        "it covers more than 31 days"
    } else {
        return Ok(());
    };
    Err(ReportError::BadPeriod { problem })
}

/// How far past `now` a report's period may end: reporters' clocks and "end of day" habits
/// differ by hours, not days.
pub const FUTURE_SLACK_SECONDS: i64 = 86_400;

impl Report {
    /// Refuses a report whose period ends more than [`FUTURE_SLACK_SECONDS`] after `now` (Unix
    /// seconds): nobody reports on mail not yet sent, and a period ending in 2100 would hold
    /// "newest report" times (and the alert on reports that stopped) forever.
    pub fn check_not_future(&self, now: i64) -> Result<(), ReportError> {
        if self.period().1 > now.saturating_add(FUTURE_SLACK_SECONDS) {
            return Err(ReportError::BadPeriod {
                problem: "it ends in the future",
            });
        }
        Ok(())
    }
}

/// The longest input-derived value quoted back in an error, in characters.
const QUOTED_CHARS: usize = 60;

/// A value quoted and escaped for an error message, cut to [`QUOTED_CHARS`].
fn quoted(value: &str) -> String {
    let mut cut: String = value.chars().take(QUOTED_CHARS).collect();
    if value.chars().nth(QUOTED_CHARS).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Refuses input over [`MAX_INPUT_BYTES`] and empty input.
fn check_input(bytes: &[u8]) -> Result<(), ReportError> {
    if bytes.is_empty() {
        return Err(ReportError::Empty);
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ReportError::TooLarge {
            what: "the input",
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}
