//! The address a receiver saw, audited: the route's DNS audit looks at the addresses the config
//! lists (`sending_ips`), but a receiver judges the address the mail really came from, read
//! from the receiving hop of the probe's `Received:` fields ([`crate::path`]). The classic
//! failure is an MTA that starts sending over IPv6, from an address nobody listed and nobody gave
//! a PTR record: receivers refuse it (Gmail `550-5.7.25`), and the audit of the configured IPv4
//! address says all is well.
//!
//! One [`SeenIp`] is audited with the route's checks, applied to that address:
//!
//! - `sending_ip`: the address is one the route's `sending_ips` lists (compared as addresses,
//!   IPv4-mapped IPv6 as IPv4); `warn` with `unexpected_sending_ip` otherwise (the mail still
//!   arrived, but the route's audit and SPF record do not cover the address). No check when the
//!   route lists no address;
//! - `ptr`, `fcrdns`, `helo` ([`super::rdns`]): the PTR record under `in-addr.arpa` or `ip6.arpa`
//!   (RFC 3596 §2.5), its name resolving back with an A or AAAA record (RFC 8601 §3 iprev), the
//!   HELO the *receiver recorded* resolving to the address;
//! - `spf` ([`super::spf`]): mail-auth's check_host for that address and the envelope domain
//!   (RFC 7208 §4);
//! - `dnsbl` ([`super::dnsbl`]): the zones that list the address's family (RFC 5782 §2.4 nibble
//!   form for IPv6).
//!
//! Every cause's fix names the address and its family (`the IPv6 address 2001:db8::25`).
//!
//! [`SeenIpAuditor`] is what the probe calls once per found probe: the same address and
//! identities are not audited twice within the cache's time to live (results, errors and
//! timeouts alike; at most [`MAX_CACHED`] entries), and one audit takes at most its time budget
//! (past it, the checks not finished are reported as `error`, never as failures).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::auditor::Auditor;
use super::dns::{Lookups, normalize_domain};
use super::findings::{Check, CheckResult, RouteAudit};
use super::{dnsbl, rdns, spf};
use crate::diagnosis::{Cause, Context};

/// How long an audit of one address is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// The longest one audit may take.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(20);
/// The most audits kept.
pub const MAX_CACHED: usize = 256;

/// An address a receiver saw, and the route's identities to audit it against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeenIp {
    /// The route name, reported as is.
    pub route: String,
    /// The address the receiver saw.
    pub ip: IpAddr,
    /// The HELO name the receiver recorded (`None`: no `helo` check).
    pub helo: Option<String>,
    /// The RFC 5321 MAIL FROM domain, whose SPF record is evaluated for `ip`.
    pub envelope_domain: String,
    /// The RFC 5322 From domain (named in fix sentences).
    pub from_domain: String,
    /// The route's `sending_ips` (empty: no `sending_ip` check).
    pub sending_ips: Vec<IpAddr>,
    /// DNSBL zones to look the address up in.
    pub dnsbl_zones: Vec<String>,
}

impl SeenIp {
    /// The same identities compared as the checks compare them: the address canonical, names
    /// lower case without a final dot, the listed addresses and zones sorted.
    fn normalized(&self) -> SeenIp {
        let mut sending_ips: Vec<IpAddr> = self
            .sending_ips
            .iter()
            .map(|ip| ip.to_canonical())
            .collect();
        sending_ips.sort();
        sending_ips.dedup();
        let mut dnsbl_zones: Vec<String> = self
            .dnsbl_zones
            .iter()
            .map(|zone| normalize_domain(zone))
            .filter(|zone| !zone.is_empty())
            .collect();
        dnsbl_zones.sort();
        dnsbl_zones.dedup();
        SeenIp {
            route: self.route.clone(),
            ip: self.ip.to_canonical(),
            helo: self.helo.as_deref().map(normalize_domain),
            envelope_domain: normalize_domain(&self.envelope_domain),
            from_domain: normalize_domain(&self.from_domain),
            sending_ips,
            dnsbl_zones,
        }
    }
}

/// The audit of one seen address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenIpAudit {
    /// The address audited.
    pub ip: IpAddr,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Whether the route's `sending_ips` lists it (`None`: the route lists none).
    pub expected: Option<bool>,
    /// The checks, as `check-dns` reports them (same JSON contract, `sending_ip` first).
    pub audit: RouteAudit,
}

impl Auditor {
    /// Audits one address a receiver saw (no cache, no budget: see [`SeenIpAuditor`]).
    pub async fn audit_seen_ip(&self, seen: &SeenIp) -> SeenIpAudit {
        check(self.dns(), &seen.normalized()).await
    }
}

/// Audits seen addresses with a cache and a time budget; one per process, shared.
pub struct SeenIpAuditor {
    auditor: Auditor,
    ttl: Duration,
    budget: Duration,
    cache: Mutex<HashMap<SeenIp, (Instant, Arc<SeenIpAudit>)>>,
}

