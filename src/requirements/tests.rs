//! The requirement table and the scoring.

use std::collections::HashSet;

use super::*;
use crate::diagnosis::Cause;

fn table() -> &'static Table {
    Table::embedded().expect("the embedded table parses")
}

fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .unwrap_or_else(|err| panic!("{text:?} is not YYYY-MM-DD: {err}"))
}

#[test]
fn every_entry_of_the_table_is_complete_and_consistent() {
    let table = table();
    assert!(table.version >= 1);
    date(&table.checked);
    let providers: Vec<&str> = table.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(providers, ["gmail", "yahoo", "microsoft"]);
    let mut seen = HashSet::new();
    for r in &table.requirements {
        let name = format!("{}/{}", r.provider, r.id.as_str());
        assert!(
            table.provider(&r.provider).is_some(),
            "{name}: unknown provider"
        );
        assert!(r.source.starts_with("https://"), "{name}: {}", r.source);
        assert!(!r.text.trim().is_empty(), "{name}: no text");
        let published = date(&r.published);
        if let Some(enforced) = &r.enforced {
            assert!(
                date(enforced) >= published,
                "{name}: enforced before published"
            );
        }
        assert_eq!(
            r.observable,
            r.id.is_observable(),
            "{name}: `observable` disagrees with what the code can observe"
        );
        assert_eq!(
            r.why_not_observable.is_some(),
            !r.observable,
            "{name}: why_not_observable goes with observable = false"
        );
        assert!(
            seen.insert((r.provider.clone(), r.id, r.applies_to)),
            "{name}: listed twice"
        );
    }
    // What the issue asks for is there: SPF or DKIM for all, SPF and DKIM, DMARC published
    // and aligned and one-click unsubscribe for bulk, PTR, TLS, RFC 5322, and the complaint
    // rate listed as not observable.
    let has = |provider: &str, id: RequirementId, applies: AppliesTo| {
        table
            .requirements
            .iter()
            .any(|r| r.provider == provider && r.id == id && r.applies_to == applies)
    };
    for provider in ["gmail", "yahoo"] {
        assert!(has(provider, RequirementId::SpfOrDkim, AppliesTo::All));
        assert!(has(provider, RequirementId::PtrFcrdns, AppliesTo::All));
        assert!(has(provider, RequirementId::Rfc5322, AppliesTo::All));
        assert!(has(provider, RequirementId::ComplaintRate, AppliesTo::All));
        assert!(has(
            provider,
            RequirementId::OneClickUnsubscribe,
            AppliesTo::Bulk
        ));
    }
    assert!(has("gmail", RequirementId::Tls, AppliesTo::All));
    for provider in ["gmail", "yahoo", "microsoft"] {
        assert!(has(provider, RequirementId::SpfAndDkim, AppliesTo::Bulk));
        assert!(has(
            provider,
            RequirementId::DmarcPublished,
            AppliesTo::Bulk
        ));
        assert!(has(provider, RequirementId::DmarcAligned, AppliesTo::Bulk));
    }
}

#[test]
fn a_bad_table_is_an_error_not_a_panic() {
    let err = Table::parse("version = 1\nchecked = \"x\"\n[[provider]]\nid = 1\n")
        .expect_err("bad table");
    assert_eq!(err.reason(), "parse");
    let unknown_id = TABLE_TOML.replacen("id = \"spf_or_dkim\"", "id = \"spf_or_dkim_maybe\"", 1);
    assert!(
        Table::parse(&unknown_id).is_err(),
        "requirement ids are a fixed set"
    );
}

fn good_headers() -> HeaderCheck {
    check_headers(b"From: a@sender.example\nDate: Tue, 12 Nov 2024 11:14:08 +0000\nMessage-ID: <1@sender.example>\nSubject: x\n\nbody\n")
        .expect("message")
}

