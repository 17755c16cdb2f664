//! The path a message took, read from its `Received:` header fields (RFC 5321 §4.4): which
//! hosts handed it on, from which address, over which protocol and TLS version, and when.
//!
//! This module is pure: [`read`] takes the raw bytes of a message (its header section is
//! enough) and a [`Receiver`] (the seed's own domains), and returns a [`Path`], with no
//! network, no clock and no file system. It imports nothing of the application, only the
//! header splitter of [`crate::verdict`].
//!
//! # One hop
//!
//! Each MTA that takes a message prepends one `Received:` field (RFC 5321 §4.4), so the fields
//! are read top-most first: the first is the last hop (the mailbox), the last is the first
//! (the submission). A field is parsed by mail-parser's `Received` reader (the tokenizer of
//! Stalwart's MTA, tested on a large corpus of real fields) into:
//!
//! - `by`: the host that wrote the field;
//! - `from`: what it recorded about its client (RFC 5321 §4.4 `From-domain` and `TCP-info`):
//!   the HELO/EHLO name it was given, the reverse DNS name it found, and the IP address
//!   (IPv4, IPv6, `[IPv6:...]` address literals of RFC 5321 §4.1.3, IPv4-mapped IPv6 read as
//!   IPv4);
//! - `with`: the protocol, one of the IANA "Mail Transmission Types" (RFC 3848: `ESMTPS` is
//!   ESMTP over STARTTLS, `ESMTPA` authenticated, `ESMTPSA` both; RFC 6531 `UTF8SMTP*`;
//!   RFC 8314 keeps those words for implicit TLS on port 465/993), plus what real MTAs write
//!   (`LMTP`/`LMTPS` of Dovecot and Cyrus, `SMTPS` of Gmail and Yahoo, `HTTP(S)`, `MAPI`,
//!   Exim's `local-esmtps`, Microsoft's `Microsoft SMTP Server`);
//! - the TLS version and cipher where stated: Postfix `(using TLSv1.3 with cipher ...)`, Exim
//!   `(TLS1.3) tls TLS_AES_256_GCM_SHA384` and the older `(TLS1.2:ECDHE_RSA_...:256)`,
//!   Sendmail `(version=TLSv1.3 cipher=... bits=... verify=...)`, Gmail
//!   `(version=TLS1_3 cipher=... bits=256/256)` and `(Google Transport Security)` (encrypted,
//!   version not stated), Microsoft 365 / Outlook.com `(version=TLS1_2, cipher=TLS_ECDHE_...)`
//!   and `(TLS)`, Yahoo `with SMTPs (version=TLS1_3 cipher=...)`;
//! - `id`, `for`, and the timestamp after the last `;` (RFC 5322 §3.3 date-time);
//! - the delay per hop: its timestamp minus the one of the hop below it (seconds; negative
//!   when the two hosts' clocks disagree).
//!
//! # Which hops are believed
//!
//! Anyone can write `Received:` fields into the message they send, but only *below* the ones
//! the receiver adds: each MTA prepends (RFC 5321 §4.4), so the top of the list is always the
//! receiver's own. The same idea as for `Authentication-Results` (`verdict::trust`): read top
//! down and believe only the receiver's part. A hop is the receiver's when its `by` host is
//! under one of the receiver's domains ([`Receiver`]; derived from the seed's authserv-ids or
//! provider preset), or is an internal name that belongs to nobody else (no `from` clause at
//! all, an address literal outside the public internet, a single-label name, `localhost`,
//! `.internal`, `.local`, `.localdomain`, `.lan`, `.home.arpa`). Walking down from the top
//! while hops are the receiver's, the **receiving hop** is the first one that took the
//! message from outside: its client is neither named under the receiver's domains (HELO or
//! reverse name) nor an internal address with an internal name. When the walk ends before
//! such a hop, the lowest hop of the receiver's run is the receiving hop (its client was the
//! first host that is not the receiver's). The receiving hop and every hop above it are
//! `trusted`; everything below is shown, marked untrusted, and never used for [`Seen`].
//!
//! Without any receiver domain, the receiver is taken to be the domain of the top-most hop
//! with a public `by` name (its first label dropped when it has three or more): the top-most
//! hop is the receiver's, as the top-most `Authentication-Results` header is by default.
//!
//! # What the receiver saw
//!
//! From the receiving hop: the IP address (and family) the receiver accepted the connection
//! from, the HELO it recorded, the protocol and TLS version of the hop into the receiver
//! ([`Seen`]). Yahoo writes no address on that hop when the client is named; the verdict's
//! `client_ip` (Received-SPF, Authentication-Results) is the fallback for the caller.
//! The handoff delays ([`Handoff`], bounded [`Leg`] names) are submission → receiving MX
//! (the receiving hop's timestamp minus the oldest timestamp below it) and receiving MX →
//! mailbox (the top-most timestamp minus the receiving hop's).
//!
//! # Limits
//!
//! A hostile message may carry thousands of `Received:` fields or one of a megabyte. At most
//! [`MAX_HOPS`] fields are parsed, top-most first (RFC 5321 §6.3 sets 100 hops as the loop
//! limit of a relay); the rest are only counted in `hops_total`. Each field's value is cut to
//! [`MAX_FIELD_BYTES`] before it is parsed, and every stored string to [`MAX_VALUE_CHARS`]
//! characters. The work is linear in the size of the header section.
//!
//! # JSON
//!
//! [`Path`] serialises as `mailcanary inspect --json` shows it under `path`; every key is
//! always present (`null` when absent). Keys are never removed or renamed. It also reads back
//! (`Deserialize`): a probe's path is kept with its result in the state file.

