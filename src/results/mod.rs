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
//!               "error": null, "error_reason": null, "sent_at": 1795840266.1,
//!               "kind": "scheduled", "pair_state": "ok",
//!               "path": {"hops": [...], "hops_total": 3, "receiver_domains": ["seed.test"],
//!                        "receiving_hop": 1, "seen": {"ip": "127.0.0.5", "family": "ipv4", ...},
//!                        "handoffs": [{"hop": "receiving_mx", "seconds": 0}, ...]}}]}
//! ```
//! `once` gives one result per route × seed: a confirmation probe (`kind`) supersedes the
//! probe it confirms; `pair_state` says where the pair stands (`ok`, `suspect`, `confirmed`,
//! `recovered`; [`crate::standing`]).
//! `state` is `sending`/`sent` while a probe is in flight (then `placement` is `null`),
//! `resolved`, `missing`, `unknown` or `send_failed`. `placement` is `null` for a probe that was never sent (`smtp` then holds the refusal code when
//! there was one, and `error` says why); `verdict` and `spam` are `null` until the probe is found.
//! `probe_id` is the probe's *public* id ([`token::public_id`], a keyed hash: the local part of
//! its Message-ID), never the id its token and envelope id carry. `late` is true when the
//! outcome came after the timeout (found late, or a bounce that came late), and then
//! `expired_as` says what it was recorded as at the timeout (`missing`, `unknown`), else `null`.
//! `path` is the probe's path as `inspect --json` shows it ([`crate::path`]), `null` until the
//! probe is found; `seen_ip` the audit of the address its receiving hop names
//! (`probe::seen_address`), whose findings are in `diagnosis` too.

pub mod causes;
pub mod scorecard;
#[cfg(test)]
mod tests;
pub mod words;

use serde::Serialize;

use crate::config::Config;
use crate::diagnosis::Diagnosis;
use crate::gmail::Tab;
use crate::outcome::SendOutcome;
use crate::outcome::{Bounce, Placement, SeenIpChecks, probe_status};
use crate::path::Path;
use crate::probe::token;
use crate::standing::{PairState, Standing};
use crate::state::probes::{ProbeKind, ProbeRecord, ProbeState};
use crate::status::Status;
use crate::verdict::{SpamVerdict, Verdict};

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub route: String,
    pub seed: String,
    /// The probe's public id ([`token::public_id`]), never the probe id itself.
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
    /// The outcome came after the timeout: found late, or refused by a bounce that came late.
    pub late: bool,
    /// What a `late` result was recorded as at its timeout (`missing`, `unknown`); `null`
    /// otherwise.
    pub expired_as: Option<ProbeState>,
    pub status: Status,
    pub diagnosis: Vec<Diagnosis>,
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub sent_at: Option<f64>,
    /// The bounce (or delay notice) that came back: `{status, action, remote_mta,
    /// diagnostic_code, class}`; `null` when none did.
    pub bounce: Option<Bounce>,
    /// `scheduled`, or `confirmation`: sent at once to confirm its pair's bad (or overdue)
    /// outcome.
    pub kind: ProbeKind,
    /// Where the route × seed pair stands: `ok`, `suspect` (one bad outcome, a confirmation
    /// is on its way), `confirmed` (two in a row: the alerts fire), `recovered`; `null` before
    /// its first outcome.
    pub pair_state: Option<PairState>,
    /// The path the probe took ([`crate::path::Path`], as `inspect --json` shows it): its
    /// `Received:` hops, which are the seed's own (`trusted`), what the receiving MX saw
    /// (`seen`: address, family, HELO, TLS) and the handoff delays; `null` until it is found.
    pub path: Option<Path>,
    /// The audit of the address the receiving MX saw (`{ip, family, expected, checks}`, the
    /// checks as `check-dns --json` reports them); its findings are in `diagnosis` too. `null`
    /// until the probe is found, or when no address was seen.
    pub seen_ip: Option<SeenIpChecks>,
    /// Which way the route's probes travel (`routes.NAME.direction`): `outbound` (our server's
    /// mail to the seed) or `inbound` (the world's mail, through a provider, to our own
    /// mailbox: the result judges our MX).
    pub direction: crate::config::Direction,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub status: Status,
    pub results: Vec<ProbeResult>,
}

impl Results {
    /// Fills in where each result's pair stands, from the stored standings.
    pub fn with_pair_states(mut self, pairs: &[(String, String, Standing)]) -> Results {
        for r in &mut self.results {
            r.pair_state = pairs
                .iter()
                .find(|(route, seed, _)| *route == r.route && *seed == r.seed)
                .map(|(_, _, p)| p.state);
        }
        self
    }
}

/// One record per route × seed pair: the newest one with an outcome (a confirmation supersedes
/// the probe it confirms), or the newest one in flight when none has an outcome yet. In the
/// order of `records`.
pub fn latest_of_each_pair(records: &[ProbeRecord]) -> Vec<ProbeRecord> {
    let in_flight = |r: &ProbeRecord| matches!(r.state, ProbeState::Sending | ProbeState::Sent);
    let mut out: Vec<ProbeRecord> = Vec::new();
    for r in records {
        match out
            .iter_mut()
            .find(|o| o.route == r.route && o.seed == r.seed)
        {
            None => out.push(r.clone()),
            Some(o) => {
                let better = match (in_flight(o), in_flight(r)) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => r.created_at > o.created_at,
                };
                if better {
                    *o = r.clone();
                }
            }
        }
    }
    out
}

/// Turns stored records into results, each with its diagnosis ([`causes::for_record`], named
/// with the routes of `config`, the config in force) and its public id (from the config's
/// token key): the one place a record is diagnosed, for `once`, `/api/results`, the status
/// page and the metrics alike.
pub fn build(records: &[ProbeRecord], config: &Config) -> Results {
    let results: Vec<ProbeResult> = records
        .iter()
        .map(|r| {
            let diagnosis = causes::for_record(r, Some(config));
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
                probe_id: token::public_id(&config.probe.token_key, &r.probe_id),
                state: r.state,
                placement,
                folder: r.folder.clone(),
                tab: r.judgement.as_ref().and_then(|j| j.tab),
                verdict,
                spam: r.judgement.as_ref().map(|j| j.spam.clone()),
                smtp: r.smtp.clone(),
                delivery_seconds: r.delivery_seconds,
                late: r.late,
                expired_as: r.expired_as,
                status,
                diagnosis,
                error: r.error.clone(),
                error_reason: r.error_reason.clone(),
                sent_at: r.sent_at,
                bounce: r.bounce.clone(),
                kind: r.kind,
                pair_state: None,
                path: r.judgement.as_ref().and_then(|j| j.path.clone()),
                seen_ip: r.judgement.as_ref().and_then(|j| j.seen_ip.clone()),
                direction: config
                    .route(&r.route)
                    .map(|route| route.direction)
                    .unwrap_or_default(),
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
