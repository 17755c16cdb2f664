//! The DNS audit: reverse DNS, SPF, DKIM, DMARC and blocklists behind a route's verdicts, and
//! the MX / MTA-STS / TLS-RPT records of the seed domains.
//!
//! One module per standard, each a thin layer over the [`dns`] adapter (hickory-resolver) with the
//! record parsing and SPF evaluation left to mail-auth: [`rdns`], [`spf`], [`dkim`],
//! [`dmarc`], [`dnsbl`], [`seeds`]. [`diagnosis`] holds the fixed [`Cause`] set and the fix
//! sentences, shared with the prober. [`Auditor::audit`] runs them all for one
//! [`AuditTarget`] and returns an [`AuditReport`]; a DNS timeout, SERVFAIL or REFUSED makes a
//! check `error` (never `fail`: "did not answer" is not "missing").
//!
//! # Statuses and exit codes
//!
//! Each check result is `ok`, `warn` (works, but a risk: 1024-bit key, `t=y`, `+all`, HELO
//! mismatch, missing MTA-STS / TLS-RPT), `fail` (receivers hold it against the mail) or `error`
//! (could not be checked). The report is `critical` if any check fails, else `unknown` if any
//! errs, else `warning` if any warns, else `ok`; `check-dns` exits 0 / 1 / 2 / 3 accordingly,
//! and 3 for usage and resolver-setup errors.
//!
//! Every `fail` and `warn` carries exactly one cause, the root cause: a missing PTR fails `ptr`
//! and `fcrdns` with `ptr_missing` (not `fcrdns_mismatch`, which means "the PTR name does not
//! point back"); a DMARC failure caused by a failing SPF or DKIM check of an aligned domain
//! carries that check's cause. So each problem is one distinct cause in
//! [`AuditReport::causes`]. A DMARC policy of `p=none` and a missing `rua` are reported in the
//! detail but are not warnings: they meet receivers' requirements.
//!
//! # Metrics (exported by the prober, from an [`AuditReport`])
//!
//! `mailcanary_dns_check_ok{route,check}` = [`AuditReport::check_ok`] (1 when every result of
//! the check is ok or warn; absent when the check did not apply), `check` one of
//! [`Check::as_str`]; `mailcanary_dnsbl_listed{route,zone}` from [`AuditReport::dnsbl`];
//! `mailcanary_dkim_key_bits{route}` from [`AuditReport::dkim_key_bits`] (RSA only);
//! `mailcanary_spf_dns_lookups{route}` from [`AuditReport::spf_dns_lookups`].
//!
//! # The JSON contract (`mailcanary check-dns --json`)
//!
//! [`AuditReport::to_json`] prints one object. Keys are never removed or renamed; new keys may
//! be added. Every key below is always present (absent values are `null`, lists may be `[]`).
//!
//! ```json
//! {
//!   "route": "adhoc",
//!   "from_domain": "no-ptr.test",
//!   "status": "critical",
//!   "causes": ["ptr_missing"],
//!   "checks": [
//!     {
//!       "check": "ptr",
//!       "subject": "127.0.0.5",
//!       "status": "fail",
//!       "detail": "no PTR record (5.0.0.127.in-addr.arpa: NXDOMAIN)",
//!       "cause": "ptr_missing",
//!       "fix": "Publish a PTR record for 127.0.0.5 (in 0.0.127.in-addr.arpa) naming a host whose A record points back to it, and use that name as the HELO."
//!     },
//!     {
//!       "check": "spf",
//!       "subject": "no-ptr.test",
//!       "status": "ok",
//!       "detail": "\"v=spf1 ip4:127.0.0.5 -all\": 127.0.0.5 pass; 0 DNS lookups (limit 10), 0 void (limit 2)",
//!       "cause": null,
//!       "fix": null
//!     }
//!   ],
//!   "dkim_key_bits": 2048,
//!   "spf_dns_lookups": 0,
//!   "spf_void_lookups": 0,
//!   "dnsbl": [
//!     { "zone": "dnsbl.test", "listed": false, "listed_ips": [] }
//!   ]
//! }
//! ```
//!
//! - `status`: `ok` | `warning` | `critical` | `unknown`;
//! - `causes`: distinct causes of `fail` and `warn` checks, in check order;
//! - `checks[].check`: `ptr` | `fcrdns` | `helo` | `spf` | `dkim` | `dmarc` | `dnsbl` | `mx` |
//!   `mta_sts` | `tls_rpt`, in that order; one entry per subject (each IP for `ptr`, `fcrdns`,
//!   `helo`; `IP in ZONE` for `dnsbl`; each seed domain for `mx`, `mta_sts`, `tls_rpt`);
//!   a check that does not apply is absent;
//! - `checks[].status`: `ok` | `warn` | `fail` | `error`;
//! - `checks[].cause`: a [`Cause`] name or `null`; `dns_error` on DNS errors; `fix` is its
//!   sentence or `null`;
//! - `dnsbl[].listed`: `true` | `false` | `null` (the zone could not be queried).

pub mod audit;
pub mod diagnosis;
pub mod dkim;
pub mod dmarc;
pub mod dns;
pub mod dnsbl;
pub mod keys;
pub mod rdns;
pub mod report;
pub mod seeds;
pub mod spf;
pub mod tags;
#[cfg(test)]
mod testdns;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