fn observations<'a>(headers: &'a HeaderCheck) -> Observations<'a> {
    Observations {
        spf: Some("pass"),
        dkim: Some("pass"),
        dmarc: Some("pass"),
        dmarc_record: DmarcRecord::Published,
        seen_ip: Some("192.0.2.2".parse().expect("ip")),
        ptr: Some(true),
        fcrdns: Some(true),
        last_hop_tls: Some(true),
        headers: Some(headers),
        unsubscribe: None,
        from_domain: Some("sender.example"),
        bulk: false,
    }
}

fn statuses(scores: &[Score]) -> Vec<(&'static str, &'static str)> {
    scores
        .iter()
        .map(|s| (s.requirement.as_str(), s.status.as_str()))
        .collect()
}

#[test]
fn a_good_route_meets_every_observable_requirement() {
    let headers = good_headers();
    let scores = score("gmail", &observations(&headers)).expect("table");
    assert_eq!(
        statuses(&scores),
        [
            ("spf_or_dkim", "met"),
            ("ptr_fcrdns", "met"),
            ("tls", "met"),
            ("rfc5322", "met"),
            ("complaint_rate", "not_observable"),
        ]
    );
    assert!(scores.iter().all(|s| s.cause.is_none() && s.fix.is_none()));
    assert!(
        scores[4].detail.contains("Postmaster Tools"),
        "{}",
        scores[4].detail
    );
}

#[test]
fn the_ipv6_address_without_ptr_and_a_plain_hop_are_unmet_with_their_fixes() {
    let headers = good_headers();
    let obs = Observations {
        seen_ip: Some("2001:db8:53::25".parse().expect("ip")),
        ptr: Some(false),
        fcrdns: Some(false),
        last_hop_tls: Some(false),
        ..observations(&headers)
    };
    let scores = score("gmail", &obs).expect("table");
    let ptr = &scores[1];
    assert_eq!(
        (ptr.requirement, ptr.status, ptr.cause),
        (
            RequirementId::PtrFcrdns,
            ScoreStatus::Unmet,
            Some(Cause::PtrMissing)
        )
    );
    assert_eq!(
        ptr.detail,
        "the IPv6 address 2001:db8:53::25 has no PTR record"
    );
    assert!(
        ptr.fix.as_deref().is_some_and(
            |f| f.starts_with("Publish a PTR record for the IPv6 address 2001:db8:53::25")
        ),
        "{:?}",
        ptr.fix
    );
    let tls = &scores[2];
    assert_eq!(
        (tls.status, tls.cause),
        (ScoreStatus::Unmet, Some(Cause::TlsMissing))
    );
    assert!(
        tls.fix
            .as_deref()
            .is_some_and(|f| f.contains("the IPv6 address 2001:db8:53::25"))
    );
    assert!(tls.source.starts_with("https://support.google.com/"));
}

#[test]
fn bulk_routes_are_held_to_the_bulk_requirements() {
    let headers = good_headers();
    let unsubscribe = check_unsubscribe(
        b"From: a@sender.example\nList-Unsubscribe: <mailto:u@sender.example>\n\n",
    )
    .expect("message");
    let obs = Observations {
        bulk: true,
        unsubscribe: Some(&unsubscribe),
        ..observations(&headers)
    };
    let scores = score("gmail", &obs).expect("table");
    assert_eq!(
        statuses(&scores),
        [
            ("spf_or_dkim", "met"),
            ("ptr_fcrdns", "met"),
            ("tls", "met"),
            ("rfc5322", "met"),
            ("complaint_rate", "not_observable"),
            ("spf_and_dkim", "met"),
            ("dmarc_published", "met"),
            ("dmarc_aligned", "met"),
            ("one_click_unsubscribe", "unmet"),
            ("sending_volume", "not_observable"),
        ]
    );
    let unsub = &scores[8];
    assert_eq!(unsub.cause, Some(Cause::OneClickUnsubscribeMissing));
    assert_eq!(
        unsub.fix.as_deref(),
        Some(
            "Add one-click unsubscribe to the bulk mail from sender.example (no https URI in \
             List-Unsubscribe; no List-Unsubscribe-Post field): a List-Unsubscribe header with an \
             https URI, List-Unsubscribe-Post: List-Unsubscribe=One-Click, and both fields in the \
             DKIM signature's h= tag (RFC 8058 §3.1, §4)."
        )
    );
    // Microsoft asks nothing of non-bulk senders but recommends authentication.
    let scores = score("microsoft", &observations(&headers)).expect("table");
    assert_eq!(statuses(&scores), [("spf_or_dkim", "met")]);
    assert_eq!(scores[0].level, Level::Recommended);
    assert!(
        score("nobody", &observations(&headers))
            .expect("table")
            .is_empty()
    );
}

