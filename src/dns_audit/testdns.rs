//! Recorded DNS data for unit tests: [`Lookups`] over a small zone-like text file under
//! `tests/fixtures/dns/` (format in the header of `spf.zone`), or over text given inline.
//! PTR records sit at their reverse names, as in a real zone (RFC 1035 §3.5):
//! `5.2.0.192.in-addr.arpa PTR mail.example.test.`.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    DnssecStatus, MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, SpfResult, Txt,
};

use super::dns::{Answer, Dns, DnsError, Lookups, reverse_name};

pub(crate) struct FakeDns {
    records: HashMap<String, Vec<(String, String)>>,
}

impl FakeDns {
    pub fn from_fixture(file: &str) -> Self {
        let path = format!("{}/tests/fixtures/dns/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Self {
        let mut records: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim_start();
            let (rtype, data) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let (name, rtype) = (name.to_ascii_lowercase(), rtype.to_ascii_uppercase());
            let data = data.trim().to_string();
            records.entry(name).or_default().push((rtype, data));
        }
        assert!(!records.is_empty(), "empty DNS fixture");
        FakeDns { records }
    }

    fn answer<T>(
        &self,
        name: &str,
        rtype: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Answer<T>, DnsError> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let Some(lines) = self.records.get(&key) else {
            return Ok(Answer::NxDomain);
        };
        for (t, _) in lines {
            match t.as_str() {
                "SERVFAIL" => return Err(DnsError::ServFail { name: key, rtype }),
                "TIMEOUT" => return Err(DnsError::Timeout { name: key, rtype }),
                _ => {}
            }
        }
        let found: Vec<T> = lines
            .iter()
            .filter(|(t, _)| t == rtype)
            .map(|(_, data)| parse(data).unwrap_or_else(|| panic!("bad {rtype} data: {data}")))
            .collect();
        if found.is_empty() {
            Ok(Answer::NoData)
        } else {
            Ok(Answer::Found(found))
        }
    }
}

impl FakeDns {
    /// The records as mail-auth's resolver caches, so that its SPF evaluator (check_host)
    /// reads them instead of asking a DNS server. Every name the recorded data lacks reads as
    /// NXDOMAIN (see [`Recorded`]).
    fn spf_caches(&self) -> SpfCaches {
        let mut caches = SpfCaches::default();
        for (name, lines) in &self.records {
            let fqdn: Box<str> = format!("{name}.").into();
            let of = |rtype: &'static str| lines.iter().filter(move |(t, _)| t == rtype);
            let txt: Vec<Vec<u8>> = of("TXT").filter_map(|(_, d)| txt_strings(d)).collect();
            if !txt.is_empty() {
                let spf = txt.iter().find_map(|record| Spf::parse(record).ok());
                let value = match spf {
                    Some(spf) => Txt::Spf(Arc::new(spf)),
                    None => Txt::Error(mail_auth::Error::Dns(
                        mail_auth::DnsError::InvalidRecordType,
                    )),
                };
                caches.txt.0.insert(fqdn.clone(), value);
            }
            let v4: Vec<Ipv4Addr> = of("A").filter_map(|(_, d)| d.parse().ok()).collect();
            caches.a.0.insert(fqdn.clone(), record_set(v4));
            let v6: Vec<Ipv6Addr> = of("AAAA").filter_map(|(_, d)| d.parse().ok()).collect();
            caches.aaaa.0.insert(fqdn.clone(), record_set(v6));
            let mx: Vec<MX> = of("MX")
                .filter_map(|(_, d)| {
                    let (pref, host) = d.split_once(char::is_whitespace)?;
                    Some(MX {
                        exchanges: vec![host.trim().to_ascii_lowercase().into()].into(),
                        preference: pref.parse().ok()?,
                    })
                })
                .collect();
            caches.mx.0.insert(fqdn, record_set(mx));
        }
        caches
    }
}

fn record_set<T>(records: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: records.into(),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

/// mail-auth's resolver caches over the recorded data.
#[derive(Default)]
struct SpfCaches {
    txt: Recorded<Box<str>, Txt>,
    a: Recorded<Box<str>, RecordSet<Ipv4Addr>>,
    aaaa: Recorded<Box<str>, RecordSet<Ipv6Addr>>,
    mx: Recorded<Box<str>, RecordSet<MX>>,
    ptr: Recorded<IpAddr, RecordSet<Box<str>>>,
}

/// A read-only cache: a recorded answer, else "does not exist" for every other name, so that
/// mail-auth never asks a server.
struct Recorded<K, V>(HashMap<K, V>);

impl<K, V> Default for Recorded<K, V> {
    fn default() -> Self {
        Recorded(HashMap::new())
    }
}

/// What a name the recorded data lacks reads as.
trait Missing {
    fn missing() -> Self;
}

impl Missing for Txt {
    fn missing() -> Self {
        Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
            ResponseCode::NXDomain,
        )))
    }
}

impl<T> Missing for RecordSet<T> {
    fn missing() -> Self {
        record_set(Vec::new())
    }
}

impl<K: Hash + Eq, V: Clone + Missing> ResolverCache<K, V> for Recorded<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(self.0.get(name).cloned().unwrap_or_else(V::missing))
    }

    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: K, _: V, _: std::time::Instant) {}
}

/// `"a" "b"` → `ab` (the character-strings of one TXT record, concatenated).
fn txt_strings(data: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = data.trim();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('"')?;
        let end = inner.find('"')?;
        out.extend_from_slice(&inner.as_bytes()[..end]);
        rest = inner[end + 1..].trim_start();
    }
    Some(out)
}

impl Lookups for FakeDns {
    async fn txt(&self, name: &str) -> Result<Answer<Vec<u8>>, DnsError> {
        self.answer(name, "TXT", txt_strings)
    }

    async fn addresses(&self, name: &str, v6: bool) -> Result<Answer<IpAddr>, DnsError> {
        let rtype = if v6 { "AAAA" } else { "A" };
        self.answer(name, rtype, |data| data.parse().ok())
    }

    async fn a(&self, name: &str) -> Result<Answer<Ipv4Addr>, DnsError> {
        self.answer(name, "A", |data| data.parse().ok())
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, DnsError> {
        self.answer(&reverse_name(ip), "PTR", |data| {
            Some(data.trim_end_matches('.').to_ascii_lowercase())
        })
    }

    async fn spf_mail_from(&self, ip: IpAddr, helo: &str, domain: &str) -> SpfResult {
        let caches = self.spf_caches();
        // A resolver that is never asked: every lookup is answered by the caches.
        let Ok(unused) = Dns::new(
            Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))),
            std::time::Duration::from_millis(100),
        ) else {
            return SpfResult::TempError;
        };
        let sender = format!("postmaster@{domain}");
        let params = Parameters::new(SpfParameters::verify_mail_from(
            ip,
            helo,
            "mailcanary.invalid",
            &sender,
        ))
        .with_txt_cache(&caches.txt)
        .with_mx_cache(&caches.mx)
        .with_ipv4_cache(&caches.a)
        .with_ipv6_cache(&caches.aaaa)
        .with_ptr_cache(&caches.ptr);
        MessageAuthenticator(unused.resolver().clone())
            .verify_spf(params)
            .await
            .result()
    }

    async fn mx(&self, name: &str) -> Result<Answer<(u16, String)>, DnsError> {
        self.answer(name, "MX", |data| {
            let (pref, host) = data.split_once(char::is_whitespace)?;
            Some((
                pref.parse().ok()?,
                host.trim().trim_end_matches('.').to_string(),
            ))
        })
    }
}
