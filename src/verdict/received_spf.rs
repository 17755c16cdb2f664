//! The `Received-SPF` header field (RFC 7208 §9.1).
//!
//! ```text
//! header-field   = "Received-SPF:" [CFWS] result FWS [comment FWS] [ key-value-list ] CRLF
//! key-value-list = key-value-pair *( ";" [CFWS] key-value-pair ) [";"]
//! key-value-pair = key [CFWS] "=" ( dot-atom / quoted-string )
//! key            = "client-ip" / "envelope-from" / "helo" / "problem" / "receiver"
//!                  / "identity" / "mechanism" / name
//! ```
//!
//! Real writers differ only a little: policyd-spf capitalises the result (`Pass`), Microsoft
//! adds its own keys (`pr=C`), some omit the `;` between pairs. Keys are read
//! case-insensitively; a pair that cannot be read is skipped.

use std::collections::BTreeMap;

use super::lexer::Cursor;
use super::{AuthResult, ReceivedSpf};

/// Parses the value of a `Received-SPF` header field. Never fails.
pub(crate) fn parse(value: &str) -> ReceivedSpf {
    let mut cursor = Cursor::new(value);
    let mut comments = String::new();
    cursor.skip_cfws(&mut comments);
    // A field with no result keyword says nothing: read it as `none`.
    let keyword = cursor.keyword();
    let result = if keyword.is_empty() {
        AuthResult::None
    } else {
        AuthResult::parse(keyword)
    };
    let mut spf = ReceivedSpf {
        result,
        comment: None,
        client_ip: None,
        envelope_from: None,
        helo: None,
        receiver: None,
        identity: None,
        mechanism: None,
        problem: None,
        other: BTreeMap::new(),
    };
    loop {
        cursor.skip_cfws(&mut comments);
        if cursor.at_end() {
            break;
        }
        if cursor.eat(b';') {
            continue;
        }
        let key = cursor
            .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if key.is_empty() {
            cursor.bump();
            continue;
        }
        cursor.skip_cfws(&mut comments);
        if !cursor.eat(b'=') {
            continue;
        }
        cursor.skip_cfws(&mut comments);
        let value = cursor.value();
        let key = key.to_ascii_lowercase();
        let slot = match key.as_str() {
            "client-ip" => &mut spf.client_ip,
            "envelope-from" => &mut spf.envelope_from,
            "helo" => &mut spf.helo,
            "receiver" => &mut spf.receiver,
            "identity" => &mut spf.identity,
            "mechanism" => &mut spf.mechanism,
            "problem" => &mut spf.problem,
            _ => {
                spf.other.entry(key).or_insert(value);
                continue;
            }
        };
        // A key written twice keeps its first value, as for Authentication-Results.
        slot.get_or_insert(value);
    }
    spf.comment = (!comments.is_empty()).then_some(comments);
    spf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7208_examples() {
        let spf = parse(
            " pass (mybox.example.org: domain of\n myname@example.com designates 192.0.2.1 as\n permitted sender)\n receiver=mybox.example.org; client-ip=192.0.2.1;\n envelope-from=\"myname@example.com\"; helo=foo.example.com;",
        );
        assert_eq!(spf.result, AuthResult::Pass);
        assert_eq!(
            spf.comment.as_deref(),
            Some(
                "mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender"
            )
        );
        assert_eq!(spf.receiver.as_deref(), Some("mybox.example.org"));
        assert_eq!(spf.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(spf.envelope_from.as_deref(), Some("myname@example.com"));
        assert_eq!(spf.helo.as_deref(), Some("foo.example.com"));
        assert!(spf.other.is_empty());

        let spf = parse(
            " fail (mybox.example.org: domain of myname@example.com does not designate\n 192.0.2.1 as permitted sender)\n identity=mailfrom; client-ip=192.0.2.1;\n envelope-from=\"myname@example.com\";",
        );
        assert_eq!(spf.result, AuthResult::Fail);
        assert_eq!(spf.identity.as_deref(), Some("mailfrom"));
    }

    #[test]
    fn policyd_spf_and_microsoft_forms() {
        let spf = parse(
            " Pass (mailfrom) identity=mailfrom; client-ip=203.0.113.7; helo=mail.example.com; envelope-from=alice@example.com; receiver=<UNKNOWN> ",
        );
        assert_eq!(spf.result, AuthResult::Pass);
        assert_eq!(spf.comment.as_deref(), Some("mailfrom"));
        assert_eq!(spf.receiver.as_deref(), Some("<UNKNOWN>"));

        let spf = parse(
            " Pass (protection.outlook.com: domain of example.com designates 40.107.1.1 as permitted sender) receiver=protection.outlook.com; client-ip=40.107.1.1; helo=EUR05-AM6-obe.outbound.protection.outlook.com; pr=C",
        );
        assert_eq!(
            spf.helo.as_deref(),
            Some("EUR05-AM6-obe.outbound.protection.outlook.com")
        );
        assert_eq!(spf.other.get("pr").map(String::as_str), Some("C"));
    }

    #[test]
    fn results_and_odd_input() {
        assert_eq!(parse("SoftFail (x)").result, AuthResult::SoftFail);
        assert_eq!(parse("temperror").result, AuthResult::TempError);
        assert_eq!(
            parse("hardfail").result,
            AuthResult::Other("hardfail".into())
        );
        assert_eq!(parse("").result, AuthResult::None);
        assert_eq!(parse(" (only a comment)").result, AuthResult::None);
        let spf = parse(
            "pass client-ip=1.2.3.4 helo=h (c) mechanism=\"ip4:1.2.3.0/24\" x ; = ;Client-IP=9.9.9.9",
        );
        assert_eq!(spf.client_ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(spf.helo.as_deref(), Some("h"));
        assert_eq!(spf.mechanism.as_deref(), Some("ip4:1.2.3.0/24"));
        assert_eq!(spf.comment.as_deref(), Some("c"));
        let spf = parse("neutral (unterminated; client-ip=1.2.3.4");
        assert_eq!(spf.client_ip, None);
        assert_eq!(
            spf.comment.as_deref(),
            Some("unterminated; client-ip=1.2.3.4")
        );
    }
}
