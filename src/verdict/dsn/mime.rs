//! Just enough MIME (RFC 2045, RFC 2046) to find the parts of a delivery report (RFC 6522).
//!
//! Why not `mail_parser::MessageParser::parse`: it follows `message/rfc822` parts without a
//! depth limit and builds one nested `Message` per level, and dropping that value recurses
//! once per level. A few hundred kilobytes of `Content-Type: message/rfc822` lines, nested,
//! overflow a 2 MB thread stack, which aborts the process. Here a returned message is never
//! opened beyond its header section, multiparts are followed at most [`MAX_DEPTH`] levels
//! and [`MAX_PARTS`] parts, and nothing is kept but what a bounce reader needs. mail-parser's
//! decoders (base64, quoted-printable, charsets) are still used.
//!
//! - Header and body are split at the first empty line (RFC 5322 §2.1); LF or CRLF.
//! - `Content-Type` (RFC 2045 §5.1): type, subtype and parameters, case-insensitive names,
//!   quoted values, comments ignored. A part without one is `text/plain` (RFC 2045 §5.2).
//! - A multipart body is split at lines that are `--boundary`, optionally followed by white
//!   space (RFC 2046 §5.1.1 transport padding); `--boundary--` closes it. The line end before
//!   a delimiter belongs to the delimiter. A missing close delimiter ends the last part at the
//!   end of the body. A `multipart/report` whose declared boundary never occurs is split by
//!   the boundary its body does use, when one splits it into two parts or more.
//! - `Content-Transfer-Encoding` base64 and quoted-printable are decoded (RFC 2045 §6); a body
//!   that does not decode is used as it is.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

use super::{DsnError, MAX_DEPTH, MAX_PARTS};
use crate::verdict::headers::{self, Field};
use crate::verdict::lexer::Cursor;

/// The longest boundary quoted back in an error.
const QUOTED_BOUNDARY_CHARS: usize = 70;
/// The most text parts kept.
const MAX_TEXTS: usize = 8;

/// What the MIME tree of a message holds, for a bounce reader.
#[derive(Default)]
pub(super) struct Found {
    /// A `multipart/report; report-type=delivery-status` was seen.
    pub(super) report: bool,
    /// The bodies of the `message/delivery-status` parts inside reports, decoded.
    pub(super) status_parts: Vec<Vec<u8>>,
    /// The header section of the first returned message inside a report, decoded.
    pub(super) returned: Option<Vec<u8>>,
    /// `text/plain` bodies (and the body of a message that is not MIME), decoded.
    pub(super) texts: Vec<String>,
    /// What stopped a report from being split into parts.
    pub(super) problem: Option<DsnError>,
}