mod hop;
pub mod receiver;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use hop::parse_field;
pub use receiver::Receiver;

use crate::verdict::InspectError;
use crate::verdict::headers;

/// The most `Received:` fields parsed, top-most first (RFC 5321 §6.3's hop limit).
pub const MAX_HOPS: usize = 100;
/// The longest `Received:` value parsed, in bytes; the rest of a longer one is ignored.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
/// The longest stored string, in characters (a domain name is at most 255 octets).
pub const MAX_VALUE_CHARS: usize = 255;

/// Reads the path of a message from its `Received:` fields. Fails only when the input is not
/// a message (empty, or no header section); a message without `Received:` fields has an empty
/// path.
pub fn read(raw: &[u8], receiver: &Receiver) -> Result<Path, InspectError> {
    let fields = headers::split(raw)?;
    let mut hops_total = 0;
    let mut hops = Vec::new();
    for field in fields.iter().filter(|field| field.is("Received")) {
        hops_total += 1;
        if hops.len() < MAX_HOPS {
            hops.push(parse_field(&field.value()));
        }
    }
    Ok(Path::from_hops(hops, hops_total, receiver))
}

/// The path of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Path {
    /// The hops read, top-most (the last, the mailbox) first; at most [`MAX_HOPS`].
    pub hops: Vec<Hop>,
    /// How many `Received:` fields the message has (more than `hops` holds past the limit).
    pub hops_total: usize,
    /// The receiver's domains the trust decision used (given, or derived from the top hop).
    pub receiver_domains: Vec<String>,
    /// The index in `hops` of the receiving hop: where the receiver took the message from
    /// outside. `None` when no hop is the receiver's.
    pub receiving_hop: Option<usize>,
    /// What the receiver saw on the receiving hop.
    pub seen: Option<Seen>,
    /// The handoff delays that the timestamps give, in [`Leg`] order.
    pub handoffs: Vec<Handoff>,
}

impl Path {
    /// Builds the path from hops read top-most first: decides the trust and derives what the
    /// receiver saw and the handoffs.
    pub fn from_hops(mut hops: Vec<Hop>, hops_total: usize, receiver: &Receiver) -> Path {
        let receiver = if receiver.is_empty() {
            Receiver::from_top_hop(&hops)
        } else {
            receiver.clone()
        };
        fill_delays(&mut hops);
        let receiving_hop = receiver.receiving_hop(&hops);
        if let Some(index) = receiving_hop {
            for hop in &mut hops[..=index] {
                hop.trusted = true;
            }
        }
        let seen = receiving_hop
            .and_then(|index| hops.get(index))
            .map(Seen::of);
        let handoffs = receiving_hop
            .map(|index| handoffs(&hops, index))
            .unwrap_or_default();
        Path {
            hops,
            hops_total,
            receiver_domains: receiver.domains().to_vec(),
            receiving_hop,
            seen,
            handoffs,
        }
    }

    /// The receiving hop.
    pub fn receiving(&self) -> Option<&Hop> {
        self.receiving_hop.and_then(|index| self.hops.get(index))
    }

