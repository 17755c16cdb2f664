//! Reads a received message and says what the receiver decided about it.
//!
//! This module is pure: it takes the raw bytes of an RFC 5322 message and returns an
//! [`Inspection`], with no network, no clock and no file system. It reads:
//!
//! - every `Authentication-Results` header field (RFC 8601 §2.2), including the dialects real
//!   receivers write (Microsoft's header with no authserv-id, `;` with no space, a comment glued
//!   to the result, upper case, trailing `;`);
//! - every `Received-SPF` header field (RFC 7208 §9.1);
//! - every `ARC-Authentication-Results` header field (RFC 8617 §4.1.1): reported, never used for
//!   the verdict, because an ARC set records what an *earlier* hop saw;
//! - the spam-filter header fields of SpamAssassin (and amavis), rspamd and Microsoft 365.
//!
//! # Which header is trusted
//!
//! Anyone can write an `Authentication-Results` header into the message they send, so the
//! reader must decide whose word to take (RFC 8601 §5, §7.2):
//!
//! - header fields are read top-most first: each hop prepends its own trace fields, so the
//!   receiver's are above anything the sender wrote;
//! - with trusted authserv-ids (`--authserv-id`, or the seed's config), only headers carrying one
//!   of those ids count, compared case-insensitively. An empty id trusts headers that carry
//!   *no* authserv-id, which is what Microsoft 365 and Outlook.com write;
//! - without trusted ids, the authserv-id of the top-most `Authentication-Results` header is
//!   trusted (a missing id counts as an id);
//! - for each method, the verdict is the result in the top-most trusted header that reports that
//!   method, so a header injected lower down by the sender can never override what the receiver
//!   said. DKIM is `pass` when any DKIM result in that header passes (several signatures are
//!   normal); SPF prefers the result for the `smtp.mailfrom` identity (RFC 7208 §2.4);
//! - SPF falls back to the top-most `Received-SPF` field when no trusted header reports SPF;
//! - a method nobody reports is `none`;
//! - spam-filter headers are read top-most first too: the receiver's own filter adds its fields
//!   at the top, and the source of the top-most spam field wins.
//!
//! A receiver that does not remove forged headers bearing its own authserv-id (RFC 8601 §5 says
//! it must) can still have a method it does not report *itself* filled in from a forged header
//! lower down; a method it does report can never be overridden.
//!
//! # The JSON contract (`mailcanary inspect --json`)
//!
//! [`to_json`] renders an [`Inspection`] as pretty-printed JSON. Keys are never removed or
//! renamed; new keys may be added. Every key below is always present (absent values are `null`,
//! absent lists `[]`, absent maps `{}`).
//!
//! ```json
//! {
//!   "authentication_results": [
//!     {
//!       "authserv_id": "mx.example.net",
//!       "version": null,
//!       "results": [
//!         {
//!           "method": "spf",
//!           "result": "pass",
//!           "reason": null,
//!           "properties": { "smtp.mailfrom": "example.com" },
//!           "comment": "mx.example.net: domain of example.com designates 192.0.2.1 as permitted sender",
//!           "method_version": null
//!         }
//!       ],
//!       "trusted": true
//!     }
//!   ],
//!   "received_spf": [
//!     {
//!       "result": "pass",
//!       "comment": "mx.example.net: domain of s@example.com designates 192.0.2.1 as permitted sender",
//!       "client_ip": "192.0.2.1",
//!       "envelope_from": "s@example.com",
//!       "helo": null,
//!       "receiver": null,
//!       "identity": null,
//!       "mechanism": null,
//!       "problem": null,
//!       "other": {}
//!     }
//!   ],
//!   "arc_authentication_results": [
//!     { "instance": 1, "authserv_id": "mx.example.net", "version": null, "results": [] }
//!   ],
//!   "verdict": {
//!     "spf": "pass", "dkim": "pass", "dmarc": "pass", "arc": "none", "iprev": "none",
//!     "authserv_id": "mx.example.net"
//!   },
//!   "spam": {
//!     "flagged": false, "score": -0.1, "threshold": 5.0, "rules": ["DKIM_VALID"],
//!     "source": "spamassassin"
//!   }
//! }
//! ```
//!
//! - `authentication_results`, `received_spf` and `arc_authentication_results` list header fields
//!   top-most first, in the order they appear in the message.
//! - `authserv_id` is the id as written (quotes removed), or `null` when the header has none
//!   (Microsoft). `version` is the RFC 8601 §2.2 `authres-version` number, or `null`.
//! - `trusted` says whether the header's authserv-id is one the verdict was taken from.
//! - `method`, `result` and property keys (`ptype.property`, or a bare key such as Microsoft's
//!   `action`) are lower case. Property values are unquoted, with comments removed; when a
//!   property repeats within one result, the first value is kept. `reason` is the `reason=`
//!   value (RFC 8601 §2.7), unquoted. `comment` is the text of every comment in that result,
//!   joined by a space, whitespace collapsed, or `null`. `method_version` is the RFC 8601 §2.2
//!   method version (`dkim/1=pass`), or `null`.
//! - Results are lower-case keywords: `pass`, `fail`, `softfail`, `neutral`, `none`,
//!   `temperror`, `permerror`, `policy`, or any other keyword the receiver wrote, lower-cased
//!   (Yahoo's `perm_fail`, Microsoft's `bestguesspass`).
//! - `received_spf[].other` holds every key-value pair that is not one of the RFC 7208 §9.1 keys,
//!   with lower-case keys.
//! - `arc_authentication_results[].instance` is the ARC `i=` tag, or `null` when missing.
//! - `verdict` always has the five methods. `verdict.authserv_id` is the authserv-id of the
//!   top-most trusted header, or `null` when no header was trusted *or* the trusted header has
//!   no authserv-id (Microsoft).
//! - `spam.source` is `"spamassassin"`, `"rspamd"` or `"microsoft"`, or `null` when the message
//!   has no spam-filter header; then `flagged` is `false`, `score` and `threshold` are `null` and
//!   `rules` is `[]`. `score` and `threshold` are `null` whenever the headers do not say. For
//!   Microsoft, `score` is the SCL and `threshold` is `5.0` (SCL 5 and above is spam), and
//!   `rules` holds the `SFV:` and `CAT:` verdicts of `X-Forefront-Antispam-Report`.

