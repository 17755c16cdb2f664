//! Judges a fetched probe: what the receiver said (the verdict reader, trusting only the
//! seed's authserv-ids). Pure code; where it landed follows from the folder's role
//! ([`crate::outcome::FolderRole`]).

use crate::outcome::Judgement;
use crate::verdict::{self, SpamVerdict, Verdict};

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
                spam_reasons: inspection.spam_reasons,
                client_ip: inspection.client_ip,
                tab: None,
                error: None,
            }
        }
        Err(e) => Judgement {
            verdict: Verdict::default(),
            spam: SpamVerdict::default(),
            dkim_reason: None,
            spam_reasons: Vec::new(),
            client_ip: None,
            tab: None,
            error: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::AuthResult;

    #[test]
    fn unreadable_message_is_judged_not_panicked() {
        let j = judge(b"", &[]);
        assert!(j.error.is_some());
        assert_eq!(j.verdict.spf, AuthResult::None);
    }
}
