//! Reads a bounce: a delivery status notification (RFC 3464), or the plain-text bounce of an
//! MTA that does not write one.
//!
//! This module is pure: [`read`] takes the raw bytes of a message that came back to the probe's
//! sender and returns what it says about each recipient, with no network, no clock and no file
//! system. [`classify`] maps an enhanced status code (RFC 3463) and the receiver's reply text
//! to the cause of a rejection.
//!
//! # What counts as a bounce
//!
//! - A `multipart/report` with `report-type=delivery-status` (RFC 6522 §3, RFC 3464 §2) found
//!   in the message's own MIME tree (never inside a returned message). Its
//!   `message/delivery-status` part (or `message/global-delivery-status`, RFC 6533 §6) gives the
//!   per-message fields and one group of fields per recipient (RFC 3464 §2.2, §2.3); the
//!   returned `message/rfc822` or `text/rfc822-headers` part (`message/global`,
//!   `message/global-headers`) gives the Message-ID and the probe header of the message that
//!   bounced. The human-readable text fills in a reply the fields leave out, and says which
//!   MTA wrote the report.
//! - Otherwise, a message from `MAILER-DAEMON` or `postmaster` whose text is one of the
//!   bounce formats read in `text.rs`: Exim, qmail, Sendmail, Exchange, Gmail, Postfix.
//! - Anything else is not a bounce: `Ok(None)`.
//!
//! # Limits
//!
//! Every stored string is cut at [`MAX_VALUE_BYTES`] bytes (on a character boundary, ending in
//! `…`). At most [`MAX_RECIPIENTS`] recipients are kept; `recipients_total` counts them all.
//! MIME is followed [`MAX_DEPTH`] multipart levels deep and for at most [`MAX_PARTS`] parts,
//! and a returned message is read for its header fields only, so a report nested in a report
//! nested in a report costs nothing.
//!
//! # JSON
//!
//! [`Dsn`] serialises with the field names below; absent values are `null`. `format`, `action`
//! and [`RejectionClass`] are lower-case words (`rfc3464`, `failed`, `rate_limit`).

mod classify;
mod delivery_status;
pub(crate) mod mime;
mod reply;
mod text;
mod values;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use classify::{Rejection, RejectionClass, classify};

use super::InspectError;
use super::headers::{self, Field};

/// The most recipients a [`Dsn`] keeps; the rest are only counted.
pub const MAX_RECIPIENTS: usize = 100;
/// The longest stored string, in bytes, `…` included.
pub const MAX_VALUE_BYTES: usize = 512;
/// How many multipart levels are followed.
pub const MAX_DEPTH: usize = 8;
/// How many MIME parts are looked at, in all.
pub const MAX_PARTS: usize = 256;

/// The header of the returned message that carries the probe token. A copy of
/// `crate::token::HEADER`: `verdict/` imports nothing else of ours.
const PROBE_HEADER: &str = "X-Mailcanary-Probe";

/// Reads a message and, when it is a bounce, what it says. `Ok(None)` means it is not a bounce
/// (an ordinary message). Fails when the input is not a message at all, or when it is a
/// delivery report from which no recipient can be read; never panics.
pub fn read(raw: &[u8]) -> Result<Option<Dsn>, DsnError> {
    let fields = headers::split(raw)?;
    let found = mime::walk_message(&fields, raw);
    if found.report {
        return from_report(&fields, &found).map(Some);
    }
    if !from_daemon(&fields) {
        return Ok(None);
    }
    let Some(text) = text::read(&found.texts) else {
        return Ok(None);
    };
    let recipients = text.recipients;
    if recipients.total == 0 {
        return Err(DsnError::NoRecipients {
            format: text.format,
        });
    }
    let returned = text
        .returned
        .map(|section| Returned::read(section.as_bytes()));
    let returned = returned.unwrap_or_default();
    Ok(Some(Dsn {
        format: text.format,
        reporting_mta: text.reporting_mta,
        arrival_date: None,
        original_envelope_id: None,
        original_message_id: returned
            .message_id
            .or_else(|| text::message_id_in(&found.texts)),
        probe_token: returned.probe_token,
        recipients_total: recipients.total,
        recipients: recipients.kept,
    }))
}

