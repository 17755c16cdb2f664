//! The audit of a seen address, against recorded DNS data.

use std::net::{IpAddr, Ipv4Addr};

use mail_auth::SpfResult;

use super::*;
use crate::dns_audit::dns::{Answer, DnsError};
use crate::dns_audit::findings::CheckStatus;
use crate::dns_audit::testdns::FakeDns;
use crate::status::Status;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

/// sender.test authorizes 192.0.2.2 only; 192.0.2.2 has a confirmed PTR; 2001:db8:53::25 has
/// no PTR; 2001:db8:53::26 has one whose name has an AAAA record back; zen and spamcop list their
/// test entries, zen also 2001:db8:53::66.
fn dns() -> FakeDns {
    FakeDns::parse(&format!(
        "sender.test TXT \"v=spf1 ip4:192.0.2.2 -all\"\n\
         2.2.0.192.in-addr.arpa PTR mail.sender.test.\n\
         mail.sender.test A 192.0.2.2\n\
         {v6_26} PTR mail6.sender.test.\n\
         mail6.sender.test AAAA 2001:db8:53::26\n\
         2.0.0.127.zen.spamhaus.org A 127.0.0.2\n\
         2.0.0.127.bl.spamcop.net A 127.0.0.2\n\
         {listed} A 127.0.0.3\n",
        v6_26 = crate::dns_audit::dns::reverse_name(ip("2001:db8:53::26")),
        listed = dnsbl::query_name(ip("2001:db8:53::66"), "zen.spamhaus.org"),
    ))
}

fn seen(address: &str, helo: Option<&str>) -> SeenIp {
    SeenIp {
        route: "good".into(),
        ip: ip(address),
        helo: helo.map(str::to_string),
        envelope_domain: "sender.test".into(),
        from_domain: "sender.test".into(),
        sending_ips: vec![ip("192.0.2.2")],
        dnsbl_zones: vec!["zen.spamhaus.org".into(), "bl.spamcop.net".into()],
    }
}

fn result(audit: &SeenIpAudit, which: Check) -> &CheckResult {
    audit
        .audit
        .checks
        .iter()
        .find(|c| c.check == which)
        .unwrap_or_else(|| panic!("no {} in {:#?}", which.as_str(), audit.audit.checks))
}

#[tokio::test]
async fn an_unlisted_ipv6_address_without_ptr_names_every_cause() {
    let audit = check(
        &dns(),
        &seen("2001:db8:53::25", Some("mail.sender.test")).normalized(),
    )
    .await;
    assert_eq!(audit.family, "ipv6");
    assert_eq!(audit.expected, Some(false));
    let checks: Vec<(&str, CheckStatus, Option<Cause>)> = audit
        .audit
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.status, c.cause))
        .collect();
    assert_eq!(
        checks,
        [
            (
                "sending_ip",
                CheckStatus::Warn,
                Some(Cause::UnexpectedSendingIp)
            ),
            ("ptr", CheckStatus::Fail, Some(Cause::PtrMissing)),
            ("fcrdns", CheckStatus::Fail, Some(Cause::PtrMissing)),
            ("helo", CheckStatus::Warn, Some(Cause::HeloMismatch)),
            ("spf", CheckStatus::Fail, Some(Cause::SpfIpNotAuthorized)),
            ("dnsbl", CheckStatus::Ok, None),
        ]
    );
    assert_eq!(audit.audit.status(), Status::Critical);
    let ptr = result(&audit, Check::Ptr);
    assert_eq!(
        ptr.detail,
        "no PTR record (5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.5.0.0.8.b.d.0.1.0.0.2.ip6.arpa: NXDOMAIN)"
    );
    assert!(
        ptr.fix
            .as_deref()
            .is_some_and(|fix| fix.starts_with("Publish a PTR record for the IPv6 address 2001:db8:53::25 (in 0.0.0.0.3.5.0.0.8.b.d.0.1.0.0.2.ip6.arpa) naming a host whose AAAA record")),
        "{:?}",
        ptr.fix
    );
    let sending = result(&audit, Check::SendingIp);
    assert_eq!(
        sending.detail,
        "the receiver saw the mail come from this IPv6 address, which the route's sending_ips (192.0.2.2) does not list"
    );
    assert!(
        sending
            .fix
            .as_deref()
            .is_some_and(|fix| fix.contains("the IPv6 address 2001:db8:53::25")
                && fix.contains("ip6:2001:db8:53::25")),
        "{:?}",
        sending.fix
    );
    let spf = result(&audit, Check::Spf);
    assert!(
        spf.detail.contains("2001:db8:53::25 fail"),
        "{}",
        spf.detail
    );
    assert!(
        spf.fix
            .as_deref()
            .is_some_and(|fix| fix.contains("ip6:2001:db8:53::25")),
        "{:?}",
        spf.fix
    );
    // SpamCop lists no IPv6: only ZEN was asked.
    let zones: Vec<&str> = audit.audit.dnsbl.iter().map(|z| z.zone.as_str()).collect();
    assert_eq!(zones, ["zen.spamhaus.org"]);
}

#[tokio::test]
async fn a_listed_ipv4_address_with_everything_in_place_is_ok() {
    let audit = check(
        &dns(),
        &seen("192.0.2.2", Some("mail.sender.test")).normalized(),
    )
    .await;
    assert_eq!(audit.family, "ipv4");
    assert_eq!(audit.expected, Some(true));
    for c in &audit.audit.checks {
        assert_eq!((c.status, c.cause), (CheckStatus::Ok, None), "{c:?}");
    }
    assert_eq!(audit.audit.status(), Status::Ok);
    assert_eq!(
        result(&audit, Check::SendingIp).detail,
        "listed in the route's sending_ips (192.0.2.2)"
    );
    assert_eq!(audit.audit.dnsbl.len(), 2);
}

