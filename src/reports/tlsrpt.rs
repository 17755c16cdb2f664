//! SMTP TLS reports (RFC 8460 §4): the JSON a receiver sends about the TLS sessions it tried
//! with a domain's MX hosts under its MTA-STS (RFC 8461) or DANE (RFC 7672) policy.
//!
//! Member names are those of RFC 8460 §4.4 (`organization-name`, `date-range`,
//! `start-datetime`, ...). Required: `organization-name`, `date-range` with both date-times
//! (RFC 3339, turned into Unix seconds), `report-id`, `policies`, and in each policy
//! `policy.policy-type`, `policy.policy-domain` and both summary counts. `contact-info` and
//! `failure-details` are optional (RFC 8460 §4.3 example omits neither, but reporters do);
//! unknown members (reporters add their own) are ignored. Counts are at most
//! [`super::MAX_COUNT`] and the date range a sane period ([`super::MAX_PERIOD_SECONDS`]).

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{ReportError, capped, check_input, check_period, quoted};

/// A TLS report (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReport {
    pub org_name: String,
    pub report_id: String,
    /// `date-range.start-datetime`, Unix seconds.
    pub begin: i64,
    /// `date-range.end-datetime`, Unix seconds.
    pub end: i64,
    pub contact: Option<String>,
    pub policies: Vec<Policy>,
}

/// The sessions under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `sts`, `tlsa` or `no-policy-found` (RFC 8460 §4.4.1), lower-cased.
    pub policy_type: String,
    pub policy_domain: String,
    /// `total-successful-session-count`.
    pub successful: u64,
    /// `total-failure-session-count`.
    pub failed: u64,
    pub failures: Vec<Failure>,
}

/// One kind of failure (RFC 8460 §4.4.4 `failure-details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `starttls-not-supported`, `certificate-expired`, ... (RFC 8460 §4.3), lower-cased.
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    /// `failed-session-count`.
    pub count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawReport {
    organization_name: Option<String>,
    date_range: Option<RawDateRange>,
    contact_info: Option<String>,
    report_id: Option<String>,
    policies: Option<Vec<RawPolicy>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawDateRange {
    start_datetime: Option<String>,
    end_datetime: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPolicy {
    policy: Option<RawPolicyDetails>,
    summary: Option<RawSummary>,
    #[serde(default)]
    failure_details: Vec<RawFailure>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPolicyDetails {
    policy_type: Option<String>,
    policy_domain: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawSummary {
    total_successful_session_count: Option<serde_json::Value>,
    total_failure_session_count: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFailure {
    result_type: Option<String>,
    sending_mta_ip: Option<String>,
    receiving_mx_hostname: Option<String>,
    failed_session_count: Option<serde_json::Value>,
}

/// Reads one TLS report from its JSON.
pub fn parse(bytes: &[u8]) -> Result<TlsReport, ReportError> {
    check_input(bytes)?;
    // serde_json refuses nesting past 128 levels, so hostile depth cannot overflow the stack.
    let raw: RawReport = serde_json::from_slice(bytes).map_err(|err| ReportError::NotJson {
        detail: err.to_string(),
    })?;
    let range = raw.date_range.ok_or(ReportError::Missing {
        element: "date-range",
    })?;
    let mut policies = Vec::new();
    for policy in raw.policies.ok_or(ReportError::Missing {
        element: "policies",
    })? {
        policies.push(read_policy(policy)?);
    }
    let begin = datetime(range.start_datetime, "date-range/start-datetime")?;
    let end = datetime(range.end_datetime, "date-range/end-datetime")?;
    check_period(begin, end)?;
    Ok(TlsReport {
        org_name: required(raw.organization_name, "organization-name")?,
        report_id: required(raw.report_id, "report-id")?,
        begin,
        end,
        contact: raw.contact_info.filter(|value| !value.trim().is_empty()),
        policies,
    })
}

fn read_policy(raw: RawPolicy) -> Result<Policy, ReportError> {
    let details = raw.policy.ok_or(ReportError::Missing {
        element: "policies/policy",
    })?;
    let summary = raw.summary.ok_or(ReportError::Missing {
        element: "policies/summary",
    })?;
    let mut failures = Vec::new();
    for failure in raw.failure_details {
        failures.push(Failure {
            result_type: required(failure.result_type, "failure-details/result-type")?
                .to_ascii_lowercase(),
            sending_mta_ip: failure.sending_mta_ip,
            receiving_mx_hostname: failure.receiving_mx_hostname,
            count: count(
                failure.failed_session_count,
                "failure-details/failed-session-count",
            )?,
        });
    }
    Ok(Policy {
        policy_type: required(details.policy_type, "policy/policy-type")?.to_ascii_lowercase(),
        policy_domain: required(details.policy_domain, "policy/policy-domain")?,
        successful: count(
            summary.total_successful_session_count,
            "summary/total-successful-session-count",
        )?,
        failed: count(
            summary.total_failure_session_count,
            "summary/total-failure-session-count",
        )?,
        failures,
    })
}

fn required(value: Option<String>, element: &'static str) -> Result<String, ReportError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        _ => Err(ReportError::Missing { element }),
    }
}

/// A session count: a non-negative JSON integer, at most [`super::MAX_COUNT`].
fn count(value: Option<serde_json::Value>, element: &'static str) -> Result<u64, ReportError> {
    let value = value.ok_or(ReportError::Missing { element })?;
    let count = value.as_u64().ok_or_else(|| ReportError::BadNumber {
        element,
        value: quoted(&value.to_string()),
    })?;
    capped(count, element)
}

/// An RFC 3339 date-time as Unix seconds.
fn datetime(value: Option<String>, element: &'static str) -> Result<i64, ReportError> {
    let value = required(value, element)?;
    DateTime::parse_from_rfc3339(&value)
        .map(|time| time.timestamp())
        .map_err(|_| ReportError::BadDate {
            element,
            value: quoted(&value),
        })
}
