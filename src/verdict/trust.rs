//! Which header to trust, and the verdict taken from it.
//!
//! RFC 8601 §5: a receiver adds its `Authentication-Results` field *above* what it received,
//! and a reader must only believe fields from an authserv-id it trusts, since anyone can write
//! one into the message they send (§7.2, §7.4). So we read top-most first, trust by id, and
//! take each method from the top-most trusted field that reports it.

use super::{AuthResult, AuthResultsHeader, MethodResult, ReceivedSpf, Verdict};

/// The methods the verdict reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// SPF (RFC 7208).
    Spf,
    /// DKIM (RFC 6376).
    Dkim,
    /// DMARC (RFC 7489).
    Dmarc,
    /// ARC (RFC 8617).
    Arc,
    /// iprev (RFC 8601 §3).
    Iprev,
}

impl Method {
    /// Every method, in the order the verdict lists them.
    pub const ALL: [Method; 5] = [
        Method::Spf,
        Method::Dkim,
        Method::Dmarc,
        Method::Arc,
        Method::Iprev,
    ];

    /// The method name as written in `Authentication-Results` (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Spf => "spf",
            Method::Dkim => "dkim",
            Method::Dmarc => "dmarc",
            Method::Arc => "arc",
            Method::Iprev => "iprev",
        }
    }
}

/// Sets `trusted` on each header. With ids, a header is trusted when its authserv-id is one of
/// them (case-insensitive, as host names are; an empty id matches a header without one).
/// Without ids, the top-most header's id, or its lack of one, is trusted.
pub(crate) fn mark_trusted(headers: &mut [AuthResultsHeader], trusted_ids: &[String]) {
    if trusted_ids.is_empty() {
        let Some(top) = headers.first().map(|header| header.authserv_id.clone()) else {
            return;
        };
        for header in headers.iter_mut() {
            header.trusted = same_id(header.authserv_id.as_deref(), top.as_deref());
        }
    } else {
        for header in headers.iter_mut() {
            header.trusted = trusted_ids
                .iter()
                .any(|id| same_id(header.authserv_id.as_deref(), Some(id.trim())));
        }
    }
}

/// Whether two authserv-ids are the same; a missing id equals the empty id.
fn same_id(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("").eq_ignore_ascii_case(b.unwrap_or(""))
}

/// The verdict: each method from the top-most trusted header that reports it; SPF falls back
/// to the top-most `Received-SPF`; anything unreported is `none`.
pub(crate) fn verdict(headers: &[AuthResultsHeader], received_spf: &[ReceivedSpf]) -> Verdict {
    let result = |method| {
        pick(headers, method)
            .map(|(_, result)| result.result.clone())
            .unwrap_or_default()
    };
    let spf = match pick(headers, Method::Spf) {
        Some((_, result)) => result.result.clone(),
        None => received_spf
            .first()
            .map(|spf| spf.result.clone())
            .unwrap_or(AuthResult::None),
    };
    Verdict {
        spf,
        dkim: result(Method::Dkim),
        dmarc: result(Method::Dmarc),
        arc: result(Method::Arc),
        iprev: result(Method::Iprev),
        authserv_id: headers
            .iter()
            .find(|header| header.trusted)
            .and_then(|header| header.authserv_id.clone()),
    }
}

