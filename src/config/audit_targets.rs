//! What the DNS audit checks for each configured route: the bridge from the config to
//! [`crate::dns_audit::AuditTarget`], shared by `check-dns --config` and the scheduled audit.

use super::Config;
use crate::dns_audit::AuditTarget;

/// One audit target per route: its From/envelope domains, sending IPs, DKIM selector (and the
/// signing key when mailcanary signs), and the seed domains it sends to.
pub fn audit_targets(config: &Config) -> Vec<AuditTarget> {
    // An inbound route's sending side is a provider's server: its DNS is not ours to audit.
    config
        .outbound_routes()
        .map(|r| {
            let mut seed_domains: Vec<String> = config
                .seeds
                .iter()
                .filter(|s| s.routes.contains(&r.name))
                .filter_map(|s| s.address.rsplit_once('@').map(|(_, d)| d.to_string()))
                .collect();
            seed_domains.sort();
            seed_domains.dedup();
            let envelope = r.envelope_from.rsplit_once('@').map(|(_, d)| d.to_string());
            AuditTarget {
                route: r.name.clone(),
                from_domain: r.from_domain().to_string(),
                envelope_domain: envelope,
                ips: r.sending_ips.clone(),
                helo: r.helo.clone(),
                dkim_selector: r.dkim_selector.clone(),
                dkim_domain: r.dkim.as_ref().map(|d| d.domain.clone()),
                signing_key: r
                    .dkim
                    .as_ref()
                    .map(|d| d.key_file.clone())
                    .or_else(|| r.dkim_key_file.clone()),
                seed_domains,
                dnsbl_zones: r
                    .dnsbl_zones
                    .clone()
                    .unwrap_or_else(|| config.dns_audit.dnsbl_zones.clone()),
            }
        })
        .collect()
}
