//! Names the cause (from the fixed list in [`crate::diagnosis`]) and the fix of a failing
//! probe result, from what the receiver said about it: its Authentication-Results (RFC 8601,
//! `iprev` §3 included), its spam filter's rules, and the audit of the address it saw the
//! probe come from (`probe::seen_address`: PTR, FCrDNS, HELO, SPF, blocklists, an address the route
//! does not list). A refusal or deferral names the provider's own words where it documents its
//! reply ([`bounce_diagnosis`]).

use crate::config::{Config, Route};
use crate::diagnosis::{Cause, Context, Diagnosis, VerdictFacts, diagnose_verdict, provider_reply};
use crate::gmail::Tab;
use crate::outcome::{Bounce, Placement, SeenIpChecks};
use crate::state::probes::{ProbeRecord, ProbeState};
use crate::verdict::{AuthResult, SpamVerdict, Verdict};

/// Spam-filter rules that mean "the sending IP has no (matching) reverse DNS": rspamd's
/// `RDNS_NONE`/`HFILTER_HOSTNAME_UNKNOWN`, SpamAssassin's `RDNS_NONE`.
const NO_PTR_RULES: &[&str] = &["RDNS_NONE", "HFILTER_HOSTNAME_UNKNOWN"];
const BAD_PTR_RULES: &[&str] = &["RDNS_DYNAMIC", "HFILTER_HOSTNAME_5"];
/// How many of the spam filter's rules a fix sentence names.
const SPAM_RULES_NAMED: usize = 5;

/// The cause a bounce names, from the class its status code and reply put it in (see
/// [`crate::verdict::dsn::classify`]): the failing method when the reply says which.
pub fn bounce_cause(bounce: &Bounce) -> Cause {
    match (bounce.class.as_str(), bounce.method.as_deref()) {
        ("ptr", _) => Cause::PtrMissing,
        ("auth", Some("spf")) => Cause::SpfIpNotAuthorized,
        ("auth", Some("dkim")) => Cause::DkimUnsigned,
        ("auth", Some("dmarc")) => Cause::DmarcNotAligned,
        ("auth", _) => Cause::RejectedUnauthenticated,
        ("blocklist", _) => Cause::Blocklisted,
        ("rate_limit", _) => Cause::RateLimited,
        ("recipient", _) => Cause::RecipientUnknown,
        ("mailbox_full", _) => Cause::MailboxFull,
        _ => Cause::SmtpRejected,
    }
}

/// The diagnosis of a refusal or deferral: when the reply is one a provider documents
/// ([`provider_reply::recognise`]: Gmail, Microsoft, Yahoo, GMX/web.de, Mail.ru), the cause it
/// names, with a fix that quotes the provider's code and names its delist or sender-support
/// page; otherwise the cause of the bounce's class ([`bounce_cause`]).
pub fn bounce_diagnosis(bounce: &Bounce, ctx: &Context<'_>) -> Diagnosis {
    let ctx = Context {
        smtp_reply: bounce.diagnostic_code.as_deref(),
        ..*ctx
    };
    let recognised = bounce
        .diagnostic_code
        .as_deref()
        .and_then(|reply| provider_reply::recognise(bounce.status.as_deref(), reply));
    match recognised {
        Some(reply) => {
            let mut diagnosis = reply.diagnosis(&ctx);
            diagnosis.fix = format!(
                "{} answered {}: {}",
                reply.provider.name(),
                reply.code,
                diagnosis.fix
            );
            diagnosis
        }
        None => Diagnosis::new(bounce_cause(bounce), &ctx),
    }
}

