//! One probe round: for every route × seed, compose a tokened message and record it, start the
//! watchers ([`crate::probe::watch`]), send each probe once its seed's watcher has had its
//! first look, wait for the watchers, and record the end of the round. Probes older than any
//! round watches are expired as orphans here; the [`Prober`](crate::probe::prober::Prober)
//! runs one round at a time, within [`deadline`].
//!
//! Every wait is bounded: a send by its route's timeout, a probe by `probe.timeout` counted
//! from the moment the SMTP server accepted it (a probe whose send has not resolved is never
//! `missing`), and the whole round by its deadline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::clock::now;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outcome::Placement;
use crate::probe::compose::{self, ProbeMessage};
use crate::probe::send::Sender;
use crate::probe::setup::Setup;
use crate::probe::token::{self, Token};
use crate::probe::watch::context::{BASELINE_WAIT, Board, Ready, WatchCtx};
use crate::probe::watch::{bounces, seed};
use crate::state::StateError;
use crate::state::probes::{ProbeRecord, ProbeState, ProbeStore};

/// What a round works with besides its setup: the state and the metrics.
pub(crate) struct Round {
    pub(crate) store: Arc<ProbeStore>,
    pub(crate) metrics: Arc<Metrics>,
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

/// Aborts the tasks it holds when dropped, so a cancelled round leaves nothing running.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The watchers ready so far: a probe may be sent once its seed's and its route's bounce
/// mailbox's are.
#[derive(Default)]
struct ReadySet {
    seeds: HashSet<String>,
    bounces: HashSet<String>,
}

impl ReadySet {
    fn note(&mut self, r: Ready) {
        match r {
            Ready::Seed(n) => self.seeds.insert(n),
            Ready::Bounces(n) => self.bounces.insert(n),
        };
    }

    fn allows<T>(&self, o: &Outgoing, config: &Config, boxes: &HashMap<String, T>) -> bool {
        let bounces_ready = match config.route(&o.route).and_then(|r| r.bounces.as_deref()) {
            Some(b) => self.bounces.contains(b) || !boxes.contains_key(b),
            None => true,
        };
        self.seeds.contains(&o.seed) && bounces_ready
    }
}

/// A probe composed and recorded, ready to send.
pub(crate) struct Outgoing {
    route: String,
    seed: String,
    message: ProbeMessage,
}

impl Round {
    /// Probes that no round watches any more are expired: missing (or unknown).
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
        Ok(())
    }

    /// Composes and records every probe before anything leaves.
    pub(crate) fn compose_all(
        &self,
        cfg: &Config,
        round_id: i64,
        started: f64,
    ) -> Result<Vec<Outgoing>, StateError> {
        let mut outgoing = Vec::new();
        for (route, seed) in cfg.pairs() {
            let probe_id = token::new_probe_id();
            let t = Token::new(
                &probe_id,
                &cfg.probe.instance,
                &route.name,
                &seed.name,
                started as i64,
            );
            match compose::compose(route, seed, &t, &cfg.probe.token_key) {
                Ok(m) => {
                    self.store.insert_sending(
                        round_id,
                        &probe_id,
                        &route.name,
                        &seed.name,
                        &m.message_id,
                        started,
                    )?;
                    outgoing.push(Outgoing {
                        route: route.name.clone(),
                        seed: seed.name.clone(),
                        message: m,
                    });
                }
                Err(e) => {
                    self.metrics
                        .compose_failed(&route.name, &seed.name, e.reason(), &e);
                    self.store.insert_sending(
                        round_id,
                        &probe_id,
                        &route.name,
                        &seed.name,
                        "",
                        started,
                    )?;
                    self.store
                        .mark_send_failed(&probe_id, &e.to_string(), e.reason(), None)?;
                }
            }
        }
        Ok(outgoing)
    }

