//! What became of a probe, as the state records it, the metrics count it and the results show
//! it: where it landed ([`Placement`], by the folder's role), what the receiver said
//! ([`Judgement`]), what the SMTP server said on acceptance ([`SendOutcome`]), what a bounce
//! said ([`Bounce`]), and the status word of a result ([`probe_status`]). Plain data shared
//! by the probe pipeline, the state, the metrics and the pages; judging lives in
//! `probe::judge`.

use serde::{Deserialize, Serialize};

use crate::dns_audit::{CheckResult, CheckStatus, SeenIpAudit};
use crate::gmail::Tab;
use crate::path::Path;
use crate::requirements::{HeaderCheck, Unsubscribe};
use crate::status::Status;
use crate::verdict::{AuthResult, SpamVerdict, Verdict};

/// Where a probe ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    Inbox,
    Spam,
    /// Found, but in a folder that is neither the inbox nor the spam folder.
    Other,
    /// Not found before the timeout while the mailbox was readable.
    Missing,
    /// The mailbox could not be read: we do not know (never reported as missing).
    Unknown,
    /// The receiving server refused it: a bounce (DSN) for it came back.
    Rejected,
}

impl Placement {
    pub const ALL: [Placement; 6] = [
        Placement::Inbox,
        Placement::Spam,
        Placement::Other,
        Placement::Missing,
        Placement::Unknown,
        Placement::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Inbox => "inbox",
            Placement::Spam => "spam",
            Placement::Other => "other",
            Placement::Missing => "missing",
            Placement::Unknown => "unknown",
            Placement::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Placement> {
        Placement::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What a watched folder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRole {
    Inbox,
    Spam,
    Other,
}

impl FolderRole {
    pub fn placement(self) -> Placement {
        match self {
            FolderRole::Inbox => Placement::Inbox,
            FolderRole::Spam => Placement::Spam,
            FolderRole::Other => Placement::Other,
        }
    }
}

/// What a bounce (a delivery status notification, RFC 3464) said about a probe: the first
/// failed (or delayed) recipient's fields as written, the reply capped in length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// The enhanced status code, e.g. `5.7.25`.
    pub status: Option<String>,
    /// `failed` or `delayed`.
    pub action: Option<String>,
    /// The server that refused it, e.g. `mx.seed.test`.
    pub remote_mta: Option<String>,
    /// Its reply, e.g. `550 5.7.25 ... does not have a PTR record ...`.
    pub diagnostic_code: Option<String>,
    /// What kind of refusal: `auth`, `ptr`, `blocklist`, `policy`, `rate_limit`,
    /// `recipient`, `mailbox_full`, `other`.
    pub class: String,
    /// The method the reply says failed (`spf`, `dkim`, `dmarc`), when it names one.
    #[serde(default)]
    pub method: Option<String>,
}

impl Bounce {
    /// The bounce of a DSN: its first failed recipient (else its first delayed one), with the
    /// class of refusal its status and reply put it in.
    pub fn from_dsn(dsn: &crate::verdict::dsn::Dsn) -> Option<Bounce> {
        let recipient = dsn.first_failure().or_else(|| dsn.first_delay())?;
        let rejection = recipient.rejection();
        Some(Bounce {
            status: recipient.status.clone(),
            action: recipient.action.map(|a| a.as_str().to_string()),
            remote_mta: recipient.remote_mta.clone(),
            diagnostic_code: recipient.diagnostic_code.clone(),
            class: rejection.class.as_str().to_string(),
            method: rejection.failed_method.map(|m| m.as_str().to_string()),
        })
    }

    /// Whether it reports a delay (the sending server keeps trying), not a failure.
    pub fn is_delay(&self) -> bool {
        self.action.as_deref() == Some("delayed")
    }
}

/// What the SMTP server said when it accepted the message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SendOutcome {
    pub code: u16,
    /// The server's queue id, when its reply names one ("queued as 4BC1D2").
    pub queue_id: Option<String>,
    /// Connect to final reply on a fresh session; MAIL to final reply on a kept one.
    pub duration_seconds: f64,
    /// Whether the probe opened its own SMTP session (connect, TLS, AUTH) or followed an
    /// earlier probe of the round on that one's session. Older records have no field: fresh.
    #[serde(default)]
    pub session: SmtpSession,
}

/// How a probe reached the route's SMTP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSession {
    /// A new connection: TCP, TLS and AUTH proved by this probe.
    #[default]
    Fresh,
    /// The session an earlier probe of the round opened, kept for this one.
    Reused,
}

impl SmtpSession {
    pub const NAMES: [&'static str; 2] = ["fresh", "reused"];

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSession::Fresh => "fresh",
            SmtpSession::Reused => "reused",
        }
    }
}