    /// The TLS of the hop into the receiver as a bounded label (the `version` label of
    /// `mailcanary_last_hop_tls`): one of [`LAST_HOP_TLS_LABELS`].
    pub fn last_hop_tls(&self) -> &'static str {
        match self.receiving() {
            None => "unknown",
            Some(hop) => match (hop.tls, hop.tls_version) {
                (_, Some(version)) => version.label(),
                (Some(true), None) => "tls_unstated",
                (Some(false), None) => "none",
                (None, None) => "unknown",
            },
        }
    }

    /// The seconds of one handoff, when the timestamps give it.
    pub fn handoff(&self, leg: Leg) -> Option<i64> {
        self.handoffs
            .iter()
            .find(|handoff| handoff.hop == leg)
            .map(|handoff| handoff.seconds)
    }
}

/// Every value [`Path::last_hop_tls`] returns.
pub const LAST_HOP_TLS_LABELS: [&str; 9] = [
    "tls1.3",
    "tls1.2",
    "tls1.1",
    "tls1.0",
    "ssl3",
    "ssl2",
    "tls_unstated",
    "none",
    "unknown",
];

/// One `Received:` field, read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hop {
    /// Whether the hop is the receiver's own (the receiving hop or above it).
    pub trusted: bool,
    /// The host that wrote the field, lower case, no final dot; an address literal as the
    /// address.
    pub by: Option<String>,
    /// What the host recorded about its client; `None` when the field has no `from` clause.
    pub from: Option<From>,
    /// The protocol word of `with`, read into a fixed set.
    pub protocol: Option<Protocol>,
    /// Whether the hop was encrypted: `true` when a TLS version, a cipher, `ESMTPS`-like
    /// protocol or `(Google Transport Security)` says so, `false` for a plain mail protocol
    /// with nothing about TLS, `None` when nothing tells.
    pub tls: Option<bool>,
    /// The TLS version stated.
    pub tls_version: Option<TlsVersion>,
    /// The cipher suite stated, as written.
    pub tls_cipher: Option<String>,
    /// The `id` clause (the writer's queue or session id).
    pub id: Option<String>,
    /// The `for` clause (the recipient it was received for).
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// The timestamp after the last `;`, Unix seconds.
    pub timestamp: Option<i64>,
    /// The same timestamp in RFC 3339, UTC.
    pub date: Option<String>,
    /// This hop's timestamp minus the timestamp of the hop below it, seconds.
    pub delay_seconds: Option<i64>,
}

/// The client side of a hop (RFC 5321 §4.4 `From-domain` and `TCP-info`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct From {
    /// The HELO/EHLO name the client gave, lower case, no final dot.
    pub helo: Option<String>,
    /// The reverse DNS name the receiving host found for the client.
    pub reverse_name: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The family of `ip`.
    pub family: Option<Family>,
}

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of an address (IPv4-mapped IPv6 addresses are IPv4).
    pub fn of(ip: IpAddr) -> Family {
        match ip.to_canonical() {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// `IPv4` or `IPv6`, as sentences name it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// The protocol of a hop (the IANA Mail Transmission Types, RFC 3848 and RFC 6531, plus the
/// words real MTAs write). Serialised as written in `Received:`, upper case (`ESMTPS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "SMTP")]
    Smtp,
    /// SMTP over implicit TLS (Gmail's and Yahoo's word).
    #[serde(rename = "SMTPS")]
    Smtps,
    #[serde(rename = "ESMTP")]
    Esmtp,
    #[serde(rename = "ESMTPA")]
    Esmtpa,
    #[serde(rename = "ESMTPS")]
    Esmtps,
    #[serde(rename = "ESMTPSA")]
    Esmtpsa,
    #[serde(rename = "LMTP")]
    Lmtp,
    #[serde(rename = "LMTPA")]
    Lmtpa,
    #[serde(rename = "LMTPS")]
    Lmtps,
    #[serde(rename = "LMTPSA")]
    Lmtpsa,
    #[serde(rename = "UTF8SMTP")]
    Utf8Smtp,
    #[serde(rename = "UTF8SMTPA")]
    Utf8Smtpa,
    #[serde(rename = "UTF8SMTPS")]
    Utf8Smtps,
    #[serde(rename = "UTF8SMTPSA")]
    Utf8Smtpsa,
    #[serde(rename = "UTF8LMTP")]
    Utf8Lmtp,
    #[serde(rename = "UTF8LMTPS")]
    Utf8Lmtps,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "IMAP")]
    Imap,
    #[serde(rename = "POP3")]
    Pop3,
    /// Microsoft's internal store hop (`with mapi`).
    #[serde(rename = "MAPI")]
    Mapi,
    /// A local submission (`local`, `stdin`, `socket`).
    #[serde(rename = "local")]
    Local,
    /// Any other word.
    #[serde(rename = "other")]
    Other,
}

