//! SPF (RFC 7208): exactly one `v=spf1` record, valid syntax, at most 10 DNS-querying terms and
//! 2 void lookups (§4.6.4), the sending IPs evaluate to `pass`, no `+all` / `?all`.
//!
//! mail-auth parses the records and evaluates the IPs (its `check_host` is the one receivers
//! built on it run). It does not report how many lookups a record needs, nor void lookups, so
//! `count_lookups` walks the whole include/redirect tree over the same resolver and counts
//! them. It counts the *whole* tree, not just the terms an evaluation happens to reach: that is
//! the number a receiver reaches for an IP the record does not list, and the number every SPF
//! checker reports.

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::SpfResult;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf, Variables};

use super::dns::{Answer, DnsError, Lookups};
use super::findings::{Check, CheckResult};
use crate::diagnosis::{Cause, Context};

/// RFC 7208 §4.6.4: at most 10 terms that cause DNS queries.
pub const MAX_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: at most 2 lookups that return nothing.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: an `mx` term may look at no more than 10 MX names.
const MAX_MX_NAMES: usize = 10;
/// Stop walking pathological trees (include loops) after this many records.
const WALK_RECORD_LIMIT: usize = 50;

/// What the TXT records at a name say about SPF (RFC 7208 §4.5).
#[derive(Debug)]
pub enum SpfRecord {
    /// Exactly one `v=spf1` record, parsed.
    One { text: String, record: Arc<Spf> },
    /// No `v=spf1` record; `void` when the TXT lookup itself found nothing (NXDOMAIN / NODATA).
    Missing { void: bool },
    /// Several `v=spf1` records: permerror.
    Several(usize),
    /// One `v=spf1` record that does not parse: permerror.
    Invalid { text: String, why: String },
}

/// Picks the SPF record out of the TXT records of a name: records that begin with `v=spf1`
/// followed by a space or the end (case-insensitive, RFC 7208 §4.5, §12).
pub fn select(txt: &Answer<Vec<u8>>) -> SpfRecord {
    let spf: Vec<&Vec<u8>> = txt
        .records()
        .iter()
        .filter(|r| {
            r.len() >= 6
                && r[..6].eq_ignore_ascii_case(b"v=spf1")
                && r.get(6).is_none_or(|c| *c == b' ')
        })
        .collect();
    match spf.as_slice() {
        [] => SpfRecord::Missing {
            void: txt.is_void(),
        },
        [one] => {
            let text = String::from_utf8_lossy(one).into_owned();
            let problems = syntax_problems(&text);
            match Spf::parse(one) {
                Ok(record) if problems.is_empty() => SpfRecord::One {
                    text,
                    record: Arc::new(record),
                },
                Ok(_) => SpfRecord::Invalid {
                    text,
                    why: problems.join("; "),
                },
                Err(err) => SpfRecord::Invalid {
                    text,
                    why: err.to_string(),
                },
            }
        }
        several => SpfRecord::Several(several.len()),
    }
}

