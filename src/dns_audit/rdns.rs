//! Reverse DNS of a sending IP: a PTR record exists (`ptr`), its name resolves back to the IP
//! (`fcrdns`, "iprev" in RFC 8601 §3), and the HELO name resolves to the IP and belongs to the
//! PTR name's organizational domain (`helo`).
//!
//! A missing PTR fails both `ptr` and `fcrdns` (the latter cannot be confirmed), with the one
//! root cause `ptr_missing`: one problem, one fix. `fcrdns_mismatch` is reserved for a PTR name
//! that does not point back. Alignment of the PTR name with the From domain is reported in the
//! `helo` detail but never fails it: receivers do not require it (mail from providers is sent
//! by their hosts, under the customers' From domains).

use std::net::IpAddr;

use super::dmarc_record::aligned;
use super::dns::{Answer, Lookups, reverse_name};
use super::findings::{Check, CheckResult};
use crate::diagnosis::{Cause, Context};

/// Checks `ptr`, `fcrdns` and (when a HELO name is given) `helo` for one sending IP.
pub(crate) async fn check<L: Lookups>(
    dns: &L,
    ip: IpAddr,
    helo: Option<&str>,
    from_domain: &str,
) -> Vec<CheckResult> {
    let ctx = Context {
        ip: Some(ip),
        helo,
        domain: Some(from_domain),
        ..Context::default()
    };
    let mut results = Vec::with_capacity(3);
    let names = check_ptr(dns, ip, &ctx, &mut results).await;
    let mut confirmed = None;
    if !names.is_empty() {
        let (fcrdns, name) = check_fcrdns(dns, ip, &names, &ctx).await;
        results.push(fcrdns);
        confirmed = name;
    }
    if let Some(helo) = helo {
        results.push(check_helo(dns, ip, helo, &names, confirmed.as_deref(), from_domain).await);
    }
    results
}

/// The `ptr` result, and the PTR names of `ip`. Without a name, `fcrdns` cannot be checked: its
/// result is pushed here too, with the PTR's cause (`ptr_missing`, or the DNS error).
async fn check_ptr<L: Lookups>(
    dns: &L,
    ip: IpAddr,
    ctx: &Context<'_>,
    results: &mut Vec<CheckResult>,
) -> Vec<String> {
    let subject = ip.to_string();
    match dns.ptr(ip).await {
        Err(err) => {
            results.push(CheckResult::error(Check::Ptr, &subject, &err, ctx));
            results.push(CheckResult::error_detail(
                Check::Fcrdns,
                &subject,
                format!("cannot be checked: the PTR lookup failed ({err})"),
                ctx,
            ));
            Vec::new()
        }
        Ok(answer @ (Answer::NxDomain | Answer::NoData)) => {
            results.push(CheckResult::failing(
                Check::Ptr,
                &subject,
                format!(
                    "no PTR record ({}: {})",
                    reverse_name(ip),
                    answer.missing_word()
                ),
                Cause::PtrMissing,
                ctx,
            ));
            results.push(CheckResult::failing(
                Check::Fcrdns,
                &subject,
                "cannot be forward-confirmed without a PTR record",
                Cause::PtrMissing,
                ctx,
            ));
            Vec::new()
        }
        Ok(Answer::Found(names)) => {
            let note = if names.len() > 1 {
                " (several PTR records: receivers may pick any)"
            } else {
                ""
            };
            results.push(CheckResult::ok(
                Check::Ptr,
                &subject,
                format!("PTR {}{note}", names.join(", ")),
            ));
            names
        }
    }
}

