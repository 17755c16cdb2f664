//! Judges a fetched probe: where it landed (by the folder's role) and what the receiver said
//! (the verdict reader, trusting only the seed's authserv-ids). Pure code.

use serde::{Deserialize, Serialize};

use crate::status::Status;
use crate::verdict::{self, AuthResult, SpamReport, Verdict};

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
}

impl Placement {
    pub const ALL: [Placement; 5] = [
        Placement::Inbox,
        Placement::Spam,
        Placement::Other,
        Placement::Missing,
        Placement::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Inbox => "inbox",
            Placement::Spam => "spam",
            Placement::Other => "other",
            Placement::Missing => "missing",
            Placement::Unknown => "unknown",
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

/// The receiver's judgement of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub spam: SpamReport,
    /// The DKIM failure reason the receiver gave, if any (for the diagnosis).
    pub dkim_reason: Option<String>,
    /// Set when the message could not be read as a message at all.
    pub error: Option<String>,
}

/// Reads the receiver's verdict from the raw message.
pub fn judge(raw: &[u8], authserv_ids: &[String]) -> Judgement {
    match verdict::inspect(raw, authserv_ids) {
        Ok(inspection) => {
            let dkim_reason = inspection
                .results_for(verdict::Method::Dkim)
                .filter(|r| !r.result.is_pass())
                .find_map(|r| r.reason.clone().or_else(|| r.comment.clone()));
            Judgement {
                verdict: inspection.verdict,
                spam: inspection.spam,
                dkim_reason,
                error: None,
            }
        }
        Err(e) => Judgement {
            verdict: Verdict::default(),
            spam: SpamReport::default(),
            dkim_reason: None,
            error: Some(e.to_string()),
        },
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
        Some(Placement::Missing) => Status::Critical,
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

    #[test]
    fn unreadable_message_is_judged_not_panicked() {
        let j = judge(b"", &[]);
        assert!(j.error.is_some());
        assert_eq!(j.verdict.spf, AuthResult::None);
    }
}
