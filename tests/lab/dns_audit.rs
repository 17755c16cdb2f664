//! The DNS audit against the lab's DNS (NSD on 127.0.53.53:53, `lab/mailstack up`): every lab
//! fault yields exactly its cause, the good route none, and a DNS that does not answer is an
//! error, never "missing". These tests fail (never skip) when the lab DNS is not up.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mailcanary::diagnosis::Cause;
use mailcanary::dns_audit::dns::{Answer, Dns};
use mailcanary::dns_audit::{AuditTarget, Auditor, Check, CheckStatus, RouteAudit};
use mailcanary::status::Status;

const LAB_DNS: &str = "127.0.53.53:53";

fn lab_addr() -> SocketAddr {
    LAB_DNS.parse().expect("lab DNS address")
}

fn lab_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("MAILCANARY_LAB_DIR").unwrap_or_else(|_| "/var/lib/mailcanary-lab".into()),
    )
}

/// The lab's DKIM private key for `domain`; the test fails when it cannot be read.
fn lab_key(domain: &str) -> PathBuf {
    let path = lab_dir().join("dkim").join(format!("{domain}.lab.key"));
    if let Err(e) = std::fs::File::open(&path) {
        panic!(
            "cannot read the lab DKIM key {} ({e}): run `sudo lab/mailstack up` and run the \
             tests as a user that can read it (root or group _rspamd)",
            path.display()
        );
    }
    path
}

/// An auditor on the lab DNS, after checking that it answers, with the DNS audit's zones.
async fn lab_auditor() -> Auditor {
    let dns = Dns::new(Some(lab_addr()), Duration::from_secs(2)).expect("resolver");
    for (name, what) in [
        ("mail.sender.test", "the lab DNS"),
        ("out6.listed.test", "the DNS audit's lab zones"),
    ] {
        match dns.a(name).await {
            Ok(Answer::Found(_)) => {}
            other => panic!(
                "{what} at {LAB_DNS} did not answer {name} A ({other:?}): run `sudo lab/mailstack up` \
                 (after a change of zones: `sudo lab/mailstack down && sudo lab/mailstack up`)"
            ),
        }
    }
    Auditor::new(Some(lab_addr()), Duration::from_secs(2)).expect("auditor")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn target(route: &str, from: &str, sending_ip: &str, helo: &str) -> AuditTarget {
    AuditTarget {
        route: route.to_string(),
        from_domain: from.to_string(),
        ips: vec![ip(sending_ip)],
        helo: Some(helo.to_string()),
        ..AuditTarget::default()
    }
}

/// The report, after asserting that nothing errored (an error would hide a cause).
async fn audit(t: &AuditTarget) -> RouteAudit {
    let report = lab_auditor().await.audit(t).await;
    let errors: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "{}: checks errored: {errors:#?}",
        t.route
    );
    report
}

fn check(report: &RouteAudit, which: Check) -> &mailcanary::dns_audit::CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.check == which)
        .unwrap_or_else(|| panic!("no {} check in {}", which.as_str(), report.render_text()))
}

#[tokio::test]
async fn good_route_has_no_cause() {
    let mut t = target("good", "sender.test", "127.0.0.2", "mail.sender.test");
    t.dkim_selector = Some("lab".into());
    t.signing_key = Some(lab_key("sender.test"));
    t.seed_domains = vec!["seed.test".into()];
    let report = audit(&t).await;
    assert_eq!(report.causes(), [], "{}", report.render_text());
    assert_eq!(report.status(), Status::Ok, "{}", report.render_text());
    for which in Check::ALL {
        if which != Check::Dnsbl {
            assert_eq!(report.check_ok(which), Some(true), "{}", which.as_str());
        }
    }
    assert_eq!(report.dkim_key_bits, Some(2048));
    assert_eq!(report.spf_dns_lookups, Some(0));
    assert!(
        check(&report, Check::Dkim)
            .detail
            .contains("matches the signing key")
    );
    assert!(
        check(&report, Check::MtaSts)
            .detail
            .contains("id=20260101000000")
    );
    assert!(
        check(&report, Check::TlsRpt)
            .detail
            .contains("mailto:tlsrpt@seed.test")
    );
}

#[tokio::test]
async fn no_ptr_is_ptr_missing_for_ptr_and_fcrdns() {
    let mut t = target("no-ptr", "no-ptr.test", "127.0.0.5", "noptr.no-ptr.test");
    t.dkim_selector = Some("lab".into());
    t.dnsbl_zones = vec!["dnsbl.test".into()];
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::PtrMissing],
        "{}",
        report.render_text()
    );
    assert_eq!(report.status(), Status::Critical);
    let ptr = check(&report, Check::Ptr);
    assert_eq!(ptr.status, CheckStatus::Fail);
    assert!(
        ptr.detail.contains("5.0.0.127.in-addr.arpa: NXDOMAIN"),
        "{}",
        ptr.detail
    );
    assert_eq!(
        ptr.fix.as_deref(),
        Some(
            "Publish a PTR record for 127.0.0.5 (in 0.0.127.in-addr.arpa) naming a host whose A \
             record points back to it, and use that name as the HELO."
        )
    );
    let fcrdns = check(&report, Check::Fcrdns);
    assert_eq!(
        (fcrdns.status, fcrdns.cause),
        (CheckStatus::Fail, Some(Cause::PtrMissing))
    );
    assert_eq!(check(&report, Check::Helo).status, CheckStatus::Ok);
    assert_eq!(report.dnsbl[0].listed, Some(false));
}

