//! One `Received:` field (RFC 5321 §4.4) into a [`Hop`].
//!
//! mail-parser's `Received` reader does the tokenizing (address literals, comments, the
//! dialects' TLS clauses, the date); a small scan of the words outside comments adds what it
//! leaves out: whether there is a `from` clause at all (mail-parser also takes a `from` found
//! inside a comment, as in Postfix's `(Postfix, from userid 1000)`), the `with` word as written
//! (it maps unknown words such as Gmail's `SMTPS` to nothing), and the TLS statements without
//! a version (`(Google Transport Security)`, Microsoft's `(TLS)`).

use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderValue, Host, Received};

use super::{Family, From, Hop, MAX_FIELD_BYTES, MAX_VALUE_CHARS, Protocol, TlsVersion};

/// Reads one `Received:` value (unfolded). Never fails: what cannot be read is `None`.
pub fn parse_field(value: &str) -> Hop {
    let value = prefix(value, MAX_FIELD_BYTES);
    let received = match MessageStream::new(value.as_bytes()).parse_received() {
        HeaderValue::Received(received) => *received,
        _ => Received::default(),
    };
    let scan = Scan::of(value);
    let tls_version = received.tls_version.and_then(tls_version);
    let tls_cipher = received.tls_cipher.as_deref().and_then(clean);
    let protocol = scan.with.map(Protocol::parse).or_else(|| {
        scan.via
            .map(Protocol::parse)
            .filter(|p| *p != Protocol::Other)
    });
    let stated = tls_version.is_some()
        || tls_cipher.is_some()
        || scan.google_transport_security
        || scan.microsoft_tls;
    let tls = if stated || protocol.is_some_and(Protocol::is_encrypted) {
        Some(true)
    } else if protocol.is_some_and(Protocol::is_plain_mail) {
        Some(false)
    } else {
        None
    };
    let timestamp = received
        .date
        .filter(|date| date.is_valid())
        .map(|date| date.to_timestamp());
    Hop {
        trusted: false,
        by: received.by.as_ref().and_then(host),
        from: if scan.from_clause {
            from_side(&received)
        } else {
            None
        },
        protocol,
        tls,
        tls_version,
        tls_cipher,
        id: received.id.as_deref().and_then(clean),
        for_: received.for_.as_deref().and_then(clean),
        timestamp,
        date: timestamp.and_then(rfc3339),
        delay_seconds: None,
    }
}

/// The client side: HELO, reverse name, address.
///
/// The dialects put them in different places: Postfix and Sendmail `from HELO (REVERSE [IP])`,
/// Exim `from REVERSE ([IP] helo=HELO)` (helo= only when it differs), Microsoft
/// `from HELO (IP)`, Yahoo `from IP (EHLO HELO)`, Gmail `from HELO (REVERSE. [IP])` or
/// `from [IP-LITERAL] (REVERSE [IP])`. mail-parser reads `helo=`, `HELO`, `EHLO` into `helo`,
/// the bracketed or parenthesised address into `from_ip` and the name beside it into
/// `from_iprev`.
fn from_side(received: &Received<'_>) -> Option<From> {
    let from_ip = match &received.from {
        Some(Host::IpAddr(ip)) => Some(*ip),
        _ => None,
    };
    let from_name = match &received.from {
        Some(Host::Name(name)) => name_of(name),
        _ => None,
    };
    let ip = received.from_ip.or(from_ip).map(|ip| ip.to_canonical());
    let stated_helo = received.helo.as_ref().and_then(|helo| match helo {
        Host::Name(name) => name_of(name),
        Host::IpAddr(ip) => Some(format!("[{ip}]")),
    });
    let (helo, reverse_name) = match stated_helo {
        // Exim, Yahoo: the word after `from` is the reverse name (or the address).
        Some(helo) => (
            Some(helo),
            received
                .from_iprev
                .as_deref()
                .and_then(name_of)
                .or(from_name),
        ),
        None => {
            // An address after `from` with the TCP-info beside it (`from [192.0.2.1]
            // (unknown [192.0.2.1])`): the client's HELO was that address literal.
            let literal = from_ip
                .filter(|_| received.from_ip.is_some())
                .map(|literal| format!("[{literal}]"));
            (
                from_name.or(literal),
                received.from_iprev.as_deref().and_then(name_of),
            )
        }
    };
    let from = From {
        helo,
        reverse_name,
        ip,
        family: ip.map(Family::of),
    };
    let empty = from.helo.is_none() && from.reverse_name.is_none() && from.ip.is_none();
    (!empty).then_some(from)
}