mod auth_results;
pub mod dsn;
pub(crate) mod headers;
mod lexer;
mod received_spf;
mod spam;
mod trust;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use trust::Method;

/// Reads a raw RFC 5322 message and judges it.
///
/// `trusted_authserv_ids` are the authserv-ids whose `Authentication-Results` headers count
/// (case-insensitive; an empty string trusts headers with no authserv-id). When the slice is
/// empty, the top-most header's authserv-id is trusted.
///
/// Only the header section is read. Fails when the input is empty or does not start with a
/// header field; anything after that is read as far as it makes sense and never panics.
pub fn inspect(raw: &[u8], trusted_authserv_ids: &[String]) -> Result<Inspection, InspectError> {
    let fields = headers::split(raw)?;

    let mut authentication_results = Vec::new();
    let mut arc_authentication_results = Vec::new();
    let mut received_spf = Vec::new();
    for field in &fields {
        if field.is("Authentication-Results") {
            authentication_results.push(auth_results::parse_header(&field.value()));
        } else if field.is("ARC-Authentication-Results") {
            arc_authentication_results.push(auth_results::parse_arc_header(&field.value()));
        } else if field.is("Received-SPF") {
            received_spf.push(received_spf::parse(&field.value()));
        }
    }

    trust::mark_trusted(&mut authentication_results, trusted_authserv_ids);
    let verdict = trust::verdict(&authentication_results, &received_spf);
    let spam = spam::report(&fields);
    let spam_reasons = spam::reasons(&fields, &spam);
    let client_ip = client_ip(&authentication_results, &received_spf);

    Ok(Inspection {
        authentication_results,
        received_spf,
        arc_authentication_results,
        verdict,
        spam,
        spam_reasons,
        client_ip,
    })
}

