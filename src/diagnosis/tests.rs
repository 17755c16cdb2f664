//! The cause list, its names and the fix sentences.

use super::*;

fn causes(facts: VerdictFacts<'_>) -> Vec<Cause> {
    diagnose_verdict(&facts, &Context::default())
        .into_iter()
        .map(|d| d.cause)
        .collect()
}

#[test]
fn serde_names_match_as_str() {
    for cause in Cause::ALL {
        let json = serde_json::to_string(&cause).expect("serializes");
        assert_eq!(json, format!("\"{}\"", cause.as_str()));
    }
}

#[test]
fn every_fix_is_one_sentence_and_names_the_record() {
    let ip: IpAddr = "127.0.0.5".parse().expect("ip");
    let ctx = Context {
        domain: Some("example.test"),
        ip: Some(ip),
        selector: Some("lab"),
        ..Context::default()
    };
    for cause in Cause::ALL {
        let fix = cause.fix(&ctx);
        assert!(fix.ends_with('.') || fix.ends_with(".)"), "{cause}: {fix}");
        assert!(!fix.contains('\n'), "{cause}: {fix}");
        assert!(!fix.contains("  "), "{cause}: double space in {fix}");
    }
    assert_eq!(
        Cause::PtrMissing.fix(&ctx),
        "Publish a PTR record for 127.0.0.5 (in 0.0.127.in-addr.arpa) naming a host whose A \
         record points back to it, and use that name as the HELO."
    );
    assert!(
        Cause::DkimKeyMissing
            .fix(&ctx)
            .contains("lab._domainkey.example.test")
    );
    assert!(
        Cause::DmarcMissing
            .fix(&ctx)
            .contains("_dmarc.example.test")
    );
    assert!(
        Cause::SpfIpNotAuthorized
            .fix(&ctx)
            .contains("ip4:127.0.0.5")
    );
}

#[test]
fn reverse_zones() {
    assert_eq!(
        reverse_zone("192.0.2.1".parse().expect("ip")),
        "2.0.192.in-addr.arpa"
    );
    assert_eq!(
        reverse_zone("2001:db8::1".parse().expect("ip")),
        "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
}

#[test]
fn lab_routes_yield_exactly_their_cause() {
    // good: everything passes.
    assert!(
        causes(VerdictFacts {
            spf: Some("pass"),
            dkim: Some("pass"),
            dmarc: Some("pass"),
            placement: Some("inbox"),
            ..Default::default()
        })
        .is_empty()
    );
    // spf-fail: SPF fails, DKIM aligned so DMARC passes, still filed as junk.
    assert_eq!(
        causes(VerdictFacts {
            spf: Some("fail"),
            dkim: Some("pass"),
            dmarc: Some("pass"),
            spam: true,
            placement: Some("junk"),
            ..Default::default()
        }),
        [Cause::SpfIpNotAuthorized]
    );
    // dkim-fail: the signature does not verify.
    assert_eq!(
        causes(VerdictFacts {
            spf: Some("pass"),
            dkim: Some("fail"),
            dkim_reason: Some("headers rsa verify failed"),
            dmarc: Some("pass"),
            ..Default::default()
        }),
        [Cause::DkimKeyMismatch]
    );
    // dmarc-fail: SPF passes for another domain, no DKIM: the missing signature and the
    // failed alignment are both named.
    assert_eq!(
        causes(VerdictFacts {
            spf: Some("PASS"),
            dkim: Some("none"),
            dmarc: Some("fail"),
            spam: true,
            ..Default::default()
        }),
        [Cause::DkimUnsigned, Cause::DmarcNotAligned]
    );
    // An unsigned message whose SPF also fails: every failing piece is named, DMARC too.
    assert_eq!(
        causes(VerdictFacts {
            spf: Some("fail"),
            dkim: Some("none"),
            dmarc: Some("fail"),
            ..Default::default()
        }),
        [
            Cause::SpfIpNotAuthorized,
            Cause::DkimUnsigned,
            Cause::DmarcNotAligned
        ]
    );
    // spam: content only.
    assert_eq!(
        causes(VerdictFacts {
            spf: Some("pass"),
            dkim: Some("pass"),
            dmarc: Some("pass"),
            spam: true,
            placement: Some("junk"),
            ..Default::default()
        }),
        [Cause::ContentSpam]
    );
}

#[test]
fn body_hash_and_missing_key_reasons() {
    let facts = |reason| VerdictFacts {
        dkim: Some("fail"),
        dkim_reason: Some(reason),
        ..Default::default()
    };
    assert_eq!(
        causes(facts("body hash did not verify")),
        [Cause::DkimBodyHash]
    );
    assert_eq!(
        causes(facts("No key for signature")),
        [Cause::DkimKeyMissing]
    );
}

#[test]
fn send_errors_and_missing_messages_stand_alone() {
    let found = diagnose_verdict(
        &VerdictFacts {
            send_error: Some("554 5.7.1 <probe@sender.test>: Sender address rejected"),
            spf: Some("fail"),
            ..Default::default()
        },
        &Context::default(),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].cause, Cause::SmtpRejected);
    assert!(found[0].fix.contains("554 5.7.1"));
    assert_eq!(
        causes(VerdictFacts {
            placement: Some("missing"),
            ..Default::default()
        }),
        [Cause::NotDelivered]
    );
}

#[test]
fn gmail_tab_fix_names_both_tabs() {
    let fix = Cause::GmailTab.fix(&Context {
        tab: Some("promotions"),
        expected_tab: Some("primary"),
        ..Context::default()
    });
    assert!(
        fix.starts_with("Gmail filed it under promotions instead of primary:"),
        "{fix}"
    );
    assert_eq!(Cause::GmailTab.as_str(), "gmail_tab");
}

#[test]
fn spam_fix_names_the_rules() {
    let rules = vec!["BAYES_SPAM".to_string(), "R_SUSPICIOUS_URL".to_string()];
    let found = diagnose_verdict(
        &VerdictFacts {
            spam: true,
            ..Default::default()
        },
        &Context {
            spam_rules: &rules,
            ..Context::default()
        },
    );
    assert_eq!(found[0].cause, Cause::ContentSpam);
    assert!(found[0].fix.contains("BAYES_SPAM, R_SUSPICIOUS_URL"));
}
