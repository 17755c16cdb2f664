//! The thin DNS adapter: hickory-resolver lookups that keep "the record does not exist"
//! (NXDOMAIN, NODATA: RFC 2308 §2.1, §2.2) apart from "the DNS did not answer" (timeout,
//! SERVFAIL, REFUSED). The checks ask through the [`Lookups`] trait, which unit tests implement
//! over recorded data.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::ProtocolConfig;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::xfer::{DnsRequestSender, FirstAnswer};
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Query, ResponseCode,
};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};

/// Tries per query (hickory's `attempts`, and the direct loopback PTR queries).
const ATTEMPTS: usize = 2;

/// A lookup that failed: the DNS gave no usable answer. Never used for NXDOMAIN / NODATA,
/// which are [`Answer::NxDomain`] / [`Answer::NoData`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No answer within the timeout.
    #[error("{name} {rtype}: no answer from the DNS server within the timeout")]
    Timeout { name: String, rtype: &'static str },
    /// The server answered SERVFAIL.
    #[error("{name} {rtype}: the DNS server answered SERVFAIL")]
    ServFail { name: String, rtype: &'static str },
    /// The server answered REFUSED (an authoritative server asked about a zone it does not serve).
    #[error("{name} {rtype}: the DNS server answered REFUSED (it does not serve this name)")]
    Refused { name: String, rtype: &'static str },
    /// Another error response code.
    #[error("{name} {rtype}: the DNS server answered {code}")]
    Rcode {
        name: String,
        rtype: &'static str,
        code: String,
    },
    /// The server could not be reached.
    #[error("{name} {rtype}: cannot reach the DNS server ({message})")]
    Network {
        name: String,
        rtype: &'static str,
        message: String,
    },
    /// The name is not a valid domain name.
    #[error("{name}: not a valid domain name")]
    InvalidName { name: String },
    /// Anything else (malformed answer, ...).
    #[error("{name} {rtype}: {message}")]
    Protocol {
        name: String,
        rtype: &'static str,
        message: String,
    },
}

impl DnsError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DnsError::Timeout { .. } => "timeout",
            DnsError::ServFail { .. } => "servfail",
            DnsError::Refused { .. } => "refused",
            DnsError::Rcode { .. } => "rcode",
            DnsError::Network { .. } => "network",
            DnsError::InvalidName { .. } => "invalid_name",
            DnsError::Protocol { .. } => "protocol",
        }
    }
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResolverSetupError {
    /// The system resolver configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

impl ResolverSetupError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ResolverSetupError::SystemConfig(_) => "resolver_config",
            ResolverSetupError::Build(_) => "resolver_build",
        }
    }
}

/// The outcome of a lookup that got an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// At least one record of the type asked for.
    Found(Vec<T>),
    /// The name does not exist (RCODE 3).
    NxDomain,
    /// The name exists but has no record of this type (RCODE 0, no answers).
    NoData,
}

impl<T> Answer<T> {
    /// The records; empty for NXDOMAIN / NODATA.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Found(records) => records,
            Answer::NxDomain | Answer::NoData => &[],
        }
    }

    /// A "void lookup" in the sense of RFC 7208 §4.6.4: NXDOMAIN or an empty answer.
    pub fn is_void(&self) -> bool {
        self.records().is_empty()
    }

    /// A short human word for a missing answer.
    pub fn missing_word(&self) -> &'static str {
        match self {
            Answer::Found(_) => "found",
            Answer::NxDomain => "NXDOMAIN",
            Answer::NoData => "no record of this type",
        }
    }
}

/// The lookups the audit needs. Implemented by [`Dns`]; tests implement it over recorded data.
pub(crate) trait Lookups {
    /// TXT records of `name`, each record's character-strings concatenated (RFC 7208 §3.3).
    async fn txt(&self, name: &str) -> Result<Answer<Vec<u8>>, DnsError>;
    /// A (`v6 == false`) or AAAA (`v6 == true`) records of `name`.
    async fn addresses(&self, name: &str, v6: bool) -> Result<Answer<IpAddr>, DnsError>;
    /// A records of `name` as IPv4 addresses: a DNSBL's return codes (RFC 5782 §2.3).
    async fn a(&self, name: &str) -> Result<Answer<Ipv4Addr>, DnsError>;
    /// MX records of `name` as (preference, exchange), exchange lower case without the final dot.
    async fn mx(&self, name: &str) -> Result<Answer<(u16, String)>, DnsError>;
    /// PTR names of `ip`, asked at its [`reverse_name`] (RFC 1035 §3.5, RFC 3596 §2.5), lower
    /// case without the final dot.
    async fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, DnsError>;
    /// The SPF result (RFC 7208 §4 check_host, mail-auth's evaluator) for mail from
    /// `postmaster@domain` sent by `ip` that said HELO `helo`.
    async fn spf_mail_from(&self, ip: IpAddr, helo: &str, domain: &str) -> SpfResult;
}

