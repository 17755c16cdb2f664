//! Hostile input for the bounce reader, too large or too repetitive to keep as fixture files:
//! generated here. Then property tests: `read` never panics, on arbitrary bytes, on bounce-like
//! text, and on mutations of the corpus; and what it returns keeps its limits.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use mailcanary::verdict::dsn::{
    Action, Dsn, DsnError, DsnFormat, MAX_RECIPIENTS, MAX_VALUE_BYTES, classify, read,
};
use proptest::prelude::*;

/// Generous bound: each case below takes milliseconds in a debug build. A reader that went
/// quadratic would take minutes.
const BOUND: Duration = Duration::from_secs(20);

fn timed<T>(what: &str, run: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = run();
    let took = start.elapsed();
    assert!(took < BOUND, "{what} took {took:?}");
    out
}

const REPORT_HEAD: &str = "From: MAILER-DAEMON@mail.sender.test\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n";

fn one_recipient_status() -> &'static str {
    "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.sender.test\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\nStatus: 5.1.1\n\n"
}

#[test]
fn returned_messages_nested_a_hundred_thousand_deep() {
    // A report returning a message that is a report returning a message...: with
    // mail-parser's full parse, dropping this overflows a 2 MB stack. Only the outer
    // report counts.
    let depth = 100_000;
    let mut raw = String::from(REPORT_HEAD);
    raw.push_str(one_recipient_status());
    raw.push_str("--b\nContent-Type: message/rfc822\n\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Message-ID: <level{i}@x>\nContent-Type: multipart/report; report-type=delivery-status; boundary=b{i}\n\n--b{i}\nContent-Type: message/rfc822\n\n"
        ));
    }
    raw.push_str("Subject: bottom\n\nbottom\n--b--\n");
    let dsn = timed("nested returned messages", || read(raw.as_bytes()))
        .expect("reads")
        .expect("a bounce");
    assert_eq!(dsn.recipients_total, 1);
    assert_eq!(dsn.original_message_id.as_deref(), Some("<level0@x>"));

    // The same with bare `message/rfc822` headers, no multiparts in between.
    let mut raw = String::from(REPORT_HEAD);
    raw.push_str(one_recipient_status());
    raw.push_str("--b\nContent-Type: message/rfc822\n\n");
    raw.push_str(&"Content-Type: message/rfc822\n\n".repeat(depth));
    raw.push_str("Subject: bottom\n\nbottom\n--b--\n");
    let dsn = timed("bare nesting", || read(raw.as_bytes()))
        .expect("reads")
        .expect("a bounce");
    assert_eq!(dsn.recipients_total, 1);
}

#[test]
fn multiparts_nested_a_hundred_thousand_deep() {
    // The report is at the bottom, far below the depth followed: nothing is found, and
    // nothing overflows.
    let depth = 100_000;
    let mut raw =
        String::from("From: MAILER-DAEMON@x\nContent-Type: multipart/mixed; boundary=m0\n\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "--m{i}\nContent-Type: multipart/mixed; boundary=m{}\n\n",
            i + 1
        ));
    }
    raw.push_str(&format!(
        "--m{depth}\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n{}--b--\n",
        one_recipient_status()
    ));
    let got = timed("nested multiparts", || read(raw.as_bytes()));
    assert_eq!(got, Ok(None));

    // Within the depth followed, a wrapped report is found.
    let mut raw = String::from("From: x@y\nContent-Type: multipart/mixed; boundary=m0\n\n");
    for i in 0..3 {
        raw.push_str(&format!(
            "--m{i}\nContent-Type: multipart/mixed; boundary=m{}\n\n",
            i + 1
        ));
    }
    raw.push_str(&format!(
        "--m3\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n{}--b--\n",
        one_recipient_status()
    ));
    let dsn = read(raw.as_bytes()).expect("reads").expect("a bounce");
    assert_eq!(dsn.recipients_total, 1);
}

#[test]
fn ten_thousand_recipient_groups() {
    let mut raw = String::from(REPORT_HEAD);
    raw.push_str(
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.sender.test\n",
    );
    for i in 0..10_000 {
        raw.push_str(&format!(
            "\nFinal-Recipient: rfc822; r{i}@seed.test\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 unknown\n"
        ));
    }
    raw.push_str("--b--\n");
    let dsn = timed("10,000 groups", || read(raw.as_bytes()))
        .expect("reads")
        .expect("a bounce");
    assert_eq!(dsn.recipients.len(), MAX_RECIPIENTS);
    assert_eq!(dsn.recipients_total, 10_000);
    assert_eq!(
        dsn.recipients[0].final_recipient.as_deref(),
        Some("r0@seed.test")
    );
}

