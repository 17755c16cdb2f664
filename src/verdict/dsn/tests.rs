//! Unit tests of the bounce reader's pieces; whole bounces are in `tests/dsn_corpus.rs`.

use super::mime::{ContentType, split_entity, split_multipart};
use super::*;
use crate::verdict::Method;

fn dsn(raw: &str) -> Dsn {
    read(raw.as_bytes()).expect("readable").expect("a bounce")
}

/// A minimal RFC 3464 report around the given delivery-status body.
fn report(status_body: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.com\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nIt bounced.\n\n--b\nContent-Type: message/delivery-status\n\n{status_body}\n--b--\n"
    )
}

// --- replies ---

#[test]
fn multi_line_replies_join_into_one() {
    for (text, joined) in [
        // Postfix: the lines joined with a space, codes left in the middle.
        (
            "550-5.7.25 [127.0.0.7] The IP address does not have a 550-5.7.25 PTR record. 550 5.7.25 gsmtp",
            "550 5.7.25 [127.0.0.7] The IP address does not have a PTR record. gsmtp",
        ),
        // Gmail folded into Diagnostic-Code, with empty lines and double spaces.
        (
            "550-5.7.26 a\n 550-5.7.26\n 550-5.7.26  b\n 550 5.7.26  c",
            "550 5.7.26 a b c",
        ),
        // The last lines repeat the space form (Gmail's 4.7.28).
        ("421-4.7.28 x 421 4.7.28 y 421 4.7.28 z", "421 4.7.28 x y z"),
        // No enhanced code: `550-` glued to the text.
        (
            "550-First line\n550-second\n550 last",
            "550 First line second last",
        ),
        // One line, nothing to remove; a code-like number in the text stays.
        (
            "550 5.1.1 user unknown 550 times",
            "550 5.1.1 user unknown 550 times",
        ),
        ("554 too many 554 errors", "554 too many 554 errors"),
        // Not a reply: only collapsed.
        (
            "connect to mx[127.0.0.5]:25:\n   Connection timed out",
            "connect to mx[127.0.0.5]:25: Connection timed out",
        ),
        ("", ""),
        ("550", "550"),
    ] {
        assert_eq!(reply::join(text), joined, "{text:?}");
    }
}

#[test]
fn enhanced_codes_are_found_where_mtas_put_them() {
    for (text, code) in [
        ("550 5.1.1 <a@b>: User unknown", Some("5.1.1")),
        ("550-5.7.26 unauthenticated", Some("5.7.26")),
        ("5.2.2 mailbox full", Some("5.2.2")),
        (
            "Sorry, no mailbox here by that name. (#5.1.1)",
            Some("5.1.1"),
        ),
        (
            "#< #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound> #SMTP#",
            Some("5.1.1"),
        ),
        ("550 Requested action not taken", None),
        ("version 4.2.1 of the software", None),
        ("550 6.1.1 no such class", None),
        ("", None),
    ] {
        assert_eq!(reply::enhanced_code(text).as_deref(), code, "{text:?}");
    }
    assert!(reply::is_enhanced("5.7.606"));
    assert!(!reply::is_enhanced("5.7.6060"));
    assert!(!reply::is_enhanced("5.7"));
    assert!(!reply::is_enhanced("5..1"));
    assert!(!reply::is_enhanced("3.1.1"));
}

// --- classify ---