impl SeenIpAuditor {
    /// An auditor reusing each audit for `ttl` and spending at most `budget` on one.
    pub fn new(auditor: Auditor, ttl: Duration, budget: Duration) -> SeenIpAuditor {
        SeenIpAuditor {
            auditor,
            ttl,
            budget,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The audit of `seen`: from the cache when the same address and identities were audited
    /// less than the time to live ago, else a fresh one (bounded by the budget).
    pub async fn audit(&self, seen: &SeenIp) -> Arc<SeenIpAudit> {
        self.audit_with(self.auditor.dns(), seen).await
    }

    /// [`SeenIpAuditor::audit`] over any [`Lookups`] (the tests' recorded DNS).
    pub(crate) async fn audit_with<L: Lookups>(&self, dns: &L, seen: &SeenIp) -> Arc<SeenIpAudit> {
        let key = seen.normalized();
        if let Some(cached) = self.cached(&key) {
            return cached;
        }
        let audit = match tokio::time::timeout(self.budget, check(dns, &key)).await {
            Ok(audit) => audit,
            Err(_) => timed_out(&key, self.budget),
        };
        let audit = Arc::new(audit);
        self.store(key, Arc::clone(&audit));
        audit
    }

    fn cached(&self, key: &SeenIp) -> Option<Arc<SeenIpAudit>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, audit)| Arc::clone(audit))
    }

    fn store(&self, key: SeenIp, audit: Arc<SeenIpAudit>) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED && !cache.contains_key(&key) {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(key, _)| key.clone());
                if let Some(oldest) = oldest {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(key, (Instant::now(), audit));
    }

    /// How many audits are cached.
    pub fn cached_len(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// Runs the checks for one (normalized) seen address.
pub(crate) async fn check<L: Lookups>(dns: &L, seen: &SeenIp) -> SeenIpAudit {
    let ip = seen.ip;
    let expected = expectation(seen);
    let mut checks: Vec<CheckResult> = expected_check(seen, expected).into_iter().collect();
    let ips = [ip];
    let rdns = rdns::check(dns, ip, seen.helo.as_deref(), &seen.from_domain);
    let spf = spf::check(dns, &seen.envelope_domain, &ips, seen.helo.as_deref());
    let dnsbl = async {
        if seen.dnsbl_zones.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            dnsbl::check(dns, &ips, &seen.dnsbl_zones).await
        }
    };
    let (rdns, spf, (dnsbl, dnsbl_zones)) = futures::join!(rdns, spf, dnsbl);
    checks.extend(rdns);
    checks.push(spf.check);
    checks.extend(dnsbl);
    checks.sort_by_key(|check| check.check);
    SeenIpAudit {
        ip,
        family: family(ip),
        expected,
        audit: RouteAudit {
            route: seen.route.clone(),
            from_domain: seen.from_domain.clone(),
            checks,
            dkim_key_bits: None,
            spf_dns_lookups: spf.lookups,
            spf_void_lookups: spf.void_lookups,
            dnsbl: dnsbl_zones,
        },
    }
}

/// Whether the route lists the address; `None` when it lists none.
fn expectation(seen: &SeenIp) -> Option<bool> {
    (!seen.sending_ips.is_empty()).then(|| seen.sending_ips.contains(&seen.ip))
}

/// The `sending_ip` result.
fn expected_check(seen: &SeenIp, expected: Option<bool>) -> Option<CheckResult> {
    let subject = seen.ip.to_string();
    let listed = || {
        seen.sending_ips
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match expected? {
        true => Some(CheckResult::ok(
            Check::SendingIp,
            subject,
            format!("listed in the route's sending_ips ({})", listed()),
        )),
        false => {
            let ctx = Context {
                ip: Some(seen.ip),
                domain: Some(&seen.from_domain),
                expected_ips: &seen.sending_ips,
                ..Context::default()
            };
            Some(CheckResult::warning(
                Check::SendingIp,
                subject,
                format!(
                    "the receiver saw the mail come from this {} address, which the route's \
                     sending_ips ({}) does not list",
                    family_name(seen.ip),
                    listed()
                ),
                Cause::UnexpectedSendingIp,
                &ctx,
            ))
        }
    }
}

/// The audit when the checks did not finish within the budget: what needs no DNS, and an
/// error for the rest (never a failure: nothing was found missing).
fn timed_out(seen: &SeenIp, budget: Duration) -> SeenIpAudit {
    let expected = expectation(seen);
    let mut checks: Vec<CheckResult> = expected_check(seen, expected).into_iter().collect();
    let ctx = Context {
        ip: Some(seen.ip),
        domain: Some(&seen.from_domain),
        ..Context::default()
    };
    for check in [Check::Ptr, Check::Spf] {
        checks.push(CheckResult::error_detail(
            check,
            seen.ip.to_string(),
            format!(
                "not finished within the audit's budget of {} s: the DNS answered too slowly",
                budget.as_secs()
            ),
            &ctx,
        ));
    }
    SeenIpAudit {
        ip: seen.ip,
        family: family(seen.ip),
        expected,
        audit: RouteAudit {
            route: seen.route.clone(),
            from_domain: seen.from_domain.clone(),
            checks,
            dkim_key_bits: None,
            spf_dns_lookups: None,
            spf_void_lookups: None,
            dnsbl: Vec::new(),
        },
    }
}

fn family(ip: IpAddr) -> &'static str {
    match ip.to_canonical() {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

fn family_name(ip: IpAddr) -> &'static str {
    match ip.to_canonical() {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

#[cfg(test)]
mod tests;