/// What RFC 7208 §12 forbids and mail-auth's parser lets through (it is lenient on purpose,
/// as a verifier may be): unknown mechanisms, bad addresses or prefix lengths, an argument to
/// `all`, a doubled qualifier, repeated `redirect=` / `exp=` (§6). Receivers return permerror
/// for all of them, so the audit reports them.
pub fn syntax_problems(record: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut terms = record.split(' ').filter(|t| !t.is_empty());
    terms.next(); // v=spf1, checked by the caller
    let (mut redirects, mut exps) = (0, 0);
    for term in terms {
        let lower = term.to_ascii_lowercase();
        // A modifier is name=value with a name of letters, digits, -, _, . (§12).
        if let Some((name, _)) = lower.split_once('=')
            && !name.is_empty()
            && !name.contains(':')
            && !name.contains('/')
        {
            let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_name {
                problems.push(format!("\"{term}\" is not a valid modifier"));
            }
            redirects += usize::from(name == "redirect");
            exps += usize::from(name == "exp");
            continue;
        }
        let body = lower.strip_prefix(['+', '-', '~', '?']).unwrap_or(&lower);
        let (name, arg) = match body.find([':', '/']) {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        let ok = match name {
            "all" => arg.is_empty(),
            "include" | "exists" => arg.len() > 1 && arg.starts_with(':'),
            "ptr" => arg.is_empty() || (arg.len() > 1 && arg.starts_with(':')),
            "a" | "mx" => dual_cidr_ok(arg),
            "ip4" => address_ok::<std::net::Ipv4Addr>(arg, 32),
            "ip6" => address_ok::<std::net::Ipv6Addr>(arg, 128),
            _ => false,
        };
        if !ok {
            problems.push(format!("\"{term}\" is not a valid SPF term"));
        }
    }
    if redirects > 1 {
        problems.push("redirect= appears more than once".to_string());
    }
    if exps > 1 {
        problems.push("exp= appears more than once".to_string());
    }
    problems
}

/// `:ADDR[/LEN]` with LEN ≤ `max`.
fn address_ok<A: std::str::FromStr>(arg: &str, max: u8) -> bool {
    let Some(arg) = arg.strip_prefix(':') else {
        return false;
    };
    let (addr, len) = match arg.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (arg, None),
    };
    addr.parse::<A>().is_ok() && len.is_none_or(|l| l.parse::<u8>().is_ok_and(|l| l <= max))
}

/// `[:domain-spec][/LEN4][//LEN6]` of `a` and `mx` (§5.3, §5.4); the domain-spec is mail-auth's.
fn dual_cidr_ok(arg: &str) -> bool {
    let cidr = match arg.strip_prefix(':') {
        Some(rest) => {
            if rest.is_empty() || rest.starts_with('/') {
                return false;
            }
            // Prefix lengths follow the domain-spec; a macro may hold a '/' delimiter (%{ir/}).
            let after_macros = rest.rfind('}').map_or(0, |i| i + 1);
            match rest[after_macros..].find('/') {
                Some(i) => &rest[after_macros + i..],
                None => "",
            }
        }
        None => arg,
    };
    if cidr.is_empty() {
        return true;
    }
    let (v4, v6) = match cidr.split_once("//") {
        Some((v4, v6)) => (v4, Some(v6)),
        None => (cidr, None),
    };
    let v4_ok = v4.is_empty()
        || v4
            .strip_prefix('/')
            .is_some_and(|l| l.parse::<u8>().is_ok_and(|l| l <= 32));
    let v6_ok = v6.is_none_or(|l| l.parse::<u8>().is_ok_and(|l| l <= 128));
    v4_ok && v6_ok
}

/// The DNS cost of a record tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupCount {
    /// Terms that cause DNS queries: `include`, `a`, `mx`, `ptr`, `exists`, `redirect`.
    pub lookups: u32,
    /// Lookups that found nothing (NXDOMAIN or no answer).
    pub void_lookups: u32,
    /// Permanent errors met on the way (an include without a record, too many MX names...).
    pub problems: Vec<String>,
    /// The walk stopped early (include loop): the counts are lower bounds.
    pub truncated: bool,
}

/// Walks the record tree of `domain` and counts its DNS lookups (RFC 7208 §4.6.4). Macros are
/// expanded for `ip` (the first sending IP), as a receiver would.
pub(crate) async fn count_lookups<L: Lookups>(
    dns: &L,
    domain: &str,
    record: Arc<Spf>,
    ip: Option<IpAddr>,
) -> Result<LookupCount, DnsError> {
    let mut count = LookupCount::default();
    let sender = format!("postmaster@{domain}");
    let mut work: Vec<(String, Arc<Spf>)> = vec![(domain.to_string(), record)];
    let mut walked = 0usize;
    while let Some((current, record)) = work.pop() {
        walked += 1;
        if walked > WALK_RECORD_LIMIT {
            count.truncated = true;
            count.problems.push(format!(
                "more than {WALK_RECORD_LIMIT} records (include loop?)"
            ));
            break;
        }
        count_record(dns, &current, &record, ip, &sender, &mut count, &mut work).await?;
    }
    Ok(count)
}