#[tokio::test]
async fn spf_fail_is_ip_not_authorized() {
    let mut t = target("spf-fail", "spf-fail.test", "127.0.0.4", "out2.sender.test");
    t.dkim_selector = Some("lab".into());
    t.dnsbl_zones = vec!["dnsbl.test".into()];
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::SpfIpNotAuthorized],
        "{}",
        report.render_text()
    );
    let spf = check(&report, Check::Spf);
    assert!(spf.detail.contains("127.0.0.4 fail"), "{}", spf.detail);
    assert!(spf.fix.as_deref().unwrap_or("").contains("ip4:127.0.0.4"));
    // DKIM is aligned, so DMARC passes: one problem, one cause.
    assert_eq!(check(&report, Check::Dmarc).status, CheckStatus::Ok);
}

#[tokio::test]
async fn dkim_fail_with_the_signing_key_is_key_mismatch() {
    let mut t = target(
        "dkim-fail",
        "dkim-fail.test",
        "127.0.0.2",
        "mail.sender.test",
    );
    t.dkim_selector = Some("lab".into());
    t.signing_key = Some(lab_key("dkim-fail.test"));
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::DkimKeyMismatch],
        "{}",
        report.render_text()
    );
    assert_eq!(check(&report, Check::Dkim).status, CheckStatus::Fail);

    // Without the signing key the published key looks fine: DNS alone cannot tell.
    t.signing_key = None;
    let blind = audit(&t).await;
    assert_eq!(blind.causes(), [], "{}", blind.render_text());
}

#[tokio::test]
async fn dmarc_fail_is_not_aligned() {
    let mut t = target(
        "dmarc-fail",
        "dmarc-fail.test",
        "127.0.0.2",
        "mail.sender.test",
    );
    t.envelope_domain = Some("sender.test".into());
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::DmarcNotAligned],
        "{}",
        report.render_text()
    );
    let dmarc = check(&report, Check::Dmarc);
    assert!(dmarc.detail.contains("p=reject"), "{}", dmarc.detail);
    assert!(
        dmarc
            .detail
            .contains("SPF passes for sender.test (not aligned)"),
        "{}",
        dmarc.detail
    );
    // SPF was checked for the envelope domain, where it passes.
    assert_eq!(check(&report, Check::Spf).subject, "sender.test");
}

#[tokio::test]
async fn weak_dkim_is_weak_key() {
    let mut t = target(
        "weak-dkim",
        "weak-dkim.test",
        "127.0.0.2",
        "mail.sender.test",
    );
    t.dkim_selector = Some("lab".into());
    t.signing_key = Some(lab_key("weak-dkim.test"));
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::DkimWeakKey],
        "{}",
        report.render_text()
    );
    assert_eq!(check(&report, Check::Dkim).status, CheckStatus::Warn);
    assert_eq!(report.dkim_key_bits, Some(1024));
    assert_eq!(report.status(), Status::Warning);
}

#[tokio::test]
async fn spf_lookups_is_too_many_lookups() {
    let t = target(
        "spf-lookups",
        "spf-lookups.test",
        "127.0.0.2",
        "mail.sender.test",
    );
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::SpfTooManyLookups],
        "{}",
        report.render_text()
    );
    assert_eq!(report.spf_dns_lookups, Some(12));
    assert_eq!(report.spf_void_lookups, Some(0));
    // mail-auth's evaluation hits the limit before it reaches ip4:127.0.0.2.
    assert!(
        check(&report, Check::Spf)
            .detail
            .contains("127.0.0.2 permerror")
    );
    // DMARC fails because SPF does: it carries SPF's cause, not a second one.
    let dmarc = check(&report, Check::Dmarc);
    assert_eq!(
        (dmarc.status, dmarc.cause),
        (CheckStatus::Fail, Some(Cause::SpfTooManyLookups))
    );
}

#[tokio::test]
async fn no_dmarc_is_dmarc_missing() {
    let t = target("no-dmarc", "no-dmarc.test", "127.0.0.2", "mail.sender.test");
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::DmarcMissing],
        "{}",
        report.render_text()
    );
}

#[tokio::test]
async fn listed_ip_is_blocklisted() {
    let mut t = target("listed", "listed.test", "127.0.0.6", "out6.listed.test");
    t.dnsbl_zones = vec!["dnsbl.test".into()];
    let report = audit(&t).await;
    assert_eq!(
        report.causes(),
        [Cause::Blocklisted],
        "{}",
        report.render_text()
    );
    let listing = check(&report, Check::Dnsbl);
    assert_eq!(listing.subject, "127.0.0.6 in dnsbl.test");
    assert!(
        listing.detail.contains("6.0.0.127.dnsbl.test → 127.0.0.2"),
        "{}",
        listing.detail
    );
    assert!(
        listing
            .detail
            .contains("listed in the mailcanary lab blocklist")
    );
    assert_eq!(report.dnsbl.len(), 1);
    assert_eq!(report.dnsbl[0].listed, Some(true));
    assert_eq!(report.dnsbl[0].listed_ips, [ip("127.0.0.6")]);
}

