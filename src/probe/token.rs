//! What the token key signs: the probe token, the probe's envelope id, and its public id.
//! Only messages with a valid token of this instance are ever moved or deleted, and only a
//! bounce that proves itself with a token or an envelope id of ours changes a probe.
//!
//! **The token** (HMAC-SHA256 over probe id, instance, route, seed and send time), in the
//! `X-Mailcanary-Probe` header:
//! `v2.<probe id>.<instance>.<route>.<seed>.<sent unix seconds>.<hex mac>` (instance, route
//! and seed names cannot contain `.`: the config allows only letters, digits, `-` and `_`).
//! Tokens of earlier versions, `v1.<probe id>.<route>.<seed>.<sent>.<mac>`, name no instance;
//! they still verify, so probes in flight across an upgrade are judged, not counted as forged.
//!
//! **The envelope id** (RFC 3461 §4.4 `ENVID`, returned as a bounce's `Original-Envelope-Id`,
//! RFC 3464 §2.2.1): `mc1.<probe id>.<hex mac>`, the MAC over the probe id and the instance —
//! xtext as it is (hex digits and dots), 69 characters of the 100 allowed. Releases before it
//! sent the bare probe id, which anyone who knew the id could write into a bounce: that form
//! is read, but never trusted.
//!
//! **The public id**: what people and tools see of a probe (`probe_id` of `once --json` and
//! `/api/results`, the logs, the local part of its Message-ID) is a keyed hash of the probe
//! id, never the id itself, so nothing served or written where strangers read it brings them
//! closer to a bounce we would believe.
//!
//! Several instances (vantage points, an HA pair) may share seed mailboxes and the token key:
//! the instance in the token tells each one its own probes from the others' valid ones.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

pub const HEADER: &str = "X-Mailcanary-Probe";

/// What a token says once its MAC has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub probe_id: String,
    /// The instance that sent it; `None` for a `v1` token (sent before instances existed).
    pub instance: Option<String>,
    pub route: String,
    pub seed: String,
    pub sent_at: i64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a mailcanary token")]
    Malformed,
    #[error("token signature does not verify (copied or forged)")]
    BadMac,
}

impl Token {
    pub fn new(probe_id: &str, instance: &str, route: &str, seed: &str, sent_at: i64) -> Self {
        Token {
            probe_id: probe_id.to_string(),
            instance: Some(instance.to_string()),
            route: route.to_string(),
            seed: seed.to_string(),
            sent_at,
        }
    }

    fn signed_part(&self) -> String {
        match &self.instance {
            Some(instance) => format!(
                "v2.{}.{instance}.{}.{}.{}",
                self.probe_id, self.route, self.seed, self.sent_at
            ),
            None => format!(
                "v1.{}.{}.{}.{}",
                self.probe_id, self.route, self.seed, self.sent_at
            ),
        }
    }

    fn mac(&self, key: &Secret) -> Hmac<Sha256> {
        hmac(key, &self.signed_part())
    }

    /// The header value.
    pub fn encode(&self, key: &Secret) -> String {
        let tag = self.mac(key).finalize().into_bytes();
        format!("{}.{}", self.signed_part(), hex::encode(&tag[..TAG_BYTES]))
    }