/// The sending IP as the receiver saw it, from its own evidence: a trusted
/// `Authentication-Results` property naming it (`smtp.remote-ip`, `policy.iprev`,
/// `smtp.client-ip`; RFC 8601 §2.7.1, §3), else the top-most `Received-SPF` `client-ip=`
/// (RFC 7208 §9.1).
fn client_ip(
    headers: &[AuthResultsHeader],
    received_spf: &[ReceivedSpf],
) -> Option<std::net::IpAddr> {
    let from_results = headers
        .iter()
        .filter(|h| h.trusted)
        .flat_map(|h| &h.results)
        .flat_map(|r| {
            ["smtp.remote-ip", "policy.iprev", "smtp.client-ip"]
                .into_iter()
                .filter_map(|key| r.properties.get(key))
        })
        .find_map(|v| v.trim().parse().ok());
    from_results.or_else(|| {
        received_spf
            .first()
            .and_then(|r| r.client_ip.as_deref())
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Renders an inspection as the stable JSON contract described in the module documentation.
pub fn to_json(inspection: &Inspection) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(inspection)
}

/// Everything read from one message, and the verdict taken from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// `Authentication-Results` header fields, top-most first.
    pub authentication_results: Vec<AuthResultsHeader>,
    /// `Received-SPF` header fields, top-most first.
    pub received_spf: Vec<ReceivedSpf>,
    /// `ARC-Authentication-Results` header fields, top-most first (never used for the verdict).
    pub arc_authentication_results: Vec<ArcAuthResultsHeader>,
    /// What the trusted receiver decided, per method.
    pub verdict: Verdict,
    /// What the receiver's spam filter decided.
    pub spam: SpamVerdict,
    /// The spam filter's rules that count against the message, most significant first (see
    /// [`spam::reasons`]). Not part of the `inspect --json` contract.
    #[serde(skip)]
    pub spam_reasons: Vec<String>,
    /// The address the trusted receiver saw the message come from: the sending IP as the
    /// receiver knows it. Not part of the `inspect --json` contract.
    #[serde(skip)]
    pub client_ip: Option<std::net::IpAddr>,
}

impl Inspection {
    /// The result the verdict for `method` was taken from, when a trusted
    /// `Authentication-Results` header reports it (for example, to read the DKIM failure
    /// `reason` and `header.d`). `None` when the method was not reported, and for SPF when the
    /// verdict fell back to `Received-SPF` (see [`Inspection::spf_from_received_spf`]).
    pub fn decided_by(&self, method: Method) -> Option<&MethodResult> {
        trust::pick(&self.authentication_results, method).map(|(_, result)| result)
    }

    /// Every result for `method` in the trusted header the verdict was taken from (all DKIM
    /// signatures, say), in the order written.
    pub fn results_for(&self, method: Method) -> impl Iterator<Item = &MethodResult> {
        let header = trust::pick(&self.authentication_results, method).map(|(header, _)| header);
        header
            .into_iter()
            .flat_map(|header| header.results.iter())
            .filter(move |result| result.method == method.as_str())
    }

    /// The `Received-SPF` field the SPF verdict was taken from, when no trusted
    /// `Authentication-Results` header reported SPF.
    pub fn spf_from_received_spf(&self) -> Option<&ReceivedSpf> {
        if trust::pick(&self.authentication_results, Method::Spf).is_some() {
            return None;
        }
        self.received_spf.first()
    }
}

/// One `Authentication-Results` header field (RFC 8601 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResultsHeader {
    /// The authserv-id, as written; `None` when the header has none (Microsoft).
    pub authserv_id: Option<String>,
    /// The `authres-version` after the authserv-id, when present.
    pub version: Option<u32>,
    /// One entry per `method=result`, in the order written.
    pub results: Vec<MethodResult>,
    /// Whether this header's authserv-id is trusted (see the module documentation).
    pub trusted: bool,
}

/// One `ARC-Authentication-Results` header field (RFC 8617 §4.1.1): an instance tag, then the
/// `Authentication-Results` payload of that hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcAuthResultsHeader {
    /// The `i=` instance tag; `None` when missing or not a number.
    pub instance: Option<u32>,
    /// The authserv-id, as written; `None` when the header has none.
    pub authserv_id: Option<String>,
    /// The `authres-version` after the authserv-id, when present.
    pub version: Option<u32>,
    /// One entry per `method=result`, in the order written.
    pub results: Vec<MethodResult>,
}

