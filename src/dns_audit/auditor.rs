//! The library entry point: an [`Auditor`] (one resolver, reused) audits an [`AuditTarget`]
//! (one route) into a [`RouteAudit`]. The checks run concurrently, DMARC last: its alignment
//! (RFC 7489 §3.1) weighs the results of the SPF and DKIM checks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use mail_auth::MessageAuthenticator;

use super::dkim::DkimOutcome;
use super::dns::{Dns, ResolverSetupError, normalize_domain};
use super::findings::{CheckResult, DnsblZoneResult, RouteAudit};
use super::spf::SpfOutcome;
use super::{dkim, dmarc_record, dnsbl, rdns, seeds, spf};

/// The default per-query DNS timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to audit: one route's identities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditTarget {
    /// The route name, reported as is (the `route` metric label).
    pub route: String,
    /// The RFC 5322 From domain (DMARC's author domain).
    pub from_domain: String,
    /// The RFC 5321 MAIL FROM domain, whose SPF record is checked; default: `from_domain`.
    pub envelope_domain: Option<String>,
    /// The addresses the route's mail leaves from.
    pub ips: Vec<IpAddr>,
    /// The HELO/EHLO name of the sending server; no `helo` check without it.
    pub helo: Option<String>,
    /// The DKIM selector; no `dkim` check without it (and DMARC then counts on SPF alone).
    pub dkim_selector: Option<String>,
    /// The DKIM signing domain (`d=`); default: `from_domain`.
    pub dkim_domain: Option<String>,
    /// The signing key (PEM, PKCS #1 or PKCS #8) to compare with the published key.
    pub signing_key: Option<PathBuf>,
    /// Receiving domains whose MX, MTA-STS and TLS-RPT records are checked.
    pub seed_domains: Vec<String>,
    /// DNSBL zones to look the IPs up in; none → no `dnsbl` check.
    pub dnsbl_zones: Vec<String>,
}

/// Audits routes; holds the resolver (and its cache), so keep one and reuse it.
pub struct Auditor {
    dns: Dns,
    auth: MessageAuthenticator,
}

impl Auditor {
    /// An auditor asking `nameserver` (e.g. the lab's `127.0.53.53:53`), or the system
    /// resolvers when `None`, waiting up to `timeout` per query (2 attempts).
    pub fn new(
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ResolverSetupError> {
        let dns = Dns::new(nameserver, timeout)?;
        // mail-auth's SPF evaluator runs over the very same resolver.
        let auth = MessageAuthenticator(dns.resolver().clone());
        Ok(Auditor { dns, auth })
    }

    /// Runs every applicable check. Never fails: DNS trouble becomes checks in status `error`.
    pub async fn audit(&self, target: &AuditTarget) -> RouteAudit {
        let names = Names::of(target);
        let found = self.independent_checks(target, &names).await;
        // DMARC comes last: it judges the SPF and DKIM results of the aligned identifiers.
        let dmarc = dmarc_record::check(
            &self.dns,
            &names.from,
            &dmarc_record::Identifiers {
                spf_domain: &names.envelope,
                spf_passes: found.spf.passes,
                spf_check: Some(&found.spf.check),
                dkim_domain: found.dkim.as_ref().map(|_| names.dkim_domain.as_str()),
                dkim_check: found.dkim.as_ref().map(|o| &o.check),
            },
        )
        .await;
        found.into_audit(target, names.from, dmarc)
    }

    /// Every check but DMARC, concurrently: they need nothing of each other.
    async fn independent_checks(&self, target: &AuditTarget, names: &Names) -> Found {
        let rdns_checks = join_all(
            target
                .ips
                .iter()
                .map(|ip| rdns::check(&self.dns, *ip, names.helo.as_deref(), &names.from)),
        );
        let spf_check = spf::check(
            &self.dns,
            &self.auth,
            &names.envelope,
            &target.ips,
            names.helo.as_deref(),
        );
        let dkim_check = async {
            match &target.dkim_selector {
                Some(selector) => Some(
                    dkim::check(
                        &self.dns,
                        selector.trim(),
                        &names.dkim_domain,
                        target.signing_key.as_deref(),
                    )
                    .await,
                ),
                None => None,
            }
        };
        let dnsbl_check = async {
            if names.zones.is_empty() || target.ips.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                dnsbl::check(&self.dns, &target.ips, &names.zones).await
            }
        };
        let seed_checks = join_all(target.seed_domains.iter().map(|d| {
            let domain = normalize_domain(d);
            async move { seeds::check(&self.dns, &domain).await }
        }));
        let (rdns, spf, dkim, (dnsbl, dnsbl_zones), seeds) =
            futures::join!(rdns_checks, spf_check, dkim_check, dnsbl_check, seed_checks);
        Found {
            rdns,
            spf,
            dkim,
            dnsbl,
            dnsbl_zones,
            seeds,
        }
    }
}

