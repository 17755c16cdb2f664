//! One probe round: for every route × seed, compose a tokened message, record it, send it,
//! watch the seed mailbox (inbox and spam folder) until it shows up or times out, judge it,
//! record the result, clean up. Probes left unresolved by earlier rounds (or a crash) are
//! watched too, until their late window ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, Semaphore};

use crate::probe::compose::{self, ProbeMessage};
use crate::config::{Config, Seed};
use crate::probe::imap::{FolderConn, ImapError};
use crate::probe::outcome::{self, FolderRole, Placement};
use crate::metrics::Metrics;
use crate::probe::send::Sender;
use crate::probe::store::{self, ProbeRecord, ProbeState, StateError, Store};
use crate::probe::token::{self, Token};

/// Shortest pause between checks after the fast window; long waits use IDLE instead.
const SLOW_CHECK: Duration = Duration::from_secs(30);
/// While a probe is this fresh, check at the seed's poll interval.
const FAST_WINDOW: Duration = Duration::from_secs(20);
/// Switch from polling to IDLE once the pause would be this long.
const IDLE_FROM: Duration = Duration::from_secs(5);

/// A seed mailbox: one connection for the inbox, one for the spam folder. Kept across rounds.
pub struct SeedMailbox {
    pub seed: Seed,
    pub inbox: FolderConn,
    pub spam: Option<FolderConn>,
    /// The last error reading this mailbox, cleared by a fully successful check.
    pub last_error: Option<ImapError>,
}

impl SeedMailbox {
    pub fn new(seed: &Seed) -> Self {
        SeedMailbox {
            seed: seed.clone(),
            inbox: FolderConn::new(seed, &seed.inbox_folder),
            spam: None,
            last_error: None,
        }
    }

    pub fn commands(&self) -> u64 {
        self.inbox.commands + self.spam.as_ref().map(|s| s.commands).unwrap_or(0)
    }
}

/// The long-lived probe: config, state, metrics and the connections it reuses.
pub struct Prober {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    senders: HashMap<String, Arc<Sender>>,
    mailboxes: HashMap<String, Arc<AsyncMutex<SeedMailbox>>>,
    /// One round at a time.
    round_lock: AsyncMutex<()>,
}

/// Why a round could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error(transparent)]
    State(#[from] StateError),
}

/// Per-probe facts the sender learns and the watcher needs.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    /// Unix time of SMTP acceptance.
    at: f64,
}

#[derive(Default)]
struct SendBoard {
    accepted: HashMap<String, Accepted>,
    failed: std::collections::HashSet<String>,
}

