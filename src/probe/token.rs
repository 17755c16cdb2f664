//! The probe token: marks a message as one of ours and proves it (HMAC-SHA256 over probe id,
//! instance, route, seed and send time). Only messages with a valid token of this instance are
//! ever moved or deleted.
//!
//! Wire form, in the `X-Mailcanary-Probe` header:
//! `v2.<probe id>.<instance>.<route>.<seed>.<sent unix seconds>.<hex mac>` (instance, route
//! and seed names cannot contain `.`: the config allows only letters, digits, `-` and `_`).
//! Tokens of earlier versions, `v1.<probe id>.<route>.<seed>.<sent>.<mac>`, name no instance;
//! they still verify, so probes in flight across an upgrade are judged, not counted as forged.
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
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(self.signed_part().as_bytes());
        mac
    }

    /// The header value.
    pub fn encode(&self, key: &Secret) -> String {
        let tag = self.mac(key).finalize().into_bytes();
        format!("{}.{}", self.signed_part(), hex::encode(&tag[..16]))
    }

    /// Parses and verifies a header value (constant-time MAC comparison).
    pub fn verify(value: &str, key: &Secret) -> Result<Token, TokenError> {
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
        if tag.len() != 16 {
            return Err(TokenError::Malformed);
        }
        let token = Token {
            probe_id: probe_id.to_string(),
            instance,
            route: route.to_string(),
            seed: seed.to_string(),
            sent_at,
        };
        token
            .mac(key)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadMac)?;
        Ok(token)
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
