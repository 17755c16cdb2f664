//! The long-lived probe: the config in force and what it built ([`Setup`]: senders, kept IMAP
//! connections), the state and the metrics, the [`Launcher`] that puts probes on their way and
//! the [`Dispatcher`] that reads their outcomes (pair standing, confirmation probes). It reloads
//! a config, refreshes the OAuth2 tokens every round, runs rounds, and logs out on shutdown.
//!
//! Rounds do not wait for each other: a round launches every route × seed pair that has nothing
//! in flight (a pair still waiting for its previous probe skips its turn and counts it) and
//! waits for its own probes, within a deadline. Probes in flight when the process stops stay
//! `sent` and are watched again by the next start.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::clock::now;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe::dispatch::Dispatcher;
use crate::probe::launch::Launcher;
use crate::probe::round::{self, Round, RoundError};
use crate::probe::send::SendError;
use crate::probe::setup::{Carried, Setup};
use crate::probe::watch::context::{Entry, Event, SendState, Watch, Watcher};
use crate::standing::PairState;
use crate::state::probes::{ProbeRecord, ProbeState, ProbeStore};

/// The long-lived probe: config, state, metrics and the connections it reuses.
pub struct Prober {
    pub store: Arc<ProbeStore>,
    pub metrics: Arc<Metrics>,
    /// The config in force and what it built; a reload replaces it, a watcher keeps the one it
    /// started with until it ends.
    setup: Arc<RwLock<Arc<Setup>>>,
    launcher: Arc<Launcher>,
    /// The dispatcher and its events until the first round starts it (it needs the runtime).
    dispatcher: Mutex<Option<(Dispatcher, mpsc::UnboundedReceiver<Event>)>>,
    /// Set once on shutdown: rounds, watchers and sends stop at once.
    shutdown: watch::Sender<bool>,
}