    /// Parses and verifies a header value (constant-time MAC comparison).
    pub fn verify(value: &str, key: &Secret) -> Result<Token, TokenError> {
        let (token, tag) = Token::parse(value)?;
        token
            .mac(key)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadMac)?;
        Ok(token)
    }

    /// The probe id a token-shaped value names, whatever its MAC (even one of the wrong
    /// length): what a forged token claims (a forgery is counted against the probe it names).
    pub fn named_probe(value: &str) -> Option<String> {
        let parts: Vec<&str> = value.trim().split('.').collect();
        match parts.as_slice() {
            ["v1", id, _, _, _, _] | ["v2", id, _, _, _, _, _] if !id.is_empty() => {
                Some(id.to_string())
            }
            _ => None,
        }
    }

    /// A header value taken apart: the token it says, and its MAC (not checked here).
    fn parse(value: &str) -> Result<(Token, Vec<u8>), TokenError> {
        let value = value.trim();
        let parts: Vec<&str> = value.split('.').collect();
        let (probe_id, instance, route, seed, sent_at, tag) = match parts.as_slice() {
            ["v2", probe_id, instance, route, seed, sent_at, tag] if !instance.is_empty() => (
                probe_id,
                Some(instance.to_string()),
                route,
                seed,
                sent_at,
                tag,
            ),
            ["v1", probe_id, route, seed, sent_at, tag] => {
                (probe_id, None, route, seed, sent_at, tag)
            }
            _ => return Err(TokenError::Malformed),
        };
        if probe_id.is_empty() || route.is_empty() || seed.is_empty() {
            return Err(TokenError::Malformed);
        }
        let sent_at: i64 = sent_at.parse().map_err(|_| TokenError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
        if tag.len() != TAG_BYTES {
            return Err(TokenError::Malformed);
        }
        let token = Token {
            probe_id: probe_id.to_string(),
            instance,
            route: route.to_string(),
            seed: seed.to_string(),
            sent_at,
        };
        Ok((token, tag))
    }

    /// Whether `instance` sent it. A `v1` token names no instance: it counts as this
    /// instance's, and the state decides (a probe with no record here is left alone).
    pub fn is_of(&self, instance: &str) -> bool {
        self.instance.as_deref().is_none_or(|i| i == instance)
    }
}

/// What the probe header of a fetched message says, before any state is consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCheck {
    /// No probe header: not ours, not a forgery, not our business.
    NotAProbe,
    /// A probe header that does not verify for this seed (counted as forged, left alone).
    Forged(String),
    /// A valid token of another instance sharing the key: its probe, never ours to judge,
    /// count as forged or touch (counted as foreign, left alone). Which seed mailbox it names
    /// is that instance's business: instances may name a shared mailbox differently.
    Foreign { instance: String },
    /// A valid token of this instance for this seed, with the message's Message-ID (`<...>`).
    Probe {
        token: Token,
        message_id: Option<String>,
    },
}

/// Reads the probe header and Message-ID from `header` (a header section, or just those
/// fields) and verifies the token against `key`, the seed mailbox it was found in and this
/// `instance`. Pure.
pub fn check_header(header: &[u8], key: &Secret, seed: &str, instance: &str) -> HeaderCheck {
    let parsed = mail_parser::MessageParser::new().parse_headers(header);
    let (values, message_id): (Vec<String>, Option<String>) = match &parsed {
        Some(m) => (
            m.header_values(HEADER)
                .filter_map(|v| v.as_text().map(str::to_string))
                .collect(),
            m.message_id().map(|s| format!("<{s}>")),
        ),
        None => (Vec::new(), None),
    };
    let value = match values.as_slice() {
        [] => return HeaderCheck::NotAProbe,
        [value] => value,
        _ => return HeaderCheck::Forged("several probe headers".to_string()),
    };
    match Token::verify(value, key) {
        Err(e) => HeaderCheck::Forged(e.to_string()),
        Ok(token) if !token.is_of(instance) => HeaderCheck::Foreign {
            instance: token.instance.unwrap_or_default(),
        },
        Ok(token) if token.seed != seed => {
            HeaderCheck::Forged("token names another seed mailbox".to_string())
        }
        Ok(token) => HeaderCheck::Probe { token, message_id },
    }
}

/// A fresh random probe id (128 bits, hex).
pub fn new_probe_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// HMAC-SHA256 of `message` under the token key. Each use signs its own shape of message (the
/// token's starts with its version, `v1.`/`v2.`; the envelope id's with `envid.`; the public
/// id's with `public.`), so one MAC can never be passed off as another.
fn hmac(key: &Secret, message: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(message.as_bytes());
    mac
}

/// The first 128 bits of a MAC, the length every tag of ours has.
const TAG_BYTES: usize = 16;

/// The version word that starts a signed envelope id.
const ENVID_VERSION: &str = "mc1";

fn envelope_mac(key: &Secret, instance: &str, probe_id: &str) -> Hmac<Sha256> {
    hmac(key, &format!("envid.v1.{instance}.{probe_id}"))
}