/// Counts the lookups of one record of the tree (the record at `current`); the records its
/// `include` and `redirect` terms lead to go on `work`.
async fn count_record<L: Lookups>(
    dns: &L,
    current: &str,
    record: &Spf,
    ip: Option<IpAddr>,
    sender: &str,
    count: &mut LookupCount,
    work: &mut Vec<(String, Arc<Spf>)>,
) -> Result<(), DnsError> {
    let v6 = matches!(ip, Some(IpAddr::V6(_)));
    let mut vars = Variables::new();
    if let Some(ip) = ip {
        vars.set_ip(&ip);
    }
    vars.set_sender(sender.as_bytes().to_vec());
    vars.set_domain(current.as_bytes().to_vec());
    vars.set_helo_domain(current.as_bytes().to_vec());
    let expand = |m: &Macro| {
        m.eval(&vars, current, true)
            .trim_end_matches('.')
            .to_string()
    };

    let mut has_all = false;
    for directive in record.directives.iter() {
        match &directive.mechanism {
            Mechanism::All => has_all = true,
            Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => {}
            Mechanism::Include { macro_string } => {
                count.lookups += 1;
                let target = expand(macro_string);
                follow(dns, &target, "include", count, work).await?;
            }
            Mechanism::A { macro_string, .. } => {
                count.lookups += 1;
                if dns.addresses(&expand(macro_string), v6).await?.is_void() {
                    count.void_lookups += 1;
                }
            }
            Mechanism::Mx { macro_string, .. } => {
                count.lookups += 1;
                let target = expand(macro_string);
                let mx = dns.mx(&target).await?;
                if mx.is_void() {
                    count.void_lookups += 1;
                } else if mx.records().len() > MAX_MX_NAMES {
                    count.problems.push(format!(
                        "mx:{target} has {} MX names (at most {MAX_MX_NAMES})",
                        mx.records().len()
                    ));
                }
            }
            // Counted, not resolved: the answer depends on the receiver's PTR lookup.
            Mechanism::Ptr { .. } => count.lookups += 1,
            Mechanism::Exists { macro_string } => {
                count.lookups += 1;
                if dns.addresses(&expand(macro_string), false).await?.is_void() {
                    count.void_lookups += 1;
                }
            }
        }
    }
    // A redirect is ignored when the record has an `all` (RFC 7208 §6.1).
    if let (Some(redirect), false) = (&record.redirect, has_all) {
        count.lookups += 1;
        let target = expand(redirect);
        follow(dns, &target, "redirect", count, work).await?;
    }
    Ok(())
}

async fn follow<L: Lookups>(
    dns: &L,
    target: &str,
    term: &str,
    count: &mut LookupCount,
    work: &mut Vec<(String, Arc<Spf>)>,
) -> Result<(), DnsError> {
    match select(&dns.txt(target).await?) {
        SpfRecord::One { record, .. } => work.push((target.to_string(), record)),
        SpfRecord::Missing { void } => {
            if void {
                count.void_lookups += 1;
            }
            count
                .problems
                .push(format!("{term}:{target} has no SPF record"));
        }
        SpfRecord::Several(n) => count
            .problems
            .push(format!("{term}:{target} has {n} SPF records")),
        SpfRecord::Invalid { text, why } => count.problems.push(format!(
            "{term}:{target} has an invalid SPF record \"{text}\" ({why})"
        )),
    }
    Ok(())
}

/// The SPF check's result, with what DMARC and the metrics need.
pub(crate) struct SpfOutcome {
    pub check: CheckResult,
    pub lookups: Option<u32>,
    pub void_lookups: Option<u32>,
    /// Every sending IP evaluated to `pass` (there was at least one).
    pub passes: bool,
}

impl SpfOutcome {
    /// A check that ended before the lookups were counted (no usable record, DNS error).
    fn uncounted(check: CheckResult) -> Self {
        SpfOutcome {
            check,
            lookups: None,
            void_lookups: None,
            passes: false,
        }
    }
}

