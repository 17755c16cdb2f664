//! One probe round: for every route × seed, compose a tokened message, record it, send it,
//! watch the seed mailbox (inbox and spam folder) until it shows up or times out, judge it,
//! record the result, clean up. Probes left unresolved by earlier rounds (or a crash) are
//! watched too, until their late window ends; older ones are expired as orphans.
//!
//! Every wait is bounded: a send by its route's timeout, a probe by `probe.timeout` counted
//! from the moment the SMTP server accepted it (a probe whose send has not resolved is never
//! `missing`), and the whole round by a deadline past which it is cancelled and says so.
//! Shutdown cancels a round at once; unresolved probes stay `sent` and are resumed on the next
//! start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, Seed};
use crate::metrics::Metrics;
use crate::probe::bounces;
use crate::probe::compose::{self, ProbeMessage};
use crate::probe::imap::{Candidate, FolderConn, ImapError};
use crate::probe::outcome::{self, FolderRole, Placement};
use crate::probe::send::{SendError, Sender};
use crate::probe::setup::{Carried, Setup};
use crate::probe::store::{self, ProbeRecord, ProbeState, StateError, Store};
use crate::probe::token::{self, HeaderCheck, Token};

/// The longest wait between checks after the fast window (in IDLE where the server offers it).
const SLOW_CHECK: Duration = Duration::from_secs(30);
/// Check at the seed's poll interval while one of its probes was accepted this recently, or
/// while the round's probes are still arriving anywhere (one was found this recently): a mail
/// system that delivers slowly keeps every watcher fast as long as it keeps delivering.
const FAST_WINDOW: Duration = Duration::from_secs(20);
/// How long a watcher waits for a send to resolve before looking at the board again anyway
/// (senders wake it at once; this only bounds a missed wake-up).
const ACCEPT_WAIT: Duration = Duration::from_millis(200);
/// Switch from polling to IDLE once the pause would be this long.
const IDLE_FROM: Duration = Duration::from_secs(5);
/// How long sending waits for the watchers' first look at their mailboxes (at most the probe
/// timeout).
pub(super) const BASELINE_WAIT: Duration = Duration::from_secs(45);
/// How long past a probe's deadline a mailbox check may still run before it is abandoned and
/// the probe counts as `unknown`: a server that does not answer cannot hold a result back.
const CHECK_GRACE: Duration = Duration::from_secs(5);

/// A seed mailbox: the inbox and the spam folder, on one connection where the server tells
/// about the unselected folder (NOTIFY, RFC 5465), else on one connection each. Kept across
/// rounds.
pub struct SeedMailbox {
    pub seed: Seed,
    pub inbox: FolderConn,
    pub spam: Option<FolderConn>,
    /// The spam folder borrows the inbox's connection when NOTIFY says it changed, instead of
    /// keeping (and polling) a connection of its own.
    spam_on_inbox_connection: bool,
    /// The last error reading this mailbox, cleared by a fully successful check.
    pub last_error: Option<ImapError>,
    /// Set while a watcher uses the connections; still set at the next round means the last
    /// watcher was cancelled mid-command, so the connections are in an unknown state.
    in_use: bool,
}

impl SeedMailbox {
    pub fn new(seed: &Seed) -> Self {
        SeedMailbox {
            seed: seed.clone(),
            inbox: FolderConn::new(seed, &seed.inbox_folder),
            spam: None,
            spam_on_inbox_connection: false,
            last_error: None,
            in_use: false,
        }
    }

    pub fn commands(&self) -> u64 {
        self.inbox.commands + self.spam.as_ref().map(|s| s.commands).unwrap_or(0)
    }

    /// The longer back-off either folder's server asked for by throttling.
    fn backoff_left(&self) -> Option<Duration> {
        let spam = self.spam.as_ref().and_then(FolderConn::backoff_left);
        self.inbox.backoff_left().max(spam)
    }

    fn begin(&mut self) {
        if self.in_use {
            self.inbox.reset();
            if let Some(s) = self.spam.as_mut() {
                s.reset();
            }
        }
        self.in_use = true;
    }
}