/// A target's names as the checks compare them ([`normalize_domain`]), defaults filled in.
struct Names {
    /// The From domain.
    from: String,
    /// The envelope domain (default: the From domain).
    envelope: String,
    /// The DKIM signing domain (default: the From domain).
    dkim_domain: String,
    helo: Option<String>,
    /// The DNSBL zones, blanks dropped.
    zones: Vec<String>,
}

impl Names {
    fn of(target: &AuditTarget) -> Self {
        let from = normalize_domain(&target.from_domain);
        let or_from = |name: Option<&str>| name.map_or_else(|| from.clone(), normalize_domain);
        Names {
            envelope: or_from(target.envelope_domain.as_deref()),
            dkim_domain: or_from(target.dkim_domain.as_deref()),
            helo: target.helo.as_deref().map(normalize_domain),
            zones: target
                .dnsbl_zones
                .iter()
                .map(|z| normalize_domain(z))
                .filter(|z| !z.is_empty())
                .collect(),
            from,
        }
    }
}

/// The results of the checks that run concurrently.
struct Found {
    /// Per sending IP: `ptr`, `fcrdns`, `helo`.
    rdns: Vec<Vec<CheckResult>>,
    spf: SpfOutcome,
    /// `None` without a selector.
    dkim: Option<DkimOutcome>,
    /// Per IP and zone.
    dnsbl: Vec<CheckResult>,
    /// Per zone.
    dnsbl_zones: Vec<DnsblZoneResult>,
    /// Per seed domain: `mx`, `mta_sts`, `tls_rpt`.
    seeds: Vec<Vec<CheckResult>>,
}

impl Found {
    /// The route audit: every check in report order, the figures the metrics export.
    fn into_audit(self, target: &AuditTarget, from: String, dmarc: CheckResult) -> RouteAudit {
        let mut checks: Vec<_> = self.rdns.into_iter().flatten().collect();
        checks.push(self.spf.check);
        let dkim_key_bits = self.dkim.as_ref().and_then(|o| o.bits);
        if let Some(outcome) = self.dkim {
            checks.push(outcome.check);
        }
        checks.push(dmarc);
        checks.extend(self.dnsbl);
        checks.extend(self.seeds.into_iter().flatten());
        // Report order: by check (Check::ALL), subjects in the order given (stable sort).
        checks.sort_by_key(|c| c.check);
        RouteAudit {
            route: target.route.clone(),
            from_domain: from,
            checks,
            dkim_key_bits,
            spf_dns_lookups: self.spf.lookups,
            spf_void_lookups: self.spf.void_lookups,
            dnsbl: self.dnsbl_zones,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_daemon_can_spawn_audits() {
        assert_send_sync::<Auditor>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = runtime.enter();
        let auditor = Auditor::new(Some("127.0.0.1:9".parse().expect("addr")), DEFAULT_TIMEOUT)
            .expect("auditor");
        let target = AuditTarget::default();
        // Not awaited: only its type matters (tokio::spawn needs Send futures).
        let future = auditor.audit(&target);
        assert_send(&future);
    }
}
