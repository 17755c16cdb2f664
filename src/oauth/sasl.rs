//! The SASL initial responses that carry an OAuth2 bearer token: `OAUTHBEARER` (RFC 7628 §3.1)
//! and Google's `XOAUTH2` (https://developers.google.com/gmail/imap/xoauth2-protocol, also
//! spoken by Microsoft), and which one to use when a server offers both. Pure functions: the
//! IMAP and SMTP adapters put them on the wire.

use crate::config::Secret;

/// An OAuth2 SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 7628, the standard one: preferred.
    OAuthBearer,
    /// Google's XOAUTH2, which Gmail, Outlook.com and Microsoft 365 accept.
    XOAuth2,
}

impl Mechanism {
    /// The mechanism name as IMAP `AUTH=` capabilities and SMTP `AUTH` lines write it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// What the client answers to the server's error challenge, so that the server can end
    /// the exchange with a failure: `%x01` for OAUTHBEARER (RFC 7628 §3.2.3), an empty
    /// response for XOAUTH2.
    pub fn error_ack(self) -> &'static [u8] {
        match self {
            Mechanism::OAuthBearer => b"\x01",
            Mechanism::XOAuth2 => b"",
        }
    }
}

/// OAUTHBEARER when offered, else XOAUTH2, else none (the server takes no bearer tokens).
/// Mechanism names compare case-insensitively (RFC 4422 §3.1).
pub fn choose<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Mechanism> {
    let offered: Vec<&str> = offered.into_iter().collect();
    let has = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    [Mechanism::OAuthBearer, Mechanism::XOAuth2]
        .into_iter()
        .find(|&m| has(m))
}

/// The client's initial response for `user` with `token`, unencoded (the protocol adapter
/// base64-encodes it). `host` and `port` are the server's, as OAUTHBEARER carries them.
pub fn initial_response(
    mechanism: Mechanism,
    user: &str,
    host: &str,
    port: u16,
    token: &Secret,
) -> Secret {
    let token = token.expose();
    Secret::new(match mechanism {
        // gs2-header "n,a=<saslname>," then key=value pairs, each ended by %x01, and a final
        // %x01 (RFC 7628 §3.1; saslname escapes ',' and '=' per RFC 5801 §4).
        Mechanism::OAuthBearer => format!(
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
            saslname(user)
        ),
        Mechanism::XOAuth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
    })
}

/// RFC 5801 §4 saslname: `=` as `=3D`, `,` as `=2C`.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_is_preferred_and_names_are_case_insensitive() {
        assert_eq!(
            choose(["PLAIN", "xoauth2", "OAuthBearer"]),
            Some(Mechanism::OAuthBearer)
        );
        assert_eq!(choose(["PLAIN", "XOAUTH2"]), Some(Mechanism::XOAuth2));
        assert_eq!(choose(["PLAIN", "LOGIN"]), None);
        assert_eq!(choose([]), None);
    }

    #[test]
    fn oauthbearer_initial_response_as_in_rfc_7628_section_4_1() {
        // RFC 7628 §4.1's example, with its token.
        let r = initial_response(
            Mechanism::OAuthBearer,
            "user@example.com",
            "server.example.com",
            143,
            &Secret::new("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        );
        assert_eq!(
            r.expose(),
            "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
    }

    #[test]
    fn xoauth2_initial_response_as_in_googles_documentation() {
        let r = initial_response(
            Mechanism::XOAuth2,
            "someuser@example.com",
            "imap.gmail.com",
            993,
            &Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        );
        assert_eq!(
            r.expose(),
            "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
    }

    #[test]
    fn saslname_escapes_comma_and_equals() {
        assert_eq!(saslname("a,b=c"), "a=2Cb=3Dc");
    }

    #[test]
    fn the_response_never_shows_in_debug() {
        let r = initial_response(Mechanism::XOAuth2, "u", "h", 1, &Secret::new("tok-123"));
        assert!(!format!("{r:?}").contains("tok-123"));
    }
}
