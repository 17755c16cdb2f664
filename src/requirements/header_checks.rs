//! What can be read off a message's header section for the requirements: RFC 5322 §3.6
//! well-formedness, and RFC 8058 one-click unsubscribe.
//!
//! Fields are split by [`crate::verdict`]'s header splitter (LF or CRLF, folding, no lone-CR
//! line ends); values are parsed by mail-parser (addresses RFC 5322 §3.4, dates §3.3, message
//! ids §3.6.4) and DKIM signatures by mail-auth (RFC 6376 §3.5 tags, for `h=`).

use mail_parser::parsers::MessageStream;
use mail_parser::{Address, HeaderValue};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::verdict::InspectError;
use crate::verdict::headers::{self, Field};

/// The fields RFC 5322 §3.6 allows at most once (the table's "max number" column), besides
/// From and Date which must appear exactly once.
const AT_MOST_ONCE: &[&str] = &[
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
];

/// The most DKIM signatures looked at.
const MAX_SIGNATURES: usize = 16;
/// The longest value kept in a report.
const MAX_VALUE_CHARS: usize = 255;

/// What is wrong with a header section (RFC 5322 §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum HeaderProblem {
    /// A field that must be there is not (`From`, `Date`; `Message-ID`, which RFC 5322 §3.6.4
    /// makes a SHOULD and Gmail requires).
    Missing { field: Cow<'static, str> },
    /// A field appears more often than allowed.
    Repeated {
        field: Cow<'static, str>,
        count: usize,
    },
    /// A field's value does not parse (an address list, a date, a message id).
    Unparsable { field: Cow<'static, str> },
}

impl HeaderProblem {
    /// A few words for a fix sentence.
    pub fn describe(&self) -> String {
        match self {
            HeaderProblem::Missing { field } => format!("no {field} field"),
            HeaderProblem::Repeated { field, count } => format!("{count} {field} fields"),
            HeaderProblem::Unparsable { field } => format!("an unreadable {field} field"),
        }
    }
}

/// The RFC 5322 check of a header section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeaderCheck {
    /// Every problem found, in field order of [`check_headers`]; empty when well-formed.
    pub problems: Vec<HeaderProblem>,
}

impl HeaderCheck {
    /// Whether no problem was found.
    pub fn is_well_formed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems in a few words (`2 From fields, no Date field`).
    pub fn describe(&self) -> String {
        self.problems
            .iter()
            .map(HeaderProblem::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks a message's header section against RFC 5322 §3.6: exactly one From (with at least one
/// address, §3.6.2) and one Date (a valid date-time, §3.6.1), one Message-ID with a valid
/// `<left@right>` id (§3.6.4), and at most one of each field in [`AT_MOST_ONCE`].
pub fn check_headers(raw: &[u8]) -> Result<HeaderCheck, InspectError> {
    let fields = headers::split(raw)?;
    let mut check = HeaderCheck::default();
    let count = |name: &str| fields.iter().filter(|field| field.is(name)).count();
    let first = |name: &str| fields.iter().find(|field| field.is(name)).map(Field::value);

    for (field, parsed) in [
        ("From", first("From").map(|value| has_address(&value))),
        ("Date", first("Date").map(|value| is_date(&value))),
    ] {
        match count(field) {
            0 => check.problems.push(HeaderProblem::Missing {
                field: field.into(),
            }),
            1 => {}
            count => check.problems.push(HeaderProblem::Repeated {
                field: field.into(),
                count,
            }),
        }
        if parsed == Some(false) {
            check.problems.push(HeaderProblem::Unparsable {
                field: field.into(),
            });
        }
    }
    match first("Message-ID") {
        None => check.problems.push(HeaderProblem::Missing {
            field: "Message-ID".into(),
        }),
        Some(value) if !is_message_id(&value) => check.problems.push(HeaderProblem::Unparsable {
            field: "Message-ID".into(),
        }),
        Some(_) => {}
    }
    for field in AT_MOST_ONCE {
        let count = count(field);
        if count > 1 {
            check.problems.push(HeaderProblem::Repeated {
                field: (*field).into(),
                count,
            });
        }
    }
    Ok(check)
}

/// Whether an address field names at least one mailbox with a domain.
fn has_address(value: &str) -> bool {
    let bytes = format!("{value}\n");
    match MessageStream::new(bytes.as_bytes()).parse_address() {
        HeaderValue::Address(Address::List(list)) => list
            .iter()
            .any(|addr| addr.address.as_deref().is_some_and(|a| a.contains('@'))),
        HeaderValue::Address(Address::Group(groups)) => groups.iter().any(|group| {
            group
                .addresses
                .iter()
                .any(|addr| addr.address.as_deref().is_some_and(|a| a.contains('@')))
        }),
        _ => false,
    }
}

/// Whether a Date field holds a valid RFC 5322 date-time.
fn is_date(value: &str) -> bool {
    let bytes = format!("{value}\n");
    matches!(
        MessageStream::new(bytes.as_bytes()).parse_date(),
        HeaderValue::DateTime(date) if date.is_valid()
    )
}

/// Whether a Message-ID field holds one `<left@right>` id (RFC 5322 §3.6.4 `msg-id`).
fn is_message_id(value: &str) -> bool {
    let value = value.trim();
    let Some(inner) = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
        return false;
    };
    let Some((left, right)) = inner.split_once('@') else {
        return false;
    };
    let atext = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|ch| ch.is_ascii_graphic() && !"<>@\"\\ ,;:()[]".contains(ch))
    };
    // `right` may be a domain literal (`[192.0.2.1]`).
    atext(left) && (atext(right) || (right.starts_with('[') && right.ends_with(']')))
}

