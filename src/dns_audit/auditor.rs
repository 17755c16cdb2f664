//! The library entry point: an [`Auditor`] (one resolver, reused) audits an [`AuditTarget`]
//! (one route) into an [`AuditReport`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use mail_auth::MessageAuthenticator;

use super::dns::{Dns, ResolverSetupError, normalize_domain};
use super::findings::AuditReport;
use super::{dkim, dmarc, dnsbl, rdns, seeds, spf};

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
    pub async fn audit(&self, target: &AuditTarget) -> AuditReport {
        let from = normalize_domain(&target.from_domain);
        let envelope = target
            .envelope_domain
            .as_deref()
            .map_or_else(|| from.clone(), normalize_domain);
        let dkim_domain = target
            .dkim_domain
            .as_deref()
            .map_or_else(|| from.clone(), normalize_domain);
        let helo = target.helo.as_deref().map(normalize_domain);
        let zones: Vec<String> = target
            .dnsbl_zones
            .iter()
            .map(|z| normalize_domain(z))
            .filter(|z| !z.is_empty())
            .collect();

        let rdns_checks = join_all(
            target
                .ips
                .iter()
                .map(|ip| rdns::check(&self.dns, *ip, helo.as_deref(), &from)),
        );
        let spf_check = spf::check(
            &self.dns,
            &self.auth,
            &envelope,
            &target.ips,
            helo.as_deref(),
        );
        let dkim_check = async {
            match &target.dkim_selector {
                Some(selector) => Some(
                    dkim::check(
                        &self.dns,
                        selector.trim(),
                        &dkim_domain,
                        target.signing_key.as_deref(),
                    )
                    .await,
                ),
                None => None,
            }
        };
        let dnsbl_check = async {
            if zones.is_empty() || target.ips.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                dnsbl::check(&self.dns, &target.ips, &zones).await
            }
        };
        let seed_checks = join_all(target.seed_domains.iter().map(|d| {
            let domain = normalize_domain(d);
            async move { seeds::check(&self.dns, &domain).await }
        }));
        let (rdns_results, spf_outcome, dkim_outcome, (dnsbl_results, dnsbl), seed_results) =
            futures::join!(rdns_checks, spf_check, dkim_check, dnsbl_check, seed_checks);

        let dmarc_result = dmarc::check(
            &self.dns,
            &from,
            &dmarc::Identifiers {
                spf_domain: &envelope,
                spf_passes: spf_outcome.passes,
                spf_check: Some(&spf_outcome.check),
                dkim_domain: dkim_outcome.as_ref().map(|_| dkim_domain.as_str()),
                dkim_check: dkim_outcome.as_ref().map(|o| &o.check),
            },
        )
        .await;

        let mut checks: Vec<_> = rdns_results.into_iter().flatten().collect();
        checks.push(spf_outcome.check);
        let dkim_key_bits = dkim_outcome.as_ref().and_then(|o| o.bits);
        if let Some(outcome) = dkim_outcome {
            checks.push(outcome.check);
        }
        checks.push(dmarc_result);
        checks.extend(dnsbl_results);
        checks.extend(seed_results.into_iter().flatten());
        // Report order: by check (Check::ALL), subjects in the order given (stable sort).
        checks.sort_by_key(|c| c.check);

        AuditReport {
            route: target.route.clone(),
            from_domain: from,
            checks,
            dkim_key_bits,
            spf_dns_lookups: spf_outcome.lookups,
            spf_void_lookups: spf_outcome.void_lookups,
            dnsbl,
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