#[test]
fn authentication_failures_name_their_cause() {
    let headers = good_headers();
    let bulk = |spf, dkim, dmarc, record| Observations {
        spf,
        dkim,
        dmarc,
        dmarc_record: record,
        bulk: true,
        ..observations(&headers)
    };
    let cause_of = |obs: &Observations<'_>, id: RequirementId| {
        score("yahoo", obs)
            .expect("table")
            .into_iter()
            .find(|s| s.requirement == id)
            .map(|s| (s.status, s.cause))
    };
    let obs = bulk(
        Some("fail"),
        Some("none"),
        Some("fail"),
        DmarcRecord::Published,
    );
    assert_eq!(
        cause_of(&obs, RequirementId::SpfOrDkim),
        Some((ScoreStatus::Unmet, Some(Cause::RejectedUnauthenticated)))
    );
    assert_eq!(
        cause_of(&obs, RequirementId::SpfAndDkim),
        Some((ScoreStatus::Unmet, Some(Cause::SpfIpNotAuthorized)))
    );
    assert_eq!(
        cause_of(&obs, RequirementId::DmarcAligned),
        Some((ScoreStatus::Unmet, Some(Cause::DmarcNotAligned)))
    );
    let obs = bulk(Some("pass"), Some("none"), None, DmarcRecord::Missing);
    assert_eq!(
        cause_of(&obs, RequirementId::SpfAndDkim),
        Some((ScoreStatus::Unmet, Some(Cause::DkimUnsigned)))
    );
    assert_eq!(
        cause_of(&obs, RequirementId::DmarcPublished),
        Some((ScoreStatus::Unmet, Some(Cause::DmarcMissing)))
    );
    assert_eq!(
        cause_of(&obs, RequirementId::DmarcAligned),
        Some((ScoreStatus::Unmet, Some(Cause::DmarcMissing)))
    );
    // Nothing observed is unknown, never unmet.
    let nothing = Observations {
        bulk: true,
        ..Observations::default()
    };
    for s in score("yahoo", &nothing).expect("table") {
        assert!(
            matches!(s.status, ScoreStatus::Unknown | ScoreStatus::NotObservable),
            "{s:?}"
        );
    }
}

#[test]
fn rfc5322_problems_are_named() {
    let check = check_headers(b"From: a@x.example\nFrom: b@x.example\nSubject: a\nSubject: b\nMessage-ID: not-an-id\n\nbody\n")
        .expect("message");
    assert_eq!(
        check.problems,
        [
            HeaderProblem::Repeated {
                field: "From".into(),
                count: 2
            },
            HeaderProblem::Missing {
                field: "Date".into()
            },
            HeaderProblem::Unparsable {
                field: "Message-ID".into()
            },
            HeaderProblem::Repeated {
                field: "Subject".into(),
                count: 2
            },
        ]
    );
    assert_eq!(
        check.describe(),
        "2 From fields, no Date field, an unreadable Message-ID field, 2 Subject fields"
    );
    let check = check_headers(b"From: nobody\nDate: yesterday\nSubject: x\n\n").expect("message");
    assert_eq!(
        check.problems,
        [
            HeaderProblem::Unparsable {
                field: "From".into()
            },
            HeaderProblem::Unparsable {
                field: "Date".into()
            },
            HeaderProblem::Missing {
                field: "Message-ID".into()
            },
        ]
    );
    let headers = check_headers(b"From: \"Probe\" <probe@sender.example>\r\nDate: Tue, 12 Nov 2024 11:14:08 +0000\r\nMessage-ID: <a.b@[192.0.2.1]>\r\n\r\n")
        .expect("message");
    assert!(headers.is_well_formed(), "{headers:?}");
    let fix = crate::diagnosis::Cause::HeaderMalformed.fix(&crate::diagnosis::Context {
        problem: Some(&check.describe()),
        ..Default::default()
    });
    assert!(
        fix.starts_with("Fix the header the sending software writes (an unreadable From field, an unreadable Date field, no Message-ID field)"),
        "{fix}"
    );
    assert!(check_headers(b"").is_err());
}