#[test]
fn classify_maps_codes_and_provider_texts() {
    use RejectionClass::*;
    let cases: &[(Option<&str>, &str, RejectionClass, Option<Method>)] = &[
        // PTR: Gmail's 5.7.25 and its 4.7.23 (RFC 7372's SPF code, used for PTR).
        (
            Some("5.7.25"),
            "550 5.7.25 [127.0.0.7] no PTR record",
            Ptr,
            None,
        ),
        (
            None,
            "421-4.7.23 The sending IP does not have a PTR record",
            Ptr,
            None,
        ),
        (
            None,
            "450 4.7.25 Client host rejected: cannot find your hostname",
            Ptr,
            None,
        ),
        (
            Some("5.7.1"),
            "550 5.7.1 Reverse DNS lookup failed",
            Ptr,
            None,
        ),
        // Auth by code, method from the text or the code.
        (
            Some("5.7.26"),
            "550 5.7.26 unauthenticated; SPF or DKIM",
            Auth,
            None,
        ),
        (
            Some("5.7.26"),
            "550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy",
            Auth,
            Some(Method::Dmarc),
        ),
        (
            Some("5.7.26"),
            "550 5.7.26 This message fails to pass SPF checks for an SPF record with a hard fail policy (-all).",
            Auth,
            Some(Method::Spf),
        ),
        (
            None,
            "421 4.7.27 This mail has been rate limited because SPF didn't pass",
            Auth,
            Some(Method::Spf),
        ),
        (
            None,
            "550 5.7.509 Access denied, sending domain does not pass DMARC verification",
            Auth,
            Some(Method::Dmarc),
        ),
        (
            Some("5.7.515"),
            "550 5.7.515 Access denied, authentication level",
            Auth,
            None,
        ),
        (
            Some("5.7.20"),
            "550 5.7.20 no passing signature",
            Auth,
            Some(Method::Dkim),
        ),
        // Auth by wording.
        (
            Some("5.7.1"),
            "550 5.7.1 SPF check failed",
            Auth,
            Some(Method::Spf),
        ),
        (
            None,
            "550 5.7.1 DKIM signature invalid",
            Auth,
            Some(Method::Dkim),
        ),
        (None, "550 5.7.9 the sender is unauthenticated", Auth, None),
        (
            None,
            "421-4.7.0 fails to pass authentication checks",
            Auth,
            None,
        ),
        // Blocklist.
        (
            Some("5.0.0"),
            "550 5.7.606 Access denied, banned sending IP [127.0.0.8]",
            Blocklist,
            None,
        ),
        (
            None,
            "554 5.7.1 Service unavailable; Client host [127.0.0.7] blocked using zen.spamhaus.org",
            Blocklist,
            None,
        ),
        (
            Some("5.7.1"),
            "550 5.7.1 part of their network is on our block list (S3150)",
            Blocklist,
            None,
        ),
        (
            Some("5.7.1"),
            "550 5.7.1 Your IP 127.0.0.7 is listed by example",
            Blocklist,
            None,
        ),
        (None, "554 Your address is blacklisted", Blocklist, None),
        (
            None,
            "553 5.7.1 [BL21] the ip is in Spamhaus's list",
            Blocklist,
            None,
        ),
        // Rate limit: Gmail's 4.7.28 names a DKIM domain, and is still a rate limit.
        (
            Some("4.7.28"),
            "421-4.7.28 unusual rate of mail originating from your DKIM domain",
            RateLimit,
            None,
        ),
        (
            Some("4.7.0"),
            "421 4.7.0 [TSS04] Messages from 127.0.0.7 temporarily deferred",
            RateLimit,
            None,
        ),
        (
            None,
            "451 4.7.650 The mail server has been temporarily rate limited",
            RateLimit,
            None,
        ),
        (
            None,
            "421 4.7.0 Try again later, closing connection.",
            RateLimit,
            None,
        ),
        (None, "452 Too many recipients", RateLimit, None),
        // Recipient.
        (
            Some("5.1.1"),
            "550 5.1.1 The email account that you tried to reach does not exist.",
            Recipient,
            None,
        ),
        (
            Some("5.1.10"),
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
            Recipient,
            None,
        ),
        (
            None,
            "550 5.2.1 The email account is disabled",
            Recipient,
            None,
        ),
        (
            None,
            "550 Sorry, no mailbox here by that name.",
            Recipient,
            None,
        ),
        // Mailbox full.
        (Some("5.2.2"), "552 5.2.2 Mailbox full", MailboxFull, None),
        (
            None,
            "452 4.2.2 The recipient's inbox is out of storage space",
            MailboxFull,
            None,
        ),
        (None, "552 user is over quota", MailboxFull, None),
        // Policy: other x.7.x.
        (
            Some("5.7.1"),
            "550 5.7.1 Relaying denied. Proper authentication required.",
            Policy,
            None,
        ),
        (
            None,
            "554 5.7.9 Message not accepted for policy reasons.",
            Policy,
            None,
        ),
        // Other.
        (
            Some("4.4.1"),
            "connect to mx[127.0.0.5]:25: Connection timed out",
            Other,
            None,
        ),
        (None, "", Other, None),
        (Some("not a code"), "554 transaction failed", Other, None),
        // Words must be whole words.
        (None, "550 spfx dkimage undmarcable", Other, None),
    ];
    for &(status, reply, class, method) in cases {
        let got = classify(status, reply);
        assert_eq!(
            got,
            Rejection {
                class,
                failed_method: method
            },
            "{status:?} {reply:?}"
        );
    }
}