/// FCrDNS (RFC 8601 §3, "iprev"): at least one of the PTR `names` has an address record equal
/// to `ip`. The `fcrdns` result, and the name that resolves back.
async fn check_fcrdns<L: Lookups>(
    dns: &L,
    ip: IpAddr,
    names: &[String],
    ctx: &Context<'_>,
) -> (CheckResult, Option<String>) {
    let subject = ip.to_string();
    let mut seen = Vec::new();
    let mut error = None;
    for name in names {
        match dns.addresses(name, ip.is_ipv6()).await {
            Ok(answer) if answer.records().contains(&ip) => {
                let detail = format!("{name} resolves back to {ip}");
                return (
                    CheckResult::ok(Check::Fcrdns, &subject, detail),
                    Some(name.clone()),
                );
            }
            Ok(answer) => {
                let found = if answer.records().is_empty() {
                    answer.missing_word().to_string()
                } else {
                    answer
                        .records()
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                seen.push(format!("{name} → {found}"));
            }
            Err(err) => error = Some(err),
        }
    }
    let ctx = Context {
        ptr_name: names.first().map(String::as_str),
        ..*ctx
    };
    let result = match error {
        Some(err) => CheckResult::error(Check::Fcrdns, &subject, &err, &ctx),
        None => CheckResult::failing(
            Check::Fcrdns,
            &subject,
            format!(
                "the PTR name does not resolve back to {ip}: {}",
                seen.join("; ")
            ),
            Cause::FcrdnsMismatch,
            &ctx,
        ),
    };
    (result, None)
}

/// The `helo` check: a fully qualified HELO name (RFC 5321 §4.1.1.1) that resolves to `ip` and
/// shares the organizational domain of the PTR name (the confirmed one, else the first).
async fn check_helo<L: Lookups>(
    dns: &L,
    ip: IpAddr,
    helo: &str,
    names: &[String],
    confirmed: Option<&str>,
    from_domain: &str,
) -> CheckResult {
    let subject = ip.to_string();
    let ptr_name = confirmed.or(names.first().map(String::as_str));
    let ctx = Context {
        ip: Some(ip),
        helo: Some(helo),
        ptr_name,
        domain: Some(from_domain),
        ..Context::default()
    };
    if !helo.contains('.') || helo.parse::<IpAddr>().is_ok() || helo.starts_with('[') {
        return CheckResult::warning(
            Check::Helo,
            subject,
            format!("HELO {helo} is not a fully qualified domain name (RFC 5321 §4.1.1.1)"),
            Cause::HeloMismatch,
            &ctx,
        );
    }
    let resolves = match dns.addresses(helo, ip.is_ipv6()).await {
        Ok(answer) => answer.records().contains(&ip),
        Err(err) => return CheckResult::error(Check::Helo, subject, &err, &ctx),
    };
    if !resolves {
        return CheckResult::warning(
            Check::Helo,
            subject,
            format!("HELO {helo} does not resolve to {ip}"),
            Cause::HeloMismatch,
            &ctx,
        );
    }
    let Some(ptr_name) = ptr_name else {
        return CheckResult::ok(
            Check::Helo,
            subject,
            format!("HELO {helo} resolves to {ip} (no PTR name to compare: see ptr)"),
        );
    };
    if !aligned(dns, ptr_name, helo, false).await {
        return CheckResult::warning(
            Check::Helo,
            subject,
            format!(
                "HELO {helo} resolves to {ip} but is not in the domain of its PTR name {ptr_name}"
            ),
            Cause::HeloMismatch,
            &ctx,
        );
    }
    let from_note = if aligned(dns, ptr_name, from_domain, false).await {
        format!("; {ptr_name} is in the organizational domain of {from_domain}")
    } else {
        format!("; {ptr_name} is not in {from_domain}'s domain (informational)")
    };
    let relation = if ptr_name.eq_ignore_ascii_case(helo) {
        "equals the PTR name"
    } else {
        "shares the PTR name's organizational domain"
    };
    CheckResult::ok(
        Check::Helo,
        subject,
        format!("HELO {helo} resolves to {ip} and {relation}{from_note}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::findings::CheckStatus;
    use crate::dns_audit::testdns::FakeDns;

    /// 192.0.2.2: PTR and HELO as they should be; .3: its PTR name points elsewhere; .4: the
    /// reverse zone fails; .5: no PTR; .6: its PTR name's A lookup fails.
    fn dns() -> FakeDns {
        FakeDns::parse(
            r#"
            2.2.0.192.in-addr.arpa   PTR mail.example.test.
            mail.example.test        A   192.0.2.2
            3.2.0.192.in-addr.arpa   PTR Elsewhere.Example.test.
            elsewhere.example.test   A   192.0.2.99
            4.2.0.192.in-addr.arpa   SERVFAIL
            6.2.0.192.in-addr.arpa   PTR slow.example.test.
            slow.example.test        TIMEOUT
            other.example.test       A   192.0.2.77
            out.example.test         A   192.0.2.2
            mail.other.test          A   192.0.2.2
            "#,
        )
    }

    async fn run(ip: &str, helo: Option<&str>) -> Vec<CheckResult> {
        let ip: IpAddr = ip.parse().expect("ip");
        check(&dns(), ip, helo, "example.test").await
    }

    fn result(results: &[CheckResult], which: Check) -> &CheckResult {
        results
            .iter()
            .find(|r| r.check == which)
            .unwrap_or_else(|| panic!("no {} in {results:#?}", which.as_str()))
    }

    fn verdict(result: &CheckResult) -> (CheckStatus, Option<Cause>) {
        (result.status, result.cause)
    }

    #[tokio::test]
    async fn a_confirmed_ptr_and_a_helo_in_its_domain_pass() {
        let results = run("192.0.2.2", Some("out.example.test")).await;
        assert_eq!(results.len(), 3);
        for r in &results {
            assert_eq!(verdict(r), (CheckStatus::Ok, None), "{r:?}");
        }
        assert_eq!(result(&results, Check::Ptr).detail, "PTR mail.example.test");
        assert_eq!(
            result(&results, Check::Fcrdns).detail,
            "mail.example.test resolves back to 192.0.2.2"
        );
        assert!(
            result(&results, Check::Helo)
                .detail
                .contains("shares the PTR name's organizational domain"),
            "{results:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_ptr_fails_ptr_and_fcrdns_with_one_cause() {
        let results = run("192.0.2.5", None).await;
        assert_eq!(results.len(), 2, "no helo check without a HELO name");
        let ptr = result(&results, Check::Ptr);
        assert_eq!(verdict(ptr), (CheckStatus::Fail, Some(Cause::PtrMissing)));
        assert_eq!(
            ptr.detail,
            "no PTR record (5.2.0.192.in-addr.arpa: NXDOMAIN)"
        );
        assert_eq!(
            verdict(result(&results, Check::Fcrdns)),
            (CheckStatus::Fail, Some(Cause::PtrMissing))
        );
    }

    #[tokio::test]
    async fn a_ptr_name_that_does_not_point_back_is_fcrdns_mismatch() {
        let results = run("192.0.2.3", None).await;
        assert_eq!(
            verdict(result(&results, Check::Ptr)),
            (CheckStatus::Ok, None)
        );
        let fcrdns = result(&results, Check::Fcrdns);
        assert_eq!(
            verdict(fcrdns),
            (CheckStatus::Fail, Some(Cause::FcrdnsMismatch))
        );
        assert_eq!(
            fcrdns.detail,
            "the PTR name does not resolve back to 192.0.2.3: \
             elsewhere.example.test → 192.0.2.99"
        );
    }

    #[tokio::test]
    async fn a_helo_that_does_not_fit_is_helo_mismatch() {
        for (helo, why) in [
            ("other.example.test", "does not resolve to 192.0.2.2"),
            ("localhost", "is not a fully qualified domain name"),
            ("[192.0.2.2]", "is not a fully qualified domain name"),
            ("mail.other.test", "is not in the domain of its PTR name"),
        ] {
            let results = run("192.0.2.2", Some(helo)).await;
            let check = result(&results, Check::Helo);
            assert_eq!(
                verdict(check),
                (CheckStatus::Warn, Some(Cause::HeloMismatch)),
                "{helo}: {check:?}"
            );
            assert!(check.detail.contains(why), "{helo}: {}", check.detail);
        }
    }

    #[tokio::test]
    async fn dns_errors_are_errors_not_failures() {
        // The PTR lookup fails: ptr and fcrdns are unknown, not missing.
        let results = run("192.0.2.4", None).await;
        for which in [Check::Ptr, Check::Fcrdns] {
            assert_eq!(
                verdict(result(&results, which)),
                (CheckStatus::Error, Some(Cause::DnsError)),
                "{results:?}"
            );
        }
        assert!(
            result(&results, Check::Ptr).detail.contains("SERVFAIL"),
            "{results:?}"
        );
        // The PTR exists but its name's A lookup times out: fcrdns cannot be confirmed either way.
        let results = run("192.0.2.6", None).await;
        assert_eq!(
            verdict(result(&results, Check::Ptr)),
            (CheckStatus::Ok, None)
        );
        assert_eq!(
            verdict(result(&results, Check::Fcrdns)),
            (CheckStatus::Error, Some(Cause::DnsError))
        );
        // The HELO name's lookup times out.
        let results = run("192.0.2.2", Some("slow.example.test")).await;
        assert_eq!(
            verdict(result(&results, Check::Helo)),
            (CheckStatus::Error, Some(Cause::DnsError))
        );
    }
}