/// A `multipart/report` was found: the delivery-status fields, helped by the text.
fn from_report(fields: &[Field<'_>], found: &mime::Found) -> Result<Dsn, DsnError> {
    let mut message = delivery_status::PerMessage::default();
    let mut recipients = Recipients::default();
    for part in &found.status_parts {
        delivery_status::read(part, &mut message, &mut recipients);
    }
    let mut text = text::read(&found.texts);
    if let Some(text) = &mut text {
        if recipients.total == 0 {
            recipients = std::mem::take(&mut text.recipients);
        } else {
            text::fill_in(&mut recipients.kept, &text.recipients);
        }
    }
    if recipients.total == 0 {
        return Err(if let Some(problem) = &found.problem {
            problem.clone()
        } else if found.status_parts.is_empty() {
            DsnError::NoDeliveryStatus
        } else {
            DsnError::NoRecipients {
                format: DsnFormat::Rfc3464,
            }
        });
    }
    let format = match &text {
        Some(text) => text.format,
        None if message.postfix => DsnFormat::Postfix,
        None if from_domain_is(fields, &["googlemail.com", "google.com"]) => DsnFormat::Gmail,
        None => DsnFormat::Rfc3464,
    };
    let returned = match &found.returned {
        Some(section) => Returned::read(section),
        None => Default::default(),
    };
    Ok(Dsn {
        format,
        reporting_mta: message
            .reporting_mta
            .or_else(|| text.and_then(|text| text.reporting_mta)),
        arrival_date: message.arrival_date,
        original_envelope_id: message.original_envelope_id,
        original_message_id: returned
            .message_id
            .or(message.original_message_id)
            .or_else(|| text::message_id_in(&found.texts)),
        probe_token: returned.probe_token,
        recipients_total: recipients.total,
        recipients: recipients.kept,
    })
}

/// Whether the `From` address is `MAILER-DAEMON` or `postmaster` (RFC 5321 §4.5.5: bounces are
/// sent with a null reverse-path, and MTAs sign them with these names).
fn from_daemon(fields: &[Field<'_>]) -> bool {
    let Some(address) = from_address(fields) else {
        return false;
    };
    let local = address.split('@').next().unwrap_or("");
    local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
}

fn from_domain_is(fields: &[Field<'_>], domains: &[&str]) -> bool {
    let Some(address) = from_address(fields) else {
        return false;
    };
    let domain = address.rsplit_once('@').map_or("", |(_, domain)| domain);
    domains.iter().any(|name| domain.eq_ignore_ascii_case(name))
}

/// The address of the top-most `From` field: inside `<>` when there are some, else the first
/// word (`MAILER-DAEMON@host (Mail Delivery System)`, Postfix's form).
fn from_address(fields: &[Field<'_>]) -> Option<String> {
    let value = fields.iter().find(|field| field.is("From"))?.value();
    let address = match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].trim().to_string(),
        _ => value.split_whitespace().next().unwrap_or("").to_string(),
    };
    Some(address)
}

/// What the returned message's header section says.
#[derive(Default)]
struct Returned {
    message_id: Option<String>,
    probe_token: Option<String>,
}

impl Returned {
    fn read(section: &[u8]) -> Returned {
        let Ok(fields) = headers::split(section) else {
            return Returned::default();
        };
        let value = |name: &str| {
            fields
                .iter()
                .find(|field| field.is(name))
                .map(|field| field.value())
        };
        Returned {
            message_id: value("Message-ID").and_then(|id| values::message_id(&id)),
            probe_token: value(PROBE_HEADER).and_then(|token| values::clean(&token)),
        }
    }
}

/// The recipients kept, and how many there were.
#[derive(Default)]
struct Recipients {
    kept: Vec<DsnRecipient>,
    total: usize,
}

impl Recipients {
    /// Whether another recipient would only be counted.
    fn is_full(&self) -> bool {
        self.kept.len() >= MAX_RECIPIENTS
    }

    fn push(&mut self, recipient: DsnRecipient) {
        self.total += 1;
        if self.kept.len() < MAX_RECIPIENTS {
            self.kept.push(recipient);
        }
    }
}

/// What one bounce says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dsn {
    /// How the bounce was recognised (which MTA wrote it).
    pub format: DsnFormat,
    /// The MTA that wrote the report (`Reporting-MTA`, type prefix removed; or the host the
    /// text names).
    pub reporting_mta: Option<String>,
    /// `Arrival-Date` (RFC 3464 §2.2.5), as written.
    pub arrival_date: Option<String>,
    /// `Original-Envelope-Id` (RFC 3464 §2.2.1): the `ENVID` the probe was sent with.
    pub original_envelope_id: Option<String>,
    /// The Message-ID of the returned message, with `<>`; else Gmail's per-message
    /// `X-Original-Message-ID`; else a `Message-ID:` line found in the text.
    pub original_message_id: Option<String>,
    /// The `X-Mailcanary-Probe` value of the returned message's header section. Only read from
    /// a returned message (the MIME part, or the copy that text bounces append), never from
    /// the bounce's own text.
    pub probe_token: Option<String>,
    /// How many recipients the bounce reports (more than `recipients` holds when it reports
    /// more than [`MAX_RECIPIENTS`]).
    pub recipients_total: usize,
    /// The first [`MAX_RECIPIENTS`] recipients, in the order written.
    pub recipients: Vec<DsnRecipient>,
}

impl Dsn {
    /// Whether any recipient was delayed (`Action: delayed`, or no action and a 4.x.x status):
    /// the message is still queued for it. A bounce can report both failed and delayed
    /// recipients; check [`Dsn::is_failure`] first.
    pub fn is_delay(&self) -> bool {
        self.recipients.iter().any(DsnRecipient::is_delay)
    }

    /// Whether any recipient failed (`Action: failed`, or no action and a 5.x.x status).
    pub fn is_failure(&self) -> bool {
        self.recipients.iter().any(DsnRecipient::is_failure)
    }

    /// The first recipient that failed.
    pub fn first_failure(&self) -> Option<&DsnRecipient> {
        self.recipients
            .iter()
            .find(|recipient| recipient.is_failure())
    }

    /// The first recipient that was delayed.
    pub fn first_delay(&self) -> Option<&DsnRecipient> {
        self.recipients
            .iter()
            .find(|recipient| recipient.is_delay())
    }

    /// Why the message did not get through: the class of the first failed recipient's reply,
    /// else of the first delayed one's. `None` when nothing failed or was delayed.
    pub fn rejection(&self) -> Option<Rejection> {
        self.first_failure()
            .or_else(|| self.first_delay())
            .map(DsnRecipient::rejection)
    }
}

/// What a bounce says about one recipient (RFC 3464 §2.3). Type prefixes (`rfc822;`, `dns;`,
/// `smtp;`) are removed, white space collapsed; fields the bounce does not give are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DsnRecipient {
    /// `Final-Recipient` (§2.3.2): the address the MTA tried.
    pub final_recipient: Option<String>,
    /// `Original-Recipient` (§2.3.1): the address as the sender gave it (`ORCPT`).
    pub original_recipient: Option<String>,
    /// `Action` (§2.3.3).
    pub action: Option<Action>,
    /// `Status` (§2.3.4), the enhanced status code as written (`5.7.26`), comments removed;
    /// for text bounces, the enhanced code of the reply.
    pub status: Option<String>,
    /// `Remote-MTA` (§2.3.5): the host that gave the reply.
    pub remote_mta: Option<String>,
    /// `Diagnostic-Code` (§2.3.6): the reply, its lines joined into one (RFC 5321 §4.2.1:
    /// `550-5.7.26 a` + `550 5.7.26 b` is `550 5.7.26 a b`).
    pub diagnostic_code: Option<String>,
    /// `Last-Attempt-Date` (§2.3.7), as written.
    pub last_attempt_date: Option<String>,
    /// `Will-Retry-Until` (§2.3.9), as written: when a delayed message will be given up on.
    pub will_retry_until: Option<String>,
}

