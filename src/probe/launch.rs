//! Puts probes on their way: composes a tokened message and records it, puts it on the board,
//! makes sure its seed's watcher (and its route's bounce mailbox's) runs, and sends it once
//! those watchers have had their first look — at most `probe.concurrency` sends at once across
//! the process, never retried (a retry would be a second probe). Rounds launch every pair that
//! has nothing in flight; the prober launches confirmation probes the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::AbortHandle;

use crate::clock::now;
use crate::config::{Route, Seed};
use crate::metrics::Metrics;
use crate::probe::compose::{self, ProbeMessage};
use crate::probe::send::Sender;
use crate::probe::setup::Setup;
use crate::probe::token::{self, Token};
use crate::probe::watch::context::{
    BASELINE_WAIT, Board, Entry, Event, Events, SendState, Watch, WatchCtx, Watcher,
};
use crate::probe::watch::{bounces, seed};
use crate::state::StateError;
use crate::state::probes::{ProbeKind, ProbeStore};

/// What launching needs, shared by the rounds and the prober's confirmations.
pub(crate) struct Launcher {
    pub(crate) store: Arc<ProbeStore>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) board: Board,
    events: Events,
    /// The sends allowed at once, and the config value it was made for.
    permits: Mutex<(usize, Arc<Semaphore>)>,
    /// The watcher tasks running, so a reload can stop those whose mailbox changed.
    watchers: Mutex<HashMap<Watcher, AbortHandle>>,
    /// Per seed: wakes its watcher when one of its probes is accepted (a watcher in IDLE or a
    /// long pause looks again at once).
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    shutdown: watch::Receiver<bool>,
}

/// Releases a watcher's claim when its task ends, however it ends (finished, failed, aborted
/// by a reload or shutdown): the next probe of its mailbox starts a new one.
struct Claim {
    board: Board,
    watcher: Watcher,
    generation: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.board.release(&self.watcher, self.generation);
        self.board.notify();
    }
}