impl Protocol {
    /// The word as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "SMTP",
            Protocol::Smtps => "SMTPS",
            Protocol::Esmtp => "ESMTP",
            Protocol::Esmtpa => "ESMTPA",
            Protocol::Esmtps => "ESMTPS",
            Protocol::Esmtpsa => "ESMTPSA",
            Protocol::Lmtp => "LMTP",
            Protocol::Lmtpa => "LMTPA",
            Protocol::Lmtps => "LMTPS",
            Protocol::Lmtpsa => "LMTPSA",
            Protocol::Utf8Smtp => "UTF8SMTP",
            Protocol::Utf8Smtpa => "UTF8SMTPA",
            Protocol::Utf8Smtps => "UTF8SMTPS",
            Protocol::Utf8Smtpsa => "UTF8SMTPSA",
            Protocol::Utf8Lmtp => "UTF8LMTP",
            Protocol::Utf8Lmtps => "UTF8LMTPS",
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
            Protocol::Mapi => "MAPI",
            Protocol::Local => "local",
            Protocol::Other => "other",
        }
    }

    /// Reads a `with` word (case-insensitive), including the forms MTAs write around the
    /// IANA words: Exim's `local-esmtps`, CommuniGate's `ESMTP-TLS`, `ESMTP/TLS/<cipher>`,
    /// Microsoft's `SMTPSVC(...)`, Gmail API's `HTTPREST`.
    pub fn parse(word: &str) -> Protocol {
        let word = word.to_ascii_uppercase();
        let word = word.strip_prefix("LOCAL-").unwrap_or(&word);
        if word.starts_with("ESMTP/TLS") || word == "ESMTP-TLS" {
            return Protocol::Esmtps;
        }
        if word.starts_with("SMTPSVC") {
            return Protocol::Smtp;
        }
        match word {
            "SMTP" | "SMTPD" => Protocol::Smtp,
            "SMTPS" => Protocol::Smtps,
            "ESMTP" => Protocol::Esmtp,
            "ESMTPA" => Protocol::Esmtpa,
            "ESMTPS" => Protocol::Esmtps,
            "ESMTPSA" => Protocol::Esmtpsa,
            "LMTP" => Protocol::Lmtp,
            "LMTPA" => Protocol::Lmtpa,
            "LMTPS" => Protocol::Lmtps,
            "LMTPSA" => Protocol::Lmtpsa,
            "UTF8SMTP" => Protocol::Utf8Smtp,
            "UTF8SMTPA" => Protocol::Utf8Smtpa,
            "UTF8SMTPS" => Protocol::Utf8Smtps,
            "UTF8SMTPSA" => Protocol::Utf8Smtpsa,
            "UTF8LMTP" | "UTF8LMTPA" => Protocol::Utf8Lmtp,
            "UTF8LMTPS" | "UTF8LMTPSA" => Protocol::Utf8Lmtps,
            "HTTP" | "HTTPREST" => Protocol::Http,
            "HTTPS" => Protocol::Https,
            "IMAP" => Protocol::Imap,
            "POP3" => Protocol::Pop3,
            "MAPI" => Protocol::Mapi,
            "LOCAL" | "STDIN" | "SOCKET" => Protocol::Local,
            _ => Protocol::Other,
        }
    }

    /// Whether the word itself says the hop was encrypted (RFC 3848 `S`, HTTPS).
    pub fn is_encrypted(self) -> bool {
        matches!(
            self,
            Protocol::Smtps
                | Protocol::Esmtps
                | Protocol::Esmtpsa
                | Protocol::Lmtps
                | Protocol::Lmtpsa
                | Protocol::Utf8Smtps
                | Protocol::Utf8Smtpsa
                | Protocol::Utf8Lmtps
                | Protocol::Https
        )
    }

    /// Whether the word is a mail protocol that RFC 3848 would have written with an `S` had
    /// TLS been used: plain text unless the field states a TLS version.
    pub fn is_plain_mail(self) -> bool {
        matches!(
            self,
            Protocol::Smtp
                | Protocol::Esmtp
                | Protocol::Esmtpa
                | Protocol::Lmtp
                | Protocol::Lmtpa
                | Protocol::Utf8Smtp
                | Protocol::Utf8Smtpa
                | Protocol::Utf8Lmtp
                | Protocol::Http
        )
    }
}