impl DsnRecipient {
    /// `Action: failed`, or no action and a permanent (5.x.x) status.
    pub fn is_failure(&self) -> bool {
        match self.action {
            Some(action) => action == Action::Failed,
            None => self.status.as_deref().is_some_and(|s| s.starts_with('5')),
        }
    }

    /// `Action: delayed`, or no action and a transient (4.x.x) status.
    pub fn is_delay(&self) -> bool {
        match self.action {
            Some(action) => action == Action::Delayed,
            None => self.status.as_deref().is_some_and(|s| s.starts_with('4')),
        }
    }

    /// The class of this recipient's status and reply.
    pub fn rejection(&self) -> Rejection {
        classify(
            self.status.as_deref(),
            self.diagnostic_code.as_deref().unwrap_or(""),
        )
    }
}

/// `Action` (RFC 3464 §2.3.3). Read case-insensitively; serialised lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The message could not be delivered and will not be retried.
    Failed,
    /// Not delivered yet; the MTA keeps trying.
    Delayed,
    /// Delivered.
    Delivered,
    /// Passed on to a system that sends no DSNs.
    Relayed,
    /// Delivered, and forwarded on to more addresses.
    Expanded,
}

impl Action {
    /// Reads an action keyword, case-insensitively; comments and white space around it are
    /// ignored. `None` for anything else.
    pub fn parse(value: &str) -> Option<Action> {
        const KNOWN: [(&str, Action); 5] = [
            ("failed", Action::Failed),
            ("delayed", Action::Delayed),
            ("delivered", Action::Delivered),
            ("relayed", Action::Relayed),
            ("expanded", Action::Expanded),
        ];
        let word = values::without_comments(value);
        let word = word.split_whitespace().next().unwrap_or("");
        KNOWN
            .into_iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|(_, action)| action)
    }

    /// The lower-case keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