/// The audit's resolver.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// The nameservers, for the queries hickory's resolver answers itself (loopback PTRs).
    servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Dns {
    /// A resolver asking `nameserver` (UDP, TCP on truncation), or the system's resolvers
    /// (`/etc/resolv.conf`) when `None`. `/etc/hosts` is never consulted: the audit is about
    /// what the world's DNS says.
    pub fn new(
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ResolverSetupError> {
        let (config, mut opts) = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                (
                    ResolverConfig::from_name_servers(vec![server]),
                    ResolverOpts::default(),
                )
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolverSetupError::SystemConfig(e.to_string()))?,
        };
        let servers = config
            .name_servers()
            .iter()
            .map(|ns| {
                let port = ns
                    .connections
                    .iter()
                    .find(|c| c.protocol == ProtocolConfig::Udp)
                    .map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        opts.timeout = timeout;
        opts.attempts = ATTEMPTS;
        opts.edns0 = true;
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| ResolverSetupError::Build(e.to_string()))?;
        Ok(Dns {
            resolver,
            servers,
            timeout,
        })
    }

    /// The underlying hickory resolver (shared with mail-auth's SPF evaluator).
    pub fn resolver(&self) -> &TokioResolver {
        &self.resolver
    }

    async fn query(
        &self,
        name: &str,
        rtype: RecordType,
        label: &'static str,
    ) -> Result<Answer<RData>, DnsError> {
        let fqdn = to_name(name)?;
        match self.resolver.lookup(fqdn, rtype).await {
            Ok(lookup) => {
                let records: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if records.is_empty() {
                    Ok(Answer::NoData)
                } else {
                    Ok(Answer::Found(records))
                }
            }
            Err(err) => classify(err, name, label),
        }
    }

    /// PTR names of `ip`, lower case without the final dot.
    ///
    /// hickory's resolver answers `127.in-addr.arpa` and `::1` itself with `localhost`
    /// (RFC 6761 §6.3), which would hide the lab's reverse zone (all of 127.0.0.0/8); for
    /// loopback addresses the nameserver is asked directly.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, DnsError> {
        let name = Name::from(ip).to_ascii();
        let answer = if ip.is_loopback() {
            self.direct(Name::from(ip), RecordType::PTR, "PTR").await?
        } else {
            self.query(&name, RecordType::PTR, "PTR").await?
        };
        Ok(map_answer(answer, |data| match data {
            RData::PTR(ptr) => Some(host_name(&ptr.0)),
            _ => None,
        }))
    }

    /// One query straight to the nameservers over UDP, past the resolver's special-use rules
    /// and cache.
    async fn direct(
        &self,
        name: Name,
        rtype: RecordType,
        label: &'static str,
    ) -> Result<Answer<RData>, DnsError> {
        let shown = name.to_ascii();
        let mut last = None;
        for server in &self.servers {
            for _ in 0..ATTEMPTS {
                let mut stream = UdpClientStream::builder(*server, TokioRuntimeProvider::default())
                    .with_timeout(Some(self.timeout))
                    .build();
                let mut options = DnsRequestOptions::default();
                options.recursion_desired = true;
                let request = DnsRequest::from_query(Query::query(name.clone(), rtype), options);
                match stream.send_message(request).first_answer().await {
                    Ok(response) => return classify_response(&response, rtype, &shown, label),
                    Err(err) => last = Some(err),
                }
            }
        }
        match last {
            Some(err) => classify(err, &shown, label),
            None => Err(DnsError::Network {
                name: shown,
                rtype: label,
                message: "no nameserver configured".to_string(),
            }),
        }
    }

    /// A records of `name` (used for DNSBL queries, where the address is a return code).
    pub async fn a(&self, name: &str) -> Result<Answer<Ipv4Addr>, DnsError> {
        let answer = self.query(name, RecordType::A, "A").await?;
        Ok(map_answer(answer, |data| match data {
            RData::A(a) => Some(a.0),
            _ => None,
        }))
    }
}