/// One `method=result` with its reason and properties (RFC 8601 §2.2 `resinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method, lower case (`spf`, `dkim`, `dmarc`, `arc`, `iprev`, `auth`, `compauth`...).
    pub method: String,
    /// The result keyword.
    pub result: AuthResult,
    /// The `reason=` value (RFC 8601 §2.7), unquoted.
    pub reason: Option<String>,
    /// `ptype.property` (lower case) to value (unquoted, comments removed). Bare keys without a
    /// ptype, such as Microsoft's `action=none`, are kept under their own name.
    pub properties: BTreeMap<String, String>,
    /// The text of the comments in this result, joined by a space: where receivers explain
    /// themselves (`sender IP is 192.0.2.1`, `p=REJECT sp=REJECT dis=NONE`).
    pub comment: Option<String>,
    /// The method version (`dkim/1`), when written.
    pub method_version: Option<u32>,
}

impl MethodResult {
    /// The value of a property, by its lower-case `ptype.property` key (`header.d`).
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }
}

/// One `Received-SPF` header field (RFC 7208 §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedSpf {
    /// The SPF result.
    pub result: AuthResult,
    /// The text of the comments, joined by a space.
    pub comment: Option<String>,
    /// `client-ip=`
    pub client_ip: Option<String>,
    /// `envelope-from=`
    pub envelope_from: Option<String>,
    /// `helo=`
    pub helo: Option<String>,
    /// `receiver=`
    pub receiver: Option<String>,
    /// `identity=` (`mailfrom`, `helo`)
    pub identity: Option<String>,
    /// `mechanism=`
    pub mechanism: Option<String>,
    /// `problem=`
    pub problem: Option<String>,
    /// Every other key-value pair (lower-case keys).
    pub other: BTreeMap<String, String>,
}

/// What the trusted receiver decided, per method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Verdict {
    /// SPF (RFC 7208), from the trusted header, else the top-most `Received-SPF`.
    pub spf: AuthResult,
    /// DKIM (RFC 6376): `pass` when any signature in the trusted header passed.
    pub dkim: AuthResult,
    /// DMARC (RFC 7489).
    pub dmarc: AuthResult,
    /// ARC (RFC 8617), as the trusted receiver reported it.
    pub arc: AuthResult,
    /// iprev (RFC 8601 §3).
    pub iprev: AuthResult,
    /// The authserv-id of the top-most trusted header.
    pub authserv_id: Option<String>,
}

impl Verdict {
    /// The result for one method.
    pub fn get(&self, method: Method) -> &AuthResult {
        match method {
            Method::Spf => &self.spf,
            Method::Dkim => &self.dkim,
            Method::Dmarc => &self.dmarc,
            Method::Arc => &self.arc,
            Method::Iprev => &self.iprev,
        }
    }
}

/// A result keyword (RFC 8601 §2.7, RFC 7208 §2.6). Serialised as the lower-case keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum AuthResult {
    /// `pass`
    Pass,
    /// `fail`
    Fail,
    /// `softfail`
    SoftFail,
    /// `neutral`
    Neutral,
    /// `none`: not reported, or nothing to evaluate.
    #[default]
    None,
    /// `temperror`
    TempError,
    /// `permerror`
    PermError,
    /// `policy`
    Policy,
    /// Any other keyword, lower case (`perm_fail`, `bestguesspass`, `hardfail`).
    Other(String),
}

impl AuthResult {
    /// The fixed words of [`AuthResult::label`]: the RFC 8601 keywords, then `other`.
    pub const LABELS: [&'static str; 9] = [
        "pass",
        "fail",
        "softfail",
        "neutral",
        "none",
        "temperror",
        "permerror",
        "policy",
        "other",
    ];

    /// The keyword, or `other` for any keyword outside RFC 8601's set: a bounded word for
    /// metric labels.
    pub fn label(&self) -> &'static str {
        self.known_keyword().unwrap_or("other")
    }

    /// RFC 8601's keyword for the known results; `None` for [`AuthResult::Other`].
    fn known_keyword(&self) -> Option<&'static str> {
        Some(match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
            AuthResult::Other(_) => return None,
        })
    }

    /// Reads a result keyword, case-insensitively.
    pub fn parse(keyword: &str) -> AuthResult {
        const KNOWN: [(&str, AuthResult); 8] = [
            ("pass", AuthResult::Pass),
            ("fail", AuthResult::Fail),
            ("softfail", AuthResult::SoftFail),
            ("neutral", AuthResult::Neutral),
            ("none", AuthResult::None),
            ("temperror", AuthResult::TempError),
            ("permerror", AuthResult::PermError),
            ("policy", AuthResult::Policy),
        ];
        for (name, result) in KNOWN {
            if keyword.eq_ignore_ascii_case(name) {
                return result;
            }
        }
        AuthResult::Other(keyword.to_ascii_lowercase())
    }

    /// The lower-case keyword.
    pub fn as_str(&self) -> &str {
        match self {
            AuthResult::Other(keyword) => keyword,
            known => known.known_keyword().unwrap_or_default(),
        }
    }

    /// Whether the result is `pass`.
    pub fn is_pass(&self) -> bool {
        *self == AuthResult::Pass
    }
}

