//! The Gmail logic on the answers Google's "IMAP Extensions" page shows, and on the throttling
//! answers Gmail is known to send (`OK Success [THROTTLED]`, `NO [OVERQUOTA] …`, `BYE`).

use super::*;

#[test]
fn the_documented_capability_answer_announces_the_extensions() {
    // From the handshake in Google's document.
    let caps = "IMAP4rev1 UNSELECT LITERAL+ IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1";
    assert!(announced(caps.split(' ')));
    assert!(announced(["x-gm-ext-1"]));
    // Dovecot's answer has no such capability.
    let dovecot = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SPECIAL-USE MOVE UIDPLUS";
    assert!(!announced(dovecot.split(' ')));
    assert!(!announced(["X-GM-EXT-10"]));
}

#[test]
fn message_ids_become_one_quoted_gmail_search() {
    assert_eq!(
        message_id_search(&["<mc.9f2c@sender.test>"]).as_deref(),
        Some("X-GM-RAW \"rfc822msgid:mc.9f2c@sender.test\"")
    );
    assert_eq!(
        message_id_search(&["<a@x.test>", "b@x.test"]).as_deref(),
        Some("X-GM-RAW \"rfc822msgid:a@x.test OR rfc822msgid:b@x.test\"")
    );
}

#[test]
fn message_ids_that_would_change_the_search_are_never_sent() {
    assert_eq!(message_id_search(&[]), None);
    assert_eq!(message_id_search(&["<>"]), None);
    for bad in [
        "<a b@x.test>",
        "<a\"@x.test>",
        "<a\\@x.test>",
        "<a@x.test>\r\nA1 LOGOUT",
        "<a(b)@x.test>",
        "<é@x.test>",
    ] {
        assert_eq!(message_id_search(&[bad]), None, "{bad:?}");
    }
    // One bad id spoils the batch rather than being dropped silently.
    assert_eq!(message_id_search(&["<a@x.test>", "<b c@x.test>"]), None);
}

#[test]
fn tab_searches_name_the_uid_and_the_category() {
    assert_eq!(
        tab_search(4711, Tab::Promotions),
        "UID 4711 X-GM-RAW \"category:promotions\""
    );
    assert_eq!(
        tab_search(1, Tab::Primary),
        "UID 1 X-GM-RAW \"category:primary\""
    );
}

#[test]
fn a_tab_is_read_from_the_search_answer() {
    // `* SEARCH 123 12344 5992` is the document's answer to an X-GM-RAW search.
    let documented = [123, 12344, 5992];
    assert_eq!(
        tab_from_answer(12344, Tab::Social, &documented),
        Some(Tab::Social)
    );
    assert_eq!(tab_from_answer(7, Tab::Social, &documented), None);
    // `* SEARCH` with no numbers: not in that tab.
    assert_eq!(tab_from_answer(7, Tab::Primary, &[]), None);
}

#[test]
fn tabs_have_stable_names() {
    for t in Tab::ALL {
        assert_eq!(Tab::parse(t.as_str()), Some(t));
    }
    assert_eq!(Tab::parse("Primary"), None);
    assert_eq!(Tab::parse("spam"), None);
    assert_eq!(Tab::names(), "primary, promotions, social, updates, forums");
    assert_eq!(
        serde_json::to_string(&Tab::Promotions).expect("json"),
        "\"promotions\""
    );
}

#[test]
fn all_mail_is_recognised_by_attribute_or_name() {
    // The document's LIST transcript: `* LIST (\HasNoChildren \All) "/" "[Gmail]/All Mail"`.
    assert!(is_all_mail(
        "[Gmail]/All Mail",
        &["\\HasNoChildren", "\\All"]
    ));
    assert!(is_all_mail("[Google Mail]/All Mail", &[]));
    assert!(is_all_mail("[Gmail]/Alle Nachrichten", &["\\All"]));
    assert!(!is_all_mail("INBOX", &["\\HasNoChildren"]));
    assert!(!is_all_mail("[Gmail]/Spam", &["\\HasNoChildren", "\\Junk"]));
}

#[test]
fn throttling_answers_are_read() {
    // A throttled account: the command completes, with the marker after the text.
    assert_eq!(
        throttle_in(b"A00000002 OK Success [THROTTLED]"),
        Some(Throttle::Slowed)
    );
    assert_eq!(
        throttle_in(b"a7 OK [THROTTLED] SEARCH completed (Success)"),
        Some(Throttle::Slowed)
    );
    for refused in [
        &b"a3 NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)"[..],
        b"* BYE [UNAVAILABLE] Account exceeded command or bandwidth limits.",
        b"a1 NO [ALERT] Too many simultaneous connections. (Failure)",
        b"* BYE Account exceeded the Gmail bandwidth limit for downloads via IMAP",
    ] {
        assert_eq!(
            throttle_in(refused),
            Some(Throttle::Refused),
            "{}",
            String::from_utf8_lossy(refused)
        );
    }
}

#[test]
fn ordinary_answers_are_not_throttling() {
    for line in [
        &b"a005 OK SEARCH (Success)"[..],
        b"* SEARCH 123 12344 5992",
        b"a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
        b"* BYE LOGOUT Requested",
        // An OK that merely mentions limits is still an OK.
        b"* OK bandwidth limit is 2500 MB per day",
        b"",
        b"*",
        b"\xff\xfe garbage",
    ] {
        assert_eq!(throttle_in(line), None, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn backoff_doubles_to_a_cap() {
    use std::time::Duration;
    assert_eq!(backoff(0), Duration::from_secs(30));
    assert_eq!(backoff(1), Duration::from_secs(30));
    assert_eq!(backoff(2), Duration::from_secs(60));
    assert_eq!(backoff(5), Duration::from_secs(480));
    assert_eq!(backoff(6), Duration::from_secs(900));
    assert_eq!(backoff(u32::MAX), Duration::from_secs(900));
}
