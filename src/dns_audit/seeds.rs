//! The seed (receiving) domains: a usable MX (RFC 5321 §5.1; a null MX, RFC 7505, accepts no
//! mail), and the TXT records of MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3). Only the
//! MTA-STS TXT record is checked, not the policy file served over HTTPS.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::mta_sts::{MtaSts, ReportUri, TlsRpt};

use super::dns::{Answer, Lookups};
use super::findings::{Check, CheckResult};
use crate::diagnosis::{Cause, Context};

/// `mx`, `mta_sts` and `tls_rpt` for one seed domain.
pub(crate) async fn check<L: Lookups>(dns: &L, domain: &str) -> Vec<CheckResult> {
    vec![
        check_mx(dns, domain).await,
        check_mta_sts(dns, domain).await,
        check_tls_rpt(dns, domain).await,
    ]
}

async fn check_mx<L: Lookups>(dns: &L, domain: &str) -> CheckResult {
    let ctx = Context {
        domain: Some(domain),
        ..Context::default()
    };
    let mx = match dns.mx(domain).await {
        Ok(mx) => mx,
        Err(err) => return CheckResult::error(Check::Mx, domain, &err, &ctx),
    };
    let hosts = match &mx {
        Answer::Found(hosts) => hosts,
        Answer::NxDomain | Answer::NoData => {
            return CheckResult::failing(
                Check::Mx,
                domain,
                format!("no MX record ({})", mx.missing_word()),
                Cause::MxMissing,
                &ctx,
            );
        }
    };
    if hosts.iter().all(|(_, host)| host.is_empty()) {
        return CheckResult::failing(
            Check::Mx,
            domain,
            "null MX (RFC 7505): the domain accepts no mail",
            Cause::MxMissing,
            &ctx,
        );
    }
    let mut usable = Vec::new();
    let mut unusable = Vec::new();
    let mut error = None;
    for (pref, host) in hosts.iter().filter(|(_, h)| !h.is_empty()) {
        let mut addresses = Vec::new();
        for v6 in [false, true] {
            match dns.addresses(host, v6).await {
                Ok(answer) => addresses.extend(answer.records().iter().copied()),
                Err(err) => error = Some(err),
            }
        }
        if addresses.is_empty() {
            unusable.push(format!("{pref} {host} (no address)"));
        } else {
            let shown: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            usable.push(format!("{pref} {host} ({})", shown.join(", ")));
        }
    }
    match (usable.is_empty(), error) {
        (false, _) => {
            let mut detail = format!("MX {}", usable.join("; "));
            if !unusable.is_empty() {
                detail.push_str(&format!("; unusable: {}", unusable.join("; ")));
            }
            CheckResult::ok(Check::Mx, domain, detail)
        }
        (true, Some(err)) => CheckResult::error(Check::Mx, domain, &err, &ctx),
        (true, None) => CheckResult::failing(
            Check::Mx,
            domain,
            format!("no MX host has an address: {}", unusable.join("; ")),
            Cause::MxMissing,
            &ctx,
        ),
    }
}

/// The records at `name` that start with `version` (case-insensitive).
async fn versioned<L: Lookups>(
    dns: &L,
    name: &str,
    version: &str,
) -> Result<(Vec<String>, Answer<Vec<u8>>), super::dns::DnsError> {
    let txt = dns.txt(name).await?;
    let records = txt
        .records()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .filter(|r| {
            r.len() >= version.len()
                && r.is_char_boundary(version.len())
                && r[..version.len()].eq_ignore_ascii_case(version)
        })
        .collect();
    Ok((records, txt))
}