impl fmt::Display for AuthResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuthResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuthResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let keyword = String::deserialize(deserializer)?;
        Ok(AuthResult::parse(&keyword))
    }
}

/// What the receiver's spam filter decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpamVerdict {
    /// Whether the filter marked the message as spam.
    pub flagged: bool,
    /// The filter's score (Microsoft: the SCL), when written.
    pub score: Option<f64>,
    /// The score at which the filter marks spam, when written (Microsoft: 5).
    pub threshold: Option<f64>,
    /// The rules (symbols, tests) that fired, in the order written.
    pub rules: Vec<String>,
    /// Which filter wrote the headers; `None` when the message has no spam-filter header.
    pub source: Option<SpamSource>,
}

/// The spam filter whose headers were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpamSource {
    /// SpamAssassin, or amavis in front of it (`X-Spam-Flag`, `X-Spam-Status`).
    SpamAssassin,
    /// rspamd (`X-Spamd-Result`, `X-Rspamd-Score`, `X-Spam`, `X-Rspamd-Action`).
    Rspamd,
    /// Microsoft 365 / Outlook.com (`X-Forefront-Antispam-Report`, SCL).
    Microsoft,
}

impl SpamSource {
    /// The lower-case name used in the JSON contract.
    pub fn as_str(self) -> &'static str {
        match self {
            SpamSource::SpamAssassin => "spamassassin",
            SpamSource::Rspamd => "rspamd",
            SpamSource::Microsoft => "microsoft",
        }
    }
}

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// Zero bytes of input.
    #[error("the input is empty")]
    Empty,
    /// The input does not start with a header field, so it is not an RFC 5322 message.
    #[error("no header section: the first line {first_line} is not a header field (`Name: value`)")]
    NoHeaders {
        /// The first line, quoted and escaped, cut to a readable length.
        first_line: String,
    },
}

impl InspectError {
    /// A fixed label for metrics and logs; never input-derived text.
    pub fn reason(&self) -> &'static str {
        match self {
            InspectError::Empty => "empty",
            InspectError::NoHeaders { .. } => "parse",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_keywords_round_trip_lower_case() {
        for keyword in [
            "pass",
            "fail",
            "softfail",
            "neutral",
            "none",
            "temperror",
            "permerror",
            "policy",
            "perm_fail",
        ] {
            let result = AuthResult::parse(&keyword.to_ascii_uppercase());
            assert_eq!(result.as_str(), keyword);
            let json = serde_json::to_string(&result).expect("serialise");
            assert_eq!(json, format!("\"{keyword}\""));
            let back: AuthResult = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, result);
        }
        assert!(AuthResult::parse("PASS").is_pass());
        assert!(!AuthResult::parse("bestguesspass").is_pass());
        assert_eq!(AuthResult::default(), AuthResult::None);
        assert_eq!(AuthResult::SoftFail.to_string(), "softfail");
    }