/// The diagnosis of one stored probe. Unknown placements get none: nothing is known yet.
pub fn for_record(record: &ProbeRecord, config: Option<&Config>) -> Vec<Diagnosis> {
    let route = config.and_then(|c| c.route(&record.route));
    let ctx = context(record, route);
    if record.state == ProbeState::SendFailed {
        let facts = VerdictFacts {
            send_error: Some(
                record
                    .error
                    .as_deref()
                    .unwrap_or("the SMTP server refused the message"),
            ),
            ..VerdictFacts::default()
        };
        return diagnose_verdict(&facts, &ctx);
    }
    if let Some(bounce) = record.bounce.as_ref() {
        // A refusal (or deferral) names its own cause, from the receiver's reply.
        return vec![bounce_diagnosis(bounce, &ctx)];
    }
    let placement = record.placement.or(match record.state {
        ProbeState::Missing => Some(Placement::Missing),
        _ => None,
    });
    match (placement, record.judgement.as_ref()) {
        (None | Some(Placement::Unknown), _) => Vec::new(),
        (Some(placement), None) => {
            let facts = VerdictFacts {
                placement: Some(placement.as_str()),
                ..VerdictFacts::default()
            };
            diagnose_verdict(&facts, &ctx)
        }
        (Some(placement), Some(j)) => {
            let mut causes = judged(
                &j.verdict,
                &j.spam,
                j.dkim_reason.as_deref(),
                placement,
                &ctx,
            );
            causes.extend(tab_cause(j.tab, route.and_then(|r| r.expect_tab), &ctx));
            merge_seen_ip(&mut causes, j.seen_ip.as_ref());
            causes
        }
    }
}

/// Adds what the audit of the address the receiver saw found (`probe::seen_address`): each finding's
/// cause with its fix, which names that address and its family. A cause the verdict already
/// named (the receiver's iprev said `ptr_missing` too) is named once, with the audit's fix: it
/// names the address the receiver judged, where the verdict's names the route's configured one.
fn merge_seen_ip(causes: &mut Vec<Diagnosis>, seen: Option<&SeenIpChecks>) {
    let Some(seen) = seen else {
        return;
    };
    for finding in seen.findings() {
        let (Some(cause), Some(fix)) = (finding.cause, finding.fix.as_ref()) else {
            continue;
        };
        match causes.iter_mut().find(|d| d.cause == cause) {
            Some(known) => known.fix.clone_from(fix),
            None => causes.push(Diagnosis {
                cause,
                fix: fix.clone(),
            }),
        }
    }
}

/// `gmail_tab` when Gmail filed an inbox hit under another tab than the route expects. No tab
/// known (not Gmail, or tabs off) or no expectation: nothing to say.
fn tab_cause(tab: Option<Tab>, expected: Option<Tab>, ctx: &Context<'_>) -> Option<Diagnosis> {
    let (tab, expected) = (tab?, expected?);
    (tab != expected).then(|| {
        let ctx = Context {
            tab: Some(tab.as_str()),
            expected_tab: Some(expected.as_str()),
            ..*ctx
        };
        Diagnosis::new(Cause::GmailTab, &ctx)
    })
}

/// What the fix sentences can name: the route's From domain, first sending IP, HELO name and
/// DKIM selector, the spam filter's top rules, the SMTP reply.
fn context<'a>(record: &'a ProbeRecord, route: Option<&'a Route>) -> Context<'a> {
    // The rules that count against the message, most significant first; results stored by
    // older versions have none ranked and fall back to the rules as written.
    let spam_rules = record.judgement.as_ref().map_or(&[][..], |j| {
        let ranked = if j.spam_reasons.is_empty() {
            &j.spam.rules
        } else {
            &j.spam_reasons
        };
        &ranked[..ranked.len().min(SPAM_RULES_NAMED)]
    });
    Context {
        domain: route.map(Route::from_domain),
        // The configured sending IP, else the one the receiver saw (Received-SPF client-ip,
        // Authentication-Results smtp.remote-ip / policy.iprev).
        ip: route
            .and_then(|r| r.sending_ips.first().copied())
            .or_else(|| record.judgement.as_ref().and_then(|j| j.client_ip)),
        helo: route.and_then(|r| r.helo.as_deref()),
        selector: route.and_then(|r| r.dkim_selector.as_deref()),
        spam_rules,
        smtp_reply: record.error.as_deref(),
        ..Context::default()
    }
}

