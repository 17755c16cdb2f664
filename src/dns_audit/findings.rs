//! The audit's result: one [`CheckResult`] per check and subject, the overall status, the
//! readable report and the JSON contract (documented in the module docs of `dns_audit`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::dns::DnsError;
use crate::diagnosis::{Cause, Context};
use crate::status::Status;

/// The checks, with fixed names (the `check` label of `mailcanary_dns_check_ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The address the receiver saw is one the route's `sending_ips` lists (audits of a seen
    /// address only, [`crate::dns_audit::seen_ip`]).
    SendingIp,
    /// The sending IP has a PTR record.
    Ptr,
    /// The PTR name resolves back to the sending IP (forward-confirmed reverse DNS).
    Fcrdns,
    /// The HELO name resolves to the sending IP and is in the PTR name's domain.
    Helo,
    /// SPF of the envelope domain.
    Spf,
    /// The DKIM key record at the selector.
    Dkim,
    /// DMARC of the From domain and its alignment.
    Dmarc,
    /// DNS blocklists.
    Dnsbl,
    /// MX of a seed domain.
    Mx,
    /// MTA-STS TXT record of a seed domain.
    MtaSts,
    /// TLS-RPT TXT record of a seed domain.
    TlsRpt,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 11] = [
        Check::SendingIp,
        Check::Ptr,
        Check::Fcrdns,
        Check::Helo,
        Check::Spf,
        Check::Dkim,
        Check::Dmarc,
        Check::Dnsbl,
        Check::Mx,
        Check::MtaSts,
        Check::TlsRpt,
    ];

    /// The fixed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::SendingIp => "sending_ip",
            Check::Ptr => "ptr",
            Check::Fcrdns => "fcrdns",
            Check::Helo => "helo",
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
            Check::Dnsbl => "dnsbl",
            Check::Mx => "mx",
            Check::MtaSts => "mta_sts",
            Check::TlsRpt => "tls_rpt",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// As it should be.
    Ok,
    /// Works, but is a deliverability risk.
    Warn,
    /// Broken: receivers will hold it against the mail.
    Fail,
    /// Could not be checked (DNS timeout, SERVFAIL, REFUSED, unreadable signing key):
    /// never to be read as "missing".
    Error,
}

impl CheckStatus {
    /// `ok`, `warn`, `fail`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Error => "error",
        }
    }

    /// Ok or Warn: the value of `mailcanary_dns_check_ok` is 1.
    pub fn is_passing(self) -> bool {
        matches!(self, CheckStatus::Ok | CheckStatus::Warn)
    }
}

/// One check of one subject (an IP, a domain, a DNSBL zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// What was checked: an IP (`127.0.0.5`), a domain, a DKIM record name, `IP in ZONE`.
    pub subject: String,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found, in one line.
    pub detail: String,
    /// Why it fails or warns; `dns_error` for DNS errors; `None` when ok, and for errors
    /// that are not the DNS's (an unreadable signing key).
    pub cause: Option<Cause>,
    /// The one-sentence fix of `cause`.
    pub fix: Option<String>,
}

impl CheckResult {
    pub(crate) fn ok(check: Check, subject: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckResult {
            check,
            subject: subject.into(),
            status: CheckStatus::Ok,
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }

    fn with_cause(
        check: Check,
        subject: impl Into<String>,
        status: CheckStatus,
        detail: impl Into<String>,
        cause: Cause,
        ctx: &Context<'_>,
    ) -> Self {
        CheckResult {
            check,
            subject: subject.into(),
            status,
            detail: detail.into(),
            cause: Some(cause),
            fix: Some(cause.fix(ctx)),
        }
    }

    pub(crate) fn warning(
        check: Check,
        subject: impl Into<String>,
        detail: impl Into<String>,
        cause: Cause,
        ctx: &Context<'_>,
    ) -> Self {
        Self::with_cause(check, subject, CheckStatus::Warn, detail, cause, ctx)
    }

    pub(crate) fn failing(
        check: Check,
        subject: impl Into<String>,
        detail: impl Into<String>,
        cause: Cause,
        ctx: &Context<'_>,
    ) -> Self {
        Self::with_cause(check, subject, CheckStatus::Fail, detail, cause, ctx)
    }

    /// A DNS error: status `error`, cause `dns_error`.
    pub(crate) fn error(
        check: Check,
        subject: impl Into<String>,
        err: &DnsError,
        ctx: &Context<'_>,
    ) -> Self {
        Self::error_detail(check, subject, err.to_string(), ctx)
    }

    pub(crate) fn error_detail(
        check: Check,
        subject: impl Into<String>,
        detail: impl Into<String>,
        ctx: &Context<'_>,
    ) -> Self {
        Self::with_cause(
            check,
            subject,
            CheckStatus::Error,
            detail,
            Cause::DnsError,
            ctx,
        )
    }

    /// An error that is not the DNS's (no cause, no fix).
    pub(crate) fn local_error(
        check: Check,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        CheckResult {
            check,
            subject: subject.into(),
            status: CheckStatus::Error,
            detail: detail.into(),
            cause: None,
            fix: None,
        }
    }
}

/// Whether a route's IPs are listed in one DNSBL zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsblZoneResult {
    /// The zone, e.g. `zen.spamhaus.org`.
    pub zone: String,
    /// `true` when any sending IP is listed, `None` when the zone could not be queried.
    pub listed: Option<bool>,
    /// The listed IPs.
    pub listed_ips: Vec<IpAddr>,
}