/// A TLS (or SSL) protocol version. Serialised as OpenSSL names it (`TLSv1.3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "SSLv2")]
    Ssl2,
    #[serde(rename = "SSLv3")]
    Ssl3,
    #[serde(rename = "TLSv1.0")]
    Tls10,
    #[serde(rename = "TLSv1.1")]
    Tls11,
    #[serde(rename = "TLSv1.2")]
    Tls12,
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

impl TlsVersion {
    /// `TLSv1.3`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl2 => "SSLv2",
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls10 => "TLSv1.0",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// The metric label (one of [`LAST_HOP_TLS_LABELS`]).
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Ssl2 => "ssl2",
            TlsVersion::Ssl3 => "ssl3",
            TlsVersion::Tls10 => "tls1.0",
            TlsVersion::Tls11 => "tls1.1",
            TlsVersion::Tls12 => "tls1.2",
            TlsVersion::Tls13 => "tls1.3",
        }
    }
}

/// What the receiver saw on the receiving hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The host of the receiver that took the message from outside.
    pub by: Option<String>,
    /// The address the receiver accepted the connection from.
    pub ip: Option<IpAddr>,
    /// Its family.
    pub family: Option<Family>,
    /// The HELO/EHLO name the receiver recorded.
    pub helo: Option<String>,
    /// The reverse DNS name the receiver recorded.
    pub reverse_name: Option<String>,
    /// The protocol of the hop into the receiver.
    pub protocol: Option<Protocol>,
    /// Whether that hop was encrypted (see [`Hop::tls`]).
    pub tls: Option<bool>,
    /// Its TLS version, when stated.
    pub tls_version: Option<TlsVersion>,
    /// Its cipher, when stated.
    pub tls_cipher: Option<String>,
}

impl Seen {
    fn of(hop: &Hop) -> Seen {
        let from = hop.from.clone().unwrap_or_default();
        Seen {
            by: hop.by.clone(),
            ip: from.ip,
            family: from.family,
            helo: from.helo,
            reverse_name: from.reverse_name,
            protocol: hop.protocol,
            tls: hop.tls,
            tls_version: hop.tls_version,
            tls_cipher: hop.tls_cipher.clone(),
        }
    }
}

/// A stretch of the path whose delay is measured (the bounded `hop` label of the handoff
/// histograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// From submission (the oldest timestamp below the receiving hop) to the receiving MX.
    ReceivingMx,
    /// From the receiving MX to the mailbox (the top-most timestamp).
    Mailbox,
}

impl Leg {
    /// Every leg, in path order.
    pub const ALL: [Leg; 2] = [Leg::ReceivingMx, Leg::Mailbox];

    /// `receiving_mx` or `mailbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::ReceivingMx => "receiving_mx",
            Leg::Mailbox => "mailbox",
        }
    }
}

/// The delay of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// Which leg.
    pub hop: Leg,
    /// Seconds, from the two hosts' timestamps (whole seconds; negative when their clocks
    /// disagree).
    pub seconds: i64,
}

impl Handoff {
    /// The delay for a histogram: negative values (clock skew) count as 0.
    pub fn non_negative_seconds(self) -> u64 {
        u64::try_from(self.seconds).unwrap_or(0)
    }
}

/// Each hop's delay: its timestamp minus the nearest timestamp below it.
fn fill_delays(hops: &mut [Hop]) {
    for index in 0..hops.len() {
        let Some(at) = hops[index].timestamp else {
            continue;
        };
        let below = hops[index + 1..].iter().find_map(|hop| hop.timestamp);
        hops[index].delay_seconds = below.map(|before| at.saturating_sub(before));
    }
}

/// The handoffs around the receiving hop at `index`.
fn handoffs(hops: &[Hop], index: usize) -> Vec<Handoff> {
    let Some(received) = hops.get(index).and_then(|hop| hop.timestamp) else {
        return Vec::new();
    };
    let submitted = hops[index + 1..].iter().rev().find_map(|hop| hop.timestamp);
    let stored = hops[..index].iter().find_map(|hop| hop.timestamp);
    let mut out = Vec::with_capacity(2);
    if let Some(submitted) = submitted {
        out.push(Handoff {
            hop: Leg::ReceivingMx,
            seconds: received.saturating_sub(submitted),
        });
    }
    if let Some(stored) = stored {
        out.push(Handoff {
            hop: Leg::Mailbox,
            seconds: stored.saturating_sub(received),
        });
    }
    out
}
