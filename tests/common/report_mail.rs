//! Report mails as receivers send them, for the lab tests that need reports in the lab's report
//! mailbox (`dmarc-reports@sender.test`): a DMARC aggregate report (RFC 7489 Appendix C) in
//! Google's form, and an SMTP TLS report (RFC 8460 §4.4) in a mail with
//! `application/tlsrpt+json` (§5.3), both about sender.test. Each gets its own report id and
//! Message-ID, so tests never see each other's reports as duplicates. Each carries the
//! `Authentication-Results` the report mailbox's receiver writes on Google's signed mail
//! (DKIM and DMARC pass for google.com): a reporter gets its own label only when its mail is
//! authenticated for it. They are planted with IMAP APPEND, so that header is the only one.
//!
//! Only the lock holder ([`lock_report_mailbox`]) may empty the mailbox or expect what is in it.

use std::time::Duration;

use futures::TryStreamExt;

use super::LAB_DIR;

/// The DMARC report's source that fails DMARC: 127.0.0.4 (`out2.sender.test` in the lab's
/// reverse zone), 2 messages; 127.0.0.2 sent 5 that pass.
pub const FAILING_SOURCE: &str = "127.0.0.4";
pub const FAILING_SOURCE_NAME: &str = "out2.sender.test";

/// What the lab's MX writes on a mail that Google signed: planted mails carry it on top.
pub const GOOGLE_AUTHENTICATED: &str = "Authentication-Results: mx.sender.test;\r\n \
    dkim=pass header.d=google.com header.s=20230601; spf=pass smtp.mailfrom=google.com;\r\n \
    dmarc=pass (p=REJECT) header.from=google.com\r\n";