impl Prober {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Prober, crate::probe::send::SendError> {
        let mut senders = HashMap::new();
        for route in &config.routes {
            senders.insert(route.name.clone(), Arc::new(Sender::new(route)?));
        }
        let mailboxes = config
            .seeds
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    Arc::new(AsyncMutex::new(SeedMailbox::new(s))),
                )
            })
            .collect();
        metrics.preset(&config);
        Ok(Prober {
            config,
            store,
            metrics,
            senders,
            mailboxes,
            round_lock: AsyncMutex::new(()),
        })
    }

    /// Total IMAP commands issued so far (for the benchmark).
    pub async fn imap_commands(&self) -> u64 {
        let mut n = 0;
        for mb in self.mailboxes.values() {
            n += mb.lock().await.commands();
        }
        n
    }

    /// Runs one round and returns its probes as recorded.
    pub async fn round(&self) -> Result<Vec<ProbeRecord>, RoundError> {
        // One round at a time: a round still running when the next tick comes makes that tick
        // skip (queued rounds would pile up behind a slow server).
        let Ok(_one_at_a_time) = self.round_lock.try_lock() else {
            tracing::warn!("previous round still running; skipping this one");
            return Ok(Vec::new());
        };
        let cfg = &self.config;
        let round_id = self.store.start_round()?;
        let started = store::now();
        tracing::info!(round_id, pairs = cfg.pairs().len(), "round started");

        // 1. Compose and record every probe before anything leaves.
        let mut messages: Vec<(String, String, ProbeMessage)> = Vec::new();
        for (route, seed) in cfg.pairs() {
            let probe_id = token::new_probe_id();
            let t = Token::new(&probe_id, &route.name, &seed.name, started as i64);
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
                    messages.push((route.name.clone(), seed.name.clone(), m));
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

        // 2. Watch every seed (this round's probes and older unresolved ones).
        let board = Arc::new(Mutex::new(SendBoard::default()));
        let late_since = started - cfg.probe.late_window.as_secs_f64();
        let unresolved = self.store.unresolved_since(late_since)?;
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(cfg.seeds.len().max(1));
        let mut watchers = Vec::new();
        for seed in &cfg.seeds {
            let Some(mb) = self.mailboxes.get(&seed.name).cloned() else {
                continue;
            };
            let this_round: Vec<String> = messages
                .iter()
                .filter(|(_, s, _)| *s == seed.name)
                .map(|(_, _, m)| m.probe_id.clone())
                .collect();
            let watched: HashMap<String, ProbeRecord> = unresolved
                .iter()
                .filter(|r| r.seed == seed.name)
                .map(|r| (r.probe_id.clone(), r.clone()))
                .collect();
            let ctx = WatchCtx {
                store: self.store.clone(),
                metrics: self.metrics.clone(),
                config: self.config.clone(),
                board: board.clone(),
                round_started: started,
            };
            let ready = ready_tx.clone();
            watchers.push(tokio::spawn(async move {
                let mut mb = mb.lock().await;
                watch_seed(&ctx, &mut mb, this_round, watched, ready).await
            }));
        }
        drop(ready_tx);
        // Wait until every watcher has its baseline (or gave up), so detection starts before
        // the first message can arrive.
        let baseline_deadline = Instant::now() + Duration::from_secs(45);
        let mut ready = 0;
        while ready < watchers.len() {
            match tokio::time::timeout_at(baseline_deadline.into(), ready_rx.recv()).await {
                Ok(Some(())) => ready += 1,
                _ => break,
            }
        }

        // 3. Send, a bounded number at a time; never retried (a retry would be a second probe).
        let permits = Arc::new(Semaphore::new(cfg.probe.concurrency));
        let mut sends = Vec::new();
        for (route, seed, message) in messages {
            let Some(sender) = self.senders.get(&route).cloned() else {
                continue;
            };
            let permits = permits.clone();
            let store = self.store.clone();
            let metrics = self.metrics.clone();
            let board = board.clone();
            sends.push(tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                send_one(&sender, &message, &route, &seed, &store, &metrics, &board).await;
            }));
        }
        for s in sends {
            let _ = s.await;
        }
        for w in watchers {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "watcher failed"),
                Err(e) => tracing::error!(error = %e, "watcher task ended abnormally"),
            }
        }
        self.store.finish_round(round_id)?;
        self.metrics.round_finished(store::now());
        let records = self.store.round(round_id)?;
        let causes = crate::diagnosis::all_causes();
        for r in &records {
            let current: Vec<&str> = crate::diagnosis::for_record(r, Some(cfg))
                .into_iter()
                .map(|d| d.cause.as_str())
                .collect();
            self.metrics
                .set_diagnosis(&r.route, &r.seed, &causes, &current);
        }
        let retention_cut = store::now() - cfg.probe.retention.as_secs_f64();
        if let Err(e) = self.store.prune(retention_cut) {
            tracing::warn!(error = %e, "pruning old results failed");
        }
        tracing::info!(round_id, seconds = store::now() - started, "round finished");
        Ok(records)
    }

    /// Logs out of every mailbox (shutdown).
    pub async fn close(&self) {
        for mb in self.mailboxes.values() {
            let mut mb = mb.lock().await;
            mb.inbox.logout().await;
            if let Some(s) = mb.spam.as_mut() {
                s.logout().await;
            }
        }
    }
}

