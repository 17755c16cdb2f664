//! Judges a fetched probe: what the receiver said (the verdict reader, trusting only the
//! seed's authserv-ids), the path it took (the `Received:` hops, trusted from the seed's own
//! hops inward, [`crate::path`]) and what the providers' requirements read off its header
//! section (RFC 5322 well-formedness, RFC 8058 one-click unsubscribe). Pure code; where it
//! landed follows from the folder's role ([`crate::outcome::FolderRole`]).

use crate::config::Seed;
use crate::outcome::Judgement;
use crate::path::{self, Receiver};
use crate::requirements;
use crate::verdict::{self, SpamVerdict, Verdict};

/// The receiver of a seed, whose `Received:` hops are believed: the domains of its
/// authserv-ids and, for a provider preset, the provider's receiving domains.
pub fn receiver_of(seed: &Seed) -> Receiver {
    Receiver::from_authserv_ids(&seed.authserv_ids).with(&Receiver::for_provider(seed.provider))
}

/// Reads the receiver's verdict and the path from the raw message (its header section is
/// enough).
pub fn judge(raw: &[u8], authserv_ids: &[String], receiver: &Receiver) -> Judgement {
    let mut judgement = judge_verdict(raw, authserv_ids);
    judgement.path = path::read(raw, receiver).ok();
    // What the providers' requirements read off the header section (`crate::requirements`).
    judgement.headers = requirements::check_headers(raw).ok();
    judgement.unsubscribe = requirements::check_unsubscribe(raw).ok();
    judgement
}

/// The receiver's verdict alone.
fn judge_verdict(raw: &[u8], authserv_ids: &[String]) -> Judgement {
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
                path: None,
                seen_ip: None,
                headers: None,
                unsubscribe: None,
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
            path: None,
            seen_ip: None,
            headers: None,
            unsubscribe: None,
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
        let j = judge(b"", &[], &Receiver::default());
        assert!(j.error.is_some());
        assert_eq!(j.verdict.spf, AuthResult::None);
        assert_eq!(j.path, None);
    }

    #[test]
    fn a_probe_keeps_the_path_the_seed_recorded() {
        let raw = b"Received: from mail.example.org (mail.example.org [2001:db8::25])\r\n\
            \tby mx.seed.test (Postfix) with ESMTPS id 4AB\r\n\
            \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\
            \tfor <probe@seed.test>; Tue, 8 Dec 2026 01:00:05 +0000\r\n\
            Received: from [192.0.2.7] by mail.example.org with ESMTPSA id 9Z;\r\n\
            \tTue, 8 Dec 2026 01:00:01 +0000\r\n\
            From: a@example.org\r\n\r\nbody\r\n";
        let receiver = Receiver::from_authserv_ids(["mx.seed.test"]);
        let j = judge(raw, &["mx.seed.test".to_string()], &receiver);
        let path = j.path.expect("a path");
        assert_eq!(path.hops_total, 2);
        assert_eq!(path.receiving_hop, Some(0));
        let seen = path.seen.as_ref().expect("seen");
        assert_eq!(seen.ip, Some("2001:db8::25".parse().expect("ip")));
        assert_eq!(path.last_hop_tls(), "tls1.3");
        assert_eq!(path.handoff(crate::path::Leg::ReceivingMx), Some(4));
        // Kept with the result in the state file: it reads back as it was written.
        let stored = serde_json::to_string(&path).expect("json");
        let back: crate::path::Path = serde_json::from_str(&stored).expect("reads back");
        assert_eq!(back, path);
    }
}
