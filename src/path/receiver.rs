//! Whose hops are believed: the receiver's domains, and the walk down from the top that
//! finds the receiving hop (the rule is in the module documentation of [`crate::path`]).

use std::net::IpAddr;

use super::Hop;

/// The big providers' receiving domains, by the name of their seed preset: their hops' `by`
/// hosts are under these (Gmail `mx.google.com`; Microsoft `*.mail.protection.outlook.com`,
/// `*.prod.outlook.com`, `*.outlook.office365.com`; Yahoo and AOL `*.yahoo.com`,
/// `*.yahoodns.net`; iCloud `*.me.com`, `*.icloud.com`, `*.apple.com`; Fastmail
/// `*.messagingengine.com`).
pub const PROVIDER_DOMAINS: &[(&str, &[&str])] = &[
    ("gmail", &["google.com"]),
    ("outlook", &["outlook.com", "office365.com"]),
    (
        "yahoo",
        &["yahoo.com", "yahoo.net", "yahoodns.net", "aol.com"],
    ),
    ("icloud", &["icloud.com", "me.com", "apple.com"]),
    ("fastmail", &["messagingengine.com", "fastmail.com"]),
];

/// Name suffixes that belong to nobody on the public internet (RFC 6761, RFC 6762, RFC 8375,
/// and the conventions MTAs ship with): a host so named is internal to whoever wrote it.
const INTERNAL_SUFFIXES: &[&str] = &[
    "localhost",
    "internal",
    "local",
    "localdomain",
    "lan",
    "home.arpa",
    "invalid",
];

/// The receiver's domains: a hop whose `by` host is one of them or under one of them is the
/// receiver's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receiver {
    domains: Vec<String>,
}

impl Receiver {
    /// The receiver owning `domains` (lower-cased, final dots and blanks dropped, duplicates
    /// once).
    pub fn new<S: AsRef<str>>(domains: impl IntoIterator<Item = S>) -> Receiver {
        let mut receiver = Receiver::default();
        for domain in domains {
            receiver.add(domain.as_ref());
        }
        receiver
    }

    /// The receiver whose authserv-ids are `ids` (`mx.google.com` → `google.com`): each id
    /// with three or more labels stands for its parent domain, shorter ones for themselves.
    /// An empty id (Microsoft writes none) adds nothing.
    pub fn from_authserv_ids<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> Receiver {
        Receiver::new(ids.into_iter().filter_map(|id| parent(id.as_ref())))
    }

    /// The receiving domains of a provider preset (`gmail`, `outlook`, `yahoo`, `icloud`,
    /// `fastmail`; [`PROVIDER_DOMAINS`]); empty for any other name.
    pub fn for_provider(preset: &str) -> Receiver {
        PROVIDER_DOMAINS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(preset))
            .map(|(_, domains)| Receiver::new(domains.iter()))
            .unwrap_or_default()
    }

    /// This receiver with `other`'s domains added.
    pub fn with(mut self, other: &Receiver) -> Receiver {
        for domain in &other.domains {
            self.add(domain);
        }
        self
    }

    /// The domains, in the order given.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Whether no domain is known.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Whether `host` is one of the domains or under one of them (case-insensitive, a final
    /// dot ignored; `evilgoogle.com` is not under `google.com`).
    pub fn owns(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|domain| {
            host == *domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    fn add(&mut self, domain: &str) {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !domain.is_empty() && !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
    }

    /// Without configured domains: the parent domain of the top-most hop's public `by` name.
    pub(super) fn from_top_hop(hops: &[Hop]) -> Receiver {
        hops.iter()
            .filter_map(|hop| hop.by.as_deref())
            .find(|by| !is_internal_name(by) && by.parse::<IpAddr>().is_err())
            .and_then(parent)
            .map(|domain| Receiver::new([domain]))
            .unwrap_or_default()
    }

    /// The receiving hop: walking down from the top while hops are the receiver's, the first
    /// that took the message from outside, else the lowest of the walk.
    pub(super) fn receiving_hop(&self, hops: &[Hop]) -> Option<usize> {
        if self.is_empty() {
            return None;
        }
        let mut lowest = None;
        for (index, hop) in hops.iter().enumerate() {
            if !self.is_receivers(hop) {
                break;
            }
            lowest = Some(index);
            if self.took_from_outside(hop) {
                return Some(index);
            }
        }
        // The walk ended (or ran out of hops) without a hop from outside: the lowest hop of
        // the receiver's run took the message from the first host that is not the
        // receiver's. It must have a client to count.
        lowest.filter(|&index| hops[index].from.is_some())
    }

    /// A hop the receiver wrote: `by` under its domains, or an internal hop (no `from`
    /// clause, or an internal `by` host).
    fn is_receivers(&self, hop: &Hop) -> bool {
        match hop.by.as_deref() {
            Some(by) => self.owns(by) || is_internal_name(by) || hop.from.is_none(),
            None => hop.from.is_none(),
        }
    }

    /// Whether the hop's client is outside the receiver: neither its HELO nor its reverse
    /// name is under the receiver's domains, and it is not an internal address with an
    /// internal (or no) name.
    fn took_from_outside(&self, hop: &Hop) -> bool {
        let Some(from) = &hop.from else {
            return false;
        };
        let named_ours = [&from.helo, &from.reverse_name]
            .into_iter()
            .flatten()
            .any(|name| self.owns(name));
        let internal_address = from.ip.is_some_and(|ip| !is_global(ip));
        let internal_name = from
            .helo
            .as_deref()
            .is_none_or(|helo| is_internal_name(helo) || helo.starts_with('['));
        !(named_ours || (internal_address && internal_name))
    }
}

/// The parent domain of a name with three or more labels (`mx.google.com` → `google.com`),
/// the name itself otherwise; `None` for an empty name or an address.
fn parent(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let labels = name.split('.').count();
    Some(match name.split_once('.') {
        Some((_, rest)) if labels >= 3 => rest.to_string(),
        _ => name,
    })
}

/// A `by` or HELO name that belongs to nobody on the internet: an address literal outside the
/// public internet, a single label, `localhost`, or a name under an internal suffix.
pub(super) fn is_internal_name(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = name.strip_prefix("IPv6:").unwrap_or(name);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return !is_global(ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || INTERNAL_SUFFIXES.iter().any(|suffix| {
            name == *suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// Whether an address is routed on the public internet: not loopback, private (RFC 1918),
/// shared (RFC 6598), link-local, unspecified, broadcast or unique-local (RFC 4193).
/// Documentation ranges count as public: examples and fixtures use them for public hosts.
pub(super) fn is_global(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}
