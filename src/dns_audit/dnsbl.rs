//! DNS blocklists (RFC 5782): an IP is listed in ZONE when `<reversed IP>.ZONE` has an A record
//! in 127.0.0.0/8 (§2.1, §2.3). Two guards keep a broken answer from reading as "not listed"
//! or "listed":
//!
//! - before the route's IPs, each zone is asked for its test entry 127.0.0.2, which every DNSBL
//!   must list (§5). A zone that does not list it is not answering as a blocklist (wrong zone
//!   name, or the blocklist refuses our resolver) and all its results are errors;
//! - answers in 127.255.255.0/24 are error codes, not listings (Spamhaus: .252 typing error in
//!   the zone name, .254 query through a public resolver, .255 excessive queries); answers outside
//!   127.0.0.0/8 come from resolvers that rewrite NXDOMAIN. Both are errors.
//!
//! # IPv6
//!
//! An IPv6 address is asked in nibble form (RFC 5782 §2.4) — but only of zones that list IPv6
//! addresses: a zone that lists only IPv4 answers NXDOMAIN for every IPv6 query, which would read
//! as "not listed", a false all-clear. Which families a zone lists is [`families`]: a fixed table
//! of the zones whose coverage is documented, every other zone IPv4 only. Spamhaus ZEN (and its
//! SBL, XBL, PBL parts) lists IPv6 — rspamd's shipped `rbl.conf` queries it with `ipv6 = true`,
//! while the module's default is `default_ipv6 = false`; SpamCop (`bl.spamcop.net`) and Barracuda
//! (`b.barracudacentral.org`) document IPv4 listings only and rspamd does not query them for
//! IPv6; SpamEatingMonkey publishes its IPv6 list as a zone of its own
//! (`bl.ipv6.spameatingmonkey.net`, rspamd: `ipv4 = false; ipv6 = true`). A zone is not asked
//! at all when it lists none of the families of the addresses audited, and then has no summary.
//! The health check of a zone asks the RFC 5782 §5 test entry of a family it lists: 127.0.0.2,
//! or `::FFFF:7F00:2` for an IPv6-only zone.

use std::net::{IpAddr, Ipv4Addr};

use super::dns::{Answer, DnsError, Lookups};
use super::findings::{Check, CheckResult, DnsblZoneResult};
use crate::diagnosis::{Cause, Context};

/// The zones `check-dns` queries when none is given.
pub const DEFAULT_ZONES: [&str; 3] = [
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
];

/// The address families a zone lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// IPv4 addresses are listed.
    pub ipv4: bool,
    /// IPv6 addresses are listed.
    pub ipv6: bool,
}

impl Families {
    /// Whether the zone lists addresses of `ip`'s family (an IPv4-mapped IPv6 address is IPv4).
    pub fn lists(self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(_) => self.ipv4,
            IpAddr::V6(_) => self.ipv6,
        }
    }
}

/// The zones whose IPv6 coverage is documented (see the module documentation): name, IPv4,
/// IPv6.
pub const KNOWN_ZONES: &[(&str, bool, bool)] = &[
    ("zen.spamhaus.org", true, true),
    ("sbl.spamhaus.org", true, true),
    ("xbl.spamhaus.org", true, true),
    ("pbl.spamhaus.org", true, true),
    ("sbl-xbl.spamhaus.org", true, true),
    ("bl.spamcop.net", true, false),
    ("b.barracudacentral.org", true, false),
    ("bl.spameatingmonkey.net", true, false),
    ("bl.ipv6.spameatingmonkey.net", false, true),
];

/// The families `zone` lists: from [`KNOWN_ZONES`], IPv4 only for any other zone.
pub fn families(zone: &str) -> Families {
    let zone = zone.trim().trim_end_matches('.');
    KNOWN_ZONES
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(zone))
        .map_or(
            Families {
                ipv4: true,
                ipv6: false,
            },
            |(_, ipv4, ipv6)| Families {
                ipv4: *ipv4,
                ipv6: *ipv6,
            },
        )
}

/// The name to query for `ip` in `zone`: reversed octets (IPv4) or nibbles (IPv6, §2.4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => nibbles(v6, zone),
    }
}

