//! Recorded DNS data for unit tests: [`Lookups`] over a small zone-like text file under
//! `tests/fixtures/dns/` (format in the header of `spf.zone`), or over text given inline.
//! PTR records sit at their reverse names, as in a real zone (RFC 1035 §3.5):
//! `5.2.0.192.in-addr.arpa PTR mail.example.test.`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::dns::{Answer, DnsError, Lookups, reverse_name};

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