/// The long-lived probe: config, state, metrics and the connections it reuses.
pub struct Prober {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The config in force and what it built; a reload replaces it, a round keeps the one it
    /// started with.
    setup: RwLock<Arc<Setup>>,
    /// One round at a time.
    round_lock: AsyncMutex<()>,
    /// Set once on shutdown: rounds and watchers stop at once.
    shutdown: watch::Sender<bool>,
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

/// How a probe's send stands, as the watchers see it.
enum SendState {
    /// Not resolved yet: the probe has no deadline yet and can never be `missing`.
    Pending,
    /// Accepted by the SMTP server at this Unix time / instant.
    Accepted { at: f64, instant: Instant },
    /// Refused or failed: not watched.
    Failed,
}

/// What the senders learn and the watchers need.
#[derive(Default)]
pub(super) struct SendBoard {
    accepted: HashMap<String, (f64, Instant)>,
    /// When a probe of this round was last found, in any mailbox.
    last_found: Option<Instant>,
    /// Not sent, or refused by the receiver (a bounce came back): not watched any more.
    pub(super) failed: HashSet<String>,
}

/// The send board, shared by senders and watchers, with a signal for every send that resolves
/// (accepted or failed) so that watchers waiting for one need not poll.
#[derive(Clone, Default)]
pub(super) struct Board(Arc<BoardShared>);

#[derive(Default)]
pub(super) struct BoardShared {
    state: Mutex<SendBoard>,
    resolved: tokio::sync::Notify,
}

impl Board {
    pub(super) fn lock(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, SendBoard>> {
        self.0.state.lock()
    }

    /// Wakes every watcher waiting in [`Board::resolved`].
    fn notify_resolved(&self) {
        self.0.resolved.notify_waiters();
    }

    /// A wait for the next resolved send; enable it before looking at the board, so that a
    /// send resolving in between is not missed.
    fn resolved(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.resolved.notified()
    }
}

/// When a probe of this round was last found.
fn last_found(board: &Board) -> Option<Instant> {
    board.lock().unwrap_or_else(|e| e.into_inner()).last_found
}

fn send_state(board: &Board, id: &str) -> SendState {
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

/// Aborts the tasks it holds when dropped, so a cancelled round leaves nothing running.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A watcher that has had its first look at its mailbox.
pub(super) enum Ready {
    Seed(String),
    Bounces(String),
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
struct Outgoing {
    route: String,
    seed: String,
    message: ProbeMessage,
}

impl Prober {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Prober, SendError> {
        let setup = Setup::build(config, None)?;
        metrics.preset(&setup.config);
        Ok(Prober {
            store,
            metrics,
            setup: RwLock::new(Arc::new(setup)),
            round_lock: AsyncMutex::new(()),
            shutdown: watch::Sender::new(false),
        })
    }

    fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.setup().config.clone()
    }

    /// Puts `config` in force for the next round (a running round finishes with the config it
    /// started with): senders are rebuilt, connections of mailboxes whose connection settings
    /// did not change are kept, the others are logged out once no round holds them, and the
    /// metric series follow the new routes and seeds. Probes in flight are untouched: a removed
    /// route's are still watched in their seed's mailbox, a removed seed's expire as orphans.
    pub fn reload(&self, config: Config) -> Result<Carried, SendError> {
        let previous = self.setup();
        let next = Arc::new(Setup::build(Arc::new(config), Some(&previous))?);
        let (carried, seeds, bounces) = next.carried_from(&previous);
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.metrics.preset(&next.config);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for mb in seeds {
                    let mut mb = mb.lock().await;
                    mb.inbox.logout().await;
                    if let Some(s) = mb.spam.as_mut() {
                        s.logout().await;
                    }
                }
                for bb in bounces {
                    bb.lock().await.conn.logout().await;
                }
            });
        }
        Ok(carried)
    }

    /// IMAP commands sent since the process started, over every kept connection.
    pub async fn imap_commands(&self) -> u64 {
        let mut n = 0;
        for mb in self.setup().mailboxes.values() {
            n += mb.lock().await.commands();
        }
        n
    }