/// The nibble form of an IPv6 address under `zone` (RFC 5782 §2.4).
fn nibbles(v6: std::net::Ipv6Addr, zone: &str) -> String {
    let nibbles: Vec<String> = v6
        .octets()
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
        .rev()
        .map(|n| format!("{n:x}"))
        .collect();
    format!("{}.{zone}", nibbles.join("."))
}

/// What an A answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Listed, with the return codes.
    Listed(Vec<Ipv4Addr>),
    /// Not listed (NXDOMAIN / NODATA).
    NotListed,
    /// An answer that is not a listing: an error code or a rewritten NXDOMAIN.
    Bogus(BogusAnswer),
}

/// An A answer that is not a listing: RFC 5782 §2.3 listings are codes in 127.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BogusAnswer {
    /// A code in 127.255.255.0/24: the blocklist refuses the query (Spamhaus: .252 typing error
    /// in the zone name, .254 query through a public resolver, .255 excessive queries).
    #[error(
        "return code {0} is an error code of the blocklist (it refuses the query: \
         public resolver, rate limit or wrong zone name)"
    )]
    ErrorCode(Ipv4Addr),
    /// An address outside 127.0.0.0/8: the resolver rewrites NXDOMAIN.
    #[error("answer {0} is outside 127.0.0.0/8: the resolver rewrites NXDOMAIN")]
    OutsideLoopback(Ipv4Addr),
}

/// Why a zone's answers cannot be read as listings: it does not answer as a blocklist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// The query for the test entry 127.0.0.2 got no answer.
    #[error("the zone's test entry could not be queried: {0}")]
    TestEntryUnanswered(#[source] DnsError),
    /// The zone does not list its test entry 127.0.0.2 (RFC 5782 §5): wrong zone name, or the
    /// blocklist refuses this resolver.
    #[error(
        "{zone} does not list its RFC 5782 §5 test entry 127.0.0.2 ({name}): it is not \
         answering as a blocklist (zone name, or the blocklist refuses this resolver)"
    )]
    TestEntryNotListed { zone: String, name: String },
    /// The answer for the test entry is not a listing.
    #[error("test entry {name}: {answer}")]
    TestEntryBogus { name: String, answer: BogusAnswer },
}

/// Reads an A answer of a DNSBL (RFC 5782 §2.3).
pub fn interpret(answer: &Answer<Ipv4Addr>) -> Listing {
    let codes = answer.records();
    if codes.is_empty() {
        return Listing::NotListed;
    }
    if let Some(code) = codes.iter().find(|c| c.octets()[..3] == [127, 255, 255]) {
        return Listing::Bogus(BogusAnswer::ErrorCode(*code));
    }
    if let Some(code) = codes.iter().find(|c| c.octets()[0] != 127) {
        return Listing::Bogus(BogusAnswer::OutsideLoopback(*code));
    }
    Listing::Listed(codes.to_vec())
}

/// Checks every IP against every zone: one result per (IP, zone), and one summary per zone.
pub(crate) async fn check<L: Lookups>(
    dns: &L,
    ips: &[IpAddr],
    zones: &[String],
) -> (Vec<CheckResult>, Vec<DnsblZoneResult>) {
    let mut results = Vec::new();
    let mut summaries = Vec::new();
    for zone in zones {
        let families = families(zone);
        let asked: Vec<IpAddr> = ips
            .iter()
            .copied()
            .filter(|ip| families.lists(*ip))
            .collect();
        if asked.is_empty() {
            // The zone lists none of these families: asking would read as "not listed".
            continue;
        }
        let mut listed_ips = Vec::new();
        let mut any_error = false;
        let health = zone_health(dns, zone, families).await;
        for ip in &asked {
            let subject = format!("{ip} in {zone}");
            let ctx = Context {
                ip: Some(*ip),
                dnsbl_zone: Some(zone),
                ..Context::default()
            };
            if let Err(problem) = &health {
                results.push(CheckResult::error_detail(
                    Check::Dnsbl,
                    subject,
                    problem.to_string(),
                    &ctx,
                ));
                any_error = true;
                continue;
            }
            let name = query_name(*ip, zone);
            let result = match dns.a(&name).await {
                Err(err) => {
                    any_error = true;
                    CheckResult::error(Check::Dnsbl, subject, &err, &ctx)
                }
                Ok(answer) => match interpret(&answer) {
                    Listing::NotListed => {
                        CheckResult::ok(Check::Dnsbl, subject, format!("not listed ({name})"))
                    }
                    Listing::Bogus(why) => {
                        any_error = true;
                        CheckResult::error_detail(Check::Dnsbl, subject, why.to_string(), &ctx)
                    }
                    Listing::Listed(codes) => {
                        listed_ips.push(*ip);
                        let reason = listing_reason(dns, &name).await;
                        let codes: Vec<String> = codes.iter().map(Ipv4Addr::to_string).collect();
                        CheckResult::failing(
                            Check::Dnsbl,
                            subject,
                            format!("listed: {name} → {}{reason}", codes.join(", ")),
                            Cause::Blocklisted,
                            &ctx,
                        )
                    }
                },
            };
            results.push(result);
        }
        let listed = if !listed_ips.is_empty() {
            Some(true)
        } else if any_error {
            None
        } else {
            Some(false)
        };
        summaries.push(DnsblZoneResult {
            zone: zone.clone(),
            listed,
            listed_ips,
        });
    }
    (results, summaries)
}