/// The causes of a judged probe: reverse DNS first (the most fundamental, and receivers score
/// it as spam), then what the receiver's verdict says; a spam verdict already explained by
/// reverse DNS is not also "content".
fn judged(
    v: &Verdict,
    spam: &SpamVerdict,
    dkim_reason: Option<&str>,
    placement: Placement,
    ctx: &Context<'_>,
) -> Vec<Diagnosis> {
    let reported = |r: &AuthResult| (*r != AuthResult::None).then(|| r.as_str().to_string());
    let spf = reported(&v.spf);
    let dkim = reported(&v.dkim);
    let dmarc = reported(&v.dmarc);
    let facts = VerdictFacts {
        spf: spf.as_deref(),
        dkim: dkim.as_deref(),
        dkim_reason,
        dmarc: dmarc.as_deref(),
        spam: spam.flagged,
        placement: Some(placement.as_str()),
        send_error: None,
    };
    let mut causes: Vec<Cause> = reverse_dns_cause(&v.iprev, &spam.rules)
        .into_iter()
        .collect();
    for d in diagnose_verdict(&facts, ctx) {
        if d.cause == Cause::ContentSpam && !causes.is_empty() {
            continue;
        }
        if !causes.contains(&d.cause) {
            causes.push(d.cause);
        }
    }
    causes.into_iter().map(|c| Diagnosis::new(c, ctx)).collect()
}