/// A host name as compared and stored: lower case, no final dot, cut to size. `None` for
/// what is not a name: `unknown` (Postfix's missing PTR), the `IPv6`/`IPv4` tag of an
/// address literal, or nothing.
fn name_of(name: &str) -> Option<String> {
    let name = name.trim().trim_start_matches('[').trim_end_matches(']');
    let name = name.trim_end_matches('.');
    if name.is_empty()
        || name.eq_ignore_ascii_case("unknown")
        || name.eq_ignore_ascii_case("ipv6")
        || name.eq_ignore_ascii_case("ipv4")
    {
        return None;
    }
    clean(&name.to_ascii_lowercase())
}

/// The `by` host: a name, or an address literal as the address.
fn host(host: &Host<'_>) -> Option<String> {
    match host {
        Host::Name(name) => name_of(name),
        Host::IpAddr(ip) => Some(ip.to_canonical().to_string()),
    }
}

fn tls_version(version: mail_parser::TlsVersion) -> Option<TlsVersion> {
    use mail_parser::TlsVersion as Parsed;
    match version {
        Parsed::SSLv2 => Some(TlsVersion::Ssl2),
        Parsed::SSLv3 => Some(TlsVersion::Ssl3),
        Parsed::TLSv1_0 => Some(TlsVersion::Tls10),
        Parsed::TLSv1_1 => Some(TlsVersion::Tls11),
        Parsed::TLSv1_2 => Some(TlsVersion::Tls12),
        Parsed::TLSv1_3 => Some(TlsVersion::Tls13),
        // Datagram TLS is not a mail transport.
        Parsed::DTLSv1_0 | Parsed::DTLSv1_2 | Parsed::DTLSv1_3 => None,
    }
}

/// Unix seconds as RFC 3339 in UTC.
fn rfc3339(timestamp: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|date| date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Control characters dropped, white space collapsed, cut to [`MAX_VALUE_CHARS`]; `None`
/// when nothing is left.
fn clean(value: &str) -> Option<String> {
    crate::truncate::field(value, MAX_VALUE_CHARS)
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the words outside comments say.
#[derive(Default)]
struct Scan<'a> {
    /// A `from` clause (RFC 5321 §4.4 `From-domain`) is there.
    from_clause: bool,
    /// The word after `with` (after `with Microsoft`, the next one).
    with: Option<&'a str>,
    /// The word after `via` (old Yahoo and Outlook: `via HTTP`).
    via: Option<&'a str>,
    /// `(Google Transport Security)`: Gmail's TLS note without a version.
    google_transport_security: bool,
    /// Microsoft's `(TLS)` without a version.
    microsoft_tls: bool,
}

impl<'a> Scan<'a> {
    fn of(value: &'a str) -> Scan<'a> {
        let words = top_level_words(value);
        let after = |keyword: &str| {
            let at = words
                .iter()
                .position(|word| word.eq_ignore_ascii_case(keyword))?;
            let next = *words.get(at + 1)?;
            if next.eq_ignore_ascii_case("microsoft") {
                words.get(at + 2).copied()
            } else {
                Some(next)
            }
        };
        Scan {
            from_clause: words.iter().any(|word| word.eq_ignore_ascii_case("from")),
            with: after("with"),
            via: after("via"),
            google_transport_security: value
                .to_ascii_lowercase()
                .contains("(google transport security)"),
            microsoft_tls: value.contains("(TLS)"),
        }
    }
}

/// The words of `value` outside comments (RFC 5322 §3.2.2: nested, `\` quotes the next
/// character), split at white space, `;` and parentheses. Linear, never recursive.
fn top_level_words(value: &str) -> Vec<&str> {
    let bytes = value.as_bytes();
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let separator = byte.is_ascii_whitespace() || matches!(byte, b';' | b'(' | b')');
        if (separator || depth > 0)
            && let Some(from) = start.take()
        {
            words.push(&value[from..index]);
        }
        match byte {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b'\\' if depth > 0 => index += 1,
            _ if depth == 0 && !separator && start.is_none() => start = Some(index),
            _ => {}
        }
        index += 1;
    }
    if let Some(from) = start
        && from < value.len()
    {
        words.push(&value[from..]);
    }
    words
}
