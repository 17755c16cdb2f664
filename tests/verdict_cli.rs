//! `mailcanary inspect` end to end: the real binary, its output and its exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mailcanary::path::Receiver;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verdict")
        .join(name)
}

fn mailcanary(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailcanary");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait for mailcanary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `inspect --json` of a message: the library's verdict contract (`library`, a golden file)
/// with `"kind": "message"` in front and the path of `raw`, as `mailcanary::path` reads it for
/// `receiver`, at the end.
fn expected_message_json(library: &str, raw: &[u8], receiver: &Receiver) -> String {
    let path = mailcanary::path::read(raw, receiver).expect("a message");
    let path = serde_json::to_string_pretty(&path)
        .expect("json")
        .replace('\n', "\n  ");
    let inner = library
        .strip_prefix("{\n")
        .and_then(|rest| rest.strip_suffix("\n}\n"))
        .expect("a pretty-printed object");
    format!("{{\n  \"kind\": \"message\",\n{inner},\n  \"path\": {path}\n}}\n")
}

#[test]
fn json_output_is_the_golden_file() {
    for case in ["microsoft365-pass", "gmail-forwarded-arc", "rspamd-spam"] {
        let eml = fixture(&format!("{case}.eml"));
        let out = mailcanary(
            &["inspect", "--json", eml.to_str().expect("utf-8 path")],
            None,
        );
        assert_eq!(out.status.code(), Some(0), "{case}: {}", text(&out.stderr));
        // The command adds `"kind": "message"` in front of the library's JSON contract and
        // the path after it.
        let library = std::fs::read_to_string(fixture(&format!("{case}.json"))).expect("json");
        let raw = std::fs::read(&eml).expect("eml");
        let expected = expected_message_json(&library, &raw, &Receiver::default());
        assert_eq!(text(&out.stdout), expected, "{case}");
    }
}

#[test]
fn a_bounce_is_explained_as_a_bounce() {
    let dsn = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dsn/postfix-no-ptr.eml");
    let out = mailcanary(
        &["inspect", "--json", dsn.to_str().expect("utf-8 path")],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["kind"], "dsn");
    assert_eq!(json["dsn"]["cause"], "ptr_missing");
    let first = &json["dsn"]["recipients"][0];
    assert_eq!(first["action"], "failed");
    assert_eq!(first["status"], "5.7.25");
    assert!(
        first["diagnostic_code"]
            .as_str()
            .is_some_and(|d| d.contains("PTR record")),
        "{first}"
    );
    for key in ["final_recipient", "remote_mta"] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    for key in ["original_message_id", "probe_token"] {
        assert!(json["dsn"].get(key).is_some(), "{key} missing");
    }
    let human = mailcanary(&["inspect", dsn.to_str().expect("utf-8 path")], None);
    let human = text(&human.stdout);
    assert!(human.contains("A bounce (postfix report"), "{human}");
    assert!(
        human.contains("Cause: ptr_missing. Fix: Publish a PTR record"),
        "{human}"
    );
}

#[test]
fn a_bounce_names_the_provider_reply() {
    let dsn = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dsn/microsoft-outlook-s3150.eml");
    let dsn = dsn.to_str().expect("utf-8 path");
    let out = mailcanary(&["inspect", "--json", dsn], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["dsn"]["provider"]["provider"], "microsoft");
    assert_eq!(json["dsn"]["provider"]["code"], "S3150");
    assert_eq!(json["dsn"]["provider"]["cause"], "blocklisted");
    assert_eq!(
        json["dsn"]["provider"]["link"],
        "https://olcsupport.office.com/"
    );
    let human = text(&mailcanary(&["inspect", dsn], None).stdout);
    assert!(
        human.contains("Microsoft documents this reply (S3150: blocklisted); see https://olcsupport.office.com/.\n"),
        "{human}"
    );
}

#[test]
fn authserv_ids_on_the_command_line() {
    let eml = fixture("icloud-trusted-ids.eml");
    let mut args = vec!["inspect", "--json"];
    for id in [
        "arc.icloud.com",
        "dmarc.icloud.com",
        "dkim-verifier.icloud.com",
        "spf.icloud.com",
    ] {
        args.extend(["--authserv-id", id]);
    }
    args.push(eml.to_str().expect("utf-8 path"));
    let out = mailcanary(&args, None);
    assert_eq!(out.status.code(), Some(0));
    let library = std::fs::read_to_string(fixture("icloud-trusted-ids.json")).expect("json");
    let raw = std::fs::read(&eml).expect("eml");
    let receiver = Receiver::from_authserv_ids([
        "arc.icloud.com",
        "dmarc.icloud.com",
        "dkim-verifier.icloud.com",
        "spf.icloud.com",
    ]);
    let expected = expected_message_json(&library, &raw, &receiver);
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn human_output_explains() {
    let eml = fixture("gmail-fail.eml");
    let out = mailcanary(&["inspect", eml.to_str().expect("utf-8 path")], None);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Judged by: mx.google.com "), "{stdout}");
    assert!(stdout.contains("  dkim   neutral   header.i=@canary.example header.s=mc2024 (body hash did not verify)\n"), "{stdout}");
    assert!(
        stdout
            .contains("  dmarc  fail      header.from=canary.example (p=NONE sp=NONE dis=NONE)\n"),
        "{stdout}"
    );
    // The path follows the verdict: Gmail's hops believed, the receiving hop marked.
    assert!(
        stdout.contains("\nPath (2 hops, the last first;"),
        "{stdout}"
    );
    assert!(
        stdout.contains("by mx.google.com from relay.unlisted.example [203.0.113.9] with ESMTP, 2024-11-12T11:20:41Z  <- the receiver took it here\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("The receiver saw 203.0.113.9 (IPv4), HELO relay.unlisted.example, reverse name relay.unlisted.example, without TLS (ESMTP).\n"),
        "{stdout}"
    );
}

#[test]
fn the_path_names_what_the_receiver_saw() {
    let eml = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/received/postfix-ipv6-no-ptr.eml");
    let eml = eml.to_str().expect("utf-8 path");
    let out = mailcanary(
        &["inspect", "--json", "--receiver-domain", "seed.test", eml],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["kind"], "message");
    let path = &json["path"];
    assert_eq!(path["receiver_domains"], serde_json::json!(["seed.test"]));
    assert_eq!(path["receiving_hop"], 1);
    assert_eq!(path["seen"]["ip"], "2001:db8:53::25");
    assert_eq!(path["seen"]["family"], "ipv6");
    assert_eq!(path["seen"]["reverse_name"], serde_json::Value::Null);
    assert_eq!(path["hops"][2]["trusted"], false);
    // A receiver that is not on the path believes no hop.
    let out = mailcanary(
        &[
            "inspect",
            "--json",
            "--receiver-domain",
            "other.example",
            eml,
        ],
        None,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["path"]["receiving_hop"], serde_json::Value::Null);
    assert_eq!(json["path"]["seen"], serde_json::Value::Null);
}

#[test]
fn standard_input() {
    let raw = std::fs::read(fixture("rspamd-spam.eml")).expect("eml");
    let out = mailcanary(&["inspect", "--json", "-"], Some(&raw));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let library = std::fs::read_to_string(fixture("rspamd-spam.json")).expect("json");
    let expected = expected_message_json(&library, &raw, &Receiver::default());
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn unreadable_input_exits_2_and_names_path_and_cause() {
    let missing = mailcanary(&["inspect", "/nonexistent/probe.eml"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr)
            .starts_with("mailcanary inspect: cannot read /nonexistent/probe.eml: ")
    );
    assert!(missing.stdout.is_empty());

    let empty = mailcanary(&["inspect", "--json", "-"], Some(b""));
    assert_eq!(empty.status.code(), Some(2));
    assert_eq!(
        text(&empty.stderr),
        "mailcanary inspect: -: the input is empty\n"
    );

    let junk = fixture("error-not-a-message.eml");
    let junk_path = junk.to_str().expect("utf-8 path");
    let out = mailcanary(&["inspect", junk_path], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "mailcanary inspect: {junk_path}: no header section: the first line \"Hello Bob,\" is not a header field (`Name: value`)\n"
        )
    );

    let dir = mailcanary(&["inspect", env!("CARGO_MANIFEST_DIR")], None);
    assert_eq!(dir.status.code(), Some(2));
}

#[test]
fn reports_are_explained_as_reports() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
    let out = mailcanary(&["inspect", "--json", &path("google_gzip.xml.gz")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["kind"], "dmarc_aggregate");
    assert_eq!(json["dmarc_aggregate"]["org_name"], "google.com");
    assert!(
        json["dmarc_aggregate"]["records"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    let out = mailcanary(
        &["inspect", "--json", &path("microsoft_mail_tlsrpt_gzip.eml")],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["kind"], "tls_report");
    assert_eq!(json["tls_report"]["policies"][0]["failed"], 2);

    let human = mailcanary(&["inspect", &path("google_gzip.xml.gz")], None);
    let human = text(&human.stdout);
    assert!(human.starts_with("DMARC aggregate report"), "{human}");
    assert!(human.contains("198.51.100.7"), "{human}");

    let broken = mailcanary(&["inspect", &path("invalid_truncated.xml.gz")], None);
    assert_eq!(broken.status.code(), Some(2));
    let err = text(&broken.stderr);
    assert!(
        err.contains("invalid_truncated.xml.gz") && err.contains("gzip"),
        "{err}"
    );
}

#[test]
fn complaints_are_explained_as_complaints() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_string();
    let out = mailcanary(&["inspect", "--json", &path("yahoo-cfl-probe.eml")], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["kind"], "arf");
    assert_eq!(json["arf"]["feedback_type"], "abuse");
    assert_eq!(json["arf"]["reported_domains"][0], "sender.test");
    assert!(
        json["arf"]["probe_token"]
            .as_str()
            .is_some_and(|token| token.starts_with("v1.")),
        "{json}"
    );

    let human = mailcanary(&["inspect", &path("microsoft-jmrp.eml")], None);
    assert_eq!(human.status.code(), Some(0), "{}", text(&human.stderr));
    let human = text(&human.stdout);
    assert!(
        human.starts_with("A complaint feedback report (ARF, Feedback-Type: abuse)"),
        "{human}"
    );
    assert!(human.contains("  Source IP: 198.51.100.25\n"), "{human}");

    let broken = mailcanary(&["inspect", &path("error-no-feedback-type.eml")], None);
    assert_eq!(broken.status.code(), Some(2));
    let err = text(&broken.stderr);
    assert!(err.contains("Feedback-Type"), "{err}");

    // A mail that is not a feedback report is still read as a message.
    let plain = mailcanary(&["inspect", "--json", &path("error-not-arf.eml")], None);
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    let json: serde_json::Value = serde_json::from_slice(&plain.stdout).expect("JSON");
    assert_ne!(json["kind"], "arf");
}

/// Terminal control sequences a hostile sender puts in what `inspect` shows: CSI clear screen,
/// an OSC 0 window title ended by BEL, a C1 CSI (U+009B), CR and a right-to-left override.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\r\u{202e}";

/// Whether `bytes` would drive a terminal: ESC, BEL, CR, a C1 control, a bidi override.
fn drives_a_terminal(bytes: &[u8]) -> Option<char> {
    String::from_utf8_lossy(bytes)
        .chars()
        .find(|c| (c.is_control() && *c != '\n' && *c != '\t') || *c == '\u{202e}')
}

fn write_temp(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn hostile_text_never_reaches_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A bounce whose reporting MTA, recipient, remote MTA and reply carry the sequences.
    let bounce = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsn/postfix-no-ptr.eml"),
    )
    .expect("fixture")
    .replace(
        "Reporting-MTA: dns; mail.sender.test",
        &format!("Reporting-MTA: dns; mta{HOSTILE}"),
    )
    .replace(
        "Remote-MTA: dns; mx.seed.test",
        &format!("Remote-MTA: dns; mx{HOSTILE}"),
    )
    .replace(
        "Diagnostic-Code: smtp; 550-5.7.25",
        &format!("Diagnostic-Code: smtp; 550-5.7.25 {HOSTILE}"),
    );
    // A DMARC report whose org name, report id, domain and source IP carry them (XML allows
    // C1 and bidi characters as they are, and ESC or BEL as character references in practice).
    let xml = format!(
        "<feedback><report_metadata><org_name>org{HOSTILE}</org_name><report_id>id&#x1b;]0;t&#x7;</report_id>\
         <date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>\
         <policy_published><domain>example.com{HOSTILE}</domain><p>none</p></policy_published>\
         <record><row><source_ip>192.0.2.1{HOSTILE}</source_ip><count>3</count>\
         <policy_evaluated><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>\
         <identifiers><header_from>example.com</header_from></identifiers></record></feedback>"
    );
    // A TLS report: JSON strings carry them as \u escapes.
    let json = r#"{"organization-name":"org\u001b]0;pwned\u0007","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-01T23:59:59Z"},"report-id":"1\u001b[2J","policies":[{"policy":{"policy-type":"sts\u009b1m","policy-domain":"example.com\r"},"summary":{"total-successful-session-count":1,"total-failure-session-count":2},"failure-details":[{"result-type":"x\u001b[5m","failed-session-count":2}]}]}"#;
    // A message whose Authentication-Results carry them.
    let message = format!(
        "Authentication-Results: mx{HOSTILE}; spf=fail (x{HOSTILE}) smtp.mailfrom=a\r\n\r\nbody\r\n"
    );
    // A broken report whose error quotes the hostile element name back.
    let broken = format!("<feedback><a{HOSTILE}></b></feedback>");
    let cases = [
        ("bounce.eml", bounce.into_bytes()),
        ("report.xml", xml.into_bytes()),
        ("report.json", json.as_bytes().to_vec()),
        ("message.eml", message.into_bytes()),
        ("broken.xml", broken.into_bytes()),
    ];
    let mut read = 0;
    for (name, content) in cases {
        let path = write_temp(dir.path(), name, &content);
        let out = mailcanary(&["inspect", &path], None);
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert_eq!(
                drives_a_terminal(bytes),
                None,
                "{name} {stream}: {:?}",
                text(bytes)
            );
        }
        if out.status.code() == Some(0) {
            read += 1;
            assert!(
                text(&out.stdout).contains("\\u{1b}"),
                "{name}: the sequence is shown escaped: {}",
                text(&out.stdout)
            );
        }
    }
    assert_eq!(
        read, 4,
        "the bounce, both reports and the message were read"
    );
}