#[test]
fn ten_thousand_recipients_in_each_text_format() {
    let n = 10_000;
    let mut texts = Vec::new();
    let mut exim = String::from(
        "From: Mailer-Daemon@x\n\nThis message was created automatically by mail delivery software.\n\n",
    );
    let mut qmail =
        String::from("From: MAILER-DAEMON@x\n\nHi. This is the qmail-send program at x.\n\n");
    let mut sendmail = String::from(
        "From: MAILER-DAEMON@x\n\n----- The following addresses had permanent fatal errors -----\n",
    );
    let mut transcript =
        String::from("\n----- Transcript of session follows -----\n... while talking to mx.:\n");
    let mut postfix =
        String::from("From: MAILER-DAEMON@x\n\nThis is the mail system at host x.\n\n");
    let mut exchange =
        String::from("From: postmaster@x\n\nDiagnostic information for administrators:\n\n");
    for i in 0..n {
        exim.push_str(&format!("  r{i}@seed.test\n    SMTP error from remote mail server after RCPT TO:<r{i}@seed.test>:\n    550 5.1.1 unknown\n\n"));
        qmail.push_str(&format!(
            "<r{i}@seed.test>:\nRemote host said: 550 5.1.1 unknown\n\n"
        ));
        sendmail.push_str(&format!("<r{i}@seed.test>\n"));
        transcript.push_str(&format!(
            ">>> RCPT To:<r{i}@seed.test>\n<<< 550 5.1.1 unknown\n"
        ));
        postfix.push_str(&format!(
            "<r{i}@seed.test>: host mx[127.0.0.5] said: 550 5.1.1 unknown\n\n"
        ));
        exchange.push_str(&format!(
            "r{i}@seed.test\nRemote Server returned '550 5.1.1 unknown'\n\n"
        ));
    }
    sendmail.push_str(&transcript);
    texts.push((DsnFormat::Exim, exim));
    texts.push((DsnFormat::Qmail, qmail));
    texts.push((DsnFormat::Sendmail, sendmail));
    texts.push((DsnFormat::Postfix, postfix));
    texts.push((DsnFormat::Exchange, exchange));
    for (format, raw) in texts {
        let dsn = timed(format.as_str(), || read(raw.as_bytes()))
            .expect("reads")
            .expect("a bounce");
        assert_eq!(dsn.format, format);
        assert_eq!(dsn.recipients.len(), MAX_RECIPIENTS, "{format:?}");
        assert_eq!(dsn.recipients_total, n, "{format:?}");
        assert_eq!(
            dsn.recipients[5].status.as_deref(),
            Some("5.1.1"),
            "{format:?}"
        );
    }
}