#[tokio::test]
async fn ipv6_reverse_dns_is_confirmed_with_aaaa_and_blocklists_asked_in_nibbles() {
    let mut s = seen("2001:db8:53::26", None);
    s.sending_ips.push(ip("2001:db8:53::26"));
    let audit = check(&dns(), &s.normalized()).await;
    assert_eq!(audit.expected, Some(true));
    assert_eq!(
        result(&audit, Check::Fcrdns).detail,
        "mail6.sender.test resolves back to 2001:db8:53::26"
    );
    assert!(audit.audit.checks.iter().all(|c| c.check != Check::Helo));

    let listed = check(&dns(), &seen("2001:db8:53::66", None).normalized()).await;
    let dnsbl = result(&listed, Check::Dnsbl);
    assert_eq!(
        (dnsbl.status, dnsbl.cause),
        (CheckStatus::Fail, Some(Cause::Blocklisted))
    );
    assert!(
        dnsbl
            .fix
            .as_deref()
            .is_some_and(|fix| fix.contains("the IPv6 address 2001:db8:53::66")),
        "{:?}",
        dnsbl.fix
    );
}

#[tokio::test]
async fn no_sending_ips_means_no_expectation() {
    let mut s = seen("192.0.2.2", None);
    s.sending_ips.clear();
    let audit = check(&dns(), &s.normalized()).await;
    assert_eq!(audit.expected, None);
    assert!(
        audit
            .audit
            .checks
            .iter()
            .all(|c| c.check != Check::SendingIp)
    );
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let mut s = seen("::ffff:192.0.2.2", None);
    s.sending_ips = vec![ip("192.0.2.2")];
    let audit = check(&dns(), &s.normalized()).await;
    assert_eq!(
        (audit.ip, audit.family, audit.expected),
        (ip("192.0.2.2"), "ipv4", Some(true))
    );
}

fn auditor(ttl: Duration, budget: Duration) -> SeenIpAuditor {
    let runtime_free = Auditor::new(
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
        Duration::from_millis(100),
    )
    .expect("auditor");
    SeenIpAuditor::new(runtime_free, ttl, budget)
}

#[tokio::test]
async fn the_same_address_is_audited_once_within_the_ttl() {
    let seen_ip = seen("192.0.2.2", Some("mail.sender.test"));
    let auditor = auditor(Duration::from_millis(300), DEFAULT_BUDGET);
    let first = auditor.audit_with(&dns(), &seen_ip).await;
    // Written differently, the same identities.
    let mut again = seen_ip.clone();
    again.envelope_domain = "Sender.TEST.".into();
    let second = auditor.audit_with(&dns(), &again).await;
    assert!(Arc::ptr_eq(&first, &second), "cached");
    let other = auditor
        .audit_with(&dns(), &seen("2001:db8:53::25", None))
        .await;
    assert!(!Arc::ptr_eq(&first, &other));
    assert_eq!(auditor.cached_len(), 2);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let third = auditor.audit_with(&dns(), &seen_ip).await;
    assert!(!Arc::ptr_eq(&first, &third), "audited again after the ttl");
    assert_eq!(first.audit, third.audit);
}

/// DNS that never answers.
struct Silent;

impl Lookups for Silent {
    async fn txt(&self, _: &str) -> Result<Answer<Vec<u8>>, DnsError> {
        std::future::pending().await
    }
    async fn addresses(&self, _: &str, _: bool) -> Result<Answer<IpAddr>, DnsError> {
        std::future::pending().await
    }
    async fn a(&self, _: &str) -> Result<Answer<Ipv4Addr>, DnsError> {
        std::future::pending().await
    }
    async fn mx(&self, _: &str) -> Result<Answer<(u16, String)>, DnsError> {
        std::future::pending().await
    }
    async fn ptr(&self, _: IpAddr) -> Result<Answer<String>, DnsError> {
        std::future::pending().await
    }
    async fn spf_mail_from(&self, _: IpAddr, _: &str, _: &str) -> SpfResult {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_audit_takes_at_most_its_budget_and_reports_errors_not_failures() {
    let auditor = auditor(DEFAULT_TTL, Duration::from_millis(200));
    let started = std::time::Instant::now();
    let audit = auditor
        .audit_with(&Silent, &seen("2001:db8:53::25", None))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let checks: Vec<(&str, CheckStatus)> = audit
        .audit
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.status))
        .collect();
    assert_eq!(
        checks,
        [
            ("sending_ip", CheckStatus::Warn),
            ("ptr", CheckStatus::Error),
            ("spf", CheckStatus::Error)
        ]
    );
    assert!(result(&audit, Check::Ptr).detail.contains("budget of 0 s"));
    assert_eq!(audit.audit.causes(), [Cause::UnexpectedSendingIp]);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let auditor = auditor(DEFAULT_TTL, DEFAULT_BUDGET);
    let template = check(&dns(), &seen("192.0.2.2", None).normalized()).await;
    for n in 0..(MAX_CACHED + 40) {
        let address = IpAddr::from(Ipv4Addr::from(0xc000_0200_u32 + n as u32));
        let key = seen(&address.to_string(), None).normalized();
        auditor.store(key, Arc::new(template.clone()));
    }
    assert_eq!(auditor.cached_len(), MAX_CACHED);
}
