//! What the watchers of a round share: the context each is given ([`WatchCtx`]: state, metrics,
//! the round's config and its send board), the word a watcher sends once it has had its first
//! look at its mailbox ([`Ready`]), and how long sending waits for that look
//! ([`BASELINE_WAIT`]). The senders write the board ([`Board`]: which probe the SMTP server
//! accepted, when, which failed), the watchers read it; neither imports the other, and the
//! round that starts them is never called back.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::probes::ProbeStore;

/// How long sending waits for the watchers' first look at their mailboxes (at most the probe
/// timeout).
pub const BASELINE_WAIT: Duration = Duration::from_secs(45);

/// How a probe's send stands, as the watchers see it.
pub(crate) enum SendState {
    /// Not resolved yet: the probe has no deadline yet and can never be `missing`.
    Pending,
    /// Accepted by the SMTP server at this Unix time / instant.
    Accepted { at: f64, instant: Instant },
    /// Refused or failed: not watched.
    Failed,
}

/// What the senders learn and the watchers need.
#[derive(Default)]
pub(crate) struct SendBoard {
    pub(crate) accepted: HashMap<String, (f64, Instant)>,
    /// When a probe of this round was last found, in any mailbox.
    pub(crate) last_found: Option<Instant>,
    /// Not sent, or refused by the receiver (a bounce came back): not watched any more.
    pub(crate) failed: HashSet<String>,
}

/// The send board, shared by senders and watchers, with a signal for every send that resolves
/// (accepted or failed) so that watchers waiting for one need not poll.
#[derive(Clone, Default)]
pub(crate) struct Board(Arc<BoardShared>);

#[derive(Default)]
pub(crate) struct BoardShared {
    state: Mutex<SendBoard>,
    resolved: tokio::sync::Notify,
}

impl Board {
    pub(crate) fn lock(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, SendBoard>> {
        self.0.state.lock()
    }

    /// Wakes every watcher waiting in [`Board::resolved`].
    pub(crate) fn notify_resolved(&self) {
        self.0.resolved.notify_waiters();
    }

    /// A wait for the next resolved send; enable it before looking at the board, so that a
    /// send resolving in between is not missed.
    pub(crate) fn resolved(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.resolved.notified()
    }
}

/// When a probe of this round was last found.
pub(crate) fn last_found(board: &Board) -> Option<Instant> {
    board.lock().unwrap_or_else(|e| e.into_inner()).last_found
}

pub(crate) fn send_state(board: &Board, id: &str) -> SendState {
    let b = board.lock().unwrap_or_else(|e| e.into_inner());
    // `failed` first: a probe the SMTP server accepted and the receiver then refused (its
    // bounce came back) is in both, and is done — not watched until its timeout, where it
    // would be counted missing on top of rejected.
    if b.failed.contains(id) {
        SendState::Failed
    } else if let Some((at, instant)) = b.accepted.get(id) {
        SendState::Accepted {
            at: *at,
            instant: *instant,
        }
    } else {
        SendState::Pending
    }
}

/// A watcher that has had its first look at its mailbox.
pub enum Ready {
    Seed(String),
    Bounces(String),
}

/// What every watcher of a round is given.
pub(crate) struct WatchCtx {
    pub(crate) store: Arc<ProbeStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: Arc<Config>,
    pub(crate) board: Board,
    pub(crate) round_started: f64,
}

impl WatchCtx {
    /// The earliest arrival a watcher asks its mailbox for: the late window before the round
    /// started, and a day more (servers date messages by their own clock and time zone, and
    /// IMAP `SINCE` compares dates only, RFC 9051 §6.4.4).
    pub(crate) fn since(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::from_timestamp(
            self.round_started as i64 - 86_400 - self.config.probe.late_window.as_secs() as i64,
            0,
        )
        .unwrap_or_else(chrono::Utc::now)
    }

    /// When a watcher's first look must be done (sending does not wait longer for it).
    pub(crate) fn baseline_until(&self) -> Instant {
        Instant::now() + BASELINE_WAIT.min(self.config.probe.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_refused_after_acceptance_is_done_not_pending() {
        let board = Board::default();
        assert!(matches!(send_state(&board, "p1"), SendState::Pending));
        board
            .lock()
            .expect("board")
            .accepted
            .insert("p1".into(), (1.0, Instant::now()));
        assert!(matches!(
            send_state(&board, "p1"),
            SendState::Accepted { .. }
        ));
        // Its bounce came back (watch/bounces.rs records it as failed).
        board.lock().expect("board").failed.insert("p1".into());
        assert!(matches!(send_state(&board, "p1"), SendState::Failed));
    }
}