    /// Starts a watcher per seed, waits for their first look, sends, and waits for the
    /// watchers. Dropping this future (deadline, shutdown) aborts every task it started.
    pub(crate) async fn send_and_watch(
        &self,
        setup: &Setup,
        outgoing: Vec<Outgoing>,
        started: f64,
    ) -> Result<(), StateError> {
        let config = &setup.config;
        let board = Board::default();
        let late_since = started - config.probe.late_window.as_secs_f64();
        let unresolved = self.store.unresolved_since(late_since)?;
        let (ready_tx, mut ready_rx) =
            tokio::sync::mpsc::channel::<Ready>(config.seeds.len().max(1));
        let mut watchers = Tasks(Vec::new());
        for seed in &config.seeds {
            let Some(mb) = setup.mailboxes.get(&seed.name).cloned() else {
                continue;
            };
            let this_round: Vec<String> = outgoing
                .iter()
                .filter(|o| o.seed == seed.name)
                .map(|o| o.message.probe_id.clone())
                .collect();
            let watched: HashMap<String, ProbeRecord> = unresolved
                .iter()
                .filter(|r| r.seed == seed.name)
                .map(|r| (r.probe_id.clone(), r.clone()))
                .collect();
            let ctx = WatchCtx {
                store: self.store.clone(),
                metrics: self.metrics.clone(),
                config: config.clone(),
                board: board.clone(),
                round_started: started,
            };
            let ready = ready_tx.clone();
            let seed = seed.clone();
            watchers.0.push(tokio::spawn(async move {
                let mut mb = mb.lock().await;
                seed::watch(&ctx, &mut mb, seed, this_round, watched, ready).await;
            }));
        }
        let (stop_bounces, bounce_watchers) =
            self.watch_bounces(setup, &outgoing, &board, started, &ready_tx);
        drop(ready_tx);
        // Detection starts before the first message can arrive: a probe is sent as soon as its
        // seed's watcher (and its route's bounce mailbox's) has had its first look — not when
        // every mailbox has; after BASELINE_WAIT the rest go anyway.
        let baseline_deadline = Instant::now() + BASELINE_WAIT;
        let permits = Arc::new(Semaphore::new(config.probe.concurrency));
        let mut sends = Tasks(Vec::new());
        let mut ready = ReadySet::default();
        let mut waiting = outgoing;
        for _ in 0..watchers.0.len() + bounce_watchers.0.len() {
            match tokio::time::timeout_at(baseline_deadline.into(), ready_rx.recv()).await {
                Ok(Some(r)) => {
                    ready.note(r);
                    let (go, rest): (Vec<Outgoing>, Vec<Outgoing>) = waiting
                        .into_iter()
                        .partition(|o| ready.allows(o, config, &setup.bounce_boxes));
                    self.start_sends(setup, go, &permits, &board, &mut sends);
                    waiting = rest;
                }
                _ => break,
            }
        }
        self.start_sends(setup, waiting, &permits, &board, &mut sends);
        for s in std::mem::take(&mut sends.0) {
            if let Err(e) = s.await {
                tracing::error!(error = %e, "send task ended abnormally");
            }
        }
        for w in std::mem::take(&mut watchers.0) {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "watcher task ended abnormally");
            }
        }
        // The seeds are done: the bounce watchers take one last look and stop.
        stop_bounces.send_replace(true);
        let mut bounce_watchers = bounce_watchers;
        for w in std::mem::take(&mut bounce_watchers.0) {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "bounce watcher task ended abnormally");
            }
        }
        Ok(())
    }

    /// Starts a watcher per bounce mailbox that a route of this round names.
    fn watch_bounces(
        &self,
        setup: &Setup,
        outgoing: &[Outgoing],
        board: &Board,
        started: f64,
        ready: &tokio::sync::mpsc::Sender<Ready>,
    ) -> (watch::Sender<bool>, Tasks) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut names: Vec<&str> = outgoing
            .iter()
            .filter_map(|o| {
                setup
                    .config
                    .route(&o.route)
                    .and_then(|r| r.bounces.as_deref())
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut tasks = Tasks(Vec::new());
        for name in names {
            let Some(bb) = setup.bounce_boxes.get(name).cloned() else {
                continue;
            };
            let ctx = WatchCtx {
                store: self.store.clone(),
                metrics: self.metrics.clone(),
                config: setup.config.clone(),
                board: board.clone(),
                round_started: started,
            };
            let (ready, stop) = (ready.clone(), stop_rx.clone());
            tasks.0.push(tokio::spawn(async move {
                bounces::watch(&ctx, &mut *bb.lock().await, ready, stop).await;
            }));
        }
        (stop_tx, tasks)
    }

    /// Starts sending `outgoing`, at most `probe.concurrency` at once across the round; never
    /// retried (a retry would be a second probe).
    fn start_sends(
        &self,
        setup: &Setup,
        outgoing: Vec<Outgoing>,
        permits: &Arc<Semaphore>,
        board: &Board,
        sends: &mut Tasks,
    ) {
        for o in outgoing {
            let Some(sender) = setup.senders.get(&o.route).cloned() else {
                continue;
            };
            let permits = permits.clone();
            let store = self.store.clone();
            let metrics = self.metrics.clone();
            let board = board.clone();
            sends.0.push(tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                // Boxed once its turn comes: thousands of sends wait for a permit at a large
                // round, and each would otherwise hold a whole SMTP transaction's state (~6 KB).
                Box::pin(send_one(&sender, &o, &store, &metrics, &board)).await;
            }));
        }
    }

    /// Records the end of the round: metrics, diagnosis series, pruning.
    pub(crate) fn finish(
        &self,
        cfg: &Config,
        round_id: i64,
        started: f64,
        imap_commands: u64,
    ) -> Result<Vec<ProbeRecord>, RoundError> {
        self.store.finish_round(round_id)?;
        self.metrics.round_finished(now());
        let records = self.store.round(round_id)?;
        let causes = crate::diagnosis::all_causes();
        for r in crate::results::build(&records, Some(cfg)).results {
            let current: Vec<&str> = r.diagnosis.iter().map(|d| d.cause.as_str()).collect();
            self.metrics
                .set_diagnosis(&r.route, &r.seed, &causes, &current);
            self.metrics.set_last_tab(&r.route, &r.seed, r.tab);
        }
        let retention_cut = now() - cfg.probe.retention.as_secs_f64();
        if let Err(e) = self.store.prune(retention_cut) {
            tracing::warn!(error = %e, "pruning old results failed");
        }
        // `imap_commands`: sent since the process started, over every kept connection.
        tracing::info!(
            round_id,
            seconds = now() - started,
            imap_commands,
            "round finished"
        );
        Ok(records)
    }
}

/// The longest a round of `config` may run: the watchers' first look, the slowest send, the
/// probe timeout after it, and a margin for the IMAP commands around them.
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
        + 2 * crate::imap::COMMAND_TIMEOUT
        + Duration::from_secs(30)
}

async fn send_one(
    sender: &Sender,
    o: &Outgoing,
    store: &ProbeStore,
    metrics: &Metrics,
    board: &Board,
) {
    let result = sender.send(&o.message).await;
    let id = &o.message.probe_id;
    match result {
        Ok(outcome) => {
            let at = now();
            board
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .accepted
                .insert(id.clone(), (at, Instant::now()));
            board.notify_resolved();
            metrics.probe_sent(&o.route, &o.seed, &outcome);
            if let Err(e) = store.mark_sent(id, &outcome, at) {
                tracing::error!(error = %e, "cannot record a sent probe");
            }
        }
        Err(e) => {
            board
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .failed
                .insert(id.clone());
            board.notify_resolved();
            metrics.send_failed(&o.route, &o.seed, e.reason(), &e);
            if let Err(se) = store.mark_send_failed(id, &e.to_string(), e.reason(), e.code()) {
                tracing::error!(error = %se, "cannot record a failed send");
            }
        }
    }
}