const SIGNED: &str = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=sender.example; s=s1;\n h=From:To:Subject:List-Unsubscribe:List-Unsubscribe-Post;\n bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=dGVzdA==";

#[test]
fn rfc8058_one_click_unsubscribe() {
    let complete = format!(
        "From: a@sender.example\nDKIM-Signature: {SIGNED}\nList-Unsubscribe: <mailto:u@sender.example?subject=unsubscribe>,\n <https://sender.example/u/123>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n\nbody\n"
    );
    let u = check_unsubscribe(complete.as_bytes()).expect("message");
    assert!(u.is_complete(), "{u:?}");
    assert_eq!(u.https_uri.as_deref(), Some("https://sender.example/u/123"));
    assert!(u.mailto && u.one_click_post);
    assert_eq!(u.signed_by, ["sender.example"]);

    // The signature does not cover List-Unsubscribe-Post.
    let unsigned = complete.replace("List-Unsubscribe:List-Unsubscribe-Post", "List-Unsubscribe");
    let u = check_unsubscribe(unsigned.as_bytes()).expect("message");
    assert_eq!(
        u.problems,
        ["no DKIM signature lists List-Unsubscribe and List-Unsubscribe-Post in h="]
    );
    // An http URI and a wrong Post value.
    let wrong = complete
        .replace("https://sender.example", "http://sender.example")
        .replace("List-Unsubscribe=One-Click", "One-Click");
    let u = check_unsubscribe(wrong.as_bytes()).expect("message");
    assert_eq!(
        u.problems,
        [
            "no https URI in List-Unsubscribe",
            "List-Unsubscribe-Post is not \"List-Unsubscribe=One-Click\""
        ]
    );
    // Complete, but the receiver's DKIM result fails: unmet.
    let complete = check_unsubscribe(complete.as_bytes()).expect("message");
    let headers = good_headers();
    let obs = Observations {
        bulk: true,
        dkim: Some("fail"),
        unsubscribe: Some(&complete),
        ..observations(&headers)
    };
    let s = score("gmail", &obs)
        .expect("table")
        .into_iter()
        .find(|s| s.requirement == RequirementId::OneClickUnsubscribe)
        .expect("scored");
    assert_eq!(s.status, ScoreStatus::Unmet);
    let obs = Observations {
        dkim: Some("pass"),
        ..obs
    };
    let s = score("gmail", &obs)
        .expect("table")
        .into_iter()
        .find(|s| s.requirement == RequirementId::OneClickUnsubscribe)
        .expect("scored");
    assert_eq!(s.status, ScoreStatus::Met);
    assert_eq!(
        s.detail,
        "List-Unsubscribe with https://sender.example/u/123, List-Unsubscribe-Post one-click, signed by sender.example"
    );
}

#[test]
fn requirement_labels_are_bounded() {
    let labels: HashSet<&str> = RequirementId::ALL.iter().map(|id| id.as_str()).collect();
    assert_eq!(labels.len(), RequirementId::ALL.len());
    for r in &table().requirements {
        assert!(labels.contains(r.id.as_str()));
    }
}