/// `Ok` when the zone lists its RFC 5782 §5 test entry (127.0.0.2; `::FFFF:7F00:2` for a zone
/// that lists only IPv6), else what is wrong.
async fn zone_health<L: Lookups>(dns: &L, zone: &str, families: Families) -> Result<(), ZoneError> {
    let test_entry = if families.ipv4 {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
    } else {
        IpAddr::V6(Ipv4Addr::new(127, 0, 0, 2).to_ipv6_mapped())
    };
    let name = match test_entry {
        // `to_canonical` would read the mapped address as IPv4: the IPv6 test entry is asked
        // in nibble form.
        IpAddr::V6(v6) => nibbles(v6, zone),
        IpAddr::V4(_) => query_name(test_entry, zone),
    };
    let answer = dns.a(&name).await.map_err(ZoneError::TestEntryUnanswered)?;
    match interpret(&answer) {
        Listing::Listed(_) => Ok(()),
        Listing::NotListed => Err(ZoneError::TestEntryNotListed {
            zone: zone.to_string(),
            name,
        }),
        Listing::Bogus(answer) => Err(ZoneError::TestEntryBogus { name, answer }),
    }
}

/// The listing's TXT record (the reason and removal link), best effort.
async fn listing_reason<L: Lookups>(dns: &L, name: &str) -> String {
    match dns.txt(name).await {
        Ok(Answer::Found(texts)) => {
            let texts: Vec<String> = texts
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            format!(" (\"{}\")", texts.join("\" \""))
        }
        Ok(_) | Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::findings::CheckStatus;
    use crate::dns_audit::testdns::FakeDns;

    #[test]
    fn query_names() {
        assert_eq!(
            query_name("192.0.2.99".parse().expect("ip"), "dnsbl.test"),
            "99.2.0.192.dnsbl.test"
        );
        // RFC 5782 §2.4 example.
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().expect("ip"),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
    }

    #[test]
    fn answers() {
        let a = |s: &str| Answer::Found(vec![s.parse::<Ipv4Addr>().expect("ip")]);
        assert_eq!(interpret(&Answer::NxDomain), Listing::NotListed);
        assert_eq!(interpret(&Answer::NoData), Listing::NotListed);
        assert!(matches!(interpret(&a("127.0.0.2")), Listing::Listed(_)));
        assert!(matches!(interpret(&a("127.0.0.11")), Listing::Listed(_)));
        assert_eq!(
            interpret(&a("127.255.255.254")),
            Listing::Bogus(BogusAnswer::ErrorCode(Ipv4Addr::new(127, 255, 255, 254)))
        );
        assert_eq!(
            interpret(&a("198.51.100.7")),
            Listing::Bogus(BogusAnswer::OutsideLoopback(Ipv4Addr::new(198, 51, 100, 7)))
        );
    }

    /// dnsbl.test lists its test entry and 192.0.2.5, and fails for 192.0.2.7; broken.test
    /// fails; empty.test does not list its test entry; public.test answers an error code.
    fn dns() -> FakeDns {
        FakeDns::parse(
            r#"
            2.0.0.127.dnsbl.test    A    127.0.0.2
            2.0.0.127.dnsbl.test    TXT  "RFC 5782 test entry"
            5.2.0.192.dnsbl.test    A    127.0.0.2
            5.2.0.192.dnsbl.test    A    127.0.0.4
            5.2.0.192.dnsbl.test    TXT  "listed: see https://dnsbl.test/" "remove"
            7.2.0.192.dnsbl.test    SERVFAIL
            2.0.0.127.broken.test   SERVFAIL
            2.0.0.127.public.test   A    127.255.255.254
            "#,
        )
    }

    async fn run(ips: &[&str], zones: &[&str]) -> (Vec<CheckResult>, Vec<DnsblZoneResult>) {
        let ips: Vec<IpAddr> = ips.iter().map(|ip| ip.parse().expect("ip")).collect();
        let zones: Vec<String> = zones.iter().map(|z| z.to_string()).collect();
        check(&dns(), &ips, &zones).await
    }

    #[tokio::test]
    async fn listed_and_not_listed() {
        let (results, zones) = run(&["192.0.2.5", "192.0.2.6"], &["dnsbl.test"]).await;
        assert_eq!(results.len(), 2);
        let listed = &results[0];
        assert_eq!(listed.subject, "192.0.2.5 in dnsbl.test");
        assert_eq!(
            (listed.status, listed.cause),
            (CheckStatus::Fail, Some(Cause::Blocklisted))
        );
        assert_eq!(
            listed.detail,
            "listed: 5.2.0.192.dnsbl.test → 127.0.0.2, 127.0.0.4 \
             (\"listed: see https://dnsbl.test/remove\")"
        );
        let clean = &results[1];
        assert_eq!((clean.status, clean.cause), (CheckStatus::Ok, None));
        assert_eq!(clean.detail, "not listed (6.2.0.192.dnsbl.test)");
        let ip: IpAddr = "192.0.2.5".parse().expect("ip");
        assert_eq!(
            zones,
            [DnsblZoneResult {
                zone: "dnsbl.test".into(),
                listed: Some(true),
                listed_ips: vec![ip],
            }]
        );

        let (_, zones) = run(&["192.0.2.6"], &["dnsbl.test"]).await;
        assert_eq!(zones[0].listed, Some(false));
    }

    #[tokio::test]
    async fn a_zone_that_does_not_answer_as_a_blocklist_is_an_error() {
        for (zone, why) in [
            ("broken.test", "the zone's test entry could not be queried"),
            ("empty.test", "does not list its RFC 5782 §5 test entry"),
            ("public.test", "is an error code of the blocklist"),
        ] {
            let (results, zones) = run(&["192.0.2.5", "192.0.2.6"], &[zone]).await;
            assert_eq!(results.len(), 2);
            for r in &results {
                assert_eq!(
                    (r.status, r.cause),
                    (CheckStatus::Error, Some(Cause::DnsError)),
                    "{zone}: {r:?}"
                );
                assert!(r.detail.contains(why), "{zone}: {}", r.detail);
            }
            assert_eq!(zones[0].listed, None, "{zone}");
            assert!(zones[0].listed_ips.is_empty());
        }
        let dns = dns();
        let v4 = families("dnsbl.test");
        assert_eq!(zone_health(&dns, "dnsbl.test", v4).await, Ok(()));
        assert!(matches!(
            zone_health(&dns, "broken.test", v4).await,
            Err(ZoneError::TestEntryUnanswered(DnsError::ServFail { .. }))
        ));
        assert!(matches!(
            zone_health(&dns, "empty.test", v4).await,
            Err(ZoneError::TestEntryNotListed { .. })
        ));
        assert!(matches!(
            zone_health(&dns, "public.test", v4).await,
            Err(ZoneError::TestEntryBogus {
                answer: BogusAnswer::ErrorCode(_),
                ..
            })
        ));
    }

    #[test]
    fn zone_families() {
        assert_eq!(
            families("ZEN.spamhaus.org."),
            Families {
                ipv4: true,
                ipv6: true
            }
        );
        for zone in ["bl.spamcop.net", "b.barracudacentral.org", "dnsbl.test"] {
            assert_eq!(
                families(zone),
                Families {
                    ipv4: true,
                    ipv6: false
                },
                "{zone}"
            );
        }
        let v6_only = families("bl.ipv6.spameatingmonkey.net");
        assert!(!v6_only.lists("192.0.2.1".parse().expect("ip")));
        assert!(v6_only.lists("2001:db8::1".parse().expect("ip")));
        // An IPv4-mapped IPv6 address is IPv4, and asked as IPv4.
        assert!(!v6_only.lists("::ffff:192.0.2.1".parse().expect("ip")));
        assert_eq!(
            query_name("::ffff:192.0.2.1".parse().expect("ip"), "z.test"),
            "1.2.0.192.z.test"
        );
    }

    /// Zones as the real ones are laid out, recorded (no network): ZEN lists IPv6, SpamCop only
    /// IPv4, SpamEatingMonkey's IPv6 zone only IPv6 (its test entry is `::FFFF:7F00:2`).
    fn dns_v6() -> FakeDns {
        FakeDns::parse(&format!(
            "2.0.0.127.zen.spamhaus.org A 127.0.0.2\n\
             {} A 127.0.0.3\n\
             2.0.0.127.bl.spamcop.net A 127.0.0.2\n\
             {} A 127.0.0.2\n",
            query_name("2001:db8::66".parse().expect("ip"), "zen.spamhaus.org"),
            nibbles(
                Ipv4Addr::new(127, 0, 0, 2).to_ipv6_mapped(),
                "bl.ipv6.spameatingmonkey.net"
            ),
        ))
    }

    #[tokio::test]
    async fn ipv6_addresses_are_asked_only_of_zones_that_list_them() {
        let ips: Vec<IpAddr> = vec!["2001:db8::66".parse().expect("ip")];
        let zones: Vec<String> = [
            "zen.spamhaus.org",
            "bl.spamcop.net",
            "bl.ipv6.spameatingmonkey.net",
        ]
        .iter()
        .map(|z| z.to_string())
        .collect();
        let (results, summaries) = check(&dns_v6(), &ips, &zones).await;
        let subjects: Vec<&str> = results.iter().map(|r| r.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "2001:db8::66 in zen.spamhaus.org",
                "2001:db8::66 in bl.ipv6.spameatingmonkey.net"
            ],
            "SpamCop lists no IPv6: not asked"
        );
        assert_eq!(
            (results[0].status, results[0].cause),
            (CheckStatus::Fail, Some(Cause::Blocklisted))
        );
        assert!(
            results[0]
                .detail
                .starts_with("listed: 6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org → 127.0.0.3"),
            "{}",
            results[0].detail
        );
        assert!(
            results[0]
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("the IPv6 address 2001:db8::66")),
            "{:?}",
            results[0].fix
        );
        assert_eq!(
            (results[1].status, results[1].cause),
            (CheckStatus::Ok, None),
            "the IPv6-only zone's test entry is the IPv6 one: {:?}",
            results[1]
        );
        let zone_names: Vec<&str> = summaries.iter().map(|z| z.zone.as_str()).collect();
        assert_eq!(
            zone_names,
            ["zen.spamhaus.org", "bl.ipv6.spameatingmonkey.net"]
        );
        // IPv4 addresses are not asked of the IPv6-only zone.
        let (results, _) = check(&dns_v6(), &["192.0.2.9".parse().expect("ip")], &zones).await;
        assert!(
            results
                .iter()
                .all(|r| !r.subject.ends_with("bl.ipv6.spameatingmonkey.net")),
            "{results:?}"
        );
    }

    #[tokio::test]
    async fn a_failed_query_leaves_the_zone_undecided_unless_an_ip_is_listed() {
        let (results, zones) = run(&["192.0.2.7", "192.0.2.6"], &["dnsbl.test"]).await;
        assert_eq!(results[0].status, CheckStatus::Error);
        assert!(
            results[0].detail.contains("SERVFAIL"),
            "{}",
            results[0].detail
        );
        assert_eq!(results[1].status, CheckStatus::Ok);
        assert_eq!(zones[0].listed, None);

        let (_, zones) = run(&["192.0.2.7", "192.0.2.5"], &["dnsbl.test"]).await;
        assert_eq!(zones[0].listed, Some(true));
    }
}
