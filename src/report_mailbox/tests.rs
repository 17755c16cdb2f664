//! The pure parts of report reading: which reports of a mail are ours, with which labels;
//! which mails are fetched at all.

use std::collections::HashSet;

use super::*;
use crate::config::{Cleanup, Seed, TlsMode};
use crate::imap::Candidate;

fn mailbox(domains: &[&str], reporters: &[&str]) -> ReportMailbox {
    ReportMailbox {
        mailbox: Seed {
            name: "rua".into(),
            provider: "generic",
            address: "dmarc@example.com".into(),
            host: "127.0.0.1".into(),
            port: 993,
            tls: TlsMode::Tls,
            ca_file: None,
            username: "dmarc".into(),
            login: crate::config::Login::Password(crate::config::Secret::new("x")),
            authserv_ids: vec![],
            inbox_folder: "INBOX".into(),
            spam_folder: None,
            preset_spam_folder: None,
            poll_interval: Duration::from_secs(1),
            confirmations_per_hour: 0,
            routes: vec![],
        },
        domains: domains.iter().map(|s| s.to_string()).collect(),
        after: Cleanup::Keep,
        schedule: "0 */15 * * * *".into(),
        reporters: reporters.iter().map(|s| s.to_string()).collect(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The clock of these tests: 2027-01-15, after every report period here.
const NOW: i64 = 1_800_000_000;

/// `xml` in a mail whose receiver (the top-most Authentication-Results, trusted as the mailbox
/// has no `authserv_ids`) found DKIM and DMARC passing for `domain`.
fn authenticated(xml: &str, domain: &str) -> Vec<u8> {
    format!(
        "Authentication-Results: mx.example.com; dkim=pass header.d={domain} header.s=s1;\r\n          spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}\r\n\
         From: reports@{domain}\r\nTo: dmarc@example.com\r\nSubject: Report\r\n\
         Content-Type: text/xml\r\n\r\n{xml}"
    )
    .into_bytes()
}

/// `raw` with an `Authentication-Results` header field on top.
fn with_auth(raw: &[u8], header: &str) -> Vec<u8> {
    [format!("{header}\r\n").as_bytes(), raw].concat()
}

const XML: &str = r#"<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email>
    <report_id>123</report_id><date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
  <policy_published><domain>Example.COM</domain><p>reject</p></policy_published>
  <record><row><source_ip>192.0.2.1</source_ip><count>5</count>
    <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results></record>
  <record><row><source_ip>198.51.100.7</source_ip><count>3</count>
    <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>mail.example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results></record>
</feedback>"#;

#[test]
fn a_report_about_our_domain_is_found_with_bounded_labels() {
    let mail = authenticated(XML, "google.com");
    let found =
        reports_in(&mail, &mailbox(&["example.com"], &["google.com"]), NOW).expect("readable");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].domain, "example.com");
    assert_eq!(found[0].reporter, "google.com");
    // The same report, with google not in the list: `other`, never the org name as written.
    let found = reports_in(&mail, &mailbox(&["example.com"], &["yahoo"]), NOW).expect("ok");
    assert_eq!(found[0].reporter, "other");
}

#[test]
fn a_reporter_label_needs_the_mail_authenticated_for_that_reporter() {
    let google = mailbox(&["example.com"], &["google.com"]);
    // A bare report file, or a mail nobody authenticated: counted, as `other`.
    let found = reports_in(XML.as_bytes(), &google, NOW).expect("ok");
    assert_eq!((found.len(), found[0].reporter.as_str()), (1, "other"));
    // Signed by the sender's own domain, claiming to be google.com in the report.
    let found = reports_in(&authenticated(XML, "attacker.example"), &google, NOW).expect("ok");
    assert_eq!(found[0].reporter, "other");
    // A "pass" for google.com that the sender wrote itself, below the receiver's own header:
    // not believed, whether the mailbox names its receiver's authserv-id or trusts the top.
    let planted = String::from_utf8(authenticated(XML, "attacker.example"))
        .expect("utf-8")
        .replacen(
            "From:",
            "Authentication-Results: mx.google.com; dkim=pass header.d=google.com;\r\n \
             dmarc=pass header.from=google.com\r\nFrom:",
            1,
        );
    let mut trusting = google.clone();
    trusting.mailbox.authserv_ids = vec!["mx.example.com".into()];
    for m in [&google, &trusting] {
        let found = reports_in(planted.as_bytes(), m, NOW).expect("ok");
        assert_eq!(found[0].reporter, "other");
    }
    // The receiver's own pass for google.com earns the label.
    let found = reports_in(&authenticated(XML, "google.com"), &trusting, NOW).expect("ok");
    assert_eq!(found[0].reporter, "google.com");
}

#[test]
fn the_authenticated_domains_are_passing_dkim_and_dmarc_of_the_trusted_receiver() {
    let raw = b"Authentication-Results: mx.example.com;\r\n dkim=pass header.d=Google.COM;\r\n \
        dkim=fail header.d=failed.example; dkim=pass header.i=@signer.example;\r\n \
        dmarc=pass header.from=reports@From.Example\r\n\
        Authentication-Results: other.example; dkim=pass header.d=below.example\r\n\r\n";
    assert_eq!(
        authenticated_domains(raw, &[]),
        vec!["google.com", "signer.example", "from.example"]
    );
    assert_eq!(
        authenticated_domains(raw, &["other.example".to_string()]),
        vec!["below.example"]
    );
    assert!(authenticated_domains(b"no header section", &[]).is_empty());
}

#[test]
fn a_subdomain_counts_for_its_configured_domain_and_others_are_ignored() {
    let sub = XML.replace(
        "<domain>Example.COM</domain>",
        "<domain>news.example.com</domain>",
    );
    let found = reports_in(sub.as_bytes(), &mailbox(&["example.com"], &[]), NOW).expect("ok");
    assert_eq!(found[0].domain, "example.com");
    let foreign = XML.replace(
        "<domain>Example.COM</domain>",
        "<domain>notexample.com</domain>",
    );
    assert!(
        reports_in(foreign.as_bytes(), &mailbox(&["example.com"], &[]), NOW)
            .expect("ok")
            .is_empty()
    );
}

#[test]
fn a_broken_report_is_an_error_and_an_ordinary_mail_is_not_a_report() {
    let broken = XML.replace("</feedback>", "");
    assert!(matches!(
        reports_in(broken.as_bytes(), &mailbox(&["example.com"], &[]), NOW),
        Err(ReportError::NotXml { .. })
    ));
    let mail = b"From: a@b.example\r\nSubject: hello\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
    assert_eq!(
        reports_in(mail, &mailbox(&["example.com"], &[]), NOW),
        Err(ReportError::NotAReport)
    );
}

#[test]
fn corpus_mails_of_real_reporters_are_read_with_their_labels() {
    let defaults: Vec<&str> = crate::config::DEFAULT_REPORTERS.to_vec();
    // The report mailbox's receiver found them signed by their reporters.
    let yahoo_auth = "Authentication-Results: mx.example.com; dkim=pass header.d=yahoo.com; \
                      dmarc=pass header.from=yahoo.com";
    let microsoft_auth = "Authentication-Results: mx.example.com; dkim=pass header.d=microsoft.com";
    let yahoo = reports_in(
        &with_auth(&fixture("yahoo_mail_octet_stream.eml"), yahoo_auth),
        &mailbox(&["example.com"], &defaults),
        NOW,
    )
    .expect("Yahoo's mail (gzip as application/octet-stream) reads");
    assert_eq!(yahoo.len(), 1);
    assert_eq!(
        (yahoo[0].domain.as_str(), yahoo[0].reporter.as_str()),
        ("example.com", "yahoo")
    );
    assert!(matches!(yahoo[0].report, Report::Dmarc(_)));
    let microsoft = reports_in(
        &with_auth(&fixture("microsoft_mail_tlsrpt_gzip.eml"), microsoft_auth),
        &mailbox(&["example.com"], &defaults),
        NOW,
    )
    .expect("Microsoft's TLS report mail reads");
    assert_eq!(microsoft.len(), 1);
    assert!(matches!(microsoft[0].report, Report::Tlsrpt(_)));
    assert_eq!(microsoft[0].reporter, "microsoft.com");
    // As they are in the corpus, with no authentication: counted as `other`.
    let unauthenticated = reports_in(
        &fixture("yahoo_mail_octet_stream.eml"),
        &mailbox(&["example.com"], &defaults),
        NOW,
    )
    .expect("readable");
    assert_eq!(unauthenticated[0].reporter, "other");
    // A mailbox for another domain takes nothing from either mail.
    for name in [
        "yahoo_mail_octet_stream.eml",
        "microsoft_mail_tlsrpt_gzip.eml",
    ] {
        assert!(
            reports_in(&fixture(name), &mailbox(&["example.org"], &defaults), NOW)
                .expect("readable")
                .is_empty()
        );
    }
}

#[test]
fn mails_read_before_are_not_fetched_and_huge_ones_are_refused() {
    let seen: HashSet<String> = ["<old@x>".to_string()].into();
    let mut big = Vec::new();
    let c = |uid, size, fields: &[u8]| Candidate {
        uid,
        size: Some(size),
        fields: fields.to_vec(),
    };
    assert_eq!(
        wanted(&c(1, 10, b"Message-ID: <old@x>\r\n\r\n"), &seen, &mut big),
        None
    );
    assert_eq!(
        wanted(&c(2, 10, b"Message-ID: <new@x>\r\n\r\n"), &seen, &mut big),
        Some("<new@x>".to_string())
    );
    assert_eq!(
        wanted(&c(3, 10, b"Subject: x\r\n\r\n"), &seen, &mut big),
        Some("uid:3".to_string())
    );
    assert_eq!(
        wanted(
            &c(4, MAX_WHOLE_BYTES + 1, b"Message-ID: <big@x>\r\n\r\n"),
            &seen,
            &mut big
        ),
        None
    );
    assert_eq!(big, vec!["<big@x>".to_string()]);
}

#[test]
fn the_view_ranks_failing_sources_and_sums_alignment() {
    let found = reports_in(
        XML.as_bytes(),
        &mailbox(&["example.com"], &["google.com"]),
        NOW,
    )
    .expect("ok");
    let stored: Vec<StoredReport> = found
        .into_iter()
        .map(|f| StoredReport {
            reporter_key: "google.com".into(),
            reporter: f.reporter,
            domain: f.domain,
            mailbox: "rua".into(),
            received_at: 1.0,
            report: f.report,
        })
        .collect();
    let v = summary::view(&stored, 7, |ip| {
        (ip == "198.51.100.7").then(|| "mx.bad.example".into())
    });
    assert_eq!(v.alignment.len(), 1);
    let a = &v.alignment[0];
    assert_eq!(
        (a.messages, a.dkim_aligned, a.spf_aligned, a.failing),
        (8, 5, 0, 3)
    );
    assert_eq!(v.failing_sources.len(), 1);
    assert_eq!(v.failing_sources[0].source_ip, "198.51.100.7");
    assert_eq!(v.failing_sources[0].name.as_deref(), Some("mx.bad.example"));
    assert_eq!((v.reports[0].total, v.reports[0].failing), (8, 3));
}

#[test]
fn a_report_ending_in_the_future_leaves_the_mail_unread() {
    // Its period would hold the newest-report time (and MailcanaryDMARCReportsStopped) forever.
    let future = XML
        .replace("<begin>1700000000</begin>", "<begin>4102358400</begin>")
        .replace("<end>1700086399</end>", "<end>4102444799</end>");
    let err = reports_in(
        &authenticated(&future, "google.com"),
        &mailbox(&["example.com"], &["google.com"]),
        NOW,
    )
    .expect_err("refused");
    assert_eq!(err.reason(), "bad_period");
}

#[test]
fn the_view_never_wraps_a_sum() {
    // Two reports that the parser refuses today (counts over the maximum), as an older version
    // could have stored them: 2^64 - 1 and 2 failing messages saturate, never read "failing 1".
    let record = |count| crate::reports::dmarc::Record {
        source_ip: "198.51.100.7".into(),
        count,
        dkim: Some("fail".into()),
        spf: Some("fail".into()),
        header_from: "example.com".into(),
        ..Default::default()
    };
    let aggregate = |id: &str, count| crate::reports::dmarc::AggregateReport {
        org_name: "x".into(),
        report_id: id.into(),
        begin: 0,
        end: 86_400,
        records: vec![record(count), record(2)],
        ..Default::default()
    };
    let stored = |id: &str, count| StoredReport {
        reporter_key: "x".into(),
        reporter: "other".into(),
        domain: "example.com".into(),
        mailbox: "rua".into(),
        received_at: 1.0,
        report: Report::Dmarc(aggregate(id, count)),
    };
    let v = summary::view(&[stored("a", u64::MAX), stored("b", 2)], 7, |_| None);
    assert_eq!(v.alignment[0].failing, u64::MAX);
    assert_eq!(v.alignment[0].messages, u64::MAX);
    assert_eq!(v.failing_sources[0].failing, u64::MAX);
    assert_eq!(
        (v.reports[0].total, v.reports[0].failing),
        (u64::MAX, u64::MAX)
    );
    assert_eq!(
        summary::failing_sources(&aggregate("a", u64::MAX), 1),
        vec!["198.51.100.7".to_string()]
    );
}

fn arf_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/arf/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_complaint_about_our_domain_is_found_with_its_type_and_reporter() {
    let raw = arf_fixture("yahoo-cfl-probe.eml");
    // Yahoo's mail, authenticated by the mailbox's receiver for yahoo.com.
    let raw = with_auth(
        &raw,
        "Authentication-Results: mx.example.com; dkim=pass header.d=yahoo.com header.s=s1",
    );
    let found = complaint_in(
        &raw,
        "<cfl-1@yahoo.com>",
        &mailbox(&["sender.test"], &["yahoo"]),
        NOW,
    )
    .expect("readable")
    .expect("a complaint");
    let [f] = found.as_slice() else {
        panic!("one complaint: {found:?}");
    };
    assert_eq!(f.domain, "sender.test");
    assert_eq!(f.reporter, "yahoo");
    let Report::Arf(c) = &f.report else {
        panic!("not a complaint: {f:?}");
    };
    assert_eq!(
        c.report.feedback_type,
        crate::reports::arf::FeedbackType::Abuse
    );
    assert_eq!(c.report_message_id, "<cfl-1@yahoo.com>");
    assert!(c.report.probe_token.is_some(), "about a probe: {c:?}");
    assert_eq!(c.incidents(), 1);
    // The same mail, not authenticated: counted, as `other`.
    let unauthenticated = arf_fixture("yahoo-cfl-probe.eml");
    let found = complaint_in(
        &unauthenticated,
        "k",
        &mailbox(&["sender.test"], &["yahoo"]),
        NOW,
    )
    .expect("readable")
    .expect("a complaint");
    assert_eq!(found[0].reporter, "other");
}

#[test]
fn a_complaint_about_other_domains_is_left_alone_and_other_mail_is_no_complaint() {
    let raw = arf_fixture("microsoft-jmrp.eml");
    let none = complaint_in(&raw, "k", &mailbox(&["example.org"], &[]), NOW).expect("readable");
    assert_eq!(none.map(|f| f.len()), Some(0));
    // Its Incidents count.
    let found = complaint_in(&raw, "k", &mailbox(&["sender.test"], &[]), NOW)
        .expect("readable")
        .expect("a complaint");
    let Report::Arf(c) = &found[0].report else {
        panic!("not a complaint");
    };
    assert_eq!(c.incidents(), 3);
    // A DMARC report mail is not a complaint: the report readers take it.
    let dmarc = authenticated("<feedback/>", "google.com");
    assert_eq!(
        complaint_in(&dmarc, "k", &mailbox(&["example.com"], &[]), NOW),
        Ok(None)
    );
}