impl Prober {
    pub fn new(
        config: Arc<Config>,
        store: Arc<ProbeStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Prober, SendError> {
        let setup = Arc::new(RwLock::new(Arc::new(Setup::build(config.clone(), None)?)));
        metrics.preset(&config);
        let (events, received) = mpsc::unbounded_channel();
        let shutdown = watch::Sender::new(false);
        let launcher = Arc::new(Launcher::new(
            store.clone(),
            metrics.clone(),
            events,
            shutdown.subscribe(),
        ));
        let prober = Prober {
            store,
            metrics,
            setup: setup.clone(),
            launcher: launcher.clone(),
            dispatcher: Mutex::new(None),
            shutdown,
        };
        prober.resume(&config);
        prober.restore_gauges(&config);
        prober.publish_pair_states(&config);
        let dispatcher = Dispatcher::new(launcher, setup);
        *prober.dispatcher.lock().unwrap_or_else(|e| e.into_inner()) = Some((dispatcher, received));
        Ok(prober)
    }

    /// Puts the probes an earlier process left in flight back on the board: a `sent` (or
    /// `deferred`) probe keeps the deadline its acceptance gave it; a `sending` one (the process
    /// stopped mid-send: it may or may not have left) and an expired one are only looked for in
    /// their late window, holding no pair back.
    fn resume(&self, config: &Config) {
        let p = &config.probe;
        let now = now();
        let records = match self
            .store
            .unresolved_since(now - (p.timeout + p.late_window).as_secs_f64())
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the probes in flight; they expire as orphans");
                return;
            }
        };
        for record in records {
            let (send, watch) = match (record.state, record.sent_at) {
                (ProbeState::Sent | ProbeState::Deferred, Some(at)) => {
                    let ago = Duration::from_secs_f64((now - at).max(0.0));
                    let instant = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
                    (SendState::Accepted { at, instant }, Watch::InFlight)
                }
                _ => (SendState::Pending, Watch::Expired),
            };
            let watched_until = record.created_at + (p.timeout + p.late_window).as_secs_f64();
            self.launcher.board.register(Entry {
                record,
                send,
                watch,
                overdue_noted: false,
                settled: true,
                watched_until,
            });
        }
    }

    /// Puts back the gauges of every pair's latest outcome (a restart must not resolve an
    /// alert that is still true, nor fire one anew).
    fn restore_gauges(&self, config: &Config) {
        let latest = match self.store.latest_per_pair() {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the latest results back");
                return;
            }
        };
        for r in latest.iter().filter(|r| config.pair(&r.route, &r.seed)) {
            let outcome = match (r.state, r.placement) {
                (ProbeState::SendFailed, _) => "not_sent",
                (ProbeState::Deferred, _) => "deferred",
                (ProbeState::Rejected, _) => "rejected",
                (ProbeState::Missing, _) => "missing",
                (_, Some(p)) => p.as_str(),
                _ => "unknown",
            };
            self.metrics
                .restore_last(&r.route, &r.seed, outcome, r.judgement.as_ref());
        }
        // And each route's sender requirements, as the latest results score them.
        let scored = crate::results::scorecard::score_routes(&latest, config);
        crate::results::scorecard::export(&scored, &self.metrics);
    }

    /// Starts reading the events, once (it needs the runtime).
    fn start_dispatcher(&self) {
        let Some((dispatcher, events)) = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                () = dispatcher.run(events) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }

    fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.setup().config.clone()
    }

    /// Puts `config` in force for the next round: senders are rebuilt, connections of mailboxes
    /// whose connection settings did not change are kept, the others are logged out (their
    /// watchers stop and start again with the new settings), and the metric series follow the
    /// new routes and seeds. Probes in flight are untouched: a removed route's are still
    /// watched in their seed's mailbox, a removed seed's expire as orphans.
    pub fn reload(&self, config: Config) -> Result<Carried, SendError> {
        let previous = self.setup();
        let next = Arc::new(Setup::build(Arc::new(config), Some(&previous))?);
        let (carried, seeds, bounces) = next.carried_from(&previous);
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.metrics.preset(&next.config);
        self.publish_pair_states(&next.config);
        let mut stop: Vec<Watcher> = previous
            .mailboxes
            .iter()
            .filter(|(name, mb)| {
                next.mailboxes
                    .get(*name)
                    .is_none_or(|kept| !Arc::ptr_eq(kept, mb))
            })
            .map(|(name, _)| Watcher::Seed(name.clone()))
            .collect();
        stop.extend(
            previous
                .bounce_boxes
                .iter()
                .filter(|(name, bb)| {
                    next.bounce_boxes
                        .get(*name)
                        .is_none_or(|kept| !Arc::ptr_eq(kept, bb))
                })
                .map(|(name, _)| Watcher::Bounces(name.clone())),
        );
        self.launcher.stop_watchers(&stop);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let launcher = self.launcher.clone();
            rt.spawn(async move {
                for mb in seeds {
                    mb.lock().await.logout().await;
                }
                for bb in bounces {
                    bb.lock().await.conn.logout().await;
                }
                // Probes in flight at the changed mailboxes are watched with the new settings.
                launcher.ensure_all_watchers(&next);
            });
        }
        Ok(carried)
    }

    /// Exports where every configured pair stands, as stored (new pairs are ok).
    fn publish_pair_states(&self, config: &Config) {
        let stored = self.store.pairs().unwrap_or_default();
        for (route, seed) in config.pairs() {
            let state = stored
                .iter()
                .find(|(r, s, _)| *r == route.name && *s == seed.name)
                .map_or(PairState::Ok, |(_, _, p)| p.state);
            self.metrics.set_pair_state(&route.name, &seed.name, state);
        }
    }

    /// IMAP commands sent since the process started, over every kept connection a watcher does
    /// not hold right now.
    pub async fn imap_commands(&self) -> u64 {
        let mut n = 0;
        for mb in self.setup().mailboxes.values() {
            if let Ok(mb) = mb.try_lock() {
                n += mb.commands();
            }
        }
        n
    }

    /// The longest a round may run: the watchers' first look, the slowest send, the probe
    /// timeout after it, a confirmation's overdue time, and a margin for the IMAP commands.
    pub fn round_deadline(&self) -> Duration {
        round::deadline(&self.config())
    }

    /// Refreshes every OAuth2 login's access token that is due (all at once, each bounded by
    /// the token request timeout), so a refresh token that stopped working is noticed every
    /// round even while a mailbox's IMAP session lives on, and records the expiries.
    async fn refresh_oauth_tokens(&self, config: &Config) {
        let logins = config.oauth_logins();
        let results =
            futures::future::join_all(logins.iter().map(|(_, _, o)| crate::oauth::access_token(o)))
                .await;
        for ((kind, name, oauth), result) in logins.iter().zip(results) {
            match result {
                Ok(_) => {
                    self.metrics.oauth_refresh_worked(kind, name);
                    self.metrics.oauth_token(kind, name, oauth.cache.expiry());
                }
                Err(e) => self.metrics.oauth_refresh_failed(kind, name, &e),
            }
        }
    }

    /// Records the OAuth2 expiries as the round leaves them (sends may have refreshed).
    fn record_oauth_expiries(&self, config: &Config) {
        for (kind, name, oauth) in config.oauth_logins() {
            self.metrics.oauth_token(kind, name, oauth.cache.expiry());
        }
    }

    /// Stops every round, watcher and send now (SIGTERM).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Runs one scheduled round and returns its probes as recorded (confirmations included):
    /// every pair with nothing in flight gets a probe, and the round waits for those (and for
    /// the confirmations they ask for), within its deadline; a pair still in flight skips its
    /// turn and the round reports its probe in flight. Other rounds may run meanwhile.
    pub async fn round(&self) -> Result<Vec<ProbeRecord>, RoundError> {
        self.run_round(true).await
    }

    /// Runs one round now (`once`): every pair gets a probe, whatever an interrupted earlier
    /// run left in flight (that one is watched too, and resolved when it arrives).
    pub async fn round_now(&self) -> Result<Vec<ProbeRecord>, RoundError> {
        self.run_round(false).await
    }

    async fn run_round(&self, skip_in_flight: bool) -> Result<Vec<ProbeRecord>, RoundError> {
        self.start_dispatcher();
        // This round's config and connections, whatever a reload does meanwhile.
        let setup = self.setup();
        let round = Round {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            launcher: self.launcher.clone(),
        };
        let round_id = self.store.start_round()?;
        let started = now();
        tracing::info!(
            round_id,
            pairs = setup.config.pairs().len(),
            "round started"
        );
        round.expire_orphans(&setup.config, started)?;
        let mut shutdown = self.shutdown.subscribe();
        // A token endpoint that hangs holds a request for up to its timeout: SIGTERM does not wait.
        tokio::select! {
            _ = self.refresh_oauth_tokens(&setup.config) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        let adopted = round.launch_all(&setup, round_id, skip_in_flight)?;
        let deadline = round::deadline(&setup.config);
        tokio::select! {
            settled = round.settled(round_id, &adopted, deadline) => {
                if !settled {
                    tracing::error!(
                        round_id,
                        deadline_seconds = deadline.as_secs(),
                        "round ended at its deadline; its unresolved probes stay watched"
                    );
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        self.record_oauth_expiries(&setup.config);
        let imap_commands = self.imap_commands().await;
        round.finish(&setup.config, round_id, &adopted, started, imap_commands)
    }

    /// Stops the watchers and logs out of every mailbox (after `once`, or at shutdown): a
    /// watcher with nothing left in flight gets a moment to finish its cleanup, then every
    /// watcher stops and each mailbox logs out, three seconds at most in all. Probes still in
    /// flight stay `sent` for the next start.
    pub async fn close(&self) {
        let until = Instant::now() + Duration::from_secs(2);
        while self.launcher.board.winding_down() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.launcher.stop_all_watchers();
        let setup = self.setup();
        let logouts = setup.mailboxes.values().map(|mb| async move {
            mb.lock().await.logout().await;
        });
        let bounce_logouts = setup.bounce_boxes.values().map(|bb| async move {
            bb.lock().await.conn.logout().await;
        });
        let all = futures::future::join(
            futures::future::join_all(logouts),
            futures::future::join_all(bounce_logouts),
        );
        let _ = tokio::time::timeout(Duration::from_secs(3), all).await;
    }
}