/// The receiver's judgement of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub spam: SpamVerdict,
    /// The DKIM failure reason the receiver gave, if any (for the diagnosis).
    pub dkim_reason: Option<String>,
    /// The spam filter's rules that count against the message, most significant first
    /// (for the diagnosis; empty in results stored by older versions).
    #[serde(default)]
    pub spam_reasons: Vec<String>,
    /// The sending IP as the receiver saw it (for fix sentences when the route names none).
    #[serde(default)]
    pub client_ip: Option<std::net::IpAddr>,
    /// The Gmail inbox tab it was filed under (an inbox hit at a server with Gmail's
    /// extensions); `None` elsewhere.
    #[serde(default)]
    pub tab: Option<Tab>,
    /// The path the probe took, from its `Received:` fields, trusted from the seed's own hops
    /// inward ([`crate::path`]); `None` in results stored by older versions.
    #[serde(default)]
    pub path: Option<Path>,
    /// The audit of the address the receiving MX saw (`probe::seen_address`), as it was when the
    /// probe was found; `None` when no address was seen or no resolver could be set up.
    #[serde(default)]
    pub seen_ip: Option<SeenIpChecks>,
    /// The RFC 5322 §3.6 check of the header section as it arrived (the providers'
    /// well-formedness requirement); `None` in results stored by older versions.
    #[serde(default)]
    pub headers: Option<HeaderCheck>,
    /// What it offered for RFC 8058 one-click unsubscribe (the bulk-sender requirement).
    #[serde(default)]
    pub unsubscribe: Option<Unsubscribe>,
    /// Set when the message could not be read as a message at all.
    pub error: Option<String>,
}

/// The audit of the address a receiver saw, as a probe result keeps it: the address, its
/// family, whether the route's `sending_ips` lists it, and the checks as `check-dns` reports
/// them (`sending_ip`, `ptr`, `fcrdns`, `helo`, `spf`, `dnsbl`), each fix naming the address and
/// its family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenIpChecks {
    /// The address audited.
    pub ip: std::net::IpAddr,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Whether the route's `sending_ips` lists it (`None`: the route lists none).
    pub expected: Option<bool>,
    /// The checks.
    pub checks: Vec<CheckResult>,
}

impl SeenIpChecks {
    /// What the probe keeps of an audit.
    pub fn of(audit: &SeenIpAudit) -> SeenIpChecks {
        SeenIpChecks {
            ip: audit.ip,
            family: audit.family.to_string(),
            expected: audit.expected,
            checks: audit.audit.checks.clone(),
        }
    }

    /// The checks that found something wrong (`fail` or `warn`, with a cause); a check that
    /// could not run (`error`) finds nothing.
    pub fn findings(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| {
            matches!(c.status, CheckStatus::Fail | CheckStatus::Warn) && c.cause.is_some()
        })
    }
}

/// The status of one probe result: critical when missing or not sent; warning when in spam or
/// another folder, when SPF, DKIM or DMARC did not pass, or when a cause was diagnosed; unknown
/// when the mailbox could not be read.
pub fn probe_status(
    placement: Option<Placement>,
    verdict: Option<&Verdict>,
    send_failed: bool,
    diagnosed: bool,
) -> Status {
    if send_failed {
        return Status::Critical;
    }
    match placement {
        Some(Placement::Missing | Placement::Rejected) => Status::Critical,
        Some(Placement::Unknown) | None => Status::Unknown,
        Some(Placement::Spam | Placement::Other) => Status::Warning,
        Some(Placement::Inbox) => {
            let auth_ok = verdict
                .map(|v| {
                    v.spf.is_pass() && v.dkim.is_pass() && v.dmarc.is_pass() && iprev_ok(&v.iprev)
                })
                .unwrap_or(false);
            if auth_ok && !diagnosed {
                Status::Ok
            } else {
                Status::Warning
            }
        }
    }
}

/// iprev only counts when the receiver reports it (rspamd does not).
fn iprev_ok(r: &AuthResult) -> bool {
    r.is_pass() || *r == AuthResult::None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_pass() -> Verdict {
        Verdict {
            spf: AuthResult::Pass,
            dkim: AuthResult::Pass,
            dmarc: AuthResult::Pass,
            ..Verdict::default()
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            probe_status(Some(Placement::Inbox), Some(&all_pass()), false, false),
            Status::Ok
        );
        assert_eq!(
            probe_status(Some(Placement::Inbox), Some(&all_pass()), false, true),
            Status::Warning
        );
        let mut v = all_pass();
        v.dkim = AuthResult::Fail;
        assert_eq!(
            probe_status(Some(Placement::Inbox), Some(&v), false, false),
            Status::Warning
        );
        assert_eq!(
            probe_status(Some(Placement::Spam), Some(&all_pass()), false, false),
            Status::Warning
        );
        assert_eq!(
            probe_status(Some(Placement::Missing), None, false, false),
            Status::Critical
        );
        assert_eq!(
            probe_status(Some(Placement::Unknown), None, false, false),
            Status::Unknown
        );
        assert_eq!(probe_status(None, None, true, false), Status::Critical);
    }
}