/// The envelope id (`ENVID`, RFC 3461 §4.4) of a probe of `instance`:
/// `mc1.<probe id>.<hex mac>`. Bounces return it as `Original-Envelope-Id`, and it proves them
/// ours even when the bouncer returns none of the probe's header fields.
pub fn envelope_id(key: &Secret, instance: &str, probe_id: &str) -> String {
    let tag = envelope_mac(key, instance, probe_id)
        .finalize()
        .into_bytes();
    format!(
        "{ENVID_VERSION}.{probe_id}.{}",
        hex::encode(&tag[..TAG_BYTES])
    )
}

/// What an `Original-Envelope-Id` is to this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeId {
    /// Signed with the token key for this instance: proves the bounce is about this probe.
    Signed(String),
    /// Our form, but the MAC does not verify for this instance (forged, or another
    /// instance's): the probe id it names.
    BadMac(String),
    /// A bare probe id, as releases before signed envelope ids sent: anyone who knew the id
    /// could have written it, so it names a probe but proves nothing.
    Unsigned(String),
    /// Not a form of ours (another sender's envelope id, or none we could have sent).
    NotOurs,
}

impl EnvelopeId {
    /// Reads and checks an `Original-Envelope-Id` (constant-time MAC comparison).
    pub fn check(value: &str, key: &Secret, instance: &str) -> EnvelopeId {
        let value = value.trim();
        let is_probe_id = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if is_probe_id(value) {
            return EnvelopeId::Unsigned(value.to_ascii_lowercase());
        }
        let parts: Vec<&str> = value.split('.').collect();
        let [ENVID_VERSION, probe_id, tag] = parts.as_slice() else {
            return EnvelopeId::NotOurs;
        };
        if !is_probe_id(probe_id) {
            return EnvelopeId::NotOurs;
        }
        let Some(tag) = hex::decode(tag).ok().filter(|t| t.len() == TAG_BYTES) else {
            return EnvelopeId::NotOurs;
        };
        // Probe ids are written in lower case; an MTA that changed the case changed the id.
        match envelope_mac(key, instance, probe_id).verify_truncated_left(&tag) {
            Ok(()) => EnvelopeId::Signed(probe_id.to_string()),
            Err(_) => EnvelopeId::BadMac(probe_id.to_ascii_lowercase()),
        }
    }
}