/// Reverse DNS as the receiver saw it: its `iprev` result (RFC 8601 §3: permerror when there
/// is no PTR, fail when the PTR name does not resolve back), else its spam filter's rules.
fn reverse_dns_cause(iprev: &AuthResult, spam_rules: &[String]) -> Option<Cause> {
    let rule = |names: &[&str]| {
        spam_rules
            .iter()
            .any(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)))
    };
    match iprev {
        AuthResult::PermError => Some(Cause::PtrMissing),
        AuthResult::Fail => Some(Cause::FcrdnsMismatch),
        _ if rule(NO_PTR_RULES) => Some(Cause::PtrMissing),
        _ if rule(BAD_PTR_RULES) => Some(Cause::FcrdnsMismatch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::{Check, CheckResult, CheckStatus};

    fn check(check: Check, status: CheckStatus, cause: Option<Cause>, fix: &str) -> CheckResult {
        CheckResult {
            check,
            subject: "::1".into(),
            status,
            detail: "d".into(),
            cause,
            fix: cause.map(|_| fix.to_string()),
        }
    }

    fn bounce(status: &str, class: &str, reply: &str) -> Bounce {
        Bounce {
            status: Some(status.into()),
            action: Some("failed".into()),
            remote_mta: None,
            diagnostic_code: Some(reply.into()),
            class: class.into(),
            method: None,
        }
    }

    #[test]
    fn a_providers_documented_reply_names_its_cause_code_and_page() {
        let ctx = Context {
            domain: Some("example.org"),
            ip: Some("192.0.2.7".parse().expect("ip")),
            ..Context::default()
        };
        // Quoted from Gmail's "SMTP errors and codes" (tests/fixtures/dsn/gmail-unauthenticated).
        let gmail = bounce(
            "5.7.26",
            "auth",
            "550-5.7.26 This mail has been blocked because the sender is unauthenticated. \
             550-5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM. \
             550-5.7.26 For instructions on setting up authentication, go to 550 5.7.26 \
             https://support.google.com/mail/answer/81126#authentication d2e1a72fcca58 - gsmtp",
        );
        let d = bounce_diagnosis(&gmail, &ctx);
        assert_eq!(d.cause, Cause::RejectedUnauthenticated);
        assert!(
            d.fix
                .starts_with("Gmail answered 5.7.26: Authenticate mail from example.org"),
            "{}",
            d.fix
        );
        assert!(d.fix.contains("https://support.google.com/"), "{}", d.fix);
        // Outlook.com's S3150: a blocklisting, with Microsoft's delist page.
        let outlook = bounce(
            "5.7.1",
            "blocklist",
            "550 5.7.1 Unfortunately, messages from [192.0.2.7] weren't sent. Please contact \
             your Internet service provider since part of their network is on our block list \
             (S3150). You can also refer your provider to \
             http://mail.live.com/mail/troubleshooting.aspx#errors.",
        );
        let d = bounce_diagnosis(&outlook, &ctx);
        assert_eq!(d.cause, Cause::Blocklisted);
        assert!(d.fix.starts_with("Microsoft answered S3150: "), "{}", d.fix);
        assert!(d.fix.contains("delist request: https://"), "{}", d.fix);
        // Yahoo's TSS04 deferral: rate limited, the reply quoted in the fix.
        let yahoo = bounce(
            "4.7.0",
            "rate_limit",
            "421 4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected \
             volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
        );
        let d = bounce_diagnosis(&yahoo, &ctx);
        assert_eq!(d.cause, Cause::RateLimited);
        assert!(d.fix.starts_with("Yahoo answered TSS04: "), "{}", d.fix);
        assert!(d.fix.contains("https://senders.yahooinc.com/"), "{}", d.fix);
        // A reply no provider here documents: the cause of the bounce's class, no provider named.
        let other = bounce(
            "5.7.25",
            "ptr",
            "550 5.7.25 Client host rejected: cannot find your hostname",
        );
        let d = bounce_diagnosis(&other, &ctx);
        assert_eq!(d, Diagnosis::new(Cause::PtrMissing, &ctx));
    }

    #[test]
    fn the_seen_address_audit_names_its_findings_once_with_its_fix() {
        let ctx = Context::default();
        // The receiver's iprev said no PTR too: one cause, with the audit's fix.
        let mut causes = vec![Diagnosis::new(Cause::PtrMissing, &ctx)];
        let seen = SeenIpChecks {
            ip: "::1".parse().expect("ip"),
            family: "ipv6".into(),
            expected: Some(false),
            checks: vec![
                check(
                    Check::SendingIp,
                    CheckStatus::Warn,
                    Some(Cause::UnexpectedSendingIp),
                    "not listed: the IPv6 address ::1",
                ),
                check(
                    Check::Ptr,
                    CheckStatus::Fail,
                    Some(Cause::PtrMissing),
                    "Publish a PTR record for the IPv6 address ::1",
                ),
                check(Check::Spf, CheckStatus::Ok, None, ""),
                // Could not be checked: not a finding.
                check(
                    Check::Dnsbl,
                    CheckStatus::Error,
                    Some(Cause::DnsError),
                    "dns",
                ),
            ],
        };
        merge_seen_ip(&mut causes, Some(&seen));
        let names: Vec<&str> = causes.iter().map(|d| d.cause.as_str()).collect();
        assert_eq!(names, ["ptr_missing", "unexpected_sending_ip"]);
        assert_eq!(
            causes[0].fix,
            "Publish a PTR record for the IPv6 address ::1"
        );
        merge_seen_ip(&mut causes, None);
        assert_eq!(causes.len(), 2);
    }

    #[test]
    fn a_tab_other_than_the_expected_is_a_cause() {
        let ctx = Context::default();
        let d = tab_cause(Some(Tab::Updates), Some(Tab::Primary), &ctx).expect("a cause");
        assert_eq!(d.cause, Cause::GmailTab);
        assert!(d.fix.contains("updates instead of primary"), "{}", d.fix);
        assert_eq!(
            tab_cause(Some(Tab::Primary), Some(Tab::Primary), &ctx),
            None
        );
        // Not at Gmail (no tab), or no expectation: nothing to say.
        assert_eq!(tab_cause(None, Some(Tab::Primary), &ctx), None);
        assert_eq!(tab_cause(Some(Tab::Promotions), None, &ctx), None);
    }
}
