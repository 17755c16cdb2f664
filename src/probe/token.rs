//! The probe token: marks a message as one of ours and proves it (HMAC-SHA256 over probe id,
//! route, seed and send time). Only messages with a valid token are ever moved or deleted.
//!
//! Wire form, in the `X-Mailcanary-Probe` header:
//! `v1.<probe id>.<route>.<seed>.<sent unix seconds>.<hex mac>` (route and seed names cannot
//! contain `.`: the config allows only letters, digits, `-` and `_`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

pub const HEADER: &str = "X-Mailcanary-Probe";

/// What a token says once its MAC has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub probe_id: String,
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
    pub fn new(probe_id: &str, route: &str, seed: &str, sent_at: i64) -> Self {
        Token {
            probe_id: probe_id.to_string(),
            route: route.to_string(),
            seed: seed.to_string(),
            sent_at,
        }
    }

    fn signed_part(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}",
            self.probe_id, self.route, self.seed, self.sent_at
        )
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
        let [v, probe_id, route, seed, sent_at, tag] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        if *v != "v1" || probe_id.is_empty() || route.is_empty() || seed.is_empty() {
            return Err(TokenError::Malformed);
        }
        let sent_at: i64 = sent_at.parse().map_err(|_| TokenError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
        if tag.len() != 16 {
            return Err(TokenError::Malformed);
        }
        let token = Token::new(probe_id, route, seed, sent_at);
        token
            .mac(key)
            .verify_truncated_left(&tag)
            .map_err(|_| TokenError::BadMac)?;
        Ok(token)
    }
}

/// What the probe header of a fetched message says, before any state is consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCheck {
    /// No probe header: not ours, not a forgery, not our business.
    NotAProbe,
    /// A probe header that does not verify for this seed (counted as forged, left alone).
    Forged(String),
    /// A valid token of ours for this seed, with the message's Message-ID (`<...>`).
    Probe {
        token: Token,
        message_id: Option<String>,
    },
}

/// Reads the probe header and Message-ID from `header` (a header section, or just those
/// fields) and verifies the token against `key` and the seed mailbox it was found in. Pure.
pub fn check_header(header: &[u8], key: &Secret, seed: &str) -> HeaderCheck {
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
        let t = Token::new(&new_probe_id(), "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        assert_eq!(Token::verify(&wire, &key()), Ok(t));
    }

    #[test]
    fn any_change_is_rejected() {
        let t = Token::new("abc", "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        let forged = wire.replace(".good.", ".spam.");
        assert_eq!(Token::verify(&forged, &key()), Err(TokenError::BadMac));
        let other_key = Secret::new("another-key-of-16-chars");
        assert_eq!(Token::verify(&wire, &other_key), Err(TokenError::BadMac));
    }

    fn header(value: &str) -> Vec<u8> {
        format!("Message-ID: <m1@sender.test>\r\n{HEADER}: {value}\r\n\r\n").into_bytes()
    }

    #[test]
    fn header_check_tells_ours_from_forged_from_foreign() {
        let t = Token::new("p1", "good", "seed1", 1_700_000_000);
        let wire = t.encode(&key());
        assert_eq!(
            check_header(&header(&wire), &key(), "seed1"),
            HeaderCheck::Probe {
                token: t.clone(),
                message_id: Some("<m1@sender.test>".to_string())
            }
        );
        assert_eq!(
            check_header(&header(&wire), &key(), "seed2"),
            HeaderCheck::Forged("token names another seed mailbox".to_string())
        );
        assert_eq!(
            check_header(&header(&wire.replace(".good.", ".spam.")), &key(), "seed1"),
            HeaderCheck::Forged("token signature does not verify (copied or forged)".to_string())
        );
        assert_eq!(
            check_header(b"Subject: hello\r\n\r\n", &key(), "seed1"),
            HeaderCheck::NotAProbe
        );
        let twice = format!("{HEADER}: {wire}\r\n{HEADER}: {wire}\r\n\r\n");
        assert_eq!(
            check_header(twice.as_bytes(), &key(), "seed1"),
            HeaderCheck::Forged("several probe headers".to_string())
        );
        assert_eq!(check_header(b"", &key(), "seed1"), HeaderCheck::NotAProbe);
        assert_eq!(
            check_header(&[0xff; 300], &key(), "seed1"),
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
            "v1.a.b.c.1.zz",
            "v1...1.00",
        ] {
            assert_eq!(
                Token::verify(v, &key()),
                Err(TokenError::Malformed),
                "{v:?}"
            );
        }
    }
}