/// [`Dns::a`] and [`Dns::ptr`] are also inherent methods, public for the callers outside the
/// crate (the lab tests), which cannot name this crate-private trait.
impl Lookups for Dns {
    async fn txt(&self, name: &str) -> Result<Answer<Vec<u8>>, DnsError> {
        let answer = self.query(name, RecordType::TXT, "TXT").await?;
        Ok(map_answer(answer, |data| match data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|s| s.iter().copied())
                    .collect(),
            ),
            _ => None,
        }))
    }

    async fn addresses(&self, name: &str, v6: bool) -> Result<Answer<IpAddr>, DnsError> {
        let (rtype, label) = if v6 {
            (RecordType::AAAA, "AAAA")
        } else {
            (RecordType::A, "A")
        };
        let answer = self.query(name, rtype, label).await?;
        Ok(map_answer(answer, |data| match data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        }))
    }

    async fn a(&self, name: &str) -> Result<Answer<Ipv4Addr>, DnsError> {
        Dns::a(self, name).await
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, DnsError> {
        Dns::ptr(self, ip).await
    }

    async fn spf_mail_from(&self, ip: IpAddr, helo: &str, domain: &str) -> SpfResult {
        let sender = format!("postmaster@{domain}");
        MessageAuthenticator(self.resolver.clone())
            .verify_spf(SpfParameters::verify_mail_from(
                ip,
                helo,
                "mailcanary.invalid",
                &sender,
            ))
            .await
            .result()
    }

    async fn mx(&self, name: &str) -> Result<Answer<(u16, String)>, DnsError> {
        let answer = self.query(name, RecordType::MX, "MX").await?;
        let mut answer = map_answer(answer, |data| match data {
            RData::MX(mx) => Some((mx.preference, host_name(&mx.exchange))),
            _ => None,
        });
        if let Answer::Found(records) = &mut answer {
            records.sort();
        }
        Ok(answer)
    }
}

fn map_answer<T>(answer: Answer<RData>, f: impl Fn(&RData) -> Option<T>) -> Answer<T> {
    match answer {
        Answer::Found(records) => {
            let mapped: Vec<T> = records.iter().filter_map(f).collect();
            if mapped.is_empty() {
                Answer::NoData
            } else {
                Answer::Found(mapped)
            }
        }
        Answer::NxDomain => Answer::NxDomain,
        Answer::NoData => Answer::NoData,
    }
}

/// A fully qualified name (no search domains are ever appended).
fn to_name(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim_end_matches('.');
    let invalid = || DnsError::InvalidName {
        name: name.to_string(),
    };
    if trimmed.is_empty() || trimmed.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    // Underscore labels (_dmarc, _domainkey) are not host names: parse them relaxed.
    let mut parsed = if trimmed.is_ascii() {
        Name::from_ascii(trimmed)
    } else {
        Name::from_utf8(trimmed)
    }
    .map_err(|_| invalid())?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A host name as the audit compares them: lower case, ASCII (A-labels), no final dot.
pub(crate) fn host_name(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string()
}

/// The name a PTR query for `ip` asks (`5.0.0.127.in-addr.arpa`, nibbles under `ip6.arpa` for
/// IPv6), without the final dot.
pub(crate) fn reverse_name(ip: IpAddr) -> String {
    Name::from(ip).to_ascii().trim_end_matches('.').to_string()
}

/// Lower case, no final dot: how the audit compares domain names typed by users.
pub(crate) fn normalize_domain(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn classify_response(
    response: &DnsResponse,
    rtype: RecordType,
    name: &str,
    label: &'static str,
) -> Result<Answer<RData>, DnsError> {
    let name = name.to_string();
    match response.metadata.response_code {
        ResponseCode::NoError => {
            let records: Vec<RData> = response
                .answers
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data.clone())
                .collect();
            Ok(if records.is_empty() {
                Answer::NoData
            } else {
                Answer::Found(records)
            })
        }
        ResponseCode::NXDomain => Ok(Answer::NxDomain),
        ResponseCode::ServFail => Err(DnsError::ServFail { name, rtype: label }),
        ResponseCode::Refused => Err(DnsError::Refused { name, rtype: label }),
        code => Err(DnsError::Rcode {
            name,
            rtype: label,
            code: code.to_string(),
        }),
    }
}

fn classify<T>(err: NetError, name: &str, rtype: &'static str) -> Result<Answer<T>, DnsError> {
    let name = name.to_string();
    match err {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => {
            if no.response_code == ResponseCode::NXDomain {
                Ok(Answer::NxDomain)
            } else {
                Ok(Answer::NoData)
            }
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            Err(DnsError::ServFail { name, rtype })
        }
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::Refused)) => {
            Err(DnsError::Refused { name, rtype })
        }
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => Err(DnsError::Rcode {
            name,
            rtype,
            code: code.to_string(),
        }),
        NetError::Timeout => Err(DnsError::Timeout { name, rtype }),
        err @ (NetError::Io(_) | NetError::NoConnections | NetError::Busy) => {
            Err(DnsError::Network {
                name,
                rtype,
                message: err.to_string(),
            })
        }
        other => Err(DnsError::Protocol {
            name,
            rtype,
            message: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fully_qualified_and_validated() {
        let name = to_name("_dmarc.Example.test").expect("valid");
        assert!(name.is_fqdn());
        assert_eq!(name.to_ascii(), "_dmarc.Example.test.");
        assert!(to_name("lab._domainkey.sender.test.").is_ok());
        assert!(to_name("").is_err());
        assert!(to_name("a..b").is_err());
    }

    #[test]
    fn void_answers() {
        assert!(Answer::<u8>::NxDomain.is_void());
        assert!(Answer::<u8>::NoData.is_void());
        assert!(!Answer::Found(vec![1u8]).is_void());
    }
}