    #[test]
    fn json_round_trips_and_keeps_the_contract_keys() {
        let raw = b"Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.com;\n dkim=fail reason=\"bad\" header.d=a.example; dkim=pass header.d=b.example\nReceived-SPF: pass client-ip=192.0.2.1; envelope-from=s@example.com\nARC-Authentication-Results: i=1; mx.example.net; arc=none\nX-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_VALID autolearn=ham\n\nbody\n";
        let inspection = inspect(raw, &[]).expect("message");
        let json = to_json(&inspection).expect("json");
        let back: Inspection = serde_json::from_str(&json).expect("deserialise");
        // Everything of the contract comes back; the two derived fields (spam reasons, client
        // IP) are not part of it and are recomputed from a message, never read from JSON.
        let contract = Inspection {
            spam_reasons: Vec::new(),
            client_ip: None,
            ..inspection.clone()
        };
        assert_eq!(back, contract);
        assert_eq!(inspection.client_ip, Some("192.0.2.1".parse().expect("ip")));

        let value: serde_json::Value = serde_json::from_str(&json).expect("value");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().expect("object").keys().cloned().collect()
        };
        let mut top = keys(&value);
        top.sort();
        assert_eq!(
            top,
            [
                "arc_authentication_results",
                "authentication_results",
                "received_spf",
                "spam",
                "verdict"
            ]
        );
        let mut verdict = keys(&value["verdict"]);
        verdict.sort();
        assert_eq!(
            verdict,
            ["arc", "authserv_id", "dkim", "dmarc", "iprev", "spf"]
        );
        assert_eq!(value["verdict"]["dkim"], "pass");
        assert_eq!(value["spam"]["source"], "spamassassin");
        assert_eq!(value["spam"]["score"], -0.1);
        assert_eq!(value["arc_authentication_results"][0]["instance"], 1);
        assert_eq!(
            value["authentication_results"][0]["results"][0]["properties"]["smtp.mailfrom"],
            "example.com"
        );

        let no_spam = inspect(b"Subject: x\n", &[]).expect("message");
        let value: serde_json::Value =
            serde_json::from_str(&to_json(&no_spam).expect("json")).expect("value");
        assert_eq!(
            value["spam"],
            serde_json::json!({"flagged": false, "score": null, "threshold": null, "rules": [], "source": null})
        );
    }

    #[test]
    fn evidence_for_later_diagnosis() {
        let raw = b"Authentication-Results: mx.example.net;\n dkim=fail reason=\"signature verification failed\" header.d=a.example header.s=s1;\n dkim=neutral header.d=b.example\nReceived-SPF: softfail client-ip=192.0.2.1\n";
        let inspection = inspect(raw, &[]).expect("message");
        let dkim = inspection.decided_by(Method::Dkim).expect("dkim reported");
        assert_eq!(
            dkim.reason.as_deref(),
            Some("signature verification failed")
        );
        assert_eq!(dkim.property("header.d"), Some("a.example"));
        let all: Vec<_> = inspection
            .results_for(Method::Dkim)
            .map(|r| r.property("header.d"))
            .collect();
        assert_eq!(all, [Some("a.example"), Some("b.example")]);
        assert!(inspection.decided_by(Method::Spf).is_none());
        let spf = inspection.spf_from_received_spf().expect("fallback");
        assert_eq!(spf.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(inspection.verdict.get(Method::Spf), &AuthResult::SoftFail);
        assert_eq!(inspection.results_for(Method::Arc).count(), 0);
    }

    #[test]
    fn errors_have_fixed_reasons() {
        assert_eq!(inspect(b"", &[]), Err(InspectError::Empty));
        assert_eq!(InspectError::Empty.reason(), "empty");
        let err = inspect(b"\x00\x01\x02", &[]).expect_err("junk");
        assert_eq!(err.reason(), "parse");
        assert_eq!(
            err.to_string(),
            "no header section: the first line \"\\0\\u{1}\\u{2}\" is not a header field (`Name: value`)"
        );
    }

    #[test]
    fn the_client_ip_comes_from_the_receivers_own_evidence() {
        let spf_only = b"Received-SPF: fail (mx.example.net: not permitted) client-ip=192.0.2.7; envelope-from=s@example.com\n\nbody\n";
        let got = inspect(spf_only, &[]).expect("message").client_ip;
        assert_eq!(got, Some("192.0.2.7".parse().expect("ip")));
        let both = b"Authentication-Results: mx.example.net; iprev=fail policy.iprev=198.51.100.9; spf=fail smtp.mailfrom=example.com\nReceived-SPF: fail client-ip=192.0.2.7\n\nbody\n";
        let got = inspect(both, &[]).expect("message").client_ip;
        assert_eq!(got, Some("198.51.100.9".parse().expect("ip")));
        let none = b"Subject: hi\n\nbody\n";
        assert_eq!(inspect(none, &[]).expect("message").client_ip, None);
    }
}