async fn check_mta_sts<L: Lookups>(dns: &L, domain: &str) -> CheckResult {
    let name = format!("_mta-sts.{domain}");
    let ctx = Context {
        domain: Some(domain),
        ..Context::default()
    };
    let (records, txt) = match versioned(dns, &name, "v=STSv1").await {
        Ok(found) => found,
        Err(err) => return CheckResult::error(Check::MtaSts, &name, &err, &ctx),
    };
    match records.as_slice() {
        [] => CheckResult::warning(
            Check::MtaSts,
            &name,
            format!("no MTA-STS record ({})", txt.missing_word()),
            Cause::MtaStsMissing,
            &ctx,
        ),
        [record] => match MtaSts::parse(record.as_bytes()) {
            Ok(sts) => CheckResult::ok(
                Check::MtaSts,
                &name,
                format!("id={} (the HTTPS policy is not fetched)", sts.id),
            ),
            Err(_) => CheckResult::warning(
                Check::MtaSts,
                &name,
                format!("\"{record}\" is not a valid MTA-STS record (it needs id=)"),
                Cause::MtaStsMissing,
                &ctx,
            ),
        },
        several => CheckResult::warning(
            Check::MtaSts,
            &name,
            format!(
                "{} MTA-STS records: senders treat that as no policy (RFC 8461 §3.1)",
                several.len()
            ),
            Cause::MtaStsMissing,
            &ctx,
        ),
    }
}

async fn check_tls_rpt<L: Lookups>(dns: &L, domain: &str) -> CheckResult {
    let name = format!("_smtp._tls.{domain}");
    let ctx = Context {
        domain: Some(domain),
        ..Context::default()
    };
    let (records, txt) = match versioned(dns, &name, "v=TLSRPTv1").await {
        Ok(found) => found,
        Err(err) => return CheckResult::error(Check::TlsRpt, &name, &err, &ctx),
    };
    match records.as_slice() {
        [] => CheckResult::warning(
            Check::TlsRpt,
            &name,
            format!("no TLS-RPT record ({})", txt.missing_word()),
            Cause::TlsRptMissing,
            &ctx,
        ),
        [record] => match TlsRpt::parse(record.as_bytes()) {
            Ok(rpt) => {
                let rua: Vec<String> = rpt
                    .rua
                    .iter()
                    .map(|u| match u {
                        ReportUri::Mail(m) => format!("mailto:{m}"),
                        ReportUri::Http(h) => h.clone(),
                    })
                    .collect();
                CheckResult::ok(Check::TlsRpt, &name, format!("rua={}", rua.join(",")))
            }
            Err(_) => CheckResult::warning(
                Check::TlsRpt,
                &name,
                format!("\"{record}\" is not a valid TLS-RPT record (it needs rua=)"),
                Cause::TlsRptMissing,
                &ctx,
            ),
        },
        several => CheckResult::warning(
            Check::TlsRpt,
            &name,
            format!(
                "{} TLS-RPT records: senders use none (RFC 8460 §3)",
                several.len()
            ),
            Cause::TlsRptMissing,
            &ctx,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::findings::CheckStatus;
    use crate::dns_audit::testdns::FakeDns;

    fn dns() -> FakeDns {
        FakeDns::parse(
            r#"
            good.test               MX  10 mx.good.test
            mx.good.test            A   192.0.2.1
            _mta-sts.good.test      TXT "v=STSv1; id=20240101"
            _smtp._tls.good.test    TXT "v=TLSRPTv1; rua=mailto:tls@good.test"
            null.test               MX  0 .
            dangling.test           MX  10 nowhere.dangling.test
            _mta-sts.bad.test       TXT "v=STSv1;"
            bad.test                A   192.0.2.2
            "#,
        )
    }

    #[tokio::test]
    async fn seed_records() {
        let dns = dns();
        let good = check(&dns, "good.test").await;
        assert!(good.iter().all(|c| c.status == CheckStatus::Ok), "{good:?}");
        assert_eq!(good[2].detail, "rua=mailto:tls@good.test");
        let null = check_mx(&dns, "null.test").await;
        assert_eq!(null.cause, Some(Cause::MxMissing));
        assert!(null.detail.contains("null MX"));
        assert_eq!(
            check_mx(&dns, "dangling.test").await.cause,
            Some(Cause::MxMissing)
        );
        let bad = check(&dns, "bad.test").await;
        assert_eq!(bad[0].cause, Some(Cause::MxMissing));
        assert_eq!(bad[1].cause, Some(Cause::MtaStsMissing));
        assert_eq!(bad[1].status, CheckStatus::Warn);
        assert_eq!(bad[2].cause, Some(Cause::TlsRptMissing));
    }
}
