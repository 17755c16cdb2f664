//! The live scorecard: a route's newest found probe against every provider of the table.

use super::*;
use crate::outcome::{Placement, SeenIpChecks};
use crate::path::Receiver;
use crate::requirements::RequirementId;
use crate::state::probes::{ProbeKind, ProbeState};

fn config(bulk: bool) -> Config {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let text = format!(
        "[probe]\ntoken_key_file = \"token.key\"\n\
         [routes.news]\nhost = \"127.0.0.1\"\nport = 9\nfrom = \"p@news.test\"\ntls = \"none\"\n\
         bulk = {bulk}\nmessage.list_unsubscribe = \"<https://news.test/u/1>\"\n\
         [seeds.s1]\naddress = \"s1@seed.test\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n"
    );
    match crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A probe found at the lab's MX over IPv6 from ::1 without TLS, SPF and DKIM passing, its
/// header section without List-Unsubscribe-Post, and an audit that found no PTR for ::1.
fn found(created_at: f64) -> ProbeRecord {
    let raw = "Received: from mail.news.test (unknown [IPv6:::1])\r\n\
        \tby mx.seed.test (Postfix) with ESMTP id C1; Tue, 8 Dec 2026 01:00:05 +0000\r\n\
        Authentication-Results: mx.seed.test; spf=pass smtp.mailfrom=news.test;\r\n\
        \tdkim=pass header.d=news.test; dmarc=pass header.from=news.test\r\n\
        From: p@news.test\r\nDate: Tue, 8 Dec 2026 01:00:00 +0000\r\n\
        Message-ID: <mc.1@news.test>\r\nList-Unsubscribe: <https://news.test/u/1>\r\n\r\n";
    let mut j = crate::probe::judge::judge(
        raw.as_bytes(),
        &["mx.seed.test".to_string()],
        &Receiver::new(["seed.test"]),
    );
    j.seen_ip = Some(SeenIpChecks {
        ip: "::1".parse().expect("ip"),
        family: "ipv6".into(),
        expected: None,
        checks: vec![crate::dns_audit::CheckResult {
            check: Check::Ptr,
            subject: "::1".into(),
            status: CheckStatus::Fail,
            detail: "no PTR".into(),
            cause: Some(crate::diagnosis::Cause::PtrMissing),
            fix: Some("fix".into()),
        }],
    });
    ProbeRecord {
        probe_id: format!("p{created_at}"),
        round_id: 1,
        route: "news".into(),
        seed: "s1".into(),
        message_id: "<mc.1@news.test>".into(),
        state: ProbeState::Resolved,
        created_at,
        sent_at: Some(created_at),
        smtp: None,
        placement: Some(Placement::Inbox),
        folder: Some("INBOX".into()),
        judgement: Some(j),
        delivery_seconds: Some(0.2),
        late: false,
        error: None,
        error_reason: None,
        resolved_at: Some(created_at + 1.0),
        bounce: None,
        kind: ProbeKind::Scheduled,
        expired_as: None,
    }
}

fn status(r: &RouteRequirements, provider: &str, id: RequirementId) -> Option<ScoreStatus> {
    r.providers
        .iter()
        .find(|p| p.provider == provider)?
        .scores
        .iter()
        .find(|s| s.requirement == id)
        .map(|s| s.status)
}

#[test]
fn a_route_is_scored_for_every_provider_from_its_newest_found_probe() {
    let mut missing = found(50.0);
    missing.judgement = None;
    missing.state = ProbeState::Missing;
    let scored = score_routes(&[found(10.0), missing], &config(false));
    let [news] = scored.as_slice() else {
        panic!("one route: {scored:?}");
    };
    assert_eq!(news.probe_sent_at, Some(10.0));
    let providers: Vec<&str> = news.providers.iter().map(|p| p.provider.as_str()).collect();
    assert_eq!(providers, ["gmail", "yahoo", "microsoft"]);
    assert_eq!(
        status(news, "gmail", RequirementId::SpfOrDkim),
        Some(ScoreStatus::Met)
    );
    assert_eq!(
        status(news, "gmail", RequirementId::PtrFcrdns),
        Some(ScoreStatus::Unmet)
    );
    assert_eq!(
        status(news, "gmail", RequirementId::Tls),
        Some(ScoreStatus::Unmet)
    );
    assert_eq!(
        status(news, "gmail", RequirementId::Rfc5322),
        Some(ScoreStatus::Met)
    );
    assert_eq!(
        status(news, "gmail", RequirementId::ComplaintRate),
        Some(ScoreStatus::NotObservable)
    );
    // Not a bulk route: no bulk requirement is scored.
    assert_eq!(
        status(news, "gmail", RequirementId::OneClickUnsubscribe),
        None
    );
    let unmet: Vec<(&str, &str)> = news
        .unmet()
        .map(|(p, s)| (p.provider.as_str(), s.requirement.as_str()))
        .filter(|(p, _)| *p == "gmail")
        .collect();
    assert_eq!(unmet, [("gmail", "ptr_fcrdns"), ("gmail", "tls")]);
    let ptr = news
        .unmet()
        .find(|(_, s)| s.requirement == RequirementId::PtrFcrdns);
    let fix = ptr.and_then(|(_, s)| s.fix.clone()).unwrap_or_default();
    assert!(fix.contains("the IPv6 address ::1"), "{fix}");
}

#[test]
fn a_bulk_route_is_judged_for_one_click_unsubscribe() {
    let scored = score_routes(&[found(10.0)], &config(true));
    let news = &scored[0];
    assert!(news.bulk);
    // The probe has List-Unsubscribe but no List-Unsubscribe-Post and no DKIM h= covering it.
    assert_eq!(
        status(news, "gmail", RequirementId::OneClickUnsubscribe),
        Some(ScoreStatus::Unmet)
    );
}

#[test]
fn without_a_found_probe_everything_observable_is_unknown() {
    let scored = score_routes(&[], &config(false));
    let news = &scored[0];
    assert_eq!(news.probe_sent_at, None);
    assert!(news.unmet().next().is_none());
    assert_eq!(
        status(news, "yahoo", RequirementId::SpfOrDkim),
        Some(ScoreStatus::Unknown)
    );
}

#[test]
fn once_names_each_unmet_requirement_once_with_the_providers_that_require_it() {
    let scored = score_routes(&[found(10.0)], &config(false));
    let lines = unmet_lines(&scored);
    let ptr: Vec<&String> = lines.iter().filter(|l| l.contains("ptr_fcrdns")).collect();
    assert_eq!(ptr.len(), 1, "{lines:#?}");
    assert!(
        ptr[0].starts_with("news: ptr_fcrdns unmet at Gmail, Yahoo Mail (the IPv6 address ::1"),
        "{lines:#?}"
    );
    assert!(ptr[0].contains("ptr_missing: Publish a PTR record for the IPv6 address ::1"));
    // The table has Microsoft require neither PTR nor TLS of all senders: not named there.
    assert!(
        lines.iter().all(|l| !l.contains("Outlook.com")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("news: tls unmet at Gmail ("))
    );
}

#[test]
fn check_dns_scores_what_the_dns_alone_shows() {
    // A bulk route: DMARC is a bulk-sender requirement at every provider.
    let config = config(true);
    let route = config.route("news").expect("route");
    let result = |check, subject: &str, status, cause| crate::dns_audit::CheckResult {
        check,
        subject: subject.into(),
        status,
        detail: "d".into(),
        cause,
        fix: None,
    };
    let ip = "192.0.2.25";
    let mut route = route.clone();
    route.sending_ips = vec![ip.parse().expect("ip")];
    let audit = RouteAudit {
        route: "news".into(),
        from_domain: "news.test".into(),
        checks: vec![
            result(
                Check::Ptr,
                ip,
                CheckStatus::Fail,
                Some(crate::diagnosis::Cause::PtrMissing),
            ),
            result(
                Check::Dmarc,
                "news.test",
                CheckStatus::Fail,
                Some(crate::diagnosis::Cause::DmarcMissing),
            ),
        ],
        dkim_key_bits: None,
        spf_dns_lookups: None,
        spf_void_lookups: None,
        dnsbl: Vec::new(),
    };
    let scored = score_audit(&audit, &route);
    assert_eq!(
        status(&scored, "gmail", RequirementId::PtrFcrdns),
        Some(ScoreStatus::Unmet)
    );
    assert_eq!(
        status(&scored, "gmail", RequirementId::DmarcPublished),
        Some(ScoreStatus::Unmet)
    );
    // What only a probe shows stays unknown.
    assert_eq!(
        status(&scored, "gmail", RequirementId::Tls),
        Some(ScoreStatus::Unknown)
    );
    let lines = unmet_lines(&[scored]);
    assert!(
        lines.iter().any(|l| l.starts_with("news: ptr_fcrdns unmet at Gmail, Yahoo Mail (the IPv4 address 192.0.2.25 has no PTR record): ptr_missing: Publish a PTR record for the IPv4 address 192.0.2.25")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(
            |l| l.contains("dmarc_published unmet at Gmail, Yahoo Mail, Outlook.com")
                && l.contains("dmarc_missing: Publish a TXT record at _dmarc.news.test")
        ),
        "{lines:#?}"
    );
}