/// Everything the audit found for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAudit {
    /// The route name (config name; `adhoc` for the command line).
    pub route: String,
    /// The From domain audited.
    pub from_domain: String,
    /// The checks, in report order ([`Check::ALL`]); checks that do not apply are absent
    /// (no HELO given → no `helo`; no selector → no `dkim`; no seed domains → no `mx`, ...).
    pub checks: Vec<CheckResult>,
    /// The size of the published DKIM key (RSA modulus bits; `None` for Ed25519 or no key).
    pub dkim_key_bits: Option<u32>,
    /// DNS lookups the SPF record needs (RFC 7208 §4.6.4), whole tree.
    pub spf_dns_lookups: Option<u32>,
    /// Void lookups in the SPF record tree.
    pub spf_void_lookups: Option<u32>,
    /// One entry per DNSBL zone.
    pub dnsbl: Vec<DnsblZoneResult>,
}

impl RouteAudit {
    /// critical if any check fails, else unknown if any errs, else warning if any warns, else ok.
    pub fn status(&self) -> Status {
        let any = |s: CheckStatus| self.checks.iter().any(|c| c.status == s);
        if any(CheckStatus::Fail) {
            Status::Critical
        } else if any(CheckStatus::Error) {
            Status::Unknown
        } else if any(CheckStatus::Warn) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// The distinct causes of failing and warning checks, in report order (`dns_error` of
    /// checks in status error is not included: an error is not a diagnosis).
    pub fn causes(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        for check in &self.checks {
            if let (CheckStatus::Fail | CheckStatus::Warn, Some(cause)) =
                (check.status, check.cause)
                && !causes.contains(&cause)
            {
                causes.push(cause);
            }
        }
        causes
    }

    /// The value of `mailcanary_dns_check_ok{check}`: `Some(true)` when every result of the
    /// check is ok or warn, `Some(false)` when any fails or errs, `None` when it did not run.
    pub fn check_ok(&self, check: Check) -> Option<bool> {
        let mut results = self.checks.iter().filter(|c| c.check == check).peekable();
        results.peek()?;
        Some(results.all(|c| c.status.is_passing()))
    }

    /// The JSON contract as a value (see the `dns_audit` module docs).
    pub fn to_json_value(&self) -> serde_json::Value {
        // Plain strings, numbers and enums: serializing cannot fail, but if it ever did, the
        // value says so instead of panicking.
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    }

    /// The JSON contract, pretty-printed, keys in contract order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The readable report: one line per check (`✓` ok, `!` warn, `✗` fail, `?` error), the fix
    /// under each failing or warning one.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "DNS audit of {} (route {}): {}\n",
            self.from_domain,
            self.route,
            self.status().as_str().to_ascii_uppercase()
        );
        for check in &self.checks {
            let mark = match check.status {
                CheckStatus::Ok => '✓',
                CheckStatus::Warn => '!',
                CheckStatus::Fail => '✗',
                CheckStatus::Error => '?',
            };
            out.push_str(&format!(
                "{mark} {:<8} {}: {}\n",
                check.check.as_str(),
                check.subject,
                check.detail
            ));
            if matches!(check.status, CheckStatus::Fail | CheckStatus::Warn)
                && let Some(fix) = &check.fix
            {
                out.push_str(&format!("    fix: {fix}\n"));
            }
        }
        let causes = self.causes();
        if !causes.is_empty() {
            let names: Vec<&str> = causes.iter().map(|c| c.as_str()).collect();
            out.push_str(&format!("causes: {}\n", names.join(", ")));
        }
        out
    }
}

