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
    let found =
        reports_in(XML.as_bytes(), &mailbox(&["example.com"], &["google.com"])).expect("readable");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].domain, "example.com");
    assert_eq!(found[0].reporter, "google.com");
    // The same report, with google not in the list: `other`, never the org name as written.
    let found = reports_in(XML.as_bytes(), &mailbox(&["example.com"], &["yahoo"])).expect("ok");
    assert_eq!(found[0].reporter, "other");
}

#[test]
fn a_subdomain_counts_for_its_configured_domain_and_others_are_ignored() {
    let sub = XML.replace(
        "<domain>Example.COM</domain>",
        "<domain>news.example.com</domain>",
    );
    let found = reports_in(sub.as_bytes(), &mailbox(&["example.com"], &[])).expect("ok");
    assert_eq!(found[0].domain, "example.com");
    let foreign = XML.replace(
        "<domain>Example.COM</domain>",
        "<domain>notexample.com</domain>",
    );
    assert!(
        reports_in(foreign.as_bytes(), &mailbox(&["example.com"], &[]))
            .expect("ok")
            .is_empty()
    );
}

#[test]
fn a_broken_report_is_an_error_and_an_ordinary_mail_is_not_a_report() {
    let broken = XML.replace("</feedback>", "");
    assert!(matches!(
        reports_in(broken.as_bytes(), &mailbox(&["example.com"], &[])),
        Err(ReportError::NotXml { .. })
    ));
    let mail = b"From: a@b.example\r\nSubject: hello\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
    assert_eq!(
        reports_in(mail, &mailbox(&["example.com"], &[])),
        Err(ReportError::NotAReport)
    );
}

#[test]
fn corpus_mails_of_real_reporters_are_read_with_their_labels() {
    let defaults: Vec<&str> = crate::config::DEFAULT_REPORTERS.to_vec();
    let yahoo = reports_in(
        &fixture("yahoo_mail_octet_stream.eml"),
        &mailbox(&["example.com"], &defaults),
    )
    .expect("Yahoo's mail (gzip as application/octet-stream) reads");
    assert_eq!(yahoo.len(), 1);
    assert_eq!(
        (yahoo[0].domain.as_str(), yahoo[0].reporter.as_str()),
        ("example.com", "yahoo")
    );
    assert!(matches!(yahoo[0].report, Report::Dmarc(_)));
    let microsoft = reports_in(
        &fixture("microsoft_mail_tlsrpt_gzip.eml"),
        &mailbox(&["example.com"], &defaults),
    )
    .expect("Microsoft's TLS report mail reads");
    assert_eq!(microsoft.len(), 1);
    assert!(matches!(microsoft[0].report, Report::Tlsrpt(_)));
    // A mailbox for another domain takes nothing from either mail.
    for name in [
        "yahoo_mail_octet_stream.eml",
        "microsoft_mail_tlsrpt_gzip.eml",
    ] {
        assert!(
            reports_in(&fixture(name), &mailbox(&["example.org"], &defaults))
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
    let found =
        reports_in(XML.as_bytes(), &mailbox(&["example.com"], &["google.com"])).expect("ok");
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