#[tokio::test]
async fn a_zone_without_its_test_entry_is_an_error_not_a_clean_bill() {
    // sender.test is no blocklist: it does not list 127.0.0.2 (RFC 5782 §5).
    let mut t = target("x", "listed.test", "127.0.0.6", "out6.listed.test");
    t.dnsbl_zones = vec!["sender.test".into()];
    let report = lab_auditor().await.audit(&t).await;
    let listing = check(&report, Check::Dnsbl);
    assert_eq!(listing.status, CheckStatus::Error, "{listing:?}");
    assert!(listing.detail.contains("test entry"), "{}", listing.detail);
    assert_eq!(report.dnsbl[0].listed, None);
}

#[tokio::test]
async fn refused_is_an_error_not_a_missing_record() {
    // The lab's NSD answers REFUSED for zones it does not serve.
    let mut t = target("refused", "example.com", "127.0.0.2", "mail.sender.test");
    t.dkim_selector = Some("lab".into());
    let report = lab_auditor().await.audit(&t).await;
    for which in [Check::Spf, Check::Dkim, Check::Dmarc] {
        let c = check(&report, which);
        assert_eq!(c.status, CheckStatus::Error, "{c:?}");
        assert_eq!(c.cause, Some(Cause::DnsError));
        assert!(c.detail.contains("REFUSED"), "{}", c.detail);
    }
    assert!(!report.causes().contains(&Cause::SpfMissing));
    assert!(!report.causes().contains(&Cause::DmarcMissing));
}

#[tokio::test]
async fn a_silent_nameserver_is_an_error_not_a_missing_record() {
    // A UDP socket that never answers (and no TCP listener on its port).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let auditor = Auditor::new(Some(addr), Duration::from_millis(300)).expect("auditor");
    let mut t = target("silent", "sender.test", "127.0.0.2", "mail.sender.test");
    t.dkim_selector = Some("lab".into());
    t.seed_domains = vec!["seed.test".into()];
    t.dnsbl_zones = vec!["dnsbl.test".into()];
    let started = Instant::now();
    let report = auditor.audit(&t).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(!report.checks.is_empty());
    for c in &report.checks {
        assert_eq!(c.status, CheckStatus::Error, "{c:?}");
    }
    assert_eq!(report.causes(), []);
    assert_eq!(report.status(), Status::Unknown);
    assert_eq!(report.dnsbl[0].listed, None);
    drop(silent);
}

#[test]
fn cli_end_to_end_no_ptr() {
    // Fail with the lab hint rather than with a confusing exit code.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(lab_auditor());
    let output = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args([
            "check-dns",
            "--nameserver",
            LAB_DNS,
            "--domain",
            "no-ptr.test",
            "--ip",
            "127.0.0.5",
            "--helo",
            "noptr.no-ptr.test",
            "--selector",
            "lab",
            "--dnsbl",
            "dnsbl.test",
            "--json",
        ])
        .output()
        .expect("run mailcanary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ptr_missing"));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(json["status"], "critical");
    assert_eq!(json["causes"], serde_json::json!(["ptr_missing"]));
    assert_eq!(json["route"], "adhoc");
    assert_eq!(json["checks"][0]["check"], "ptr");
    assert_eq!(json["dkim_key_bits"], 2048);

    // The readable report: one line per check, the fix under the failing ones.
    let text = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args([
            "check-dns",
            "--nameserver",
            LAB_DNS,
            "--domain",
            "no-ptr.test",
            "--ip",
            "127.0.0.5",
            "--helo",
            "noptr.no-ptr.test",
            "--selector",
            "lab",
            "--dnsbl",
            "dnsbl.test",
        ])
        .output()
        .expect("run mailcanary");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("✗ ptr      127.0.0.5: no PTR record"),
        "{text}"
    );
    assert!(
        text.contains("    fix: Publish a PTR record for 127.0.0.5"),
        "{text}"
    );
    assert!(text.contains("✓ spf      no-ptr.test:"), "{text}");
}

#[test]
fn cli_config_mode_with_a_missing_file_is_unknown() {
    // Config mode itself is tested against the lab in tests/audit_lab.rs.
    let output = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-dns", "--config", "no-such-mailcanary.toml"])
        .output()
        .expect("run mailcanary");
    assert_eq!(output.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("cannot read config file no-such-mailcanary.toml")
    );
}

#[test]
fn cli_rejects_a_bad_domain_with_exit_3() {
    let output = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-dns", "--domain", "not a domain", "--ip", "127.0.0.2"])
        .output()
        .expect("run mailcanary");
    assert_eq!(output.status.code(), Some(3));
}