pub use audit::{AuditTarget, Auditor, DEFAULT_TIMEOUT};
pub use diagnosis::{Cause, Context, Diagnosis, VerdictFacts, diagnose_verdict};
pub use dns::{DnsError, ResolverSetupError};
pub use report::{AuditReport, Check, CheckResult, DnsblZoneResult, OverallStatus, Status};

/// Arguments of `mailcanary check-dns`.
#[derive(Debug, clap::Args)]
pub struct CheckDnsArgs {
    /// Audit every route of this config file.
    #[arg(long, conflicts_with = "domain")]
    pub config: Option<std::path::PathBuf>,
    /// Ad hoc: the From / envelope domain to audit.
    #[arg(long, requires = "ip")]
    pub domain: Option<String>,
    /// Ad hoc: a sending IP address (repeatable).
    #[arg(long)]
    pub ip: Vec<std::net::IpAddr>,
    /// Ad hoc: the HELO name the sending server uses.
    #[arg(long)]
    pub helo: Option<String>,
    /// Ad hoc: the DKIM selector.
    #[arg(long)]
    pub selector: Option<String>,
    /// Print the stable JSON contract instead of the readable report.
    #[arg(long)]
    pub json: bool,
    /// Ask this DNS server (ADDR or ADDR:PORT, e.g. the lab's 127.0.53.53:53) instead of the
    /// system resolvers.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_nameserver)]
    pub nameserver: Option<SocketAddr>,
    /// Ad hoc: a DNS blocklist zone (repeatable). Default: zen.spamhaus.org, bl.spamcop.net,
    /// b.barracudacentral.org. Spamhaus refuses queries that come through public resolvers.
    #[arg(long, value_name = "ZONE")]
    pub dnsbl: Vec<String>,
    /// Ad hoc: a seed (receiving) domain whose MX, MTA-STS and TLS-RPT records to check
    /// (repeatable).
    #[arg(long, value_name = "DOMAIN")]
    pub seed_domain: Vec<String>,
    /// Ad hoc: the envelope (MAIL FROM) domain, when it differs from --domain.
    #[arg(long, value_name = "DOMAIN")]
    pub envelope_domain: Option<String>,
    /// Ad hoc: the DKIM signing key (PEM); the published key must be its public half.
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
}

fn parse_nameserver(value: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("expected ADDR or ADDR:PORT (e.g. 127.0.53.53:53), got '{value}'"))
}

/// A domain name as typed: non-empty labels of letters, digits, `-`, `_`; at least two labels.
fn valid_domain(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

/// Runs the ad hoc command (`--config` is handled by `crate::audit`, which knows the config);
/// exit codes as `once` (0 ok, 1 warning, 2 critical, 3 unknown).
pub fn run(args: &CheckDnsArgs) -> ExitCode {
    let Some(domain) = args.domain.as_deref() else {
        eprintln!("mailcanary check-dns: give --domain D --ip IP (or --config FILE)");
        return ExitCode::from(3);
    };
    let mut bad: Vec<String> = [
        Some(domain),
        args.helo.as_deref(),
        args.envelope_domain.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(args.seed_domain.iter().map(String::as_str))
    .chain(args.dnsbl.iter().map(String::as_str))
    .filter(|d| !valid_domain(d))
    .map(|d| format!("'{d}' is not a domain name"))
    .collect();
    if args.ip.is_empty() {
        bad.push("--ip is required".to_string());
    }
    if !bad.is_empty() {
        eprintln!("mailcanary check-dns: {}", bad.join("; "));
        return ExitCode::from(3);
    }
    let target = AuditTarget {
        route: "adhoc".to_string(),
        from_domain: domain.to_string(),
        envelope_domain: args.envelope_domain.clone(),
        ips: args.ip.clone(),
        helo: args.helo.clone(),
        dkim_selector: args.selector.clone(),
        dkim_domain: None,
        signing_key: args.signing_key.clone(),
        seed_domains: args.seed_domain.clone(),
        dnsbl_zones: if args.dnsbl.is_empty() {
            dnsbl::DEFAULT_ZONES.iter().map(|z| z.to_string()).collect()
        } else {
            args.dnsbl.clone()
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mailcanary check-dns: cannot start the async runtime: {err}");
            return ExitCode::from(3);
        }
    };
    let report = runtime.block_on(async {
        let auditor = Auditor::new(args.nameserver, DEFAULT_TIMEOUT)?;
        Ok::<_, ResolverSetupError>(auditor.audit(&target).await)
    });
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            eprintln!("mailcanary check-dns: {err}");
            return ExitCode::from(3);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    ExitCode::from(report.status().exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_values() {
        assert_eq!(
            parse_nameserver("127.0.53.53:53"),
            Ok("127.0.53.53:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("127.0.53.53"),
            Ok("127.0.53.53:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_nameserver("[::1]:5353"),
            Ok("[::1]:5353".parse().expect("addr"))
        );
        assert!(parse_nameserver("lab-dns").is_err());
    }

    #[test]
    fn domain_validation() {
        assert!(valid_domain("no-ptr.test"));
        assert!(valid_domain("mail.sender.test."));
        assert!(valid_domain("zen.spamhaus.org"));
        assert!(!valid_domain("localhost"));
        assert!(!valid_domain("a..b"));
        assert!(!valid_domain("bad domain.test"));
    }
}