async fn send_one(
    sender: &Sender,
    message: &ProbeMessage,
    route: &str,
    seed: &str,
    store: &Store,
    metrics: &Metrics,
    board: &Mutex<SendBoard>,
) {
    let result = sender.send(message).await;
    let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(outcome) => {
            let at = store::now();
            b.accepted.insert(message.probe_id.clone(), Accepted { at });
            drop(b);
            metrics.probe_sent(route, seed, &outcome);
            if let Err(e) = store.mark_sent(&message.probe_id, &outcome, at) {
                tracing::error!(error = %e, "cannot record a sent probe");
            }
        }
        Err(e) => {
            b.failed.insert(message.probe_id.clone());
            drop(b);
            metrics.send_failed(route, seed, e.reason(), &e);
            if let Err(se) =
                store.mark_send_failed(&message.probe_id, &e.to_string(), e.reason(), e.code())
            {
                tracing::error!(error = %se, "cannot record a failed send");
            }
        }
    }
}

struct WatchCtx {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    config: Arc<Config>,
    board: Arc<Mutex<SendBoard>>,
    round_started: f64,
}

/// Watches one seed mailbox until this round's probes are found or time out.
async fn watch_seed(
    ctx: &WatchCtx,
    mb: &mut SeedMailbox,
    this_round: Vec<String>,
    mut watched: HashMap<String, ProbeRecord>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Result<(), StateError> {
    let timeout = ctx.config.probe.timeout;
    let since = chrono::DateTime::<chrono::Utc>::from_timestamp(
        ctx.round_started as i64 - 86_400 - ctx.config.probe.late_window.as_secs() as i64,
        0,
    )
    .unwrap_or_else(chrono::Utc::now);
    // Baseline: connect, find the spam folder, see what is already there (late arrivals).
    check_mailbox(ctx, mb, &mut watched, since, false).await?;
    let _ = ready.send(()).await;
    drop(ready);

    let deadline = Instant::now() + timeout;
    let mut pending: Vec<String> = this_round;
    let mut pause = mb.seed.poll_interval;
    let fast_until = Instant::now() + FAST_WINDOW;
    loop {
        pending.retain(|id| watched.contains_key(id) && !is_failed(ctx, id));
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        let now = Instant::now();
        if now >= fast_until {
            pause = (pause.mul_f64(1.5)).min(SLOW_CHECK);
        }
        let mut wait = pause.min(deadline.saturating_duration_since(now));
        if mb.last_error.is_some() {
            // A failing server is retried gently, not hammered.
            wait = wait
                .max(Duration::from_secs(1))
                .min(deadline.saturating_duration_since(now));
        }
        if wait >= IDLE_FROM && mb.inbox.is_connected() {
            // The long tail: let the server tell us (IDLE) instead of polling it.
            if let Err(e) = mb.inbox.idle(wait).await {
                note_imap_error(ctx, mb, e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        } else {
            tokio::time::sleep(wait).await;
        }
        check_mailbox(ctx, mb, &mut watched, since, true).await?;
    }
    // Whatever of this round is still pending has timed out.
    for id in pending {
        if watched.contains_key(&id) && !is_failed(ctx, &id) {
            let Some(rec) = watched.get(&id) else {
                continue;
            };
            let (placement, err) = match &mb.last_error {
                Some(e) => (Placement::Unknown, Some(e.clone())),
                None => (Placement::Missing, None),
            };
            let was = rec.state;
            ctx.store.expire(
                &id,
                placement,
                err.as_ref().map(|e| e.to_string()).as_deref(),
                err.as_ref().map(|e| e.reason()),
            )?;
            let first_time = !matches!(was, ProbeState::Missing | ProbeState::Unknown);
            ctx.metrics
                .probe_expired(&rec.route, &rec.seed, placement, first_time);
        }
    }
    Ok(())
}

fn is_failed(ctx: &WatchCtx, id: &str) -> bool {
    ctx.board
        .lock()
        .map(|b| b.failed.contains(id))
        .unwrap_or(false)
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
    let mut ok = true;
    match mb.inbox.check(since, noop).await {
        Ok(found) => {
            let folder = mb.inbox.folder.clone();
            for f in found {
                if let Some(cleanup) =
                    handle_message(ctx, &mb.seed, watched, &f.raw, FolderRole::Inbox, &folder)?
                    && let Err(e) = mb.inbox.cleanup(f.uid, &cleanup).await
                {
                    tracing::warn!(seed = %mb.seed.name, error = %e, "cleanup failed");
                }
            }
        }
        Err(e) => {
            ok = false;
            note_imap_error(ctx, mb, e);
        }
    }
    if mb.spam.is_none() && ok {
        match mb.inbox.find_spam_folder().await {
            Ok(Some(name)) => mb.spam = Some(FolderConn::new(&mb.seed, &name)),
            Ok(None) => {
                tracing::warn!(seed = %mb.seed.name, "no spam folder found (no SPECIAL-USE \\Junk, none configured)")
            }
            Err(e) => {
                ok = false;
                note_imap_error(ctx, mb, e);
            }
        }
    }
    if let Some(spam) = mb.spam.as_mut() {
        match spam.check(since, noop).await {
            Ok(found) => {
                let folder = spam.folder.clone();
                for f in found {
                    if let Some(cleanup) =
                        handle_message(ctx, &mb.seed, watched, &f.raw, FolderRole::Spam, &folder)?
                        && let Err(e) = spam.cleanup(f.uid, &cleanup).await
                    {
                        tracing::warn!(seed = %mb.seed.name, error = %e, "cleanup failed");
                    }
                }
            }
            Err(e) => {
                ok = false;
                note_imap_error(ctx, mb, e);
            }
        }
    }
    if ok {
        mb.last_error = None;
    }
    Ok(())
}

/// Decides what a fetched message is. Returns the cleanup to apply only when it is a probe of
/// ours, verified and resolved just now; anything else is left exactly as it is.
fn handle_message(
    ctx: &WatchCtx,
    seed: &Seed,
    watched: &mut HashMap<String, ProbeRecord>,
    raw: &[u8],
    role: FolderRole,
    folder: &str,
) -> Result<Option<crate::config::Cleanup>, StateError> {
    let seen_at = store::now();
    let parsed = mail_parser::MessageParser::new().parse_headers(raw);
    let (tokens, message_id): (Vec<String>, Option<String>) = match &parsed {
        Some(m) => (
            m.header_values(token::HEADER)
                .filter_map(|v| v.as_text().map(str::to_string))
                .collect(),
            m.message_id().map(|s| format!("<{s}>")),
        ),
        None => (Vec::new(), None),
    };
    let forged = |why: &str| ctx.metrics.forged_probe(&seed.name, folder, why);
    let [value] = tokens.as_slice() else {
        if !tokens.is_empty() {
            forged("several probe headers");
        }
        return Ok(None);
    };
    let token = match Token::verify(value, &ctx.config.probe.token_key) {
        Ok(t) => t,
        Err(e) => {
            forged(&e.to_string());
            return Ok(None);
        }
    };
    if token.seed != seed.name {
        forged("token names another seed mailbox");
        return Ok(None);
    }
    let record = match watched.get(&token.probe_id) {
        Some(r) => r.clone(),
        None => match ctx.store.get(&token.probe_id)? {
            Some(r) if r.state == ProbeState::Resolved => {
                forged("second copy of a probe already resolved");
                return Ok(None);
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
    let judgement = outcome::judge(raw, &seed.authserv_ids);
    let placement = role.placement();
    let accepted_at = ctx
        .board
        .lock()
        .ok()
        .and_then(|b| b.accepted.get(&record.probe_id).map(|a| a.at))
        .or(record.sent_at);
    let delivery = accepted_at.map(|a| (seen_at - a).max(0.0));
    if !ctx
        .store
        .resolve(&record.probe_id, placement, folder, &judgement, delivery)?
    {
        forged("second copy of a probe already resolved");
        return Ok(None);
    }
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
    Ok(Some(ctx.config.probe.cleanup.clone()))
}
