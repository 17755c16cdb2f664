//! A route × seed pair's standing across its probes, so that a page is both fast and true.
//!
//! One bad outcome (spam or another folder, SPF/DKIM/DMARC not passing, rejected, deferred,
//! missing, not sent) makes the pair **suspect** and asks for a confirmation probe at once,
//! outside the schedule; a second bad outcome — the confirmation, or the next probe when no
//! confirmation could be sent — makes it **confirmed**, and alerts fire on confirmed pairs
//! only. A good outcome clears a suspect pair without a page, turns a confirmed one
//! **recovered**, and the next good one makes it **ok** again. An `unknown` outcome (the
//! mailbox could not be read) says nothing about the mail and changes nothing.
//!
//! A lost probe is told from mail that stopped arriving without waiting a second full timeout:
//! when a probe is *overdue* (not found a while after its SMTP server accepted it) a
//! confirmation goes out then; when the first probe is finally `missing` and that confirmation
//! is itself overdue, the pair is confirmed at once, and when the confirmation arrived the
//! older probe's `missing` is news about the past, not about now.
//!
//! Outcomes are counted newest-first: an outcome of a probe older than the one that last moved
//! the pair (a late `missing` after a newer probe arrived) changes nothing. Pure code: the
//! dispatcher feeds it events and sends what it asks for.

use std::collections::VecDeque;

use serde::Serialize;

/// Where a pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PairState {
    /// The latest counted outcome was good (or nothing was counted yet).
    Ok,
    /// One bad outcome, not confirmed yet: a confirmation probe is on its way.
    Suspect,
    /// Two bad outcomes in a row: the alerts fire.
    Confirmed,
    /// A good outcome after a confirmed break; the next good one makes the pair ok.
    Recovered,
}

impl PairState {
    pub const ALL: [PairState; 4] = [
        PairState::Ok,
        PairState::Suspect,
        PairState::Confirmed,
        PairState::Recovered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PairState::Ok => "ok",
            PairState::Suspect => "suspect",
            PairState::Confirmed => "confirmed",
            PairState::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<PairState> {
        PairState::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for PairState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong with one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    Spam,
    OtherFolder,
    /// In the inbox, but SPF, DKIM or DMARC did not pass.
    Auth,
    Rejected,
    Deferred,
    Missing,
    NotSent,
}

impl Problem {
    pub const ALL: [Problem; 7] = [
        Problem::Spam,
        Problem::OtherFolder,
        Problem::Auth,
        Problem::Rejected,
        Problem::Deferred,
        Problem::Missing,
        Problem::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Spam => "spam",
            Problem::OtherFolder => "other_folder",
            Problem::Auth => "auth",
            Problem::Rejected => "rejected",
            Problem::Deferred => "deferred",
            Problem::Missing => "missing",
            Problem::NotSent => "not_sent",
        }
    }

    pub fn parse(s: &str) -> Option<Problem> {
        Problem::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One probe's outcome as far as the pair is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// In the inbox with SPF, DKIM and DMARC passing.
    Good,
    Bad(Problem),
    /// Nothing learnt about the mail (the mailbox could not be read).
    Neutral,
}

/// What the pair asks of the dispatcher after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Nothing,
    /// Send a confirmation probe for this pair now (if the seed's budget allows).
    Confirm,
    /// It would ask for one, but its confirmation is still in flight (at most one per pair).
    AlreadyConfirming,
}

/// The confirmation probe of a pair while it is in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub probe_id: String,
    /// When it was created (Unix seconds): outcomes are ordered by this.
    pub created_at: f64,
    /// Not found a while after its acceptance.
    pub overdue: bool,
}

/// A pair's standing, as stored between probes (and across restarts).
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub state: PairState,
    /// Since when (Unix seconds).
    pub since: f64,
    /// The problem of the latest bad outcome while suspect or confirmed.
    pub problem: Option<Problem>,
    /// The creation time of the probe whose outcome moved the pair last: older outcomes are
    /// history.
    pub counted_until: f64,
    /// The pair's confirmation probe in flight, at most one.
    pub confirmation: Option<InFlight>,
}

impl Default for Standing {
    fn default() -> Self {
        Standing {
            state: PairState::Ok,
            since: 0.0,
            problem: None,
            counted_until: f64::NEG_INFINITY,
            confirmation: None,
        }
    }
}