/// The top-most trusted header that reports `method`, and the result in it the verdict is
/// taken from:
/// - DKIM: the first passing signature, else the first one (a message often carries several
///   signatures, e.g. the author's domain and the ESP's; one pass is enough for DMARC,
///   RFC 7489 §4.2);
/// - SPF: the first result for the MAIL FROM identity (`smtp.mailfrom`), which is the one
///   DMARC uses (RFC 7208 §2.4, RFC 7489 §4.2), else the first (e.g. HELO only);
/// - anything else: the first.
pub(crate) fn pick(
    headers: &[AuthResultsHeader],
    method: Method,
) -> Option<(&AuthResultsHeader, &MethodResult)> {
    let name = method.as_str();
    for header in headers.iter().filter(|header| header.trusted) {
        let mut matching = header.results.iter().filter(|result| result.method == name);
        let Some(first) = matching.next() else {
            continue;
        };
        let preferred = match method {
            Method::Dkim => std::iter::once(first)
                .chain(matching)
                .find(|result| result.result.is_pass()),
            Method::Spf => std::iter::once(first)
                .chain(matching)
                .find(|result| result.properties.contains_key("smtp.mailfrom")),
            _ => None,
        };
        return Some((header, preferred.unwrap_or(first)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::auth_results::parse_header;
    use crate::verdict::received_spf;

    fn headers(values: &[&str], ids: &[&str]) -> Vec<AuthResultsHeader> {
        let mut headers: Vec<_> = values.iter().map(|value| parse_header(value)).collect();
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        mark_trusted(&mut headers, &ids);
        headers
    }

    fn judge(values: &[&str], ids: &[&str]) -> Verdict {
        verdict(&headers(values, ids), &[])
    }

    #[test]
    fn top_most_id_is_trusted_by_default() {
        let got = judge(
            &[
                "mx.example.net; spf=fail smtp.mailfrom=a.example; dkim=fail header.d=a.example",
                "mx.example.net; spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example; dmarc=pass",
                "evil.example; arc=pass",
            ],
            &[],
        );
        assert_eq!(got.spf, AuthResult::Fail);
        assert_eq!(got.dkim, AuthResult::Fail);
        // Not in the top header, but in a lower one with the same id (the receiver added two).
        assert_eq!(got.dmarc, AuthResult::Pass);
        // From an untrusted id.
        assert_eq!(got.arc, AuthResult::None);
        assert_eq!(got.authserv_id.as_deref(), Some("mx.example.net"));
    }

    #[test]
    fn explicit_ids_case_insensitive() {
        let values = [
            "internal.example.net; spf=fail",
            "MX.Example.NET; spf=pass smtp.mailfrom=a.example",
        ];
        let got = judge(&values, &["mx.example.net"]);
        assert_eq!(got.spf, AuthResult::Pass);
        assert_eq!(got.authserv_id.as_deref(), Some("MX.Example.NET"));
        let got = judge(&values, &["nobody.example"]);
        assert_eq!(got, Verdict::default());
        let got = judge(&values, &["nobody.example", " INTERNAL.example.net "]);
        assert_eq!(got.spf, AuthResult::Fail);
    }

    #[test]
    fn missing_id_counts_as_an_id() {
        let values = [
            "spf=pass smtp.mailfrom=a.example; dkim=none",
            "mx.sender.example; dkim=pass header.d=a.example",
            "dmarc=pass header.from=a.example",
        ];
        let got = judge(&values, &[]);
        assert_eq!(got.spf, AuthResult::Pass);
        assert_eq!(got.dkim, AuthResult::None);
        assert_eq!(got.dmarc, AuthResult::Pass);
        assert_eq!(got.authserv_id, None);
        // An empty id trusts the id-less headers explicitly.
        assert_eq!(judge(&values, &[""]).dmarc, AuthResult::Pass);
        assert_eq!(
            judge(&values, &["mx.sender.example"]).dkim,
            AuthResult::Pass
        );
        assert_eq!(judge(&values, &["mx.sender.example"]).spf, AuthResult::None);
    }

    #[test]
    fn dkim_passes_when_any_signature_passes() {
        let got = judge(
            &["mx; dkim=fail header.d=a.example; dkim=neutral; dkim=pass header.d=esp.example"],
            &[],
        );
        assert_eq!(got.dkim, AuthResult::Pass);
        let hs = headers(
            &["mx; dkim=fail header.d=a.example; dkim=pass header.d=esp.example"],
            &[],
        );
        let (_, picked) = pick(&hs, Method::Dkim).expect("dkim");
        assert_eq!(picked.property("header.d"), Some("esp.example"));
        let got = judge(&["mx; dkim=neutral header.d=a; dkim=fail header.d=b"], &[]);
        assert_eq!(got.dkim, AuthResult::Neutral);
    }

    #[test]
    fn spf_prefers_mailfrom() {
        let got = judge(
            &["mx; spf=none smtp.helo=h.example; spf=fail smtp.mailfrom=a.example"],
            &[],
        );
        assert_eq!(got.spf, AuthResult::Fail);
        let got = judge(&["mx; spf=none smtp.helo=h.example"], &[]);
        assert_eq!(got.spf, AuthResult::None);
    }

    #[test]
    fn spf_falls_back_to_received_spf() {
        let spf = [
            received_spf::parse("softfail (x) client-ip=192.0.2.1"),
            received_spf::parse("pass (forged) client-ip=192.0.2.1"),
        ];
        let hs = headers(&["mx; dkim=pass"], &[]);
        assert_eq!(verdict(&hs, &spf).spf, AuthResult::SoftFail);
        let hs = headers(&["mx; spf=pass smtp.mailfrom=a"], &[]);
        assert_eq!(verdict(&hs, &spf).spf, AuthResult::Pass);
        assert_eq!(verdict(&[], &spf).spf, AuthResult::SoftFail);
        assert_eq!(verdict(&[], &[]), Verdict::default());
    }

    #[test]
    fn no_headers_no_trust() {
        let mut none: Vec<AuthResultsHeader> = Vec::new();
        mark_trusted(&mut none, &[]);
        assert!(pick(&none, Method::Spf).is_none());
    }
}
