//! Audits the address the receiving MX saw, for a found probe: the judge step reads the path
//! (`Received:` hops, [`crate::path`]); this step takes the address of its receiving hop (or,
//! when that hop names none, as Yahoo writes it, the client address of the verdict:
//! `Received-SPF` client-ip, RFC 8601 `smtp.remote-ip`) and audits it with the route's
//! identities through [`SeenIpAuditor`] (PTR and FCrDNS, RFC 8601 §3 iprev, the HELO the
//! receiver recorded, SPF of the envelope domain for that address, RFC 7208 §4, the blocklists
//! of its family, and `unexpected_sending_ip` when the route's `sending_ips` does not list it).
//!
//! The auditor caches each address's audit for a while ([`crate::dns_audit::seen_ip`]), so a
//! round does not ask the DNS once per probe, and bounds one audit by [`LIVE_BUDGET`]: a slow
//! resolver delays a probe's record by at most that, and its checks come back as `error`,
//! never as failures.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Route};
use crate::dns_audit::seen_ip::DEFAULT_TTL;
use crate::dns_audit::{Auditor, DEFAULT_TIMEOUT, SeenIp, SeenIpAuditor};
use crate::outcome::{Judgement, SeenIpChecks};

/// The longest one live audit may take: shorter than the scheduled audit's budget, since a
/// probe's record waits for it.
pub const LIVE_BUDGET: Duration = Duration::from_secs(5);

/// The auditor of a config (its `dns_audit.nameserver`), or `None` when no resolver can be set
/// up (logged; probes are then recorded without the audit).
pub fn auditor(config: &Config) -> Option<Arc<SeenIpAuditor>> {
    match Auditor::new(config.dns_audit.nameserver, DEFAULT_TIMEOUT) {
        Ok(auditor) => Some(Arc::new(SeenIpAuditor::new(
            auditor,
            DEFAULT_TTL,
            LIVE_BUDGET,
        ))),
        Err(e) => {
            tracing::error!(error = %e, "no resolver for the audit of the addresses receivers saw");
            None
        }
    }
}

/// What to audit for a probe of `route`: the address the receiver saw and the route's
/// identities. `None` when the probe's path and verdict name no address.
pub fn seen_ip_of(route: &Route, config: &Config, judgement: &Judgement) -> Option<SeenIp> {
    let seen = judgement.path.as_ref().and_then(|p| p.seen.as_ref());
    let ip = seen.and_then(|s| s.ip).or(judgement.client_ip)?;
    let envelope_domain = route
        .envelope_from
        .rsplit_once('@')
        .map_or_else(|| route.from_domain().to_string(), |(_, d)| d.to_string());
    Some(SeenIp {
        route: route.name.clone(),
        ip,
        helo: seen.and_then(|s| s.helo.clone()),
        envelope_domain,
        from_domain: route.from_domain().to_string(),
        sending_ips: route.sending_ips.clone(),
        dnsbl_zones: route
            .dnsbl_zones
            .clone()
            .unwrap_or_else(|| config.dns_audit.dnsbl_zones.clone()),
    })
}

/// Audits the address the receiver saw for a probe of `route` (from the auditor's cache when
/// it was audited lately). `None` without an auditor or an address.
pub async fn audit(
    auditor: Option<&SeenIpAuditor>,
    route: &Route,
    config: &Config,
    judgement: &Judgement,
) -> Option<SeenIpChecks> {
    let (auditor, seen) = (auditor?, seen_ip_of(route, config, judgement)?);
    let audit = auditor.audit(&seen).await;
    let checks = SeenIpChecks::of(&audit);
    tracing::debug!(
        route = %route.name,
        ip = %checks.ip,
        family = %checks.family,
        findings = checks.findings().count(),
        "audited the address the receiver saw"
    );
    Some(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{Path, Receiver};

    fn config() -> Config {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        let text = "[probe]\ntoken_key_file = \"token.key\"\n\
             [routes.ipv6]\nhost = \"127.0.0.1\"\nport = 9\nfrom = \"p@ipv6.test\"\ntls = \"none\"\n\
             envelope_from = \"bounces@env.ipv6.test\"\nsending_ips = [\"127.0.0.12\"]\n\
             [seeds.s1]\naddress = \"s1@seed.test\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n";
        match crate::config::parse(text, &std::path::Path::new(dir).join("x.toml")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn judged(raw: &str, client_ip: Option<&str>) -> Judgement {
        let mut j = crate::probe::judge::judge(raw.as_bytes(), &[], &Receiver::new(["seed.test"]));
        j.client_ip = client_ip.map(|ip| ip.parse().expect("ip"));
        j
    }

    #[test]
    fn the_receiving_hops_address_and_helo_are_audited_with_the_routes_identities() {
        let config = config();
        let route = config.route("ipv6").expect("route");
        let j = judged(
            "Received: from mail.ipv6.test (unknown [IPv6:::1])\r\n\
             \tby mx.seed.test (Postfix) with ESMTPS id C1; Tue, 8 Dec 2026 01:00:05 +0000\r\n\
             Subject: x\r\n\r\n",
            Some("127.0.0.99"),
        );
        let seen = seen_ip_of(route, &config, &j).expect("an address");
        assert_eq!(seen.ip, "::1".parse::<std::net::IpAddr>().expect("ip"));
        assert_eq!(seen.helo.as_deref(), Some("mail.ipv6.test"));
        assert_eq!(seen.envelope_domain, "env.ipv6.test");
        assert_eq!(seen.from_domain, "ipv6.test");
        assert_eq!(seen.sending_ips, route.sending_ips);
    }

    #[test]
    fn without_an_address_on_the_hop_the_verdicts_client_address_is_audited() {
        let config = config();
        let route = config.route("ipv6").expect("route");
        // Yahoo names the client, not its address, on the receiving hop.
        let j = judged(
            "Received: from mail.ipv6.test by mx.seed.test with ESMTPS; Tue, 8 Dec 2026 01:00:05 +0000\r\n\
             Subject: x\r\n\r\n",
            Some("192.0.2.8"),
        );
        let seen = seen_ip_of(route, &config, &j).expect("an address");
        assert_eq!(
            seen.ip,
            "192.0.2.8".parse::<std::net::IpAddr>().expect("ip")
        );
        let mut none = j.clone();
        none.client_ip = None;
        assert_eq!(seen_ip_of(route, &config, &none), None);
        none.path = Some(Path::from_hops(Vec::new(), 0, &Receiver::default()));
        assert_eq!(seen_ip_of(route, &config, &none), None);
    }
}
