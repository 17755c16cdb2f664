//! The seed watcher: watches one seed mailbox (its inbox and spam folder) while probes of its
//! seed are in flight — whichever round or confirmation sent them — judges what arrives
//! ([`crate::outcome`]) and records it, cleans up what is ours, expires what never came
//! (`missing`, or `unknown` when the mailbox could not be read), and reports each outcome and
//! each probe overdue ([`super::context::Event`]). Probes that timed out are looked for too, by
//! whichever watcher of their seed runs, until their late window ends.
//!
//! Every wait is bounded: a probe by `probe.timeout` counted from the moment the SMTP server
//! accepted it (a probe whose send has not resolved is never `missing`, [`super::context`]),
//! a mailbox check by the probe's deadline and a grace after it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::context::{Entry, Event, SendState, Watch, WatchCtx, Watcher};
use crate::config::Seed;
use crate::imap::{Candidate, FolderConn, ImapError};
use crate::outcome::{FolderRole, Placement};
use crate::probe::token::{self, HeaderCheck};
use crate::probe::{judge, seen_address};
use crate::state::StateError;
use crate::state::probes::{ProbeRecord, ProbeState};

/// The longest wait between checks after the fast window (in IDLE where the server offers it).
const SLOW_CHECK: Duration = Duration::from_secs(30);
/// Check at the seed's poll interval while one of its probes was accepted this recently, or
/// while the round's probes are still arriving anywhere (one was found this recently): a mail
/// system that delivers slowly keeps every watcher fast as long as it keeps delivering.
const FAST_WINDOW: Duration = Duration::from_secs(20);
/// How long a watcher waits for a send to resolve before looking at the board again anyway
/// (senders wake it at once; this only bounds a missed wake-up).
const ACCEPT_WAIT: Duration = Duration::from_millis(200);
/// The longest pause between checks while every probe of the seed is queued behind others of
/// its route ([`Board::behind`](super::context::Board::behind)): it bounds the extra detection
/// lag of a probe the mail system delivers out of its order.
const QUEUED_PAUSE: Duration = Duration::from_secs(2);
/// Switch from polling to IDLE once the pause would be this long.
const IDLE_FROM: Duration = Duration::from_secs(5);
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
            inbox: FolderConn::new(seed, &seed.inbox_folder, token::HEADER),
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
            self.reset();
        }
        self.in_use = true;
    }

    /// Drops the connections (in an unknown state mid-command); the next check reconnects.
    fn reset(&mut self) {
        self.inbox.reset();
        if let Some(s) = self.spam.as_mut() {
            s.reset();
        }
    }

    /// Logs out of the inbox's and the spam folder's connections.
    pub async fn logout(&mut self) {
        self.inbox.logout().await;
        if let Some(s) = self.spam.as_mut() {
            s.logout().await;
        }
    }
}

/// Watches `mb` while probes of its seed are in flight (see [`watch_seed`]), with the seed's
/// settings as the config in force has them (a reload may have kept the connections and
/// changed the rest). Ends when nothing of its seed is in flight any more; the prober starts
/// a new one with the next probe.
pub(crate) async fn watch(ctx: &WatchCtx, mb: &mut SeedMailbox, seed: Seed, wake: &Notify) {
    mb.begin();
    mb.seed = seed;
    if let Err(e) = watch_seed(ctx, mb, wake).await {
        // The launcher's guard releases the claim: the next probe starts a new watcher.
        tracing::error!(seed = %mb.seed.name, error = %e, "watcher failed");
    }
    mb.in_use = false;
}

/// What a sweep of the board found for one seed.
#[derive(Default)]
struct Sweep {
    /// Some probe of the seed is in flight.
    in_flight: bool,
    /// The nearest timeout still ahead.
    next_deadline: Option<Instant>,
    /// The latest acceptance of a probe in flight.
    latest_accepted: Option<Instant>,
    /// How far the least queued of its accepted probes is behind its route's deliveries.
    behind: Option<Duration>,
    /// Probes past their timeout, to expire now.
    expired: Vec<Entry>,
    /// Probes overdue now.
    overdue: Vec<String>,
}