/// How a bounce was recognised: which MTA wrote it, when the text says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsnFormat {
    /// A delivery report (RFC 3464) whose text names no MTA we know.
    Rfc3464,
    /// Postfix: "This is the mail system at host ...", or `X-Postfix-*` fields.
    Postfix,
    /// Exim: "This message was created automatically by mail delivery software."
    Exim,
    /// qmail: "Hi. This is the qmail-send program at ...".
    Qmail,
    /// Sendmail: "----- Transcript of session follows -----".
    Sendmail,
    /// Microsoft Exchange and Office 365: "Remote Server returned '...'".
    Exchange,
    /// Gmail: "The response from the remote server was:", or from `googlemail.com`.
    Gmail,
}

impl DsnFormat {
    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnFormat::Rfc3464 => "rfc3464",
            DsnFormat::Postfix => "postfix",
            DsnFormat::Exim => "exim",
            DsnFormat::Qmail => "qmail",
            DsnFormat::Sendmail => "sendmail",
            DsnFormat::Exchange => "exchange",
            DsnFormat::Gmail => "gmail",
        }
    }
}

/// Why a message that looks like a bounce could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// Zero bytes of input.
    #[error("the input is empty")]
    Empty,
    /// The input does not start with a header field, so it is not an RFC 5322 message.
    #[error("no header section: the first line {first_line} is not a header field (`Name: value`)")]
    NoHeaders {
        /// The first line, quoted and escaped, cut to a readable length.
        first_line: String,
    },
    /// A `multipart/report` without a `boundary` parameter: its parts cannot be told apart
    /// (RFC 2046 §5.1.1).
    #[error(
        "multipart/report without a boundary parameter: its parts cannot be found (RFC 2046 §5.1.1)"
    )]
    NoBoundary,
    /// A `multipart/report` whose boundary never occurs in its body.
    #[error("multipart/report boundary {boundary} never occurs in the body (RFC 2046 §5.1.1)")]
    BoundaryNotFound {
        /// The boundary, quoted and escaped, cut to a readable length.
        boundary: String,
    },
    /// A `multipart/report; report-type=delivery-status` with no `message/delivery-status`
    /// part, and no text we can read recipients from.
    #[error(
        "delivery report without a message/delivery-status part (RFC 3464 §2) or a bounce text we know"
    )]
    NoDeliveryStatus,
    /// A bounce that names no recipient (RFC 3464 §2.1: there is at least one per-recipient
    /// group).
    #[error("{} bounce that names no recipient (RFC 3464 §2.3)", format.as_str())]
    NoRecipients {
        /// How the bounce was recognised.
        format: DsnFormat,
    },
}

impl DsnError {
    /// A fixed label for metrics and logs; never input-derived text.
    pub fn reason(&self) -> &'static str {
        match self {
            DsnError::Empty => "empty",
            DsnError::NoHeaders { .. } => "parse",
            DsnError::NoBoundary => "no_boundary",
            DsnError::BoundaryNotFound { .. } => "boundary_not_found",
            DsnError::NoDeliveryStatus => "no_delivery_status",
            DsnError::NoRecipients { .. } => "no_recipients",
        }
    }
}

impl From<InspectError> for DsnError {
    fn from(err: InspectError) -> Self {
        match err {
            InspectError::Empty => DsnError::Empty,
            InspectError::NoHeaders { first_line } => DsnError::NoHeaders { first_line },
        }
    }
}