/// What a message offers for RFC 8058 one-click unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// The first https URI of `List-Unsubscribe` (RFC 2369 §3.2: `<...>` list), cut to size.
    pub https_uri: Option<String>,
    /// Whether `List-Unsubscribe` also offers a mailto URI.
    pub mailto: bool,
    /// Whether `List-Unsubscribe-Post` is exactly `List-Unsubscribe=One-Click` (RFC 8058 §3.1).
    pub one_click_post: bool,
    /// The `d=` of every DKIM signature whose `h=` covers both fields (RFC 8058 §4).
    pub signed_by: Vec<String>,
    /// What is missing, in RFC 8058 order; empty when everything is there.
    pub problems: Vec<String>,
}

impl Unsubscribe {
    /// Whether every RFC 8058 element is there (DKIM passing is the receiver's to say).
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads RFC 8058 one-click unsubscribe off a header section: `List-Unsubscribe` with an https
/// URI (§3.1), `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (§3.1), and a DKIM signature
/// whose `h=` lists both (§4).
pub fn check_unsubscribe(raw: &[u8]) -> Result<Unsubscribe, InspectError> {
    let fields = headers::split(raw)?;
    let mut out = Unsubscribe::default();
    let list = fields.iter().find(|field| field.is("List-Unsubscribe"));
    let post = fields
        .iter()
        .find(|field| field.is("List-Unsubscribe-Post"));
    match list {
        None => out.problems.push("no List-Unsubscribe field".to_string()),
        Some(field) => {
            let value = field.value();
            let uris = bracketed(&value);
            out.mailto = uris
                .iter()
                .any(|uri| uri.len() >= 7 && uri[..7].eq_ignore_ascii_case("mailto:"));
            out.https_uri = uris
                .iter()
                .find(|uri| uri.len() > 8 && uri[..8].eq_ignore_ascii_case("https://"))
                .map(|uri| uri.chars().take(MAX_VALUE_CHARS).collect());
            if out.https_uri.is_none() {
                out.problems
                    .push("no https URI in List-Unsubscribe".to_string());
            }
        }
    }
    match post {
        None => out
            .problems
            .push("no List-Unsubscribe-Post field".to_string()),
        Some(field) => {
            out.one_click_post = field.value().trim() == "List-Unsubscribe=One-Click";
            if !out.one_click_post {
                out.problems.push(
                    "List-Unsubscribe-Post is not \"List-Unsubscribe=One-Click\"".to_string(),
                );
            }
        }
    }
    for field in fields
        .iter()
        .filter(|field| field.is("DKIM-Signature"))
        .take(MAX_SIGNATURES)
    {
        let value = field.value();
        let Ok(signature) = mail_auth::dkim::Signature::parse(value.as_bytes()) else {
            continue;
        };
        let covers = |name: &str| signature.h.iter().any(|h| h.eq_ignore_ascii_case(name));
        if covers("List-Unsubscribe") && covers("List-Unsubscribe-Post") {
            out.signed_by
                .push(signature.d.chars().take(MAX_VALUE_CHARS).collect());
        }
    }
    if out.signed_by.is_empty() && list.is_some() && post.is_some() {
        out.problems.push(
            "no DKIM signature lists List-Unsubscribe and List-Unsubscribe-Post in h=".to_string(),
        );
    }
    Ok(out)
}

/// The `<...>` items of an RFC 2369 list, trimmed.
fn bracketed(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            break;
        };
        out.push(after[..close].trim());
        rest = &after[close + 1..];
    }
    out
}