#[test]
fn rejection_json_and_names() {
    let rejection = classify(Some("5.7.23"), "550 5.7.23 SPF validation failed");
    let json = serde_json::to_string(&rejection).expect("json");
    assert_eq!(json, r#"{"class":"auth","failed_method":"spf"}"#);
    let back: Rejection = serde_json::from_str(&json).expect("back");
    assert_eq!(back, rejection);
    let none = serde_json::to_string(&classify(None, "")).expect("json");
    assert_eq!(none, r#"{"class":"other","failed_method":null}"#);
    assert!(serde_json::from_str::<Rejection>(r#"{"class":"auth","failed_method":"x"}"#).is_err());
    for class in [
        RejectionClass::Auth,
        RejectionClass::Ptr,
        RejectionClass::Blocklist,
        RejectionClass::Policy,
        RejectionClass::RateLimit,
        RejectionClass::Recipient,
        RejectionClass::MailboxFull,
        RejectionClass::Other,
    ] {
        let json = serde_json::to_string(&class).expect("json");
        assert_eq!(json, format!("\"{}\"", class.as_str()));
    }
}

// --- values ---

#[test]
fn values_lose_types_comments_and_length() {
    assert_eq!(
        values::address(" rfc822; <a@b.test>").as_deref(),
        Some("a@b.test")
    );
    assert_eq!(
        values::address("RFC822;a@b.test").as_deref(),
        Some("a@b.test")
    );
    assert_eq!(values::address("a@b.test").as_deref(), Some("a@b.test"));
    assert_eq!(values::address("rfc822;   ").as_deref(), None);
    assert_eq!(
        values::host("dns; mx.example. (127.0.0.5, the server for the domain example.)").as_deref(),
        Some("mx.example")
    );
    assert_eq!(
        values::diagnostic("smtp; 550-5.1.1 a\n 550 5.1.1 b").as_deref(),
        Some("550 5.1.1 a b")
    );
    // A `;` after a space is text, not a type.
    assert_eq!(
        values::diagnostic("550 5.7.1 Service unavailable; blocked").as_deref(),
        Some("550 5.7.1 Service unavailable; blocked")
    );
    assert_eq!(
        values::status(" 5.2.2 (mailbox full)").as_deref(),
        Some("5.2.2")
    );
    assert_eq!(values::status("(comment) 4.4.1").as_deref(), Some("4.4.1"));
    assert_eq!(values::status("failed"), None);
    assert_eq!(values::message_id(" <a@b>").as_deref(), Some("<a@b>"));
    assert_eq!(values::message_id("a@b").as_deref(), Some("<a@b>"));
    assert_eq!(
        values::message_id("junk <a@b> (c)").as_deref(),
        Some("<a@b>")
    );
    assert_eq!(values::message_id("  "), None);
    assert_eq!(values::without_comments("a (b (c) d) e (f"), "a  e ");
    assert_eq!(values::without_comments(r"a (b \) c) d"), "a  d");
}

#[test]
fn long_values_are_cut_on_a_char_boundary() {
    let long = "é".repeat(1000);
    let cut = values::clean(&long).expect("value");
    assert!(cut.len() <= MAX_VALUE_BYTES, "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert!(cut.trim_end_matches('…').chars().all(|ch| ch == 'é'));
    let exact = "a".repeat(MAX_VALUE_BYTES);
    assert_eq!(values::clean(&exact).as_deref(), Some(exact.as_str()));
    let over = "a".repeat(MAX_VALUE_BYTES + 1);
    assert_eq!(values::clean(&over).map(|v| v.len()), Some(MAX_VALUE_BYTES));
}

#[test]
fn actions_parse_case_insensitively() {
    assert_eq!(Action::parse("failed"), Some(Action::Failed));
    assert_eq!(Action::parse(" FAILED "), Some(Action::Failed));
    assert_eq!(Action::parse("Delayed (retrying)"), Some(Action::Delayed));
    assert_eq!(Action::parse("delivered"), Some(Action::Delivered));
    assert_eq!(Action::parse("relayed"), Some(Action::Relayed));
    assert_eq!(Action::parse("expanded"), Some(Action::Expanded));
    assert_eq!(Action::parse("bounced"), None);
    assert_eq!(Action::parse(""), None);
    assert_eq!(
        serde_json::to_string(&Action::Delayed).expect("json"),
        "\"delayed\""
    );
    assert_eq!(Action::Expanded.as_str(), "expanded");
    assert_eq!(DsnFormat::Rfc3464.as_str(), "rfc3464");
    assert_eq!(
        serde_json::to_string(&DsnFormat::Exchange).expect("json"),
        "\"exchange\""
    );
}

// --- MIME ---

#[test]
fn content_types_are_read_leniently() {
    let ct = ContentType::parse(
        "Multipart/Report (a comment); Report-Type=\"delivery-status\";\n\tboundary=\"a;b (c)\"",
    )
    .expect("parses");
    assert_eq!(
        (ct.kind.as_str(), ct.subtype.as_str()),
        ("multipart", "report")
    );
    assert_eq!(ct.param("report-type"), Some("delivery-status"));
    assert_eq!(ct.param("boundary"), Some("a;b (c)"));
    // Postfix's boundary carries a `/`, others `=`: accepted unquoted.
    let ct =
        ContentType::parse("multipart/report; boundary=4Q8Z.1741/mail.test; x=1").expect("parses");
    assert_eq!(ct.param("boundary"), Some("4Q8Z.1741/mail.test"));
    assert_eq!(ct.param("x"), Some("1"));
    let ct = ContentType::parse("text/plain; ; =x; charset").expect("parses");
    assert_eq!(ct.param("charset"), None);
    assert!(ContentType::parse("text").is_none());
    assert!(ContentType::parse("/plain").is_none());
    assert!(ContentType::parse("").is_none());
}

#[test]
fn multipart_bodies_split_at_delimiter_lines() {
    let body = b"preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b \t\r\n\r\ntwo\r\n--b-not\r\nstill two\r\n--b--\r\nepilogue\r\n--b\r\n";
    let parts = split_multipart(body, b"b");
    assert_eq!(
        parts,
        vec![
            &b"A: 1\r\n\r\none"[..],
            &b"\r\ntwo\r\n--b-not\r\nstill two"[..]
        ]
    );
    // Unterminated: the last part runs to the end.
    assert_eq!(
        split_multipart(b"--b\nx\n--b\ny", b"b"),
        vec![&b"x"[..], &b"y"[..]]
    );
    // Empty parts, and no delimiter at all.
    assert_eq!(
        split_multipart(b"--b\n--b\n--b--", b"b"),
        vec![&b""[..], &b""[..]]
    );
    assert!(split_multipart(b"no delimiters here\n", b"b").is_empty());
}

#[test]
fn entities_split_at_the_first_empty_line() {
    assert_eq!(
        split_entity(b"A: 1\nB: 2\n\nbody\n\nmore"),
        (&b"A: 1\nB: 2\n"[..], &b"body\n\nmore"[..])
    );
    assert_eq!(
        split_entity(b"A: 1\r\n\r\nbody"),
        (&b"A: 1\r\n"[..], &b"body"[..])
    );
    assert_eq!(split_entity(b"\nbody"), (&b""[..], &b"body"[..]));
    assert_eq!(split_entity(b"A: 1"), (&b"A: 1"[..], &b""[..]));
}

// --- delivery-status ---

#[test]
fn delivery_status_groups_bend_like_real_reports() {
    // No per-message group, Reporting-MTA inside the recipient group, blank lines made of
    // spaces, extra blank lines, a field folded.
    let got = dsn(&report(
        "\n\nFinal-Recipient: rfc822; a@seed.test\nReporting-MTA: dns; mx.example.com\nAction: failed\nStatus: 5.1.1\n   \n\n\nFinal-Recipient: rfc822;\n b@seed.test\nAction: delayed\nStatus: 4.4.7\nX-Unknown: kept out\n",
    ));
    assert_eq!(got.reporting_mta.as_deref(), Some("mx.example.com"));
    assert_eq!(got.recipients_total, 2);
    assert_eq!(
        got.recipients[1].final_recipient.as_deref(),
        Some("b@seed.test")
    );
    assert_eq!(got.recipients[1].action, Some(Action::Delayed));
    assert!(got.is_failure() && got.is_delay());
    assert_eq!(
        got.first_failure()
            .and_then(|r| r.final_recipient.as_deref()),
        Some("a@seed.test")
    );
    assert_eq!(
        got.first_delay().and_then(|r| r.status.as_deref()),
        Some("4.4.7")
    );
}

#[test]
fn first_field_of_a_name_wins_and_unknown_fields_are_none() {
    let got = dsn(&report(
        "Reporting-MTA: dns; first.example\nReporting-MTA: dns; second.example\n\nFinal-Recipient: rfc822; a@seed.test\nFinal-Recipient: rfc822; z@seed.test\nAction: frobbed\nStatus: none\n",
    ));
    assert_eq!(got.reporting_mta.as_deref(), Some("first.example"));
    let recipient = &got.recipients[0];
    assert_eq!(recipient.final_recipient.as_deref(), Some("a@seed.test"));
    assert_eq!(recipient.action, None);
    assert_eq!(recipient.status, None);
    assert!(!recipient.is_failure() && !recipient.is_delay());
    assert_eq!(got.rejection(), None);
}

#[test]
fn status_decides_when_action_is_missing() {
    let got = dsn(&report(
        "Final-Recipient: rfc822; a@seed.test\nStatus: 5.2.2\n",
    ));
    assert!(got.is_failure());
    assert_eq!(
        got.rejection().map(|r| r.class),
        Some(RejectionClass::MailboxFull)
    );
    let got = dsn(&report(
        "Final-Recipient: rfc822; a@seed.test\nStatus: 4.2.2\n",
    ));
    assert!(got.is_delay() && !got.is_failure());
}

#[test]
fn recipients_are_capped_and_counted() {
    let mut body = String::from("Reporting-MTA: dns; mx.example.com\n");
    for i in 0..(MAX_RECIPIENTS + 5) {
        body.push_str(&format!(
            "\nFinal-Recipient: rfc822; r{i}@seed.test\nAction: failed\nStatus: 5.1.1\n"
        ));
    }
    let got = dsn(&report(&body));
    assert_eq!(got.recipients.len(), MAX_RECIPIENTS);
    assert_eq!(got.recipients_total, MAX_RECIPIENTS + 5);
    assert_eq!(
        got.recipients[99].final_recipient.as_deref(),
        Some("r99@seed.test")
    );
}

// --- what is a bounce ---

#[test]
fn bounce_text_from_anyone_else_is_not_a_bounce() {
    let text = "Subject: look\n\nHi. This is the qmail-send program at x.\n\n<a@b.test>:\nRemote host said: 550 5.1.1 no\n";
    assert_eq!(
        read(format!("From: friend@example.com\n{text}").as_bytes()),
        Ok(None)
    );
    assert_eq!(read(text.as_bytes()), Ok(None));
    assert!(
        read(format!("From: MAILER-DAEMON@x.test\n{text}").as_bytes())
            .expect("reads")
            .is_some()
    );
    // From the daemon, but no bounce text we know.
    assert_eq!(
        read(b"From: MAILER-DAEMON@x.test\nSubject: hello\n\nJust a note.\n"),
        Ok(None)
    );
    // Other report types (MDN, ARF) are not bounces.
    assert_eq!(
        read(b"From: a@b.test\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n--b\nContent-Type: message/disposition-notification\n\nFinal-Recipient: rfc822; a@b.test\nDisposition: manual-action/MDN-sent-manually; displayed\n--b--\n"),
        Ok(None)
    );
}

#[test]
fn a_recognised_text_without_recipients_is_an_error() {
    let err = read(b"From: Mailer-Daemon@x.test\n\nThis message was created automatically by mail delivery software.\n\nNothing else.\n")
        .expect_err("no recipient");
    assert_eq!(
        err,
        DsnError::NoRecipients {
            format: DsnFormat::Exim
        }
    );
    assert_eq!(err.reason(), "no_recipients");
    assert_eq!(
        err.to_string(),
        "exim bounce that names no recipient (RFC 3464 §2.3)"
    );
}

#[test]
fn broken_reports_name_their_problem() {
    let err = read(b"From: a@b\nContent-Type: multipart/report; report-type=delivery-status\n\nFinal-Recipient: rfc822; x@y\n")
        .expect_err("no boundary");
    assert_eq!(err, DsnError::NoBoundary);
    assert_eq!(err.reason(), "no_boundary");
    let err = read(b"From: a@b\nContent-Type: multipart/report; report-type=delivery-status; boundary=zz\n\n--b\n\nhi\n")
        .expect_err("boundary not found");
    assert_eq!(
        err,
        DsnError::BoundaryNotFound {
            boundary: "\"zz\"".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "multipart/report boundary \"zz\" never occurs in the body (RFC 2046 §5.1.1)"
    );
    let err = read(b"From: a@b\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nsorry\n--b--\n")
        .expect_err("no status part");
    assert_eq!(err, DsnError::NoDeliveryStatus);
    assert_eq!(err.reason(), "no_delivery_status");
    let err = read(report("Reporting-MTA: dns; x\n").as_bytes()).expect_err("no recipients");
    assert_eq!(
        err,
        DsnError::NoRecipients {
            format: DsnFormat::Rfc3464
        }
    );
    assert_eq!(read(b""), Err(DsnError::Empty));
    let err = read(b"\x00\x01binary").expect_err("not a message");
    assert_eq!(err.reason(), "parse");
}

#[test]
fn a_broken_report_with_a_readable_text_still_reads() {
    // No boundary, but the whole body is Postfix's text: read from the text.
    let raw = "From: MAILER-DAEMON@mail.sender.test\nContent-Type: multipart/report; report-type=delivery-status\n\nThis is the mail system at host mail.sender.test.\n\n<a@seed.test>: host mx.seed.test[127.0.0.5] said: 550 5.1.1 <a@seed.test>:\n    Recipient address rejected: User unknown (in reply to RCPT TO command)\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Postfix);
    let recipient = &got.recipients[0];
    assert_eq!(recipient.remote_mta.as_deref(), Some("mx.seed.test"));
    assert_eq!(
        recipient.diagnostic_code.as_deref(),
        Some("550 5.1.1 <a@seed.test>: Recipient address rejected: User unknown")
    );
    assert_eq!(recipient.status.as_deref(), Some("5.1.1"));
}

#[test]
fn encoded_parts_are_decoded() {
    // A base64 text part and a quoted-printable delivery-status part.
    let raw = "From: mailer-daemon@googlemail.com\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\nVGhlIHJlc3BvbnNlIGZyb20gdGhlIHJlbW90ZSBzZXJ2ZXIgd2FzOgo1NTAgNS4xLjEgbm8gc3VjaCB1c2VyCg==\n--b\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: quoted-printable\n\nFinal-Recipient: rfc822; a@seed=2Etest\nAction: failed\nStatus: 5.1.1\n--b--\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Gmail);
    assert_eq!(
        got.recipients[0].final_recipient.as_deref(),
        Some("a@seed.test")
    );
    assert_eq!(
        got.recipients[0].diagnostic_code.as_deref(),
        Some("550 5.1.1 no such user")
    );
}

#[test]
fn returned_message_is_read_for_headers_only() {
    // The returned message is itself a report: it must not add recipients or a token from
    // inside it, only its own header fields count.
    let raw = "From: MAILER-DAEMON@x\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\n\n--b\nContent-Type: message/rfc822\n\nMessage-ID: <outer@x>\nContent-Type: multipart/report; report-type=delivery-status; boundary=c\n\n--c\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; inner@seed.test\nAction: failed\n\n--c\nContent-Type: text/rfc822-headers\n\nX-Mailcanary-Probe: inner-token\n--c--\n--b--\n";
    let got = dsn(raw);
    assert_eq!(got.recipients_total, 1);
    assert_eq!(got.original_message_id.as_deref(), Some("<outer@x>"));
    assert_eq!(got.probe_token, None);
}

#[test]
fn probe_token_comes_only_from_the_returned_headers() {
    // The text quotes a token; no returned part: no token. The Message-ID in the text is
    // used.
    let raw = "From: MAILER-DAEMON@x\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nX-Mailcanary-Probe: from-text\nMessage-ID: <in-text@x>\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\n--b--\n";
    let got = dsn(raw);
    assert_eq!(got.probe_token, None);
    assert_eq!(got.original_message_id.as_deref(), Some("<in-text@x>"));
}

#[test]
fn exim_delay_and_older_reply_form() {
    let raw = "From: Mail Delivery System <Mailer-Daemon@mail.sender.test>\nSubject: Warning: message 1tOxYz-000Abc-2D delayed 24 hours\n\nThis message was created automatically by mail delivery software.\n\nA message that you sent has not yet been delivered to one or more of its\nrecipients after more than 24 hours on the queue on mail.sender.test.\n\nThe address to which the message has not yet been delivered is:\n\n  a@seed.test\n    host mx.seed.test [127.0.0.5]\n    Delay reason: SMTP error from remote mail server after RCPT TO:<a@seed.test>:\n    host mx.seed.test [127.0.0.5]: 451-4.7.1 Greylisted,\n    451 4.7.1 please try again later\n\nNo action is required on your part.\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Exim);
    let recipient = &got.recipients[0];
    assert_eq!(recipient.action, Some(Action::Delayed));
    assert_eq!(
        recipient.diagnostic_code.as_deref(),
        Some("451 4.7.1 Greylisted, please try again later")
    );
    assert_eq!(recipient.status.as_deref(), Some("4.7.1"));
    assert!(got.is_delay() && !got.is_failure());
}

#[test]
fn qmail_own_reason_and_older_exchange() {
    let raw = "From: MAILER-DAEMON@q.test\n\nHi. This is the qmail-send program at q.test.\nI'm afraid I wasn't able to deliver your message to the following addresses.\n\n<a@seed.test>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n<b@seed.test>:\n127.0.0.5 does not like recipient.\nRemote host said: 550 5.2.2 mailbox full\nGiving up on 127.0.0.5.\n\n--- Below this line is a copy of the message.\n\nMessage-ID: <m@q>\n";
    let got = dsn(raw);
    assert_eq!(got.recipients_total, 2);
    assert_eq!(got.recipients[0].status.as_deref(), Some("5.1.1"));
    assert_eq!(
        got.recipients[0].diagnostic_code.as_deref(),
        Some("Sorry, no mailbox here by that name. (#5.1.1)")
    );
    assert_eq!(got.recipients[1].remote_mta.as_deref(), Some("127.0.0.5"));
    assert_eq!(
        got.recipients[1].diagnostic_code.as_deref(),
        Some("550 5.2.2 mailbox full")
    );
    assert_eq!(got.original_message_id.as_deref(), Some("<m@q>"));

    let raw = "From: postmaster@corp.test\n\nDelivery has failed to these recipients or groups:\n\nDiagnostic information for administrators:\n\nGenerating server: exch.corp.test\n\na@seed.test\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Exchange);
    assert_eq!(got.reporting_mta.as_deref(), Some("exch.corp.test"));
    assert_eq!(
        got.recipients[0].final_recipient.as_deref(),
        Some("a@seed.test")
    );
    assert_eq!(got.recipients[0].status.as_deref(), Some("5.1.1"));
}

#[test]
fn sendmail_warning_without_address_list() {
    let raw = "From: Mail Delivery Subsystem <MAILER-DAEMON>\n\n   ----- Transcript of session follows -----\n... while talking to mx.seed.test.:\n>>> RCPT To:<a@seed.test>\n<<< 452-4.2.2 The email account that you tried to reach is over quota.\n<<< 452 4.2.2 Please direct the recipient to the help page.\n>>> RCPT To:<b@seed.test>\n<<< 250 2.1.5 OK\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Sendmail);
    assert_eq!(got.recipients_total, 1);
    let recipient = &got.recipients[0];
    assert_eq!(recipient.final_recipient.as_deref(), Some("a@seed.test"));
    assert_eq!(recipient.remote_mta.as_deref(), Some("mx.seed.test"));
    assert_eq!(
        recipient.diagnostic_code.as_deref(),
        Some(
            "452 4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to the help page."
        )
    );
}

#[test]
fn first_marker_in_the_text_wins() {
    // An Exim bounce whose returned copy quotes a Postfix bounce text.
    let raw = "From: Mailer-Daemon@x\n\nThis message was created automatically by mail delivery software.\n\n  a@seed.test\n    SMTP error from remote mail server after RCPT TO:<a@seed.test>:\n    550 5.1.1 unknown\n\n------ This is a copy of the message, including all the headers. ------\n\nSubject: fwd\n\nThis is the mail system at host other.test.\n\n<zz@seed.test>: nope\n";
    let got = dsn(raw);
    assert_eq!(got.format, DsnFormat::Exim);
    assert_eq!(got.recipients_total, 1);
}

#[test]
fn a_report_is_split_by_the_boundary_its_body_uses() {
    let raw = "From: MAILER-DAEMON@mx.example.com\nContent-Type: multipart/report; report-type=delivery-status; boundary=declared\n\n--actual\nContent-Type: text/plain\n\nIt bounced.\n--actual\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\nStatus: 5.1.1\n--actual--\n";
    let dsn = dsn(raw);
    assert_eq!(dsn.recipients[0].status.as_deref(), Some("5.1.1"));
    // Only a legal boundary that splits the body in two or more parts is taken: a lone
    // delimiter-like line is not, and the declared boundary's absence stays an error.
    let raw = "From: a@b\nContent-Type: multipart/report; report-type=delivery-status; boundary=zz\n\n--b\n\nhi\n";
    assert_eq!(
        read(raw.as_bytes()).map_err(|e| e.reason()),
        Err("boundary_not_found")
    );
    // Many delimiter-like lines: bounded, and still an error.
    let mut raw = String::from(
        "From: a@b\nContent-Type: multipart/report; report-type=delivery-status; boundary=zz\n\n",
    );
    for i in 0..100_000 {
        raw.push_str(&format!("--candidate{i}\n"));
    }
    assert_eq!(
        read(raw.as_bytes()).map_err(|e| e.reason()),
        Err("boundary_not_found")
    );
}

#[test]
fn providers_policy_replies_without_codes_are_policy() {
    for reply in [
        "554 Message not allowed - [PH01] Email not accepted for policy reasons.",
        "554 Transaction failed Reject due to policy restrictions.",
        "550 spam message rejected. Please visit https://help.mail.ru/notspam-support/id",
    ] {
        assert_eq!(
            classify(None, reply).class,
            RejectionClass::Policy,
            "{reply}"
        );
    }
}