/// The public id of a probe: 128 bits of a MAC over its probe id, hex. What `once --json`,
/// `/api/results` and the logs call `probe_id`, and the local part of the probe's Message-ID
/// (`<mc.<public id>@domain>`), so the one id people see finds the probe in the MTA's log
/// (`message-id=`) and in the seed mailbox; the probe id itself, which the token and the
/// envelope id carry, is never served.
pub fn public_id(key: &Secret, probe_id: &str) -> String {
    let tag = hmac(key, &format!("public.v1.{probe_id}"))
        .finalize()
        .into_bytes();
    hex::encode(&tag[..TAG_BYTES])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new("0123456789abcdef-test-key")
    }

    #[test]
    fn round_trip() {
        let t = Token::new(&new_probe_id(), "site-a", "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        assert!(wire.starts_with("v2."), "{wire}");
        assert!(wire.contains(".site-a.good.seed1.1700000000."), "{wire}");
        assert_eq!(Token::verify(&wire, &key()), Ok(t));
    }

    #[test]
    fn any_change_is_rejected() {
        let t = Token::new("abc", "site-a", "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        let forged = wire.replace(".good.", ".spam.");
        assert_eq!(Token::verify(&forged, &key()), Err(TokenError::BadMac));
        // The instance is signed: a copy cannot be passed off as another instance's.
        let moved = wire.replace(".site-a.", ".site-b.");
        assert_eq!(Token::verify(&moved, &key()), Err(TokenError::BadMac));
        // Nor can the instance be dropped to make it look like a v1 token.
        let legacy = wire.replacen("v2.", "v1.", 1).replace(".site-a.", ".");
        assert_eq!(Token::verify(&legacy, &key()), Err(TokenError::BadMac));
        let other_key = Secret::new("another-key-of-16-chars");
        assert_eq!(Token::verify(&wire, &other_key), Err(TokenError::BadMac));
    }

    #[test]
    fn v1_tokens_still_verify_and_name_no_instance() {
        let t = Token {
            probe_id: "abc".to_string(),
            instance: None,
            route: "good".to_string(),
            seed: "seed1".to_string(),
            sent_at: 1_700_000_000,
        };
        let wire = t.encode(&key());
        assert!(wire.starts_with("v1.abc.good.seed1.1700000000."), "{wire}");
        let back = Token::verify(&wire, &key());
        assert_eq!(back, Ok(t.clone()));
        assert!(t.is_of("site-a") && t.is_of("site-b"));
    }

    fn header(value: &str) -> Vec<u8> {
        format!("Message-ID: <m1@sender.test>\r\n{HEADER}: {value}\r\n\r\n").into_bytes()
    }

    #[test]
    fn header_check_tells_own_from_foreign_from_forged() {
        let t = Token::new("p1", "site-a", "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        // Own: this instance, this seed.
        assert_eq!(
            check_header(&header(&wire), &key(), "seed1", "site-a"),
            HeaderCheck::Probe {
                token: t.clone(),
                message_id: Some("<m1@sender.test>".to_string())
            }
        );
        // Foreign and valid: another instance sharing the key, never forged.
        assert_eq!(
            check_header(&header(&wire), &key(), "seed1", "site-b"),
            HeaderCheck::Foreign {
                instance: "site-a".to_string()
            }
        );
        // ... whatever the other instance calls the mailbox.
        assert_eq!(
            check_header(&header(&wire), &key(), "shared-1", "site-b"),
            HeaderCheck::Foreign {
                instance: "site-a".to_string()
            }
        );
        // Own token found in another seed mailbox: a copy.
        assert_eq!(
            check_header(&header(&wire), &key(), "seed2", "site-a"),
            HeaderCheck::Forged("token names another seed mailbox".to_string())
        );
        // Forged: the MAC does not verify, whichever instance reads it.
        for reader in ["site-a", "site-b"] {
            assert_eq!(
                check_header(
                    &header(&wire.replace(".good.", ".spam.")),
                    &key(),
                    "seed1",
                    reader
                ),
                HeaderCheck::Forged(
                    "token signature does not verify (copied or forged)".to_string()
                )
            );
            assert_eq!(
                check_header(
                    &header(&wire.replace(".site-a.", &format!(".{reader}x."))),
                    &key(),
                    "seed1",
                    reader
                ),
                HeaderCheck::Forged(
                    "token signature does not verify (copied or forged)".to_string()
                )
            );
        }
        // A token made with another key is forged, not foreign: sharing means sharing the key.
        let other = t.encode(&Secret::new("another-key-of-16-chars"));
        assert_eq!(
            check_header(&header(&other), &key(), "seed1", "site-b"),
            HeaderCheck::Forged("token signature does not verify (copied or forged)".to_string())
        );
        assert_eq!(
            check_header(b"Subject: hello\r\n\r\n", &key(), "seed1", "site-a"),
            HeaderCheck::NotAProbe
        );
        let twice = format!("{HEADER}: {wire}\r\n{HEADER}: {wire}\r\n\r\n");
        assert_eq!(
            check_header(twice.as_bytes(), &key(), "seed1", "site-a"),
            HeaderCheck::Forged("several probe headers".to_string())
        );
        assert_eq!(
            check_header(b"", &key(), "seed1", "site-a"),
            HeaderCheck::NotAProbe
        );
        assert_eq!(
            check_header(&[0xff; 300], &key(), "seed1", "site-a"),
            HeaderCheck::NotAProbe
        );
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_envelope_id_is_signed_for_the_probe_and_the_instance() {
        let envid = envelope_id(&key(), "site-a", ID);
        assert!(envid.starts_with(&format!("mc1.{ID}.")), "{envid}");
        // RFC 3461 §4.4: at most 100 characters of xtext; hex and dots need no encoding.
        assert!(envid.len() <= 100, "{}", envid.len());
        assert!(
            envid
                .bytes()
                .all(|b| (b'!'..=b'~').contains(&b) && b != b'+' && b != b'='),
            "{envid}"
        );
        assert_eq!(
            EnvelopeId::check(&format!(" {envid}\r\n"), &key(), "site-a"),
            EnvelopeId::Signed(ID.to_string())
        );
        // Another instance sharing the key cannot read it as its own, nor can another key.
        assert_eq!(
            EnvelopeId::check(&envid, &key(), "site-b"),
            EnvelopeId::BadMac(ID.to_string())
        );
        assert_eq!(
            EnvelopeId::check(&envid, &Secret::new("another-key-of-16-chars"), "site-a"),
            EnvelopeId::BadMac(ID.to_string())
        );
        // Moved to another probe, or with a tag made up by someone who knows the probe id.
        let other = "ffffffffffffffffffffffffffffffff";
        let moved = envid.replace(ID, other);
        assert_eq!(
            EnvelopeId::check(&moved, &key(), "site-a"),
            EnvelopeId::BadMac(other.to_string())
        );
        let made_up = format!("mc1.{ID}.{}", "00".repeat(16));
        assert_eq!(
            EnvelopeId::check(&made_up, &key(), "site-a"),
            EnvelopeId::BadMac(ID.to_string())
        );
        // What releases before sent: the bare probe id, unsigned.
        assert_eq!(
            EnvelopeId::check(&ID.to_ascii_uppercase(), &key(), "site-a"),
            EnvelopeId::Unsigned(ID.to_string())
        );
    }

    #[test]
    fn envelope_ids_of_other_senders_are_not_ours() {
        for v in [
            "",
            "QQ1234",
            "mc1",
            "mc1.abc.00112233445566778899aabbccddeeff",
            "mc1.0123456789abcdef0123456789abcdef.zz",
            "mc1.0123456789abcdef0123456789abcdef.0011",
            "mc2.0123456789abcdef0123456789abcdef.00112233445566778899aabbccddeeff",
            "mc1.0123456789abcdef0123456789abcdef.00112233445566778899aabbccddeeff.x",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(
                EnvelopeId::check(v, &key(), "site-a"),
                EnvelopeId::NotOurs,
                "{v:?}"
            );
        }
    }

    #[test]
    fn the_public_id_is_keyed_and_tells_nothing_of_the_probe_id() {
        let public = public_id(&key(), ID);
        assert_eq!(public.len(), 32);
        assert!(public.bytes().all(|b| b.is_ascii_hexdigit()), "{public}");
        assert_ne!(public, ID);
        assert_eq!(public, public_id(&key(), ID), "stable");
        assert_ne!(
            public,
            public_id(&Secret::new("another-key-of-16-chars"), ID)
        );
        assert_ne!(
            public,
            public_id(&key(), "ffffffffffffffffffffffffffffffff")
        );
        // Not the tag of the envelope id either: each signs its own message.
        assert!(!envelope_id(&key(), "site-a", ID).ends_with(&public));
    }

    #[test]
    fn a_forged_token_still_names_its_probe() {
        let wire = Token::new(ID, "site-a", "good", "seed1", 1).encode(&key());
        let forged = format!("{}{}", &wire[..wire.len() - 32], "00".repeat(16));
        assert_eq!(Token::verify(&forged, &key()), Err(TokenError::BadMac));
        assert_eq!(Token::named_probe(&forged).as_deref(), Some(ID));
        let long_tag = format!("v1.{ID}.good.seed1.1.{}", "ff".repeat(32));
        assert_eq!(Token::verify(&long_tag, &key()), Err(TokenError::Malformed));
        assert_eq!(Token::named_probe(&long_tag).as_deref(), Some(ID));
        assert_eq!(Token::named_probe("v1.x"), None);
        assert_eq!(Token::named_probe("v1..a.b.c.d"), None);
    }

    #[test]
    fn junk_is_malformed_not_a_panic() {
        for v in [
            "",
            "v1",
            "v1.a.b.c.d.e",
            "v2.a.b.c.1.00",
            "v2.a..b.c.1.00112233445566778899aabbccddeeff",
            "v3.a.i.b.c.1.00112233445566778899aabbccddeeff",
            "v1.a.b.c.1.zz",
            "v1...1.00",
            "v2.a.i.b.c.1.zz",
        ] {
            assert_eq!(
                Token::verify(v, &key()),
                Err(TokenError::Malformed),
                "{v:?}"
            );
        }
    }
}