/// The JSON contract of one route audit: every key always present, in this order.
impl Serialize for RouteAudit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            route: &'a str,
            from_domain: &'a str,
            status: Status,
            causes: Vec<Cause>,
            checks: &'a [CheckResult],
            dkim_key_bits: Option<u32>,
            spf_dns_lookups: Option<u32>,
            spf_void_lookups: Option<u32>,
            dnsbl: &'a [DnsblZoneResult],
        }
        Json {
            route: &self.route,
            from_domain: &self.from_domain,
            status: self.status(),
            causes: self.causes(),
            checks: &self.checks,
            dkim_key_bits: self.dkim_key_bits,
            spf_dns_lookups: self.spf_dns_lookups,
            spf_void_lookups: self.spf_void_lookups,
            dnsbl: &self.dnsbl,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(statuses: &[(Check, CheckStatus, Option<Cause>)]) -> RouteAudit {
        RouteAudit {
            route: "r".into(),
            from_domain: "example.test".into(),
            checks: statuses
                .iter()
                .map(|(check, status, cause)| CheckResult {
                    check: *check,
                    subject: "s".into(),
                    status: *status,
                    detail: "d".into(),
                    cause: *cause,
                    fix: cause.map(|c| c.fix(&Context::default())),
                })
                .collect(),
            dkim_key_bits: None,
            spf_dns_lookups: None,
            spf_void_lookups: None,
            dnsbl: vec![],
        }
    }

    #[test]
    fn overall_status_precedence() {
        use CheckStatus::*;
        assert_eq!(audit(&[]).status(), Status::Ok);
        assert_eq!(
            audit(&[(Check::Spf, Warn, Some(Cause::SpfPermissive))]).status(),
            Status::Warning
        );
        assert_eq!(
            audit(&[
                (Check::Spf, Warn, Some(Cause::SpfPermissive)),
                (Check::Dnsbl, Error, Some(Cause::DnsError))
            ])
            .status(),
            Status::Unknown
        );
        assert_eq!(
            audit(&[
                (Check::Dnsbl, Error, Some(Cause::DnsError)),
                (Check::Ptr, Fail, Some(Cause::PtrMissing))
            ])
            .status(),
            Status::Critical
        );
        assert_eq!(Status::Critical.exit_code(), 2);
    }

    #[test]
    fn causes_are_distinct_and_skip_errors() {
        use CheckStatus::*;
        let r = audit(&[
            (Check::Ptr, Fail, Some(Cause::PtrMissing)),
            (Check::Fcrdns, Fail, Some(Cause::PtrMissing)),
            (Check::Dnsbl, Error, Some(Cause::DnsError)),
            (Check::Dkim, Warn, Some(Cause::DkimWeakKey)),
        ]);
        assert_eq!(r.causes(), [Cause::PtrMissing, Cause::DkimWeakKey]);
        assert_eq!(r.check_ok(Check::Ptr), Some(false));
        assert_eq!(r.check_ok(Check::Dkim), Some(true));
        assert_eq!(r.check_ok(Check::Dnsbl), Some(false));
        assert_eq!(r.check_ok(Check::Mx), None);
    }

    #[test]
    fn text_and_json() {
        use CheckStatus::*;
        let r = audit(&[
            (Check::Ptr, Fail, Some(Cause::PtrMissing)),
            (Check::Spf, Ok, None),
        ]);
        let text = r.render_text();
        assert!(text.starts_with("DNS audit of example.test (route r): CRITICAL\n"));
        assert!(text.contains("✗ ptr      s: d\n    fix: Publish a PTR record"));
        assert!(text.contains("✓ spf      s: d\n"));
        assert!(text.ends_with("causes: ptr_missing\n"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        assert_eq!(json["status"], "critical");
        assert_eq!(json["causes"][0], "ptr_missing");
        assert_eq!(json["checks"][0]["check"], "ptr");
        assert_eq!(json["checks"][0]["status"], "fail");
        assert_eq!(json["checks"][1]["cause"], serde_json::Value::Null);
        assert_eq!(json["dkim_key_bits"], serde_json::Value::Null);
    }
}