/// Looks at the seed's probes on the board at `now`; `receiver` is the seed's IMAP server.
fn sweep(ctx: &WatchCtx, entries: &[Entry], receiver: &str, now: Instant) -> Sweep {
    let p = &ctx.config.probe;
    let mut s = Sweep::default();
    for e in entries.iter().filter(|e| e.watch == Watch::InFlight) {
        s.in_flight = true;
        let SendState::Accepted { instant, .. } = e.send else {
            continue;
        };
        let due = instant + p.timeout;
        if now >= due {
            s.expired.push(e.clone());
            continue;
        }
        s.next_deadline = Some(s.next_deadline.map_or(due, |n| n.min(due)));
        s.latest_accepted = Some(s.latest_accepted.map_or(instant, |l| l.max(instant)));
        let behind = ctx.board.behind(&e.record.route, receiver, instant, now);
        s.behind = Some(s.behind.map_or(behind, |b| b.min(behind)));
        // The launcher's timer reports a probe overdue on time; this catches the ones it could
        // not (the mailbox was unreadable then, and is readable again).
        if let Some(after) = p.confirm_after
            && !e.overdue_noted
            && now >= instant + after
        {
            s.overdue.push(e.record.probe_id.clone());
        }
    }
    s
}

/// The seed's probes on the board that a check looks for, by id.
fn watched(ctx: &WatchCtx, seed: &str) -> HashMap<String, ProbeRecord> {
    ctx.board
        .watched_at(seed)
        .into_iter()
        .map(|e| (e.record.probe_id.clone(), e.record))
        .collect()
}

/// Watches one seed mailbox while probes of its seed are in flight.
async fn watch_seed(ctx: &WatchCtx, mb: &mut SeedMailbox, wake: &Notify) -> Result<(), StateError> {
    let me = Watcher::Seed(mb.seed.name.clone());
    let since = ctx.since();
    // Baseline: connect, find the spam folder, see what is already there (late arrivals).
    let baseline_until = ctx.baseline_until();
    let mut seen = watched(ctx, &mb.seed.name);
    let baseline = check_mailbox(ctx, mb, &mut seen, since, false);
    match tokio::time::timeout_at(baseline_until.into(), baseline).await {
        Ok(result) => result?,
        Err(_) => abandon(ctx, mb),
    }
    ctx.board.set_ready(&me);

    let receiver = receiver(&mb.seed);
    let mut pause = mb.seed.poll_interval;
    loop {
        let now = Instant::now();
        let entries = ctx.board.watched_at(&mb.seed.name);
        let s = sweep(ctx, &entries, &receiver, now);
        for e in &s.expired {
            expire(ctx, mb, e)?;
        }
        if mb.last_error.is_none() {
            // Overdue only while the mailbox is readable: a probe we cannot look for is not late.
            for id in &s.overdue {
                if ctx.board.note_overdue(id) {
                    ctx.report(Event::Overdue {
                        probe_id: id.clone(),
                    });
                }
            }
        }
        if !s.expired.is_empty() {
            continue;
        }
        let seed_name = mb.seed.name.clone();
        if !s.in_flight
            && ctx
                .board
                .release_if_idle(&me, |e| e.record.seed == seed_name)
        {
            break;
        }
        if s.next_deadline.is_none() {
            // None of the seed's probes was accepted by its SMTP server yet, so none can have
            // arrived: wait for that instead of asking the IMAP server (a failed send leaves
            // the sweep). The sender wakes this seed's watcher alone when its send resolves;
            // the fast window starts with the first acceptance.
            let _ = tokio::time::timeout(ACCEPT_WAIT, wake.notified()).await;
            continue;
        }
        let fresh = |t: Option<Instant>| t.is_some_and(|t| now < t + FAST_WINDOW);
        if fresh(s.latest_accepted) || fresh(ctx.board.last_found()) {
            pause = due_pause(mb.seed.poll_interval, s.behind.unwrap_or_default());
        } else if mb.inbox.offers_idle() {
            // Past the fast window: let the server tell (IDLE), not polled with growing pauses.
            pause = SLOW_CHECK;
        } else {
            pause = (pause.mul_f64(1.5)).min(SLOW_CHECK);
        }
        let mut wait = pause;
        // A new probe of the seed ends a wait at once, unless the server is failing or asked
        // us to back off: then nothing cuts the pause short.
        let quiet = Notify::new();
        let wake = if mb.last_error.is_none() && mb.backoff_left().is_none() {
            wake
        } else {
            &quiet
        };
        if mb.last_error.is_some() {
            // A failing server is retried gently, not hammered.
            wait = wait.max(Duration::from_secs(1));
        }
        if let Some(backoff) = mb.backoff_left() {
            // The server throttles the account: leave it alone as long as it asked.
            wait = wait.max(backoff);
        }
        if let Some(due) = s.next_deadline {
            wait = wait.min(due.saturating_duration_since(now));
        }
        let mut seen = watched(ctx, &mb.seed.name);
        let deadlines: Vec<String> = seen.keys().cloned().collect();
        // The step may start before a send resolves; the bound follows the deadlines as the
        // sends give them.
        let finished = tokio::select! {
            result = wait_and_check(ctx, mb, &mut seen, since, wait, wake) => Some(result),
            () = past_deadlines(ctx, &deadlines) => None,
        };
        match finished {
            Some(result) => result?,
            None => abandon(ctx, mb),
        }
    }
    // Nothing of the seed is in flight: now the cleanup, bounded like a check.
    if tokio::time::timeout(crate::imap::COMMAND_TIMEOUT, flush_cleanup(ctx, mb))
        .await
        .is_err()
    {
        mb.reset();
    }
    Ok(())
}

