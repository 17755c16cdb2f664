//! Names the cause (from the fixed list in [`crate::diagnosis`]) and the fix of a failing
//! probe result, from what the receiver said about it.

use super::{Cause, Context, Diagnosis, VerdictFacts, diagnose_verdict};
use crate::config::Config;
use crate::probe::outcome::Placement;
use crate::probe::store::{ProbeRecord, ProbeState};
use crate::verdict::AuthResult;

/// Spam-filter rules that mean "the sending IP has no (matching) reverse DNS": rspamd's
/// `RDNS_NONE`/`HFILTER_HOSTNAME_UNKNOWN`, SpamAssassin's `RDNS_NONE`.
const NO_PTR_RULES: &[&str] = &["RDNS_NONE", "HFILTER_HOSTNAME_UNKNOWN"];
const BAD_PTR_RULES: &[&str] = &["RDNS_DYNAMIC", "HFILTER_HOSTNAME_5"];

/// The diagnosis of one stored probe. Unknown placements get none: nothing is known yet.
pub fn for_record(record: &ProbeRecord, config: Option<&Config>) -> Vec<Diagnosis> {
    let route = config.and_then(|c| c.route(&record.route));
    let domain = route.map(|r| r.from_domain().to_string());
    let ip = route.and_then(|r| r.sending_ips.first().copied());
    let selector = route.and_then(|r| r.dkim_selector.clone());
    let spam_rules: Vec<String> = record
        .judgement
        .as_ref()
        .map(|j| j.spam.rules.iter().take(5).cloned().collect())
        .unwrap_or_default();
    let ctx = Context {
        domain: domain.as_deref(),
        ip,
        helo: route.and_then(|r| r.helo.as_deref()),
        selector: selector.as_deref(),
        spam_rules: &spam_rules,
        smtp_reply: record.error.as_deref(),
        ..Context::default()
    };

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
    let placement = record.placement.or(match record.state {
        ProbeState::Missing => Some(Placement::Missing),
        _ => None,
    });
    let Some(placement) = placement else {
        return Vec::new();
    };
    if placement == Placement::Unknown {
        return Vec::new();
    }
    let Some(j) = record.judgement.as_ref() else {
        let facts = VerdictFacts {
            placement: Some(placement.as_str()),
            ..VerdictFacts::default()
        };
        return diagnose_verdict(&facts, &ctx);
    };
    let v = &j.verdict;
    let reported = |r: &AuthResult| (*r != AuthResult::None).then(|| r.as_str().to_string());
    let spf = reported(&v.spf);
    let dkim = reported(&v.dkim);
    let dmarc = reported(&v.dmarc);
    let facts = VerdictFacts {
        spf: spf.as_deref(),
        dkim: dkim.as_deref(),
        dkim_reason: j.dkim_reason.as_deref(),
        dmarc: dmarc.as_deref(),
        spam: j.spam.flagged,
        placement: Some(placement.as_str()),
        send_error: None,
    };
    let mut causes: Vec<Cause> = Vec::new();
    // Reverse DNS first: it is the most fundamental, and receivers score it as spam.
    let rule = |names: &[&str]| {
        j.spam
            .rules
            .iter()
            .any(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)))
    };
    match v.iprev {
        AuthResult::PermError => causes.push(Cause::PtrMissing),
        AuthResult::Fail => causes.push(Cause::FcrdnsMismatch),
        _ if rule(NO_PTR_RULES) => causes.push(Cause::PtrMissing),
        _ if rule(BAD_PTR_RULES) => causes.push(Cause::FcrdnsMismatch),
        _ => {}
    }
    for d in diagnose_verdict(&facts, &ctx) {
        // A spam verdict already explained by rDNS is not also "content".
        if d.cause == Cause::ContentSpam && !causes.is_empty() {
            continue;
        }
        if !causes.contains(&d.cause) {
            causes.push(d.cause);
        }
    }
    causes
        .into_iter()
        .map(|c| Diagnosis::new(c, &ctx))
        .collect()
}

/// Every cause name (for pre-setting the `mailcanary_diagnosis` series).
pub fn all_causes() -> Vec<&'static str> {
    Cause::ALL.iter().map(|c| c.as_str()).collect()
}