impl Launcher {
    pub(crate) fn new(
        store: Arc<ProbeStore>,
        metrics: Arc<Metrics>,
        events: Events,
        shutdown: watch::Receiver<bool>,
    ) -> Launcher {
        Launcher {
            store,
            metrics,
            board: Board::default(),
            events,
            permits: Mutex::new((0, Arc::new(Semaphore::new(0)))),
            watchers: Mutex::new(HashMap::new()),
            wakers: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Composes, records and sends one probe of `route` to `seed` (the send goes on in the
    /// background). Returns the probe's id and creation time; a probe that cannot even be
    /// composed is recorded as not sent, and its outcome reported, like a failed send.
    pub(crate) fn launch(
        &self,
        setup: &Arc<Setup>,
        route: &Route,
        seed: &Seed,
        round_id: i64,
        kind: ProbeKind,
    ) -> Result<(String, f64), StateError> {
        let cfg = &setup.config;
        let now = now();
        let probe_id = token::new_probe_id();
        let t = Token::new(
            &probe_id,
            &cfg.probe.instance,
            &route.name,
            &seed.name,
            now as i64,
        );
        let watched_until = now + (cfg.probe.timeout + cfg.probe.late_window).as_secs_f64();
        let composed = compose::compose(route, seed, &t, &cfg.probe.token_key);
        let message_id = composed.as_ref().map_or("", |m| m.message_id.as_str());
        self.store.insert_sending(
            round_id,
            &probe_id,
            &route.name,
            &seed.name,
            message_id,
            now,
            kind,
        )?;
        let message = match composed {
            Ok(m) => m,
            Err(e) => {
                self.metrics
                    .compose_failed(&route.name, &seed.name, e.reason(), &e);
                self.store
                    .mark_send_failed(&probe_id, &e.to_string(), e.reason(), None)?;
                if let Some(record) = self.store.get(&probe_id)? {
                    self.board.register(Entry {
                        record: record.clone(),
                        send: SendState::Failed,
                        watch: Watch::Done,
                        overdue_noted: false,
                        settled: false,
                        watched_until,
                    });
                    let _ = self.events.send(Event::Outcome {
                        record: Box::new(record),
                        last: true,
                    });
                }
                return Ok((probe_id, now));
            }
        };
        let Some(record) = self.store.get(&probe_id)? else {
            return Ok((probe_id, now));
        };
        self.board.register(Entry {
            record,
            send: SendState::Pending,
            watch: Watch::InFlight,
            overdue_noted: false,
            settled: false,
            watched_until,
        });
        self.ensure_watchers(setup, &seed.name, route.bounces.as_deref());
        self.start_send(setup, route, seed, message);
        Ok((probe_id, now))
    }

    /// Starts the watchers of every seed (and bounce mailbox) with probes in flight that has
    /// none running: after a reload, or after a watcher failed.
    pub(crate) fn ensure_all_watchers(&self, setup: &Arc<Setup>) {
        let in_flight: Vec<(String, String)> = {
            let b = self.board.lock();
            b.probes
                .values()
                .filter(|e| e.watch == Watch::InFlight)
                .map(|e| (e.record.route.clone(), e.record.seed.clone()))
                .collect()
        };
        for (route, seed) in in_flight {
            let bounces = setup.config.route(&route).and_then(|r| r.bounces.clone());
            self.ensure_watchers(setup, &seed, bounces.as_deref());
        }
    }

    /// Stops the watchers of these mailboxes (a reload changed or removed them); the next
    /// [`Self::ensure_all_watchers`] starts new ones with the new settings.
    pub(crate) fn stop_watchers(&self, which: &[Watcher]) {
        let mut w = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for key in which {
            if let Some(h) = w.remove(key) {
                h.abort();
            }
        }
    }

    /// Stops every watcher (shutdown).
    pub(crate) fn stop_all_watchers(&self) {
        let mut w = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, h) in w.drain() {
            h.abort();
        }
    }

    fn waker(&self, seed: &str) -> Arc<Notify> {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(seed.to_string())
            .or_default()
            .clone()
    }

    fn ctx(&self, setup: &Arc<Setup>) -> WatchCtx {
        WatchCtx {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            config: setup.config.clone(),
            board: self.board.clone(),
            events: self.events.clone(),
            started: now(),
            seen_ips: setup.seen_ips.clone(),
        }
    }

    /// Starts the seed's watcher and the bounce mailbox's, where none runs.
    fn ensure_watchers(&self, setup: &Arc<Setup>, seed_name: &str, bounce_box: Option<&str>) {
        let w = Watcher::Seed(seed_name.to_string());
        if let Some(generation) = self.board.claim(&w) {
            let claim = Claim {
                board: self.board.clone(),
                watcher: w.clone(),
                generation,
            };
            match (
                setup.mailboxes.get(seed_name).cloned(),
                setup.config.seed(seed_name).cloned(),
            ) {
                (Some(mb), Some(seed_cfg)) => {
                    let ctx = self.ctx(setup);
                    let wake = self.waker(seed_name);
                    let mut shutdown = self.shutdown.clone();
                    let task = tokio::spawn(async move {
                        let _claim = claim;
                        tokio::select! {
                            () = async {
                                let mut mb = mb.lock().await;
                                seed::watch(&ctx, &mut mb, seed_cfg, &wake).await;
                            } => {}
                            _ = shutdown.wait_for(|stop| *stop) => {}
                        }
                    });
                    self.keep(w, task.abort_handle());
                }
                // A seed the config no longer has: its probes expire as orphans.
                _ => drop(claim),
            }
        }
        let Some(name) = bounce_box else {
            return;
        };
        let w = Watcher::Bounces(name.to_string());
        let Some(bb) = setup.bounce_boxes.get(name).cloned() else {
            return;
        };
        if let Some(generation) = self.board.claim(&w) {
            let claim = Claim {
                board: self.board.clone(),
                watcher: w.clone(),
                generation,
            };
            let ctx = self.ctx(setup);
            let mut shutdown = self.shutdown.clone();
            let task = tokio::spawn(async move {
                let _claim = claim;
                tokio::select! {
                    () = async { bounces::watch(&ctx, &mut *bb.lock().await).await } => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            });
            self.keep(w, task.abort_handle());
        }
    }

    fn keep(&self, w: Watcher, handle: AbortHandle) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.retain(|_, h| !h.is_finished());
        watchers.insert(w, handle);
    }

    /// The semaphore of `probe.concurrency` sends at once (a reload that changes it makes a
    /// new one; sends already waiting keep theirs).
    fn permits(&self, concurrency: usize) -> Arc<Semaphore> {
        let mut p = self.permits.lock().unwrap_or_else(|e| e.into_inner());
        if p.0 != concurrency {
            *p = (concurrency, Arc::new(Semaphore::new(concurrency)));
        }
        p.1.clone()
    }

    /// Sends in the background once the watchers of the seed and of the route's bounce mailbox
    /// had their first look (detection starts before the first message can arrive), or after
    /// [`BASELINE_WAIT`] anyway.
    fn start_send(&self, setup: &Arc<Setup>, route: &Route, seed: &Seed, message: ProbeMessage) {
        let Some(sender) = setup.senders.get(&route.name).cloned() else {
            return;
        };
        let mut wait_for = vec![Watcher::Seed(seed.name.clone())];
        if let Some(b) = route
            .bounces
            .as_deref()
            .filter(|b| setup.bounce_boxes.contains_key(*b))
        {
            wait_for.push(Watcher::Bounces(b.to_string()));
        }
        let permits = self.permits(setup.config.probe.concurrency);
        let job = SendJob {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            board: self.board.clone(),
            events: self.events.clone(),
            wake: self.waker(&seed.name),
            route: route.name.clone(),
            seed: seed.name.clone(),
            confirm_after: setup.config.probe.confirm_after,
            shutdown: self.shutdown.clone(),
        };
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = async {
                    job.wait_for_watchers(&wait_for).await;
                    let Ok(_permit) = permits.acquire_owned().await else {
                        return;
                    };
                    // Boxed once its turn comes: thousands of sends wait for a permit at a large
                    // round, and each would otherwise hold a whole SMTP transaction's state (~6 KB).
                    Box::pin(job.send(&sender, &message)).await;
                } => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

/// One send and what it reports.
struct SendJob {
    store: Arc<ProbeStore>,
    metrics: Arc<Metrics>,
    board: Board,
    events: Events,
    wake: Arc<Notify>,
    route: String,
    seed: String,
    /// When an accepted probe not found yet is overdue.
    confirm_after: Option<Duration>,
    shutdown: watch::Receiver<bool>,
}

impl SendJob {
    /// Reports the probe overdue `confirm_after` after its acceptance, if it is still in flight
    /// and its mailbox readable then (a probe we cannot look for is not late; the watcher
    /// reports it once the mailbox reads again). A timer of its own: the watcher's waits (IDLE,
    /// back-off) are never cut short for it.
    fn overdue_timer(&self, id: &str) {
        let Some(after) = self.confirm_after else {
            return;
        };
        let (board, events, seed, id) = (
            self.board.clone(),
            self.events.clone(),
            self.seed.clone(),
            id.to_string(),
        );
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => {
                    if board.is_readable(&seed) && board.note_overdue(&id) {
                        let _ = events.send(Event::Overdue { probe_id: id });
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }

    async fn wait_for_watchers(&self, which: &[Watcher]) {
        let until = Instant::now() + BASELINE_WAIT;
        for w in which {
            loop {
                let signal = self.board.ready_signal(w);
                let ready = signal.notified();
                tokio::pin!(ready);
                ready.as_mut().enable();
                if self.board.is_ready(w) {
                    break;
                }
                let step = until.saturating_duration_since(Instant::now());
                if step.is_zero() {
                    return;
                }
                let _ = tokio::time::timeout(step.min(Duration::from_secs(1)), ready).await;
            }
        }
    }

    async fn send(&self, sender: &Sender, message: &ProbeMessage) {
        let result = sender.send(message).await;
        let id = &message.probe_id;
        match result {
            Ok(outcome) => {
                let at = now();
                if let Err(e) = self.store.mark_sent(id, &outcome, at) {
                    tracing::error!(error = %e, "cannot record a sent probe");
                }
                self.board.accepted(id, at);
                self.wake.notify_one();
                self.overdue_timer(id);
                self.metrics.probe_sent(&self.route, &self.seed, &outcome);
            }
            Err(e) => {
                self.metrics
                    .send_failed(&self.route, &self.seed, e.reason(), &e);
                if let Err(se) =
                    self.store
                        .mark_send_failed(id, &e.to_string(), e.reason(), e.code())
                {
                    tracing::error!(error = %se, "cannot record a failed send");
                }
                self.board.done(id, true);
                self.wake.notify_one();
                match self.store.get(id) {
                    Ok(Some(record)) => {
                        let _ = self.events.send(Event::Outcome {
                            record: Box::new(record),
                            last: true,
                        });
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read a failed probe back"),
                }
            }
        }
    }
}
