//! What happens after each outcome: the prober's one reader of the watchers' and senders'
//! events. It moves the pair's standing ([`crate::probe::pairs`]), sends the confirmation probe
//! a suspect (or overdue) pair asks for within the seed's hourly budget, keeps the pair's state
//! in the state database and the metrics, sets the diagnosis series of the probe, and only then
//! settles the probe on the board — so a round waiting for its probes also waits for the
//! confirmations they asked for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::now;
use crate::config::Config;
use crate::outcome::Placement;
use crate::probe::launch::Launcher;
use crate::probe::setup::Setup;
use crate::probe::token;
use crate::probe::watch::context::Event;
use crate::standing::{Ask, Budget, Outcome, PairState, Problem, Standing};
use crate::state::probes::{ProbeKind, ProbeRecord, ProbeState};

/// What one outcome says about its pair.
pub fn outcome_of(r: &ProbeRecord) -> Outcome {
    match r.state {
        ProbeState::SendFailed => Outcome::Bad(Problem::NotSent),
        ProbeState::Rejected => Outcome::Bad(Problem::Rejected),
        ProbeState::Deferred => Outcome::Bad(Problem::Deferred),
        ProbeState::Missing => Outcome::Bad(Problem::Missing),
        ProbeState::Unknown | ProbeState::Sending | ProbeState::Sent => Outcome::Neutral,
        ProbeState::Resolved => match r.placement {
            Some(Placement::Spam) => Outcome::Bad(Problem::Spam),
            Some(Placement::Other) => Outcome::Bad(Problem::OtherFolder),
            Some(Placement::Inbox) => {
                let passes = r.judgement.as_ref().is_some_and(|j| {
                    j.verdict.spf.is_pass() && j.verdict.dkim.is_pass() && j.verdict.dmarc.is_pass()
                });
                if passes {
                    Outcome::Good
                } else {
                    Outcome::Bad(Problem::Auth)
                }
            }
            _ => Outcome::Neutral,
        },
    }
}

/// How long after a found probe its route's sender requirements are scored again. Scoring
/// reads every pair's latest result: done once per such pause for every route that had a
/// probe found meanwhile, not once per probe (a round of 2,000 probes read 2,000 × 2,000).
/// The alert on an unmet requirement waits far longer than this (`for: 30m`).
const RESCORE_AFTER: Duration = Duration::from_secs(10);

/// The prober's reader of events.
pub(crate) struct Dispatcher {
    launcher: Arc<Launcher>,
    setup: Arc<RwLock<Arc<Setup>>>,
    pairs: HashMap<(String, String), Standing>,
    budgets: HashMap<String, Budget>,
    /// Routes with a probe found since their requirements were last scored, and when they
    /// are scored next.
    rescore: HashSet<String>,
    rescore_at: Option<tokio::time::Instant>,
}

