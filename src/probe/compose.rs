//! Builds a probe message: realistic multipart text + HTML with List-Unsubscribe, so filters
//! judge it like real mail, carrying the probe token in a header, the probe's public id in
//! the Message-ID (never the probe id: every relay, the seed's provider and every mail log see
//! the Message-ID) and its signed envelope id for SMTP (see [`token`]).
//! Optionally DKIM-signs it with mail-auth (relaxed/relaxed; lettre's own signer uses
//! simple/relaxed, which verifiers fail on after any transit rewrap).

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};

use crate::config::{DkimSigning, Route, Secret, Seed};
use crate::probe::token::{self, Token};

/// A message ready to hand to SMTP.
#[derive(Debug, Clone)]
pub struct ProbeMessage {
    pub probe_id: String,
    pub message_id: String,
    /// The `ENVID` to send (RFC 3461 §4.4), signed: [`token::envelope_id`].
    pub envelope_id: String,
    pub envelope_from: String,
    pub recipient: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot read DKIM key {path}: {reason}")]
    DkimKey { path: String, reason: String },
    #[error("DKIM signing failed: {0}")]
    DkimSign(String),
}

impl ComposeError {
    pub fn reason(&self) -> &'static str {
        match self {
            ComposeError::DkimKey { .. } | ComposeError::DkimSign(_) => "dkim_sign",
            _ => "config",
        }
    }
}

/// Header fields DKIM covers: those a receiver shows or a filter scores.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    token::HEADER,
];

/// Composes (and signs, when the route says so) the message for one probe.
pub fn compose(
    route: &Route,
    seed: &Seed,
    token: &Token,
    key: &Secret,
) -> Result<ProbeMessage, ComposeError> {
    let from: Mailbox = route
        .from
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            address: route.from.clone(),
            reason: e.to_string(),
        })?;
    let to: Mailbox = seed
        .address
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            address: seed.address.clone(),
            reason: e.to_string(),
        })?;
    let domain = route.from_domain();
    let public = token::public_id(key, &token.probe_id);
    let message_id = format!("<mc.{public}@{domain}>");
    let short = &public[..8];
    let envelope_id = token::envelope_id(
        key,
        token.instance.as_deref().unwrap_or_default(),
        &token.probe_id,
    );
    let unsubscribe = route
        .message
        .list_unsubscribe
        .clone()
        .unwrap_or_else(|| format!("<mailto:{}?subject=unsubscribe>", route.from_address));
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(format!("{} [{short}]", route.message.subject))
        .message_id(Some(message_id.clone()))
        .date_now()
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(token::HEADER),
            token.encode(key),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            unsubscribe,
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_string(),
        ));
    if route.envelope_from != route.from_address {
        builder = builder.sender(route.envelope_from.parse().map_err(
            |e: lettre::address::AddressError| ComposeError::Address {
                address: route.envelope_from.clone(),
                reason: e.to_string(),
            },
        )?);
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(route.message.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(route.message.html.clone()),
        );
    let message = builder
        .multipart(body)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    let mut bytes = message.formatted();
    if let Some(dkim) = &route.dkim {
        bytes = dkim_sign(dkim, bytes)?;
    }
    Ok(ProbeMessage {
        probe_id: token.probe_id.clone(),
        message_id,
        envelope_id,
        envelope_from: route.envelope_from.clone(),
        recipient: seed.address.clone(),
        bytes,
    })
}

/// Prepends a relaxed/relaxed DKIM-Signature (RFC 6376 §3.4.2, §3.4.4).
pub fn dkim_sign(dkim: &DkimSigning, message: Vec<u8>) -> Result<Vec<u8>, ComposeError> {
    let key_err = |reason: String| ComposeError::DkimKey {
        path: dkim.key_file.display().to_string(),
        reason,
    };
    let pem = std::fs::read(&dkim.key_file).map_err(|e| key_err(e.to_string()))?;
    let der = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| key_err(e.to_string()))?
        .ok_or_else(|| key_err("no private key in the file".to_string()))?;
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| key_err(e.to_string()))?;
    let signature = DkimSigner::from_key(key)
        .domain(dkim.domain.clone())
        .selector(dkim.selector.clone())
        .headers(SIGNED_HEADERS.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(&message)
        .map_err(|e| ComposeError::DkimSign(e.to_string()))?;
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(&message);
    Ok(out)
}
