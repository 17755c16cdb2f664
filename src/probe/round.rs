//! One probe round: every route × seed pair with nothing in flight gets a probe (a pair still
//! waiting for its previous probe skips its turn, counted in
//! `mailcanary_probes_skipped_total`), then the round waits until each of its probes — and
//! each confirmation they asked for — is settled, or its deadline passes, and records its end.
//! Rounds do not wait for each other: a probe still in flight never holds back the next round's
//! other pairs. Probes older than anything watched are expired as orphans here.
//!
//! Every wait is bounded: a send by its route's timeout, a probe by `probe.timeout` counted
//! from the moment the SMTP server accepted it (a probe whose send has not resolved is never
//! `missing`), and the whole round by its deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outcome::Placement;
use crate::probe::launch::Launcher;
use crate::probe::setup::Setup;
use crate::probe::watch::context::BASELINE_WAIT;
use crate::state::StateError;
use crate::state::probes::{ProbeKind, ProbeRecord, ProbeState, ProbeStore};

/// What a round works with besides its setup: the state, the metrics and the launcher.
pub(crate) struct Round {
    pub(crate) store: Arc<ProbeStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) launcher: Arc<Launcher>,
}

/// Why a round could not run, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The process is shutting down; unresolved probes stay `sent` for the next start.
    #[error("the round was cancelled by shutdown")]
    Shutdown,
}

impl Round {
    /// Probes that nothing watches any more are expired: missing (or unknown).
    pub(crate) fn expire_orphans(&self, config: &Config, now: f64) -> Result<(), StateError> {
        let p = &config.probe;
        let before = now - (p.timeout + p.late_window).as_secs_f64();
        for o in self.store.expire_orphans(before)? {
            let placement = if o.state == ProbeState::Sending {
                Placement::Unknown
            } else {
                Placement::Missing
            };
            self.metrics
                .probe_expired(&o.route, &o.seed, placement, true);
        }
        self.launcher.board.forget_older(now);
        Ok(())
    }

    /// Launches a probe for every pair of the config — on the schedule, only for the pairs
    /// with nothing in flight (`skip_in_flight`). Returns the probes in flight of the pairs it
    /// skipped: the round waits for those and reports them instead.
    pub(crate) fn launch_all(
        &self,
        setup: &Arc<Setup>,
        round_id: i64,
        skip_in_flight: bool,
    ) -> Result<Vec<String>, StateError> {
        let mut adopted = Vec::new();
        for (route, seed) in setup.config.pairs() {
            let in_flight = self.launcher.board.in_flight_of(&route.name, &seed.name);
            if skip_in_flight && !in_flight.is_empty() {
                self.metrics.probe_skipped(&route.name, &seed.name);
                adopted.extend(in_flight);
                continue;
            }
            self.launcher
                .launch(setup, route, seed, round_id, ProbeKind::Scheduled)?;
        }
        // Probes of earlier rounds whose watcher failed or whose mailbox a reload changed.
        self.launcher.ensure_all_watchers(setup);
        Ok(adopted)
    }

    /// Waits until every probe of the round is settled and none of the `adopted` ones is in
    /// flight; false when `deadline` passed first.
    pub(crate) async fn settled(
        &self,
        round_id: i64,
        adopted: &[String],
        deadline: Duration,
    ) -> bool {
        let until = Instant::now() + deadline;
        let board = &self.launcher.board;
        loop {
            let changed = board.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if board.round_settled(round_id) && board.none_in_flight(adopted) {
                return true;
            }
            if tokio::time::timeout_at(until.into(), changed)
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// Records the end of the round: metrics, pruning, the log line.
    pub(crate) fn finish(
        &self,
        cfg: &Config,
        round_id: i64,
        adopted: &[String],
        started: f64,
        imap_commands: u64,
    ) -> Result<Vec<ProbeRecord>, RoundError> {
        self.store.finish_round(round_id)?;
        self.metrics.round_finished(now());
        let mut records = self.store.round(round_id)?;
        for id in adopted {
            if let Some(r) = self.store.get(id)? {
                records.push(r);
            }
        }
        let retention_cut = now() - cfg.probe.retention.as_secs_f64();
        if let Err(e) = self.store.prune(retention_cut) {
            tracing::warn!(error = %e, "pruning old results failed");
        }
        // `imap_commands`: sent since the process started, over every kept connection.
        tracing::info!(
            round_id,
            seconds = now() - started,
            probes = records.len(),
            imap_commands,
            "round finished"
        );
        Ok(records)
    }
}

/// The longest a round of `config` may run: the watchers' first look, the slowest send, the
/// probe timeout after it, the time a confirmation sent then needs to be overdue itself, and a
/// margin for the IMAP commands around them.
pub fn deadline(config: &Config) -> Duration {
    let slowest_send = config
        .routes
        .iter()
        .map(|r| r.timeout)
        .max()
        .unwrap_or_default();
    BASELINE_WAIT
        + slowest_send
        + config.probe.timeout
        + config
            .probe
            .confirm_after
            .map_or(Duration::ZERO, |c| c + slowest_send)
        + 2 * crate::imap::COMMAND_TIMEOUT
        + Duration::from_secs(30)
}
