//! The MIME parts of a report mail (RFC 2045, RFC 2046) that may carry a report, found with
//! the bounded walker helpers of `verdict::dsn::mime` rather than
//! `mail_parser::MessageParser::parse`, which follows nested messages without a depth limit.
//! `message/rfc822` parts are not opened: reports are attached to the report mail itself.

use super::ReportError;
use crate::verdict::dsn::mime::{ContentType, decode, split_entity, split_multipart};
use crate::verdict::headers::{self, Field};

/// How many multipart levels are followed.
pub const MAX_DEPTH: usize = 8;
/// How many MIME parts are looked at, in all.
pub const MAX_PARTS: usize = 64;

/// A leaf part, decoded.
pub(super) struct Attachment {
    /// Lower-case `type/subtype`.
    pub(super) media_type: String,
    /// `Content-Disposition` `filename`, else `Content-Type` `name`.
    pub(super) filename: Option<String>,
    /// The body, transfer encoding undone.
    pub(super) body: Vec<u8>,
}

impl Attachment {
    /// A media type that announces a report (RFC 7489 §7.2.1.1, RFC 8460 §5.3, RFC 7303).
    pub(super) fn is_report_type(&self) -> bool {
        matches!(
            self.media_type.as_str(),
            "application/gzip"
                | "application/x-gzip"
                | "application/zip"
                | "application/x-zip-compressed"
                | "application/xml"
                | "text/xml"
                | "application/tlsrpt+gzip"
                | "application/tlsrpt+json"
        )
    }
}

/// The leaf parts of a message whose header fields are `fields`, top to bottom.
pub(super) fn attachments(
    fields: &[Field<'_>],
    raw: &[u8],
) -> Result<Vec<Attachment>, ReportError> {
    let mut found = Vec::new();
    let mut parts_seen = 0;
    let (_, body) = split_entity(raw);
    walk(fields, body, 0, &mut found, &mut parts_seen)?;
    Ok(found)
}

fn walk(
    fields: &[Field<'_>],
    body: &[u8],
    depth: usize,
    found: &mut Vec<Attachment>,
    parts_seen: &mut usize,
) -> Result<(), ReportError> {
    let content_type = ContentType::of(fields);
    if content_type.kind == "multipart" {
        let Some(boundary) = content_type.param("boundary").filter(|b| !b.is_empty()) else {
            return Ok(());
        };
        if depth >= MAX_DEPTH {
            return Err(ReportError::TooMany {
                what: "nested multipart levels",
                limit: MAX_DEPTH,
            });
        }
        for part in split_multipart(body, boundary.as_bytes()) {
            *parts_seen += 1;
            if *parts_seen > MAX_PARTS {
                return Err(ReportError::TooMany {
                    what: "MIME parts",
                    limit: MAX_PARTS,
                });
            }
            let (head, part_body) = split_entity(part);
            let part_fields = headers::split(head).unwrap_or_default();
            walk(&part_fields, part_body, depth + 1, found, parts_seen)?;
        }
        return Ok(());
    }
    if content_type.kind == "message" {
        return Ok(());
    }
    found.push(Attachment {
        media_type: format!("{}/{}", content_type.kind, content_type.subtype),
        filename: filename(fields, &content_type),
        body: decode(fields, body).into_owned(),
    });
    Ok(())
}

fn filename(fields: &[Field<'_>], content_type: &ContentType) -> Option<String> {
    // `Content-Disposition` (RFC 2183) has the parameter syntax of `Content-Type`, behind a
    // bare word: read it as the subtype of a made-up type.
    let disposition = fields
        .iter()
        .find(|field| field.is("Content-Disposition"))
        .and_then(|field| ContentType::parse(&format!("x/{}", field.value())));
    disposition
        .as_ref()
        .and_then(|value| value.param("filename"))
        .or_else(|| content_type.param("name"))
        .map(str::to_string)
}