fn result_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// Checks the SPF record of `domain` (the envelope domain) for the sending `ips`.
pub(crate) async fn check<L: Lookups>(
    dns: &L,
    domain: &str,
    ips: &[IpAddr],
    helo: Option<&str>,
) -> SpfOutcome {
    let ctx = Context {
        domain: Some(domain),
        ip: ips.first().copied(),
        ..Context::default()
    };
    let (text, record) = match published_record(dns, domain, &ctx).await {
        Ok(found) => found,
        Err(check) => return SpfOutcome::uncounted(check),
    };
    let count = match count_lookups(dns, domain, Arc::clone(&record), ips.first().copied()).await {
        Ok(count) => count,
        Err(err) => {
            let mut check = CheckResult::error(Check::Spf, domain, &err, &ctx);
            check.detail = format!("\"{text}\": counting its DNS lookups failed: {err}");
            return SpfOutcome::uncounted(check);
        }
    };
    let results = evaluate(dns, domain, ips, helo).await;
    let passes = !results.is_empty() && results.iter().all(|(_, r)| *r == SpfResult::Pass);
    let detail = describe(&text, &results, &count);
    SpfOutcome {
        check: conclude(domain, detail, &count, &results, &record, &ctx),
        lookups: Some(count.lookups),
        void_lookups: Some(count.void_lookups),
        passes,
    }
}

/// The one SPF record of `domain` (its text as published, parsed), or the check's result when
/// there is none to evaluate: missing, several (RFC 7208 §4.5), invalid, or a DNS error.
async fn published_record<L: Lookups>(
    dns: &L,
    domain: &str,
    ctx: &Context<'_>,
) -> Result<(String, Arc<Spf>), CheckResult> {
    let txt = dns
        .txt(domain)
        .await
        .map_err(|err| CheckResult::error(Check::Spf, domain, &err, ctx))?;
    match select(&txt) {
        SpfRecord::One { text, record } => Ok((text, record)),
        SpfRecord::Missing { void } => {
            let detail = if void {
                format!(
                    "no SPF record: {domain} has no TXT record ({})",
                    txt.missing_word()
                )
            } else {
                format!("no SPF record: none of the TXT records of {domain} starts with v=spf1")
            };
            Err(CheckResult::failing(
                Check::Spf,
                domain,
                detail,
                Cause::SpfMissing,
                ctx,
            ))
        }
        SpfRecord::Several(n) => Err(CheckResult::failing(
            Check::Spf,
            domain,
            format!("{n} v=spf1 records at {domain}: RFC 7208 §4.5 makes that a permerror"),
            Cause::SpfPermerror,
            ctx,
        )),
        SpfRecord::Invalid { text, why } => Err(CheckResult::failing(
            Check::Spf,
            domain,
            format!("\"{text}\" is invalid ({why}): permerror"),
            Cause::SpfPermerror,
            ctx,
        )),
    }
}

/// Evaluates every sending IP as a receiver would (mail-auth's check_host, RFC 7208 §4, through
/// [`Lookups::spf_mail_from`]), with `postmaster@domain` as the MAIL FROM and `helo` (default:
/// `domain`) as the HELO name.
async fn evaluate<L: Lookups>(
    dns: &L,
    domain: &str,
    ips: &[IpAddr],
    helo: Option<&str>,
) -> Vec<(IpAddr, SpfResult)> {
    let helo = helo.unwrap_or(domain);
    let mut results = Vec::with_capacity(ips.len());
    for ip in ips {
        results.push((*ip, dns.spf_mail_from(*ip, helo, domain).await));
    }
    results
}