/// The seed's IMAP server, as the board's frontiers name a receiver.
fn receiver(seed: &Seed) -> String {
    format!("{}:{}", seed.host, seed.port)
}

/// The pause between checks while a probe may arrive: the seed's poll interval, or, while
/// every probe of the seed is queued `behind` others of its route, a quarter of that (the
/// frontier would have to move four times faster than the mail was accepted to get there
/// first), at most [`QUEUED_PAUSE`].
fn due_pause(poll: Duration, behind: Duration) -> Duration {
    (behind / 4).min(QUEUED_PAUSE).max(poll)
}

/// Resolves [`CHECK_GRACE`] after the earliest deadline of `ids` in flight, as soon as one is
/// known (a probe has a deadline once its send was accepted).
async fn past_deadlines(ctx: &WatchCtx, ids: &[String]) {
    loop {
        let due = ids
            .iter()
            .filter_map(|id| match ctx.board.entry(id) {
                Some(Entry {
                    watch: Watch::InFlight,
                    send: SendState::Accepted { instant, .. },
                    ..
                }) => Some(instant + ctx.config.probe.timeout),
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
    mb.reset();
    let e = ImapError::Timeout {
        server: format!("{}:{}", mb.seed.host, mb.seed.port),
        seconds: ctx.config.probe.timeout.as_secs(),
    };
    note_imap_error(ctx, mb, e);
}

/// Waits (IDLE for long pauses, else a plain sleep), then checks the folders. A new probe of
/// the seed accepted meanwhile (`wake`) ends the wait at once.
async fn wait_and_check(
    ctx: &WatchCtx,
    mb: &mut SeedMailbox,
    watched: &mut HashMap<String, ProbeRecord>,
    since: chrono::DateTime<chrono::Utc>,
    wait: Duration,
    wake: &Notify,
) -> Result<(), StateError> {
    if wait >= IDLE_FROM && mb.inbox.is_connected() {
        flush_cleanup(ctx, mb).await;
        // The long tail: let the server tell us (IDLE) instead of polling it, on the inbox and
        // the spam folder at once; the first to hear something ends both, and so does a new
        // probe of the seed.
        let stop = Notify::new();
        let ended = {
            let (inbox_conn, spam_conn) = (&mut mb.inbox, mb.spam.as_mut());
            let idles = async {
                tokio::join!(
                    async {
                        let r = inbox_conn.idle(wait, &stop).await;
                        stop.notify_one();
                        r
                    },
                    async {
                        match spam_conn.filter(|s| s.is_connected()) {
                            Some(s) => {
                                let r = s.idle(wait, &stop).await;
                                stop.notify_one();
                                r
                            }
                            None => Ok(()),
                        }
                    }
                )
            };
            tokio::pin!(idles);
            let (inbox, spam) = tokio::select! {
                both = &mut idles => both,
                () = wake.notified() => {
                    // End both IDLEs with DONE (never drop one mid-command): wake those waiting,
                    // and leave a permit for one that has not reached its wait yet.
                    stop.notify_waiters();
                    stop.notify_one();
                    idles.await
                }
            };
            inbox.and(spam)
        };
        if let Err(e) = ended {
            note_imap_error(ctx, mb, e);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    } else {
        let _ = tokio::time::timeout(wait, wake.notified()).await;
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

/// Expires one probe past its timeout: `missing` when the mailbox was readable, else
/// `unknown`; it is still looked for until its late window ends.
fn expire(ctx: &WatchCtx, mb: &SeedMailbox, entry: &Entry) -> Result<(), StateError> {
    let rec = &entry.record;
    let (placement, err) = match &mb.last_error {
        Some(e) => (Placement::Unknown, Some(e)),
        None => (Placement::Missing, None),
    };
    ctx.store.expire(
        &rec.probe_id,
        placement,
        err.map(|e| e.to_string()).as_deref(),
        err.map(|e| e.reason()),
    )?;
    let first_time = !matches!(rec.state, ProbeState::Missing | ProbeState::Unknown);
    ctx.metrics
        .probe_expired(&rec.route, &rec.seed, placement, first_time);
    if let Some(now) = ctx.store.get(&rec.probe_id)? {
        ctx.board.expired(now.clone());
        ctx.report(Event::Outcome {
            record: Box::new(now),
            last: true,
        });
    }
    Ok(())
}

fn note_imap_error(ctx: &WatchCtx, mb: &mut SeedMailbox, e: ImapError) {
    ctx.metrics.imap_error(&mb.seed.name, &e);
    mb.last_error = Some(e);
    ctx.board.set_readable(&mb.seed.name, false);
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
                mb.spam = Some(FolderConn::new(&seed, &name, token::HEADER));
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
        Ok(()) => {
            mb.last_error = None;
            ctx.board.set_readable(&mb.seed.name, true);
        }
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
                resolve(ctx, seed, watched, &record, &found)
                    .await
                    .map_err(CheckError::State)?
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

/// Judges a verified probe from its header section (with the audit of the address the
/// receiver saw) and records it. Returns whether it was resolved just now (only then is it
/// cleaned up).
async fn resolve(
    ctx: &WatchCtx,
    seed: &Seed,
    watched: &mut HashMap<String, ProbeRecord>,
    record: &ProbeRecord,
    found: &Found<'_>,
) -> Result<bool, StateError> {
    let seen_at = crate::clock::now();
    let folder = found.folder;
    let mut judgement = judge::judge(found.raw, &seed.authserv_ids, &judge::receiver_of(seed));
    judgement.tab = found.tab;
    if let Some(route) = ctx.config.route(&record.route) {
        judgement.seen_ip =
            seen_address::audit(ctx.seen_ips.as_deref(), route, &ctx.config, &judgement).await;
    }
    let placement = found.role.placement();
    let accepted_at = match ctx.board.send_state(&record.probe_id) {
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
    ctx.board.found(&record.probe_id, &receiver(seed));
    ctx.board.done(&record.probe_id, false);
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
    if let Some(now) = ctx.store.get(&record.probe_id)? {
        ctx.report(Event::Outcome {
            record: Box::new(now),
            last: true,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