#[test]
fn a_megabyte_header_line() {
    // A 1 MB Subject above the report: the report still reads.
    let mut raw = format!("Subject: {}\n", "x".repeat(1 << 20));
    raw.push_str(REPORT_HEAD);
    raw.push_str(one_recipient_status());
    raw.push_str("--b--\n");
    let dsn = timed("1 MB subject", || read(raw.as_bytes()))
        .expect("reads")
        .expect("a bounce");
    assert_eq!(dsn.recipients_total, 1);

    // A 1 MB Diagnostic-Code, folded and not: cut to the limit.
    for fold in ["", "\n "] {
        let mut raw = String::from(REPORT_HEAD);
        raw.push_str("--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\nDiagnostic-Code: smtp; 550-5.7.1 ");
        while raw.len() < 1 << 20 {
            raw.push_str("blocked ");
            raw.push_str(fold);
            raw.push_str("550-5.7.1 é ");
        }
        raw.push_str("\n--b--\n");
        let dsn = timed("1 MB diagnostic", || read(raw.as_bytes()))
            .expect("reads")
            .expect("a bounce");
        let code = dsn.recipients[0].diagnostic_code.as_deref().expect("code");
        assert!(code.len() <= MAX_VALUE_BYTES, "{}", code.len());
        assert!(code.starts_with("550 5.7.1 blocked é blocked"), "{code}");
        assert!(code.ends_with('…'));
    }

    // A 1 MB boundary: the error quotes a short prefix only.
    let raw = format!(
        "From: a@b\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"{}\"\n\nno parts\n",
        "q".repeat(1 << 20)
    );
    let err = timed("1 MB boundary", || read(raw.as_bytes())).expect_err("no parts");
    assert_eq!(err.reason(), "boundary_not_found");
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn a_megabyte_of_one_line_body_and_of_markers() {
    for body in [
        "x".repeat(1 << 20),
        "(".repeat(1 << 20),
        "<".repeat(1 << 20),
        "<<< 550-".repeat(1 << 17),
        "--b\n".repeat(1 << 18),
        "Remote Server returned '".repeat(1 << 15),
        "This is the mail system at host ".repeat(1 << 15),
        "  a@b\n    ".repeat(1 << 17),
    ] {
        for head in [
            "From: MAILER-DAEMON@x\n\n",
            REPORT_HEAD,
            "From: MAILER-DAEMON@x\n\nHi. This is the qmail-send program at x.\n\n<a@b>:\n",
            "From: MAILER-DAEMON@x\n\n----- Transcript of session follows -----\n",
            "From: MAILER-DAEMON@x\n\nThis message was created automatically by mail delivery software.\n\n  a@b\n    SMTP error from remote mail server after RCPT:\n",
        ] {
            let raw = format!("{head}{body}\n");
            let got = timed("1 MB body", || read(raw.as_bytes()));
            if let Ok(Some(dsn)) = &got {
                check_invariants(dsn);
            }
        }
    }
}

#[test]
fn a_hundred_thousand_parts() {
    let mut raw = String::from(REPORT_HEAD);
    raw.push_str(one_recipient_status());
    raw.push_str(
        &"--b\nContent-Type: text/plain\n\nThis is the mail system at host x.\n".repeat(100_000),
    );
    raw.push_str("--b--\n");
    let dsn = timed("many parts", || read(raw.as_bytes()))
        .expect("reads")
        .expect("a bounce");
    assert_eq!(dsn.recipients_total, 1);
}

#[test]
fn broken_mime() {
    // Missing boundary parameter, no readable text.
    let raw = "From: a@b\nContent-Type: multipart/report; report-type=delivery-status\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b\n";
    assert_eq!(read(raw.as_bytes()), Err(DsnError::NoBoundary));
    assert_eq!(
        DsnError::NoBoundary.to_string(),
        "multipart/report without a boundary parameter: its parts cannot be found (RFC 2046 §5.1.1)"
    );
    // Unterminated parts: the last part runs to the end.
    let raw = format!(
        "{REPORT_HEAD}--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@seed.test\nAction: failed\nStatus: 5.1.1"
    );
    let dsn = read(raw.as_bytes()).expect("reads").expect("a bounce");
    assert_eq!(dsn.recipients[0].status.as_deref(), Some("5.1.1"));
    // A part with no header section, and one whose header section never ends.
    let raw = format!(
        "{REPORT_HEAD}--b\n\nloose text\n--b\nContent-Type: message/delivery-status\nFinal-Recipient: rfc822; a@seed.test\n--b--\n"
    );
    assert_eq!(
        read(raw.as_bytes()),
        Err(DsnError::NoRecipients {
            format: DsnFormat::Rfc3464
        }),
        "a part that is all header section has an empty body"
    );
    // Binary garbage: not a message, or not a bounce.
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    match read(&garbage) {
        Ok(None) => {}
        Err(err) => assert_eq!(err.reason(), "parse"),
        other => panic!("garbage read as {other:?}"),
    }
    let mut raw = REPORT_HEAD.as_bytes().to_vec();
    raw.extend_from_slice(&garbage);
    match read(&raw) {
        Err(err) => assert!(!err.to_string().is_empty()),
        Ok(got) => panic!("garbage after a report head read as {got:?}"),
    }
    // Empty, and a lone line end.
    assert_eq!(read(b""), Err(DsnError::Empty));
    assert_eq!(read(b"\r\n").map_err(|err| err.reason()), Err("parse"));
}

/// What must hold of every bounce read.
fn check_invariants(dsn: &Dsn) {
    serde_json::to_string(dsn).expect("renders as JSON");
    assert!(dsn.recipients.len() <= MAX_RECIPIENTS);
    assert!(dsn.recipients.len() <= dsn.recipients_total);
    assert!(dsn.recipients_total > 0);
    let strings = [
        &dsn.reporting_mta,
        &dsn.arrival_date,
        &dsn.original_envelope_id,
        &dsn.original_message_id,
        &dsn.probe_token,
    ];
    for recipient in &dsn.recipients {
        for value in [
            &recipient.final_recipient,
            &recipient.original_recipient,
            &recipient.status,
            &recipient.remote_mta,
            &recipient.diagnostic_code,
            &recipient.last_attempt_date,
            &recipient.will_retry_until,
        ]
        .into_iter()
        .chain(strings)
        .flatten()
        {
            assert!(value.len() <= MAX_VALUE_BYTES, "{} bytes", value.len());
            assert!(!value.is_empty());
        }
        if recipient.is_failure() {
            assert!(dsn.is_failure());
        }
        recipient.rejection();
    }
    assert_eq!(dsn.is_failure(), dsn.first_failure().is_some());
    assert_eq!(dsn.is_delay(), dsn.first_delay().is_some());
    if let Some(first) = dsn.first_failure() {
        assert!(first.action == Some(Action::Failed) || first.action.is_none());
    }
    dsn.rejection();
}

/// Pieces that bounces are made of, so that generated input reaches into every reader.
fn bounce_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("From: MAILER-DAEMON@x\n".to_string()),
        Just(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n".to_string()
        ),
        Just("Content-Type: message/delivery-status\n".to_string()),
        Just("Content-Type: message/rfc822\n".to_string()),
        Just("Content-Type: text/rfc822-headers\n".to_string()),
        Just("Content-Type: multipart/mixed; boundary=\"c\"\n".to_string()),
        Just("Content-Transfer-Encoding: base64\n".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable\n".to_string()),
        Just("--b\n".to_string()),
        Just("--b\nContent-Type: message/delivery-status\n\n".to_string()),
        Just("--b\nContent-Type: text/plain\n\n".to_string()),
        Just("--b\nContent-Type: message/rfc822\n\nMessage-ID: <m@x>\n".to_string()),
        Just("--b--\n".to_string()),
        Just("--c\n".to_string()),
        Just("Final-Recipient: rfc822; a@seed.test\n".to_string()),
        Just("Action: failed\n".to_string()),
        Just("Action: delayed (x\n".to_string()),
        Just("Status: 5.7.26\n".to_string()),
        Just("Diagnostic-Code: smtp; 550-5.7.26 a\n 550 5.7.26 b\n".to_string()),
        Just("Remote-MTA: dns; mx. (".to_string()),
        Just("X-Mailcanary-Probe: v1.x\n".to_string()),
        Just("Message-ID: <".to_string()),
        Just("This is the mail system at host x.\n".to_string()),
        Just("<a@seed.test>: host mx[1] said: 550 ".to_string()),
        Just("This message was created automatically by mail delivery software.\n".to_string()),
        Just(
            "  a@seed.test\n    SMTP error from remote mail server after RCPT:\n    550 "
                .to_string()
        ),
        Just("Hi. This is the qmail-send program at x.\n<a@b>:\nRemote host said: ".to_string()),
        Just("----- Transcript of session follows -----\n>>> RCPT To:<a@b>\n<<< 550-".to_string()),
        Just("Remote Server returned '550 5.7.606 x'\n".to_string()),
        Just("The response from the remote server was:\n".to_string()),
        Just("(reason: ".to_string()),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just(";".to_string()),
        Just("'".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ]
}

/// A message head, then pieces: most inputs get past the header section and into a reader.
fn bounceish() -> impl Strategy<Value = String> {
    let head = prop_oneof![
        Just(REPORT_HEAD.to_string()),
        Just("From: MAILER-DAEMON@x\n\n".to_string()),
        Just("From: postmaster@x\nContent-Type: multipart/mixed; boundary=c\n\n--c\n".to_string()),
        Just(String::new()),
    ];
    (head, prop::collection::vec(bounce_piece(), 0..60))
        .prop_map(|(head, pieces)| head + &pieces.concat())
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsn");
    let mut files: Vec<_> = fs::read_dir(dir)
        .expect("fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| fs::read(path).expect("read"))
        .collect()
}

/// One change to a corpus file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, String),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        (any::<usize>(), 0..200usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), bounce_piece()).prop_map(|(at, text)| Mutation::Insert(at, text)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0..400usize).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ]
}

fn mutate(raw: &mut Vec<u8>, mutation: &Mutation) {
    if raw.is_empty() {
        return;
    }
    let len = raw.len();
    match mutation {
        Mutation::Flip(at, byte) => raw[at % len] = *byte,
        Mutation::Delete(at, n) => {
            let at = at % len;
            raw.drain(at..(at + n).min(len));
        }
        Mutation::Insert(at, text) => {
            let at = at % (len + 1);
            raw.splice(at..at, text.bytes());
        }
        Mutation::Truncate(at) => raw.truncate(at % (len + 1)),
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let copy = raw[at..(at + n).min(len)].to_vec();
            raw.splice(at..at, copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(Some(dsn)) = read(&raw) {
            check_invariants(&dsn);
        }
    }

    #[test]
    fn never_panics_on_bounceish_text(text in bounceish()) {
        if let Ok(Some(dsn)) = read(text.as_bytes()) {
            check_invariants(&dsn);
        }
    }

    #[test]
    fn lf_and_crlf_read_the_same(text in bounceish()) {
        // Only for text without CRs: a lone CR is content, not a line end.
        let lf = text.replace('\r', "");
        let crlf = lf.replace('\n', "\r\n");
        prop_assert_eq!(read(lf.as_bytes()), read(crlf.as_bytes()));
    }

    #[test]
    fn never_panics_on_mutated_corpus(
        index in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let corpus = corpus();
        let mut raw = corpus[index % corpus.len()].clone();
        for mutation in &mutations {
            mutate(&mut raw, mutation);
        }
        if let Ok(Some(dsn)) = read(&raw) {
            check_invariants(&dsn);
        }
    }

    #[test]
    fn classify_never_panics(status in prop::option::of("\\PC{0,12}"), reply in "\\PC{0,200}") {
        classify(status.as_deref(), &reply);
    }
}