impl Standing {
    /// A probe of this pair (created at `created_at`) had this outcome at `now`. `probe_id`
    /// lets the pair forget its confirmation once that one has an answer.
    pub fn on_outcome(
        &mut self,
        probe_id: &str,
        created_at: f64,
        outcome: Outcome,
        now: f64,
    ) -> Ask {
        if outcome != Outcome::Neutral
            && self
                .confirmation
                .as_ref()
                .is_some_and(|c| c.probe_id == probe_id)
        {
            self.confirmation = None;
        }
        if outcome == Outcome::Neutral || created_at < self.counted_until {
            return Ask::Nothing;
        }
        self.counted_until = created_at;
        match outcome {
            Outcome::Neutral => Ask::Nothing,
            Outcome::Good => {
                // A suspect pair clears at once; a confirmed one recovers, and is ok at the
                // next good outcome.
                let next = match self.state {
                    PairState::Confirmed => PairState::Recovered,
                    PairState::Ok | PairState::Suspect | PairState::Recovered => PairState::Ok,
                };
                self.problem = None;
                self.move_to(next, now);
                Ask::Nothing
            }
            Outcome::Bad(problem) => {
                self.problem = Some(problem);
                match self.state {
                    PairState::Ok | PairState::Recovered => {
                        let confirmation_overdue =
                            self.confirmation.as_ref().is_some_and(|c| c.overdue);
                        if problem == Problem::Missing && confirmation_overdue {
                            // The confirmation sent when this probe was overdue is overdue
                            // too: mail is not arriving now either.
                            self.move_to(PairState::Confirmed, now);
                            Ask::Nothing
                        } else {
                            self.move_to(PairState::Suspect, now);
                            if self.confirmation.is_some() {
                                Ask::AlreadyConfirming
                            } else {
                                Ask::Confirm
                            }
                        }
                    }
                    PairState::Suspect | PairState::Confirmed => {
                        self.move_to(PairState::Confirmed, now);
                        Ask::Nothing
                    }
                }
            }
        }
    }

    /// A probe that had timed out (`missing` or `unknown`) has an outcome after all: found
    /// late, or refused by a bounce that came late. One probe is one outcome: when its
    /// `missing` is what moved the pair last, a bad late outcome only names the problem more
    /// precisely (a refused probe is not a second lost one, so it confirms nothing); a good
    /// one counts as in [`Self::on_outcome`] (the mail did arrive). A probe that timed out
    /// `unknown` counted for nothing: its late outcome counts like any other, and is history
    /// when a newer probe moved the pair since.
    pub fn on_late_outcome(
        &mut self,
        probe_id: &str,
        created_at: f64,
        outcome: Outcome,
        now: f64,
    ) -> Ask {
        // Probes are ordered by creation time, and none of a pair share one: the probe that
        // moved the pair last is the one created at `counted_until`.
        let moved_it_last = created_at.total_cmp(&self.counted_until).is_eq();
        if let Outcome::Bad(problem) = outcome
            && moved_it_last
        {
            if matches!(self.state, PairState::Suspect | PairState::Confirmed) {
                self.problem = Some(problem);
            }
            return Ask::Nothing;
        }
        self.on_outcome(probe_id, created_at, outcome, now)
    }

    /// A probe of this pair (created at `created_at`) is overdue: accepted a while ago and not
    /// found, while its mailbox was readable.
    pub fn on_overdue(&mut self, probe_id: &str, created_at: f64, now: f64) -> Ask {
        if let Some(c) = self
            .confirmation
            .as_mut()
            .filter(|c| c.probe_id == probe_id)
        {
            c.overdue = true;
            if self.state == PairState::Suspect
                && self.problem == Some(Problem::Missing)
                && created_at >= self.counted_until
            {
                // The first probe is missing and its confirmation is not arriving either.
                self.move_to(PairState::Confirmed, now);
            }
            return Ask::Nothing;
        }
        match self.state {
            PairState::Ok | PairState::Recovered
                if self.confirmation.is_none() && created_at >= self.counted_until =>
            {
                Ask::Confirm
            }
            _ => Ask::Nothing,
        }
    }

    /// The confirmation this pair asked for is on its way.
    pub fn confirmation_sent(&mut self, probe_id: &str, created_at: f64) {
        self.confirmation = Some(InFlight {
            probe_id: probe_id.to_string(),
            created_at,
            overdue: false,
        });
    }

    fn move_to(&mut self, state: PairState, now: f64) {
        if state != self.state {
            self.state = state;
            self.since = now;
        }
    }
}

/// How many confirmation probes a seed may be sent per hour (a sliding hour), so that a
/// flapping pair — or many pairs breaking at once — never turns into a mail flood.
#[derive(Debug, Clone)]
pub struct Budget {
    per_hour: u32,
    sent: VecDeque<f64>,
}

impl Budget {
    /// A budget of `per_hour`, with the confirmations already sent at these times (from the
    /// state, so a restart does not refill it).
    pub fn new(per_hour: u32, already: impl IntoIterator<Item = f64>) -> Budget {
        let mut sent: Vec<f64> = already.into_iter().collect();
        sent.sort_by(f64::total_cmp);
        Budget {
            per_hour,
            sent: sent.into(),
        }
    }

    /// Takes one confirmation at `now` when the last hour's count allows it.
    pub fn take(&mut self, now: f64) -> bool {
        while self.sent.front().is_some_and(|&t| t <= now - 3600.0) {
            self.sent.pop_front();
        }
        if self.sent.len() >= self.per_hour as usize {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// Confirmations sent in the hour before `now`.
    pub fn used(&self, now: f64) -> usize {
        self.sent.iter().filter(|&&t| t > now - 3600.0).count()
    }

    pub fn set_per_hour(&mut self, per_hour: u32) {
        self.per_hour = per_hour;
    }
}

#[cfg(test)]
mod tests;
