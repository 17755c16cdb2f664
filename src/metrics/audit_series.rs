//! The DNS audit family: per route, whether each check passed, blocklist listings, the DKIM
//! key size and the SPF lookups the record needs, as the last scheduled audit found them.

use prometheus::{IntGaugeVec, Registry};

use super::{Configured, Metrics, int_gauge, retire};
use crate::dns_audit::{Check, RouteAudit};

/// The DNS audit's series.
pub struct AuditMetrics {
    pub dns_check_ok: IntGaugeVec,
    pub dnsbl_listed: IntGaugeVec,
    pub dkim_key_bits: IntGaugeVec,
    pub spf_dns_lookups: IntGaugeVec,
}

impl AuditMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        AuditMetrics {
            dns_check_ok: int_gauge(
                r,
                "mailcanary_dns_check_ok",
                "1 when the DNS audit check passed for the route, 0 when it failed.",
                &["route", "check"],
            ),
            dnsbl_listed: int_gauge(
                r,
                "mailcanary_dnsbl_listed",
                "1 when a sending IP of the route is listed in this DNS blocklist zone.",
                &["route", "zone"],
            ),
            dkim_key_bits: int_gauge(
                r,
                "mailcanary_dkim_key_bits",
                "Size of the route's published DKIM key in bits.",
                &["route"],
            ),
            spf_dns_lookups: int_gauge(
                r,
                "mailcanary_spf_dns_lookups",
                "DNS lookups the route's SPF record needs (RFC 7208 limit: 10).",
                &["route"],
            ),
        }
    }

    /// Removes the series of routes and seeds the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.dns_check_ok, c);
        retire(&self.dnsbl_listed, c);
        retire(&self.dkim_key_bits, c);
        retire(&self.spf_dns_lookups, c);
    }
}

impl Metrics {
    /// Exports one route's DNS audit (and logs its status).
    pub fn record_audit(&self, audit: &RouteAudit) {
        tracing::info!(route = %audit.route, status = audit.status().as_str(), "DNS audit");
        if !self.exported(Some(&audit.route), None) {
            return;
        }
        for check in Check::ALL {
            if let Some(ok) = audit.check_ok(check) {
                self.audit
                    .dns_check_ok
                    .with_label_values(&[&audit.route, check.as_str()])
                    .set(i64::from(ok));
            }
        }
        for z in &audit.dnsbl {
            if let Some(listed) = z.listed {
                self.audit
                    .dnsbl_listed
                    .with_label_values(&[&audit.route, &z.zone])
                    .set(i64::from(listed));
            }
        }
        if let Some(bits) = audit.dkim_key_bits {
            self.audit
                .dkim_key_bits
                .with_label_values(&[&audit.route])
                .set(i64::from(bits));
        }
        if let Some(n) = audit.spf_dns_lookups {
            self.audit
                .spf_dns_lookups
                .with_label_values(&[&audit.route])
                .set(i64::from(n));
        }
    }
}