/// A DMARC aggregate report mail from "google.com" about sender.test.
pub fn dmarc_mail(report_id: &str, message_id: &str) -> Vec<u8> {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>{report_id}</report_id>
    <date_range><begin>1795824000</begin><end>1795910399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>sender.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
  <record>
    <row><source_ip>127.0.0.2</source_ip><count>5</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>sender.test</header_from></identifiers>
    <auth_results><dkim><domain>sender.test</domain><result>pass</result><selector>lab</selector></dkim>
      <spf><domain>sender.test</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>{FAILING_SOURCE}</source_ip><count>2</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>sender.test</header_from></identifiers>
    <auth_results><spf><domain>spf-fail.test</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"#
    );
    format!(
        "{GOOGLE_AUTHENTICATED}From: noreply-dmarc-support@google.com\r\nTo: dmarc-reports@sender.test\r\n\
         Subject: Report domain: sender.test Submitter: google.com Report-ID: {report_id}\r\n\
         Message-ID: {message_id}\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/xml; name=\"google.com!sender.test!1795824000!1795910399.xml\"\r\n\
         Content-Disposition: attachment; filename=\"google.com!sender.test!1795824000!1795910399.xml\"\r\n\r\n{}",
        xml.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// A TLS report mail from "Google Inc." about sender.test: 10 sessions, 2 failed with an
/// expired certificate.
pub fn tls_mail(report_id: &str, message_id: &str) -> Vec<u8> {
    let json = format!(
        r#"{{"organization-name":"Google Inc.","date-range":{{"start-datetime":"2026-11-28T00:00:00Z","end-datetime":"2026-11-28T23:59:59Z"}},"contact-info":"smtp-tls-reporting@google.com","report-id":"{report_id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce","mx: mx.sender.test","max_age: 86400"],"policy-domain":"sender.test"}},"summary":{{"total-successful-session-count":8,"total-failure-session-count":2}},"failure-details":[{{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.10","receiving-mx-hostname":"mx.sender.test","failed-session-count":2}}]}}]}}"#
    );
    format!(
        "{GOOGLE_AUTHENTICATED}From: noreply-smtp-tls-reporting@google.com\r\nTo: dmarc-reports@sender.test\r\n\
         Subject: Report Domain: sender.test Submitter: google.com Report-ID: <{report_id}>\r\n\
         TLS-Report-Domain: sender.test\r\nTLS-Report-Submitter: google.com\r\n\
         Message-ID: {message_id}\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=tlsrpt; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate TLS report from google.com\r\n\
         --b1\r\nContent-Type: application/tlsrpt+json\r\n\
         Content-Disposition: attachment; filename=\"google.com!sender.test!1795824000!1795910399!001.json\"\r\n\r\n\
         {json}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// The report mailbox as a config's mailbox (login settings of the lab).
pub fn mailbox() -> mailcanary::config::Seed {
    let text = format!(
        "[probe]\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\n\
         [routes.r]\nhost = \"127.0.0.2\"\nfrom = \"a@sender.test\"\n\
         [seeds.s]\naddress = \"seed1@seed.test\"\nhost = \"127.0.0.3\"\npassword_file = \"{LAB_DIR}/secrets/imap-password\"\n\
         [report_mailboxes.lab]\naddress = \"dmarc-reports@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\ntls = \"tls\"\n\
         ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"dmarc-reports\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\ndomains = [\"sender.test\"]\n"
    );
    let config = mailcanary::config::parse(&text, std::path::Path::new("report_mail.toml"))
        .unwrap_or_else(|e| panic!("report mailbox config: {e}"));
    config.report_mailboxes[0].mailbox.clone()
}

/// Appends `mails` to the report mailbox's INBOX; with `empty_first`, deletes what is there
/// first (only the lock holder may).
pub async fn plant(mails: &[Vec<u8>], empty_first: bool) {
    let mut s = mailcanary::imap::connect::login(&mailbox(), &Default::default())
        .await
        .expect("login to the report mailbox");
    s.select("INBOX").await.expect("select");
    if empty_first {
        super::empty_selected_folder(&mut s).await;
    }
    for raw in mails {
        s.append("INBOX", None, None, raw).await.expect("append");
    }
    let _ = s.logout().await;
}

/// The whole of every message in the report mailbox's INBOX.
pub async fn contents() -> Vec<Vec<u8>> {
    let mut s = mailcanary::imap::connect::login(&mailbox(), &Default::default())
        .await
        .expect("login to the report mailbox");
    s.select("INBOX").await.expect("select");
    let fetched: Vec<_> = s
        .fetch("1:*", "BODY.PEEK[]")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .unwrap_or_default();
    let out = fetched
        .iter()
        .filter_map(|f| f.body().map(<[u8]>::to_vec))
        .collect();
    let _ = s.logout().await;
    out
}

/// Exclusive use of the report mailbox while held.
pub type ReportMailboxLock = super::support::LabLock;

/// Waits (at most two minutes) for another test to release the report mailbox.
pub fn lock_report_mailbox() -> ReportMailboxLock {
    super::support::lab_lock(
        "mailcanary-lab-dmarc-reports.lock",
        "the report mailbox",
        Duration::from_secs(120),
    )
}

/// `raw` with its Message-ID replaced by `id` (each planted report must be new to the mailbox).
pub fn with_message_id(raw: &[u8], id: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        if !replaced && line.to_ascii_lowercase().starts_with("message-id:") {
            out.push_str(&format!("Message-ID: {id}\r\n"));
            replaced = true;
        } else {
            out.push_str(line);
        }
    }
    assert!(replaced, "the report mail has no Message-ID:\n{text}");
    out.into_bytes()
}

/// A complaint feedback report (RFC 5965 ARF): the corpus' Yahoo CFL report about a probe of
/// sender.test, under a Message-ID of its own.
pub fn arf_mail(message_id: &str) -> Vec<u8> {
    let raw = std::fs::read(super::support::repo().join("tests/fixtures/arf/yahoo-cfl-probe.eml"))
        .expect("tests/fixtures/arf/yahoo-cfl-probe.eml");
    with_message_id(&raw, message_id)
}
