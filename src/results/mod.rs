//! What a round says to people and tools: the `once --json` / `/api/results` contract and the
//! readable text of `once` ([`words`]), each result with its diagnosis ([`causes`]).
//!
//! JSON contract (stable; fields may be added, never renamed):
//! ```json
//! {"status": "ok|warning|critical|unknown",
//!  "results": [{"route": "good", "seed": "seed1", "probe_id": "…", "state": "resolved",
//!               "placement": "inbox|spam|other|missing|unknown", "folder": "INBOX",
//!               "tab": null,
//!               "verdict": {"spf": "pass", "dkim": "pass", "dmarc": "pass", "arc": "none",
//!                           "iprev": "none", "authserv_id": "mx.seed.test"},
//!               "spam": {"flagged": false, "score": 0.1, "threshold": 15.0, "rules": [], "source": "rspamd"},
//!               "smtp": {"code": 250, "queue_id": "4BC1D2", "duration_seconds": 0.05},
//!               "delivery_seconds": 0.8, "late": false,
//!               "status": "ok", "diagnosis": [{"cause": "ptr_missing", "fix": "…"}],
//!               "error": null, "error_reason": null, "sent_at": 1795840266.1}]}
//! ```
//! `state` is `sending`/`sent` while a probe is in flight (then `placement` is `null`),
//! `resolved`, `missing`, `unknown` or `send_failed`. `placement` is `null` for a probe that was never sent (`smtp` then holds the refusal code when
//! there was one, and `error` says why); `verdict` and `spam` are `null` until the probe is found.

pub mod causes;
#[cfg(test)]
mod tests;
pub mod words;

use serde::Serialize;

use crate::config::Config;
use crate::diagnosis::Diagnosis;
use crate::gmail::Tab;
use crate::outcome::SendOutcome;
use crate::outcome::{Bounce, Placement, probe_status};
use crate::state::probes::{ProbeRecord, ProbeState};
use crate::status::Status;
use crate::verdict::{SpamVerdict, Verdict};

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub route: String,
    pub seed: String,
    pub probe_id: String,
    /// Where the probe is in its life: `sending`, `sent` (in flight), `resolved`, `missing`,
    /// `unknown`, `send_failed`.
    pub state: ProbeState,
    pub placement: Option<Placement>,
    pub folder: Option<String>,
    /// The Gmail inbox tab of an inbox hit at a server with Gmail's extensions
    /// (`primary|promotions|social|updates|forums`); `null` elsewhere.
    pub tab: Option<Tab>,
    pub verdict: Option<Verdict>,
    pub spam: Option<SpamVerdict>,
    pub smtp: Option<SendOutcome>,
    pub delivery_seconds: Option<f64>,
    pub late: bool,
    pub status: Status,
    pub diagnosis: Vec<Diagnosis>,
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub sent_at: Option<f64>,
    /// The bounce (or delay notice) that came back: `{status, action, remote_mta,
    /// diagnostic_code, class}`; `null` when none did.
    pub bounce: Option<Bounce>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub status: Status,
    pub results: Vec<ProbeResult>,
}

/// Turns stored records into results, each with its diagnosis ([`causes::for_record`], named
/// with the routes of `config`, the config in force): the one place a record is diagnosed, for
/// `once`, `/api/results`, the status page and the metrics alike.
pub fn build(records: &[ProbeRecord], config: Option<&Config>) -> Results {
    let results: Vec<ProbeResult> = records
        .iter()
        .map(|r| {
            let diagnosis = causes::for_record(r, config);
            let send_failed = r.state == ProbeState::SendFailed;
            let placement = if send_failed {
                None
            } else {
                r.placement.or(match r.state {
                    ProbeState::Sending | ProbeState::Sent | ProbeState::Deferred => None,
                    ProbeState::Missing => Some(Placement::Missing),
                    _ => Some(Placement::Unknown),
                })
            };
            let verdict = r.judgement.as_ref().map(|j| j.verdict.clone());
            // A deferred probe is still in flight but already a warning: the receiver is
            // pushing back.
            let status = if r.state == ProbeState::Deferred {
                Status::Warning
            } else {
                probe_status(
                    placement,
                    verdict.as_ref(),
                    send_failed,
                    !diagnosis.is_empty(),
                )
            };
            ProbeResult {
                route: r.route.clone(),
                seed: r.seed.clone(),
                probe_id: r.probe_id.clone(),
                state: r.state,
                placement,
                folder: r.folder.clone(),
                tab: r.judgement.as_ref().and_then(|j| j.tab),
                verdict,
                spam: r.judgement.as_ref().map(|j| j.spam.clone()),
                smtp: r.smtp.clone(),
                delivery_seconds: r.delivery_seconds,
                late: r.late,
                status,
                diagnosis,
                error: r.error.clone(),
                error_reason: r.error_reason.clone(),
                sent_at: r.sent_at,
                bounce: r.bounce.clone(),
            }
        })
        .collect();
    let status = results
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Unknown);
    Results { status, results }
}