/// Walks the MIME tree of a whole message, whose header fields are `fields`.
pub(super) fn walk_message(fields: &[Field<'_>], raw: &[u8]) -> Found {
    let mut found = Found::default();
    let mut parts_seen = 0;
    let (_, body) = split_entity(raw);
    walk(fields, body, 0, false, &mut found, &mut parts_seen);
    found
}

fn walk(
    fields: &[Field<'_>],
    body: &[u8],
    depth: usize,
    in_report: bool,
    found: &mut Found,
    parts_seen: &mut usize,
) {
    let content_type = ContentType::of(fields);
    if content_type.kind == "multipart" {
        let is_report = content_type.subtype == "report"
            && content_type.param("report-type").is_some_and(|kind| {
                kind.eq_ignore_ascii_case("delivery-status")
                    || kind.eq_ignore_ascii_case("global-delivery-status")
            });
        found.report |= is_report;
        let Some(boundary) = content_type.param("boundary").filter(|b| !b.is_empty()) else {
            if is_report {
                found.problem.get_or_insert(DsnError::NoBoundary);
            }
            push_text(found, fields, body);
            return;
        };
        let mut parts = split_multipart(body, boundary.as_bytes());
        if parts.is_empty()
            && is_report
            && let Some(actual) = body_boundary(body)
        {
            // The declared boundary never occurs but the body is plainly split by another
            // one (a gateway rewrote the header, or the MTA wrote them apart): read the
            // parts the body has.
            parts = split_multipart(body, actual);
        }
        if parts.is_empty() && is_report {
            found
                .problem
                .get_or_insert_with(|| DsnError::BoundaryNotFound {
                    boundary: quoted(boundary),
                });
        }
        if depth >= MAX_DEPTH {
            return;
        }
        for part in parts {
            if *parts_seen >= MAX_PARTS {
                return;
            }
            *parts_seen += 1;
            let (head, part_body) = split_entity(part);
            let part_fields = headers::split(head).unwrap_or_default();
            walk(
                &part_fields,
                part_body,
                depth + 1,
                in_report || is_report,
                found,
                parts_seen,
            );
        }
        return;
    }
    match (content_type.kind.as_str(), content_type.subtype.as_str()) {
        ("message", "delivery-status" | "global-delivery-status") if in_report => {
            found.status_parts.push(decode(fields, body).into_owned());
        }
        ("message", "rfc822" | "global")
        | ("text", "rfc822-headers")
        | ("message", "global-headers")
            if in_report && found.returned.is_none() =>
        {
            let decoded = decode(fields, body);
            let (head, _) = split_entity(&decoded);
            found.returned = Some(head.to_vec());
        }
        ("text", "plain") => push_text(found, fields, body),
        _ => {}
    }
}

fn push_text(found: &mut Found, fields: &[Field<'_>], body: &[u8]) {
    if found.texts.len() < MAX_TEXTS {
        let text = text(fields, body);
        found.texts.push(text);
    }
}

/// A body decoded to text: transfer encoding, then charset (UTF-8 when none is named or the
/// charset is unknown; invalid bytes replaced).
fn text(fields: &[Field<'_>], body: &[u8]) -> String {
    let bytes = decode(fields, body);
    let charset = ContentType::of(fields).param("charset").map(str::to_string);
    if let Some(decoder) = charset.and_then(|name| charset_decoder(name.as_bytes())) {
        return decoder(&bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The body with its `Content-Transfer-Encoding` undone; as it is when it does not decode.
pub(crate) fn decode<'a>(fields: &[Field<'_>], body: &'a [u8]) -> Cow<'a, [u8]> {
    let encoding = fields
        .iter()
        .find(|field| field.is("Content-Transfer-Encoding"))
        .map(|field| field.value().trim().to_ascii_lowercase());
    let decoded = match encoding.as_deref() {
        Some("base64") => base64_decode(body),
        Some("quoted-printable") => quoted_printable_decode(body),
        _ => None,
    };
    match decoded {
        Some(bytes) => Cow::Owned(bytes),
        None => Cow::Borrowed(body),
    }
}

/// Splits an entity at the first empty line: (header section, body). Without an empty line,
/// all of it is header section.
pub(crate) fn split_entity(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < raw.len() {
        let (end, next) = headers::next_line(raw, pos);
        if end == pos {
            return (&raw[..pos], &raw[next..]);
        }
        pos = next;
    }
    (raw, &[])
}

/// The body parts of a multipart body (RFC 2046 §5.1.1), in order; empty when the boundary
/// never occurs.
pub(crate) fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    // Start of the current part's content, once the first delimiter was seen.
    let mut open: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let (end, next) = headers::next_line(body, pos);
        let line = &body[pos..end];
        if let Some(after) = line
            .strip_prefix(b"--")
            .and_then(|rest| rest.strip_prefix(boundary))
        {
            let closing = after.starts_with(b"--");
            let delimiter = closing || after.iter().all(|&b| b == b' ' || b == b'\t');
            if delimiter {
                if let Some(start) = open {
                    // The line end before the delimiter belongs to the delimiter.
                    let mut stop = pos;
                    if stop > start && body[stop - 1] == b'\n' {
                        stop -= 1;
                        if stop > start && body[stop - 1] == b'\r' {
                            stop -= 1;
                        }
                    }
                    parts.push(&body[start..stop.max(start)]);
                }
                if closing {
                    return parts;
                }
                if parts.len() >= MAX_PARTS {
                    return parts;
                }
                open = Some(next);
            }
        }
        pos = next;
    }
    if let Some(start) = open {
        parts.push(&body[start.min(body.len())..]);
    }
    parts
}

/// The most delimiter-like lines tried by [`body_boundary`].
const MAX_BOUNDARY_GUESSES: usize = 16;

/// The boundary a multipart body really uses, when the declared one never occurs: the first
/// `--token` line (a legal RFC 2046 §5.1.1 boundary: 1 to 70 characters, not ending in a space)
/// that splits the body into at least two parts. Bounded: at most [`MAX_BOUNDARY_GUESSES`]
/// candidates, each one linear scan.
fn body_boundary(body: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    let mut tried = 0;
    while pos < body.len() && tried < MAX_BOUNDARY_GUESSES {
        let (end, next) = headers::next_line(body, pos);
        if let Some(token) = body[pos..end].strip_prefix(b"--") {
            let token = token.trim_ascii_end();
            let legal = (1..=70).contains(&token.len())
                && token
                    .iter()
                    .all(|&byte| byte.is_ascii_graphic() || byte == b' ')
                && !token.ends_with(b"--");
            if legal {
                tried += 1;
                if split_multipart(body, token).len() >= 2 {
                    return Some(token);
                }
            }
        }
        pos = next;
    }
    None
}

fn quoted(boundary: &str) -> String {
    let mut cut: String = boundary.chars().take(QUOTED_BOUNDARY_CHARS).collect();
    if boundary.chars().nth(QUOTED_BOUNDARY_CHARS).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// A `Content-Type` value (RFC 2045 §5.1), lower-case type, subtype and parameter names.
pub(crate) struct ContentType {
    pub(crate) kind: String,
    pub(crate) subtype: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    /// The top-most `Content-Type` of `fields`; `text/plain` when there is none or it does not
    /// parse (RFC 2045 §5.2).
    pub(crate) fn of(fields: &[Field<'_>]) -> ContentType {
        fields
            .iter()
            .find(|field| field.is("Content-Type"))
            .and_then(|field| ContentType::parse(&field.value()))
            .unwrap_or_else(|| ContentType {
                kind: "text".into(),
                subtype: "plain".into(),
                params: Vec::new(),
            })
    }

    pub(crate) fn parse(value: &str) -> Option<ContentType> {
        let mut cursor = Cursor::new(value);
        cursor.skip_cfws_quiet();
        let kind = cursor.take_while(is_token).to_ascii_lowercase();
        cursor.skip_cfws_quiet();
        if kind.is_empty() || !cursor.eat(b'/') {
            return None;
        }
        cursor.skip_cfws_quiet();
        let subtype = cursor.take_while(is_token).to_ascii_lowercase();
        if subtype.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            cursor.skip_to_semicolon();
            if !cursor.eat(b';') {
                break;
            }
            cursor.skip_cfws_quiet();
            let name = cursor.take_while(is_token).to_ascii_lowercase();
            cursor.skip_cfws_quiet();
            if name.is_empty() || !cursor.eat(b'=') {
                continue;
            }
            cursor.skip_cfws_quiet();
            let value = if cursor.peek() == Some(b'"') {
                cursor.quoted_string()
            } else {
                // Lenient: MTAs leave `/` and `=` unquoted in boundaries.
                cursor.bare().to_string()
            };
            params.push((name, value));
        }
        Some(ContentType {
            kind,
            subtype,
            params,
        })
    }

    /// The first value of a parameter, by its lower-case name.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// RFC 2045 §5.1 `token` characters: printable US-ASCII except SPACE and `tspecials`.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&byte)
}