/// The check's detail: the record, each IP's result, the lookup counts and their problems.
fn describe(text: &str, results: &[(IpAddr, SpfResult)], count: &LookupCount) -> String {
    let evaluated = if results.is_empty() {
        "no sending IP given, not evaluated".to_string()
    } else {
        results
            .iter()
            .map(|(ip, r)| format!("{ip} {}", result_word(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut detail = format!(
        "\"{text}\": {evaluated}; {}{} DNS lookups (limit {MAX_LOOKUPS}), {} void (limit {MAX_VOID_LOOKUPS})",
        if count.truncated { "at least " } else { "" },
        count.lookups,
        count.void_lookups
    );
    if !count.problems.is_empty() {
        detail.push_str("; ");
        detail.push_str(&count.problems.join("; "));
    }
    detail
}

/// The status and the one root cause, most fundamental first: the lookup limits (RFC 7208
/// §4.6.4), then permerrors, temperrors, an IP that does not pass, a permissive `all`.
fn conclude(
    domain: &str,
    mut detail: String,
    count: &LookupCount,
    results: &[(IpAddr, SpfResult)],
    record: &Spf,
    ctx: &Context<'_>,
) -> CheckResult {
    let first_not_pass = results
        .iter()
        .find(|(_, r)| *r != SpfResult::Pass)
        .map(|(ip, r)| (*ip, *r));
    let all_qualifier = record.directives.iter().find_map(|d| match d.mechanism {
        Mechanism::All => Some(d.qualifier.clone()),
        _ => None,
    });
    if count.lookups > MAX_LOOKUPS {
        CheckResult::failing(Check::Spf, domain, detail, Cause::SpfTooManyLookups, ctx)
    } else if count.void_lookups > MAX_VOID_LOOKUPS {
        CheckResult::failing(Check::Spf, domain, detail, Cause::SpfVoidLookups, ctx)
    } else if !count.problems.is_empty() || results.iter().any(|(_, r)| *r == SpfResult::PermError)
    {
        CheckResult::failing(Check::Spf, domain, detail, Cause::SpfPermerror, ctx)
    } else if results.iter().any(|(_, r)| *r == SpfResult::TempError) {
        CheckResult::error_detail(Check::Spf, domain, detail, ctx)
    } else if let Some((ip, _)) = first_not_pass {
        let ctx = Context {
            ip: Some(ip),
            ..*ctx
        };
        CheckResult::failing(Check::Spf, domain, detail, Cause::SpfIpNotAuthorized, &ctx)
    } else if matches!(all_qualifier, Some(Qualifier::Pass | Qualifier::Neutral)) {
        let which = if all_qualifier == Some(Qualifier::Pass) {
            "+all"
        } else {
            "?all"
        };
        detail.push_str(&format!(
            "; ends in {which}: any server on the internet passes"
        ));
        CheckResult::warning(Check::Spf, domain, detail, Cause::SpfPermissive, ctx)
    } else {
        CheckResult::ok(Check::Spf, domain, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::testdns::FakeDns;

    fn fixture_dns() -> FakeDns {
        FakeDns::from_fixture("spf.zone")
    }

    async fn count_for(dns: &FakeDns, domain: &str) -> LookupCount {
        let txt = dns.txt(domain).await.expect("fixture answers");
        let SpfRecord::One { record, .. } = select(&txt) else {
            panic!("{domain}: no single SPF record in the fixture");
        };
        count_lookups(dns, domain, record, Some("192.0.2.1".parse().expect("ip")))
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn counts_every_lookup_term_in_the_tree() {
        let dns = fixture_dns();
        let plain = count_for(&dns, "plain.example").await;
        assert_eq!((plain.lookups, plain.void_lookups), (0, 0));
        assert!(plain.problems.is_empty());

        // a + mx + include(2 inside: a:, exists:) + redirect ignored because of -all.
        let mixed = count_for(&dns, "mixed.example").await;
        assert_eq!(mixed.lookups, 5, "{mixed:?}");
        assert_eq!(mixed.void_lookups, 0, "{mixed:?}");

        // The lab's spf-lookups.test, as recorded from the lab DNS: 12.
        let lab = count_for(&dns, "spf-lookups.test").await;
        assert_eq!(lab.lookups, 12, "{lab:?}");
        assert_eq!(lab.void_lookups, 0);

        // A Google-style chain: an include of a record with three includes.
        let chain = count_for(&dns, "chain.example").await;
        assert_eq!(chain.lookups, 4, "{chain:?}");
    }

    #[tokio::test]
    async fn redirect_counts_when_there_is_no_all() {
        let dns = fixture_dns();
        let redirected = count_for(&dns, "redirect.example").await;
        assert_eq!(redirected.lookups, 2, "{redirected:?}");
    }

    #[tokio::test]
    async fn void_lookups_and_missing_includes() {
        let dns = fixture_dns();
        let void = count_for(&dns, "void.example").await;
        assert_eq!(void.lookups, 3, "{void:?}");
        assert_eq!(void.void_lookups, 3, "{void:?}");
        assert_eq!(void.problems, ["include:gone.example has no SPF record"]);
    }

    #[tokio::test]
    async fn include_loops_terminate() {
        let dns = fixture_dns();
        let looped = count_for(&dns, "loop-a.example").await;
        assert!(looped.truncated);
        assert!(looped.lookups > MAX_LOOKUPS);
    }

    #[tokio::test]
    async fn macros_expand_for_the_sending_ip() {
        let dns = fixture_dns();
        // exists:%{i}._spf.macro.example → 192.0.2.1._spf.macro.example, which exists.
        let counted = count_for(&dns, "macro.example").await;
        assert_eq!(
            (counted.lookups, counted.void_lookups),
            (1, 0),
            "{counted:?}"
        );
    }

    #[test]
    fn record_selection() {
        let answer = |records: &[&str]| {
            Answer::Found(records.iter().map(|r| r.as_bytes().to_vec()).collect())
        };
        assert!(matches!(
            select(&answer(&["v=spf1 -all"])),
            SpfRecord::One { .. }
        ));
        assert!(matches!(
            select(&answer(&[
                "V=SPF1 ip4:192.0.2.0/24 -all",
                "google-site-verification=x"
            ])),
            SpfRecord::One { .. }
        ));
        // "v=spf10" is not an SPF record (RFC 7208 §4.5).
        assert!(matches!(
            select(&answer(&["v=spf10 -all"])),
            SpfRecord::Missing { void: false }
        ));
        assert!(matches!(
            select(&answer(&["v=spf1 -all", "v=spf1 +all"])),
            SpfRecord::Several(2)
        ));
        assert!(matches!(
            select(&answer(&["v=spf1 ip4:999.1.1.1 -all"])),
            SpfRecord::Invalid { .. }
        ));
        assert!(matches!(
            select(&answer(&["v=spf1 include -all"])),
            SpfRecord::Invalid { .. }
        ));
        assert!(matches!(
            select(&Answer::NxDomain),
            SpfRecord::Missing { void: true }
        ));
    }
}

#[cfg(test)]
mod syntax_tests {
    use super::syntax_problems;

    #[test]
    fn valid_records_have_no_problems() {
        for record in [
            "v=spf1 -all",
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
            "v=spf1 a mx a:mail.example.com/28 mx//64 a/24//64 -all",
            "v=spf1 include:_spf.google.com ?ptr ptr:example.com -all",
            "v=spf1 exists:%{i}._spf.example.com redirect=_spf.example.com",
            "v=spf1 a:%{d}/24 exp=explain._spf.%{d} -all",
            "v=spf1 a:%{ir/}.x.example/24//64 -all",
            "v=spf1 custom-mod=x -all",
        ] {
            assert!(
                syntax_problems(record).is_empty(),
                "{record}: {:?}",
                syntax_problems(record)
            );
        }
    }

    #[test]
    fn what_mail_auth_lets_through() {
        for (record, bad) in [
            ("v=spf1 ip4:999.1.1.1 -all", "ip4:999.1.1.1"),
            ("v=spf1 ip4:1.2.3.4/33 -all", "ip4:1.2.3.4/33"),
            ("v=spf1 ip6:2001:db8::/129 -all", "ip6:2001:db8::/129"),
            ("v=spf1 foo:bar -all", "foo:bar"),
            ("v=spf1 +-all", "+-all"),
            ("v=spf1 all:x", "all:x"),
            ("v=spf1 a/33 -all", "a/33"),
            ("v=spf1 include: -all", "include:"),
        ] {
            let problems = syntax_problems(record);
            assert_eq!(problems.len(), 1, "{record}: {problems:?}");
            assert!(problems[0].contains(bad), "{record}: {problems:?}");
        }
        assert_eq!(
            syntax_problems("v=spf1 redirect=a.example redirect=b.example"),
            ["redirect= appears more than once"]
        );
    }
}
