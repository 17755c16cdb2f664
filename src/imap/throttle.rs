//! Throttling: a server's throttling answers (Gmail's `[THROTTLED]`, too many connections)
//! make the connection back off, longer each time in a row ([`crate::gmail::backoff`]).

use std::time::{Duration, Instant};

use super::guard::Budget;
use super::{FolderConn, ImapError};
use crate::gmail::{self, Throttle};

/// What the server's throttling answers asked of this connection.
#[derive(Debug, Default)]
pub(super) struct ThrottleState {
    /// Throttling answers in a row; reset by a check without one.
    pub(super) in_a_row: u32,
    /// No command before this instant (after a throttling answer).
    pub(super) until: Option<Instant>,
    /// A throttling answer to a command that still worked, for the caller to count.
    pub(super) slowed: Option<ImapError>,
}

impl ThrottleState {
    /// A throttling answer arrived: back off, longer each time in a row. Answers during a
    /// back-off (the rest of the check that met the first one) do not lengthen it.
    pub(super) fn note(&mut self) -> Duration {
        let now = Instant::now();
        if let Some(until) = self.until.filter(|u| *u > now) {
            return until - now;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        let pause = gmail::backoff(self.in_a_row);
        self.until = Some(now + pause);
        pause
    }

    /// Turns what the guard saw during a command into back-off and the command's result: a
    /// refusal (even of a command async-imap let pass) replaces the result, a slow-down is
    /// kept for the caller to count.
    pub(super) fn after<T>(
        &mut self,
        budget: &Budget,
        server: &str,
        result: Result<T, ImapError>,
    ) -> Result<T, ImapError> {
        let failure = budget.take_failure();
        match (budget.take_throttle(), result) {
            (Some(Throttle::Refused), result) => {
                let pause = self.note();
                let why = match (result, failure) {
                    (Err(e), _) => e.to_string(),
                    (Ok(_), Some(line)) => line,
                    (Ok(_), None) => "the server refused the command".to_string(),
                };
                Err(ImapError::throttled(
                    server,
                    format!("backing off {} s: {why}", pause.as_secs()),
                ))
            }
            // async-imap reads a tagged NO/BAD to SEARCH as "nothing found": it is an error.
            (seen, Ok(_)) if failure.is_some() => {
                if seen.is_some() {
                    self.note();
                }
                Err(ImapError::protocol(
                    server,
                    format!(
                        "the server refused the command: {}",
                        failure.unwrap_or_default()
                    ),
                ))
            }
            (None, result) => result,
            (Some(_), result) => {
                let pause = self.note();
                self.slowed = Some(ImapError::throttled(
                    server,
                    format!(
                        "a command answered [THROTTLED]; backing off {} s",
                        pause.as_secs()
                    ),
                ));
                result
            }
        }
    }
}

impl FolderConn {
    /// How long the server asked us (by throttling) to leave it alone still.
    pub fn backoff_left(&self) -> Option<Duration> {
        self.throttle
            .until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// A throttling answer to a command that worked, once (for the caller to count and log).
    pub fn take_slowed(&mut self) -> Option<ImapError> {
        self.throttle.slowed.take()
    }
}