impl Dispatcher {
    /// A dispatcher with the pairs' standing as stored (so a restart neither forgets a
    /// confirmed break nor pages again for it; the prober exports them).
    pub(crate) fn new(launcher: Arc<Launcher>, setup: Arc<RwLock<Arc<Setup>>>) -> Dispatcher {
        let pairs = match launcher.store.pairs() {
            Ok(rows) => rows
                .into_iter()
                .map(|(route, seed, pair)| ((route, seed), pair))
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pairs' standing; starting from ok");
                HashMap::new()
            }
        };
        Dispatcher {
            launcher,
            setup,
            pairs,
            budgets: HashMap::new(),
            rescore: HashSet::new(),
            rescore_at: None,
        }
    }

    fn current(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn config(&self) -> Arc<Config> {
        self.current().config.clone()
    }

    /// Scores the routes that had a probe found since the last time against the providers'
    /// sender requirements, from the latest results, and exports them
    /// (`mailcanary_requirement_met`).
    pub(crate) fn export_requirements(&mut self) {
        self.rescore_at = None;
        if self.rescore.is_empty() {
            return;
        }
        let routes = std::mem::take(&mut self.rescore);
        let config = self.config();
        match self.launcher.store.latest_per_pair() {
            Ok(latest) => {
                let scored = crate::results::scorecard::score_routes(&latest, &config);
                let these: Vec<_> = scored
                    .into_iter()
                    .filter(|s| routes.contains(&s.route))
                    .collect();
                crate::results::scorecard::export(&these, &self.launcher.metrics);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the latest results to score requirements")
            }
        }
    }

    /// Reads events until every sender of them is gone (shutdown), scoring the requirements
    /// [`RESCORE_AFTER`] after a found probe asked for it.
    pub(crate) async fn run(mut self, mut events: tokio::sync::mpsc::UnboundedReceiver<Event>) {
        loop {
            let rescore_at = self.rescore_at;
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                () = async {
                    match rescore_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => self.export_requirements(),
            }
        }
        self.export_requirements();
    }

    pub(crate) fn handle(&mut self, event: Event) {
        match event {
            Event::Outcome { record, last } => self.on_outcome(&record, last),
            Event::Overdue { probe_id } => self.on_overdue(&probe_id),
        }
    }

    fn on_outcome(&mut self, r: &ProbeRecord, last: bool) {
        let setup = self.current();
        let config = &setup.config;
        let metrics = &self.launcher.metrics;
        // The result's diagnosis and tab series, at every outcome of the pair's latest result
        // (diagnosed where every result is: results::build); a late outcome of an older probe
        // is history and leaves them to the newer one.
        let latest = !r.late
            || self
                .launcher
                .store
                .is_latest_of_pair(r)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot read the pair's latest result");
                    false
                });
        if latest {
            let causes = crate::diagnosis::all_causes();
            for result in crate::results::build(std::slice::from_ref(r), config).results {
                let current: Vec<&str> =
                    result.diagnosis.iter().map(|d| d.cause.as_str()).collect();
                metrics.set_diagnosis(&r.route, &r.seed, &causes, &current);
                metrics.set_last_tab(&r.route, &r.seed, result.tab);
                // A probe found brings its path; a missing or refused one leaves the TLS of
                // the last hop the receiver recorded as it was.
                if let Some(path) = &result.path {
                    metrics.set_last_hop_tls(&r.route, &r.seed, path.last_hop_tls());
                }
            }
        }
        if r.judgement.is_some()
            && self.rescore.insert(r.route.clone())
            && self.rescore_at.is_none()
        {
            self.rescore_at = Some(tokio::time::Instant::now() + RESCORE_AFTER);
        }

        let key = (r.route.clone(), r.seed.clone());
        let now = now();
        let outcome = outcome_of(r);
        let before = self.pairs.get(&key).map(|p| p.state);
        let pair = self.pairs.entry(key.clone()).or_default();
        // A probe that timed out and has an outcome after all is one probe, not two.
        let ask = if r.late {
            pair.on_late_outcome(&r.probe_id, r.created_at, outcome, now)
        } else {
            pair.on_outcome(&r.probe_id, r.created_at, outcome, now)
        };
        self.answer(&setup, &key, ask, r.round_id);
        self.after(&key, before, Some(r));
        if last {
            self.launcher.board.settle(&r.probe_id);
        }
    }

    fn on_overdue(&mut self, probe_id: &str) {
        let Some(entry) = self.launcher.board.entry(probe_id) else {
            return;
        };
        let setup = self.current();
        let r = &entry.record;
        let key = (r.route.clone(), r.seed.clone());
        let before = self.pairs.get(&key).map(|p| p.state);
        let ask =
            self.pairs
                .entry(key.clone())
                .or_default()
                .on_overdue(probe_id, r.created_at, now());
        tracing::info!(
            route = %r.route,
            seed = %r.seed,
            probe_id = %token::public_id(&setup.config.probe.token_key, probe_id),
            "probe overdue (not found {} after it was accepted)",
            humantime::format_duration(setup.config.probe.confirm_after.unwrap_or_default())
        );
        self.answer(&setup, &key, ask, r.round_id);
        self.after(&key, before, None);
    }

    /// Does what the pair asked for.
    fn answer(&mut self, setup: &Arc<Setup>, key: &(String, String), ask: Ask, round_id: i64) {
        let (route_name, seed_name) = key;
        let metrics = &self.launcher.metrics;
        match ask {
            Ask::Nothing => {}
            Ask::AlreadyConfirming => metrics.confirmation_skipped(seed_name, "in_flight"),
            Ask::Confirm => {
                let config = &setup.config;
                let (Some(route), Some(seed)) = (config.route(route_name), config.seed(seed_name))
                else {
                    return;
                };
                if !config.pair(route_name, seed_name) {
                    return;
                }
                let now = now();
                let store = &self.launcher.store;
                let budget = self.budgets.entry(seed_name.clone()).or_insert_with(|| {
                    let already = store
                        .confirmations_since(seed_name, now - 3600.0)
                        .unwrap_or_default();
                    Budget::new(seed.confirmations_per_hour, already)
                });
                budget.set_per_hour(seed.confirmations_per_hour);
                if !budget.take(now) {
                    tracing::warn!(
                        route = %route_name,
                        seed = %seed_name,
                        per_hour = seed.confirmations_per_hour,
                        "no confirmation probe: the seed's hourly budget is spent; the next scheduled probe confirms"
                    );
                    metrics.confirmation_skipped(seed_name, "budget");
                    return;
                }
                match self
                    .launcher
                    .launch(setup, route, seed, round_id, ProbeKind::Confirmation)
                {
                    Ok((id, created_at)) => {
                        metrics.confirmation_sent(route_name, seed_name);
                        tracing::info!(route = %route_name, seed = %seed_name, probe_id = %token::public_id(&config.probe.token_key, &id), "confirmation probe sent");
                        if let Some(pair) = self.pairs.get_mut(key) {
                            pair.confirmation_sent(&id, created_at);
                        }
                    }
                    Err(e) => {
                        tracing::error!(route = %route_name, seed = %seed_name, error = %e, "cannot send a confirmation probe")
                    }
                }
            }
        }
    }

    /// Keeps the pair's standing (state database, metrics, log); a confirmed pair's
    /// confirmation still in flight is settled (its round need not wait for it).
    fn after(
        &mut self,
        key: &(String, String),
        before: Option<PairState>,
        r: Option<&ProbeRecord>,
    ) {
        let Some(pair) = self.pairs.get(key) else {
            return;
        };
        let (route, seed) = key;
        if pair.state == PairState::Confirmed
            && let Some(c) = &pair.confirmation
        {
            self.launcher.board.settle(&c.probe_id);
        }
        if let Err(e) = self.launcher.store.save_pair(route, seed, pair) {
            tracing::error!(route = %route, seed = %seed, error = %e, "cannot store the pair's standing");
        }
        if before != Some(pair.state) {
            let key = &self.config().probe.token_key;
            tracing::info!(
                route = %route,
                seed = %seed,
                state = %pair.state,
                problem = pair.problem.map_or("none", Problem::as_str),
                probe_id = r.map_or(String::new(), |r| token::public_id(key, &r.probe_id)),
                "pair state changed"
            );
        }
        if self.config().pair(route, seed) {
            self.launcher
                .metrics
                .set_pair_state(route, seed, pair.state);
        }
    }
}

#[cfg(test)]
mod tests;