    /// The longest a round may run: the watchers' first look, the slowest send, the probe
    /// timeout after it, and a margin for the IMAP commands around them.
    pub fn round_deadline(&self) -> Duration {
        round_deadline(&self.config())
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
                Ok(_) => self.metrics.oauth_token(kind, name, oauth.cache.expiry()),
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

    /// Stops every round and watcher now (SIGTERM).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Runs one round and returns its probes as recorded. A round still running when the
    /// next one is due makes that one skip (queued rounds would pile up behind a slow server).
    pub async fn round(&self) -> Result<Vec<ProbeRecord>, RoundError> {
        let Ok(_one_at_a_time) = self.round_lock.try_lock() else {
            tracing::warn!("previous round still running; skipping this one");
            return Ok(Vec::new());
        };
        // This round's config and connections, whatever a reload does meanwhile.
        let setup = self.setup();
        let round_id = self.store.start_round()?;
        let started = store::now();
        tracing::info!(
            round_id,
            pairs = setup.config.pairs().len(),
            "round started"
        );
        self.expire_orphans(&setup.config, started)?;
        let mut shutdown = self.shutdown.subscribe();
        // A token endpoint that hangs holds a request for up to its timeout: SIGTERM does not wait.
        tokio::select! {
            _ = self.refresh_oauth_tokens(&setup.config) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        let outgoing = self.compose_all(&setup.config, round_id, started)?;
        let deadline = round_deadline(&setup.config);
        tokio::select! {
            done = tokio::time::timeout(deadline, self.send_and_watch(&setup, outgoing, started)) => {
                if done.is_err() {
                    tracing::error!(
                        round_id,
                        deadline_seconds = deadline.as_secs(),
                        "round cancelled at its deadline; unresolved probes stay in flight for the next round"
                    );
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        let imap_commands = self.imap_commands().await;
        self.finish(&setup.config, round_id, started, imap_commands)
    }

    /// Probes that no round watches any more are expired: missing (or unknown).
    fn expire_orphans(&self, config: &Config, now: f64) -> Result<(), StateError> {
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
    fn compose_all(
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
    async fn send_and_watch(
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
                mb.begin();
                // A reload may have kept the connections and changed other settings.
                mb.seed = seed;
                if let Err(e) = watch_seed(&ctx, &mut mb, this_round, watched, ready).await {
                    tracing::error!(seed = %mb.seed.name, error = %e, "watcher failed");
                }
                mb.in_use = false;
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
                let mut bb = bb.lock().await;
                if bb.in_use {
                    bb.conn.reset();
                }
                bb.in_use = true;
                bounces::watch(&ctx, &mut bb, ready, stop).await;
                bb.in_use = false;
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
    fn finish(
        &self,
        cfg: &Config,
        round_id: i64,
        started: f64,
        imap_commands: u64,
    ) -> Result<Vec<ProbeRecord>, RoundError> {
        self.store.finish_round(round_id)?;
        self.record_oauth_expiries(cfg);
        self.metrics.round_finished(store::now());
        let records = self.store.round(round_id)?;
        let causes = crate::diagnosis::all_causes();
        for r in &records {
            let current: Vec<&str> = crate::probe::causes::for_record(r, Some(cfg))
                .into_iter()
                .map(|d| d.cause.as_str())
                .collect();
            self.metrics
                .set_diagnosis(&r.route, &r.seed, &causes, &current);
            let tab = r.judgement.as_ref().and_then(|j| j.tab);
            self.metrics.set_last_tab(&r.route, &r.seed, tab);
        }
        let retention_cut = store::now() - cfg.probe.retention.as_secs_f64();
        if let Err(e) = self.store.prune(retention_cut) {
            tracing::warn!(error = %e, "pruning old results failed");
        }
        // `imap_commands`: sent since the process started, over every kept connection.
        tracing::info!(
            round_id,
            seconds = store::now() - started,
            imap_commands,
            "round finished"
        );
        Ok(records)
    }

    /// Logs out of every mailbox (shutdown): at most three seconds, and a mailbox a watcher
    /// still holds is skipped rather than waited for.
    pub async fn close(&self) {
        let setup = self.setup();
        let logouts = setup.mailboxes.values().map(|mb| async move {
            let Ok(mut mb) = mb.try_lock() else {
                return;
            };
            mb.inbox.logout().await;
            if let Some(s) = mb.spam.as_mut() {
                s.logout().await;
            }
        });
        let bounce_logouts = setup.bounce_boxes.values().map(|bb| async move {
            if let Ok(mut bb) = bb.try_lock() {
                bb.conn.logout().await;
            }
        });
        let all = futures::future::join(
            futures::future::join_all(logouts),
            futures::future::join_all(bounce_logouts),
        );
        let _ = tokio::time::timeout(Duration::from_secs(3), all).await;
    }
}

/// The longest a round of `config` may run: the watchers' first look, the slowest send, the
/// probe timeout after it, and a margin for the IMAP commands around them.
fn round_deadline(config: &Config) -> Duration {
    let slowest_send = config
        .routes
        .iter()
        .map(|r| r.timeout)
        .max()
        .unwrap_or_default();
    BASELINE_WAIT
        + slowest_send
        + config.probe.timeout
        + 2 * crate::probe::imap::COMMAND_TIMEOUT
        + Duration::from_secs(30)
}

async fn send_one(sender: &Sender, o: &Outgoing, store: &Store, metrics: &Metrics, board: &Board) {
    let result = sender.send(&o.message).await;
    let id = &o.message.probe_id;
    match result {
        Ok(outcome) => {
            let at = store::now();
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

pub(super) struct WatchCtx {
    pub(super) store: Arc<Store>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) config: Arc<Config>,
    pub(super) board: Board,
    pub(super) round_started: f64,
}

/// This round's probes still to be found, each with its deadline once its send resolved.
struct Pending {
    ids: Vec<String>,
}

impl Pending {
    /// Drops found and failed probes, returns those past their deadline, the nearest
    /// deadline still ahead and the latest acceptance of those still pending.
    fn sweep(
        &mut self,
        ctx: &WatchCtx,
        watched: &HashMap<String, ProbeRecord>,
        now: Instant,
    ) -> (Vec<String>, Option<Instant>, Option<Instant>) {
        let timeout = ctx.config.probe.timeout;
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        let mut latest: Option<Instant> = None;
        self.ids.retain(|id| {
            if !watched.contains_key(id) {
                return false;
            }
            match send_state(&ctx.board, id) {
                SendState::Failed => false,
                SendState::Pending => true,
                SendState::Accepted { instant, .. } => {
                    let due = instant + timeout;
                    if now >= due {
                        expired.push(id.clone());
                        false
                    } else {
                        next = Some(next.map_or(due, |n| n.min(due)));
                        latest = Some(latest.map_or(instant, |l| l.max(instant)));
                        true
                    }
                }
            }
        });
        (expired, next, latest)
    }
}

/// Watches one seed mailbox until this round's probes are found or time out.
async fn watch_seed(
    ctx: &WatchCtx,
    mb: &mut SeedMailbox,
    this_round: Vec<String>,
    mut watched: HashMap<String, ProbeRecord>,
    ready: tokio::sync::mpsc::Sender<Ready>,
) -> Result<(), StateError> {
    let since = chrono::DateTime::<chrono::Utc>::from_timestamp(
        ctx.round_started as i64 - 86_400 - ctx.config.probe.late_window.as_secs() as i64,
        0,
    )
    .unwrap_or_else(chrono::Utc::now);
    // Baseline: connect, find the spam folder, see what is already there (late arrivals).
    let baseline_until = Instant::now() + BASELINE_WAIT.min(ctx.config.probe.timeout);
    let baseline = check_mailbox(ctx, mb, &mut watched, since, false);
    match tokio::time::timeout_at(baseline_until.into(), baseline).await {
        Ok(result) => result?,
        Err(_) => abandon(ctx, mb),
    }
    let _ = ready.send(Ready::Seed(mb.seed.name.clone())).await;
    drop(ready);

    let mut pending = Pending { ids: this_round };
    let mut pause = mb.seed.poll_interval;
    loop {
        let board = ctx.board.clone();
        let resolved = board.resolved();
        tokio::pin!(resolved);
        resolved.as_mut().enable();
        let now = Instant::now();
        let (expired, next_deadline, latest_accepted) = pending.sweep(ctx, &watched, now);
        for id in expired {
            expire(ctx, mb, &watched, &id)?;
        }
        if pending.ids.is_empty() {
            break;
        }
        if next_deadline.is_none() {
            // None of this round's probes was accepted by its SMTP server yet, so none can have
            // arrived: wait for that instead of asking the IMAP server (a failed send is
            // dropped by the sweep). The fast window starts with the first acceptance.
            let _ = tokio::time::timeout(ACCEPT_WAIT, resolved).await;
            continue;
        }
        let fresh = |t: Option<Instant>| t.is_some_and(|t| now < t + FAST_WINDOW);
        if fresh(latest_accepted) || fresh(last_found(&ctx.board)) {
            pause = mb.seed.poll_interval;
        } else if mb.inbox.offers_idle() {
            // Past the fast window: let the server tell (IDLE), not polled with growing pauses.
            pause = SLOW_CHECK;
        } else {
            pause = (pause.mul_f64(1.5)).min(SLOW_CHECK);
        }
        let mut wait = pause;
        if mb.last_error.is_some() {
            // A failing server is retried gently, not hammered.
            wait = wait.max(Duration::from_secs(1));
        }
        if let Some(backoff) = mb.backoff_left() {
            // The server throttles the account: leave it alone as long as it asked.
            wait = wait.max(backoff);
        }
        if let Some(due) = next_deadline {
            wait = wait.min(due.saturating_duration_since(now));
        }
        // The step may start before a send resolves; the bound follows the deadlines as the
        // sends give them.
        let finished = tokio::select! {
            result = wait_and_check(ctx, mb, &mut watched, since, wait) => Some(result),
            () = past_deadlines(ctx, &pending.ids) => None,
        };
        match finished {
            Some(result) => result?,
            None => abandon(ctx, mb),
        }
    }
    // Everything of this round is judged: now the cleanup, bounded like a check.
    if tokio::time::timeout(crate::probe::imap::COMMAND_TIMEOUT, flush_cleanup(ctx, mb))
        .await
        .is_err()
    {
        mb.inbox.reset();
        if let Some(s) = mb.spam.as_mut() {
            s.reset();
        }
    }
    Ok(())
}

/// Resolves [`CHECK_GRACE`] after the earliest deadline of `ids`, as soon as one is known
/// (a probe has a deadline once its send was accepted).
async fn past_deadlines(ctx: &WatchCtx, ids: &[String]) {
    loop {
        let due = ids
            .iter()
            .filter_map(|id| match send_state(&ctx.board, id) {
                SendState::Accepted { instant, .. } => Some(instant + ctx.config.probe.timeout),
                _ => None,
            })
            .min();
        match due {
            Some(due) => {
                tokio::time::sleep_until((due.max(Instant::now()) + CHECK_GRACE).into()).await;
                return;
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A check that ran past its bound: the connections (in an unknown state mid-command) are
/// dropped and the mailbox counts as unreadable, so its probes become `unknown`, not `missing`.
fn abandon(ctx: &WatchCtx, mb: &mut SeedMailbox) {
    mb.inbox.reset();
    if let Some(s) = mb.spam.as_mut() {
        s.reset();
    }
    let e = ImapError::Timeout {
        server: format!("{}:{}", mb.seed.host, mb.seed.port),
        seconds: ctx.config.probe.timeout.as_secs(),
    };
    note_imap_error(ctx, mb, e);
}

/// Waits (IDLE for long pauses, else a plain sleep), then checks the folders.
async fn wait_and_check(
    ctx: &WatchCtx,
    mb: &mut SeedMailbox,
    watched: &mut HashMap<String, ProbeRecord>,
    since: chrono::DateTime<chrono::Utc>,
    wait: Duration,
) -> Result<(), StateError> {
    if wait >= IDLE_FROM && mb.inbox.is_connected() {
        flush_cleanup(ctx, mb).await;
        // The long tail: let the server tell us (IDLE) instead of polling it, on the inbox and
        // the spam folder at once; the first to hear something ends both.
        let stop = tokio::sync::Notify::new();
        let (inbox, spam) = tokio::join!(
            async {
                let r = mb.inbox.idle(wait, &stop).await;
                stop.notify_one();
                r
            },
            async {
                match mb.spam.as_mut().filter(|s| s.is_connected()) {
                    Some(s) => {
                        let r = s.idle(wait, &stop).await;
                        stop.notify_one();
                        r
                    }
                    None => Ok(()),
                }
            }
        );
        if let Err(e) = inbox.and(spam) {
            note_imap_error(ctx, mb, e);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    } else {
        tokio::time::sleep(wait).await;
    }
    check_mailbox(ctx, mb, watched, since, true).await
}

/// Cleans up the probes of ours judged so far, one command per folder. A failure is logged and
/// retried at the next flush; it never changes a result.
async fn flush_cleanup(ctx: &WatchCtx, mb: &mut SeedMailbox) {
    let seed = mb.seed.name.clone();
    flush_folder(ctx, &seed, &mut mb.inbox).await;
    let Some(spam) = mb.spam.as_mut() else {
        return;
    };
    if !mb.spam_on_inbox_connection {
        flush_folder(ctx, &seed, spam).await;
    } else if spam.cleanup_pending() && spam.borrow_from(&mut mb.inbox) {
        flush_folder(ctx, &seed, spam).await;
        spam.hand_back(&mut mb.inbox);
    }
}

async fn flush_folder(ctx: &WatchCtx, seed: &str, conn: &mut FolderConn) {
    if let Err(e) = conn.flush_cleanup(&ctx.config.probe.cleanup).await {
        tracing::warn!(seed = %seed, folder = %conn.folder, error = %e, "cleanup failed");
    }
}

/// Expires one probe of this round: `missing` when the mailbox was readable, else `unknown`.
fn expire(
    ctx: &WatchCtx,
    mb: &SeedMailbox,
    watched: &HashMap<String, ProbeRecord>,
    id: &str,
) -> Result<(), StateError> {
    let Some(rec) = watched.get(id) else {
        return Ok(());
    };
    let (placement, err) = match &mb.last_error {
        Some(e) => (Placement::Unknown, Some(e)),
        None => (Placement::Missing, None),
    };
    ctx.store.expire(
        id,
        placement,
        err.map(|e| e.to_string()).as_deref(),
        err.map(|e| e.reason()),
    )?;
    let first_time = !matches!(rec.state, ProbeState::Missing | ProbeState::Unknown);
    ctx.metrics
        .probe_expired(&rec.route, &rec.seed, placement, first_time);
    Ok(())
}

fn note_imap_error(ctx: &WatchCtx, mb: &mut SeedMailbox, e: ImapError) {
    ctx.metrics.imap_error(&mb.seed.name, &e);
    mb.last_error = Some(e);
}

/// Checks the inbox and the spam folder once; handles everything new that carries our header.
async fn check_mailbox(
    ctx: &WatchCtx,
    mb: &mut SeedMailbox,
    watched: &mut HashMap<String, ProbeRecord>,
    since: chrono::DateTime<chrono::Utc>,
    noop: bool,
) -> Result<(), StateError> {
    let seed = mb.seed.clone();
    let mut ok = check_folder(
        ctx,
        &seed,
        &mut mb.inbox,
        FolderRole::Inbox,
        watched,
        since,
        noop,
    )
    .await;
    if mb.spam.is_none() && ok.is_ok() {
        match mb.inbox.find_spam_folder().await {
            Ok(Some(name)) => {
                mb.spam = Some(FolderConn::new(&seed, &name));
                if mb.inbox.offers_notify() {
                    match mb.inbox.notify_about(&name).await {
                        Ok(shared) => mb.spam_on_inbox_connection = shared,
                        Err(e) => ok = Err(CheckError::Imap(e)),
                    }
                }
            }
            Ok(None) => {
                tracing::warn!(seed = %seed.name, "no spam folder found (no SPECIAL-USE \\Junk, none configured)")
            }
            Err(e) => ok = Err(CheckError::Imap(e)),
        }
    }
    if let Some(spam) = mb.spam.as_mut() {
        let spam_ok = if !mb.spam_on_inbox_connection {
            check_folder(ctx, &seed, spam, FolderRole::Spam, watched, since, noop).await
        } else if ok.is_ok() && mb.inbox.take_other_news() {
            check_spam_on_inbox_connection(ctx, &seed, &mut mb.inbox, spam, watched, since).await
        } else {
            Ok(())
        };
        if ok.is_ok() {
            ok = spam_ok;
        } else if let Err(CheckError::Imap(e)) = spam_ok {
            note_imap_error(ctx, mb, e);
        }
    }
    match ok {
        Ok(()) => mb.last_error = None,
        Err(CheckError::Imap(e)) => note_imap_error(ctx, mb, e),
        Err(CheckError::State(e)) => return Err(e),
    }
    Ok(())
}

/// Looks at the spam folder on the inbox's connection (NOTIFY said it changed, or it is time
/// to look anyway): the spam folder borrows the connection, selects itself, reads, cleans up
/// what is judged (now, while it is selected: selecting it again later would cost two commands)
/// and hands the connection back; the inbox selects itself again at its next check.
async fn check_spam_on_inbox_connection(
    ctx: &WatchCtx,
    seed: &Seed,
    inbox: &mut FolderConn,
    spam: &mut FolderConn,
    watched: &mut HashMap<String, ProbeRecord>,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(), CheckError> {
    if !spam.borrow_from(inbox) {
        return Ok(());
    }
    let result = check_folder(ctx, seed, spam, FolderRole::Spam, watched, since, false).await;
    if result.is_ok() {
        flush_folder(ctx, &seed.name, spam).await;
    }
    spam.hand_back(inbox);
    result
}

/// What to do with a message whose probe header verified.
enum Identified {
    /// A probe in flight (or expired and still watched): judge and record it.
    Judge(Box<ProbeRecord>),
    /// A probe of ours already judged — a copy whose cleanup failed, or kept on purpose:
    /// clean it up (per `probe.cleanup`), never judge or count it again.
    AlreadyJudged,
}

/// Why checking one folder stopped.
enum CheckError {
    Imap(ImapError),
    State(StateError),
}

/// Reads one folder's new probes, judges and records each, and cleans up what is ours.
async fn check_folder(
    ctx: &WatchCtx,
    seed: &Seed,
    conn: &mut FolderConn,
    role: FolderRole,
    watched: &mut HashMap<String, ProbeRecord>,
    since: chrono::DateTime<chrono::Utc>,
    noop: bool,
) -> Result<(), CheckError> {
    let folder = conn.folder.clone();
    let mut state_error = None;
    let expected: Vec<String> = watched.values().map(|r| r.message_id.clone()).collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let found = conn
        .check(since, noop, &expected, |c| {
            match identify(ctx, seed, &folder, watched, c) {
                Ok(r) => r,
                Err(e) => {
                    state_error.get_or_insert(e);
                    None
                }
            }
        })
        .await;
    if let Some(slowed) = conn.take_slowed() {
        ctx.metrics.imap_error(&seed.name, &slowed);
    }
    let found = found.map_err(CheckError::Imap)?;
    if let Some(e) = state_error {
        return Err(CheckError::State(e));
    }
    for (fetched, identified) in found {
        let clean = match identified {
            Identified::Judge(record) => {
                let tab = match role {
                    FolderRole::Inbox => gmail_tab(ctx, seed, conn, fetched.uid).await,
                    _ => None,
                };
                let found = Found {
                    raw: &fetched.raw,
                    role,
                    folder: &folder,
                    tab,
                };
                resolve(ctx, seed, watched, &record, &found).map_err(CheckError::State)?
            }
            Identified::AlreadyJudged => true,
        };
        if clean {
            // Cleaned up when nothing is due any more (or before a long wait), not here: the
            // next probe's detection does not wait for it.
            conn.defer_cleanup(fetched.uid);
        }
    }
    Ok(())
}

/// The Gmail tab of an inbox hit (`None` elsewhere). A failed lookup leaves the probe without
/// a tab rather than unjudged: where it landed is known, only the tab is not.
async fn gmail_tab(
    ctx: &WatchCtx,
    seed: &Seed,
    conn: &mut FolderConn,
    uid: u32,
) -> Option<crate::gmail::Tab> {
    let tab = conn.gmail_tab(uid).await;
    if let Some(slowed) = conn.take_slowed() {
        ctx.metrics.imap_error(&seed.name, &slowed);
    }
    match tab {
        Ok(tab) => tab,
        Err(e) => {
            ctx.metrics.imap_error(&seed.name, &e);
            None
        }
    }
}

/// A verified probe as fetched: its header section, where it was, and its Gmail tab.
struct Found<'a> {
    raw: &'a [u8],
    role: FolderRole,
    folder: &'a str,
    tab: Option<crate::gmail::Tab>,
}

/// Decides from its probe header whether a new message is a probe of ours to judge. Anything
/// else is left exactly as it is; a header that does not verify is counted as forged, a valid
/// one of another instance as foreign.
fn identify(
    ctx: &WatchCtx,
    seed: &Seed,
    folder: &str,
    watched: &HashMap<String, ProbeRecord>,
    candidate: &Candidate,
) -> Result<Option<Identified>, StateError> {
    let forged = |why: &str| ctx.metrics.forged_probe(&seed.name, folder, why);
    let probe = &ctx.config.probe;
    let (token, message_id) = match token::check_header(
        &candidate.fields,
        &probe.token_key,
        &seed.name,
        &probe.instance,
    ) {
        HeaderCheck::NotAProbe => return Ok(None),
        HeaderCheck::Forged(why) => {
            forged(&why);
            return Ok(None);
        }
        HeaderCheck::Foreign { instance } => {
            ctx.metrics.foreign_probe(&seed.name, folder, &instance);
            return Ok(None);
        }
        HeaderCheck::Probe { token, message_id } => (token, message_id),
    };
    let record = match watched.get(&token.probe_id) {
        Some(r) => r.clone(),
        None => match ctx.store.get(&token.probe_id)? {
            Some(r) if r.state == ProbeState::Resolved => {
                if message_id.as_deref() != Some(r.message_id.as_str()) {
                    forged("Message-ID does not match the probe's");
                    return Ok(None);
                }
                tracing::debug!(seed = %seed.name, folder, "probe already judged seen again");
                return Ok(Some(Identified::AlreadyJudged));
            }
            Some(r) if r.state == ProbeState::SendFailed => {
                forged("probe that was never sent");
                return Ok(None);
            }
            Some(r) => r,
            None => {
                tracing::info!(seed = %seed.name, "valid token of a probe this instance has no record of; left alone");
                return Ok(None);
            }
        },
    };
    if message_id.as_deref() != Some(record.message_id.as_str()) {
        forged("Message-ID does not match the probe's");
        return Ok(None);
    }
    Ok(Some(Identified::Judge(Box::new(record))))
}

/// Judges a verified probe from its header section and records it. Returns whether it was
/// resolved just now (only then is it cleaned up).
fn resolve(
    ctx: &WatchCtx,
    seed: &Seed,
    watched: &mut HashMap<String, ProbeRecord>,
    record: &ProbeRecord,
    found: &Found<'_>,
) -> Result<bool, StateError> {
    let seen_at = store::now();
    let folder = found.folder;
    let mut judgement = outcome::judge(found.raw, &seed.authserv_ids);
    judgement.tab = found.tab;
    let placement = found.role.placement();
    let accepted_at = match send_state(&ctx.board, &record.probe_id) {
        SendState::Accepted { at, .. } => Some(at),
        _ => record.sent_at,
    };
    let delivery = accepted_at.map(|a| (seen_at - a).max(0.0));
    if !ctx
        .store
        .resolve(&record.probe_id, placement, folder, &judgement, delivery)?
    {
        ctx.metrics.forged_probe(
            &seed.name,
            folder,
            "second copy of a probe already resolved",
        );
        return Ok(false);
    }
    ctx.board
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_found = Some(Instant::now());
    let late = matches!(record.state, ProbeState::Missing | ProbeState::Unknown);
    ctx.metrics.probe_found(
        &record.route,
        &record.seed,
        folder,
        placement,
        &judgement,
        delivery,
        late,
    );
    watched.remove(&record.probe_id);
    Ok(true)
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
        // Its bounce came back (probe/bounces.rs records it as failed).
        board.lock().expect("board").failed.insert("p1".into());
        assert!(matches!(send_state(&board, "p1"), SendState::Failed));
    }
}
