//! The `[dns_audit]` section: schedule, nameserver, blocklist zones.

use super::*;

pub(super) fn validate_dns_audit(raw: &RawConfig, errs: &mut Errors) -> Option<DnsAuditConfig> {
    let d = &raw.dns_audit;
    let schedule = match cron_schedule(d.schedule.as_deref().unwrap_or("7 * * * *")) {
        Ok((s, _)) => Some(s),
        Err(e) => {
            errs.push("dns_audit.schedule", e);
            None
        }
    };
    let nameserver = match &d.nameserver {
        None => None,
        Some(n) => match n
            .parse::<SocketAddr>()
            .or_else(|_| n.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        {
            Ok(a) => Some(a),
            Err(_) => {
                errs.push(
                    "dns_audit.nameserver",
                    format!("expected an address like 127.0.0.53:53, got {n:?}"),
                );
                None
            }
        },
    };
    let dnsbl_zones = d
        .dnsbl_zones
        .clone()
        .unwrap_or_else(|| DEFAULT_DNSBL_ZONES.iter().map(|s| s.to_string()).collect());
    Some(DnsAuditConfig {
        schedule: schedule?,
        nameserver,
        dnsbl_zones,
    })
}
