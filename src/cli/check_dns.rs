//! `mailcanary check-dns`: the DNS audit as a command, for every route of a config file
//! (`--config`) or for one ad hoc identity (`--domain D --ip IP ...`). Readable or the JSON
//! contract of [`crate::dns_audit`]; exit codes as `once` (3 for usage and resolver errors). The
//! readable report of a config's routes adds a line per provider's sender requirement the DNS
//! alone shows unmet (DMARC record, PTR and FCrDNS of the first sending IP;
//! [`crate::results::scorecard::score_audit`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::dns_audit::{AuditTarget, Auditor, DEFAULT_TIMEOUT, RouteAudit, dnsbl};
use crate::results::scorecard;
use crate::status::Status;

/// Arguments of `mailcanary check-dns`.
#[derive(Debug, clap::Args)]
pub struct CheckDnsArgs {
    /// Audit every route of this config file.
    #[arg(long, conflicts_with = "domain")]
    pub config: Option<PathBuf>,
    /// Ad hoc: the From / envelope domain to audit.
    #[arg(long, requires = "ip")]
    pub domain: Option<String>,
    /// Ad hoc: a sending IP address (repeatable).
    #[arg(long)]
    pub ip: Vec<IpAddr>,
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

/// Runs the command: `--config` audits every route, else the ad hoc identity.
pub fn run(args: &CheckDnsArgs) -> Result<ExitCode, ExitCode> {
    match &args.config {
        Some(path) => config_routes(path, args.json),
        None => adhoc(args),
    }
}

fn fail(what: impl std::fmt::Display) -> ExitCode {
    super::fail(format_args!("check-dns: {what}"))
}

/// `check-dns --config FILE`: every route, readable or a JSON array; the worst status exits.
fn config_routes(path: &Path, json: bool) -> Result<ExitCode, ExitCode> {
    let config = super::load_config(path)?;
    let rt = super::runtime()?;
    let reports = rt
        .block_on(crate::jobs::audit_job::audit_all(&config))
        .map_err(fail)?;
    if json {
        let items: Vec<serde_json::Value> = reports.iter().map(RouteAudit::to_json_value).collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for r in &reports {
            println!("route {}:", r.route);
            // DNS records are whatever the zone's owner wrote: TXT strings may hold any byte.
            print!("{}", super::terminal::escape_lines(&r.render_text()));
            // The providers' sender requirements the DNS alone shows unmet.
            if let Some(route) = config.route(&r.route) {
                let scored = [scorecard::score_audit(r, route)];
                for line in scorecard::unmet_lines(&scored) {
                    println!(
                        "{}",
                        super::terminal::escape(&format!("  requirement {line}"))
                    );
                }
            }
        }
    }
    let worst = Status::worst(reports.iter().map(RouteAudit::status));
    Ok(ExitCode::from(worst.exit_code()))
}

/// The ad hoc command: one identity given on the command line.
fn adhoc(args: &CheckDnsArgs) -> Result<ExitCode, ExitCode> {
    let Some(domain) = args.domain.as_deref() else {
        return Err(fail("give --domain D --ip IP (or --config FILE)"));
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
        return Err(fail(bad.join("; ")));
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
    let rt = super::runtime()?;
    let report = rt
        .block_on(async {
            let auditor = Auditor::new(args.nameserver, DEFAULT_TIMEOUT)?;
            Ok::<_, crate::dns_audit::ResolverSetupError>(auditor.audit(&target).await)
        })
        .map_err(fail)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", super::terminal::escape_lines(&report.render_text()));
    }
    Ok(ExitCode::from(report.status().exit_code()))
}

/// A `--nameserver` value that is neither an address nor address:port.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected ADDR or ADDR:PORT (e.g. 127.0.53.53:53), got '{0}'")]
struct BadNameserver(String);

fn parse_nameserver(value: &str) -> Result<SocketAddr, BadNameserver> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| BadNameserver(value.to_string()))
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
