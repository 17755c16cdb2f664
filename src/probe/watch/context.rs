//! What the watchers share with the senders and the prober: the **board** of every probe being
//! watched ([`Board`]: in flight, or expired and still looked for in its late window), the
//! **events** a watcher or a sender reports (an outcome, a probe overdue: [`Event`]), and the
//! context each watcher is given ([`WatchCtx`]).
//!
//! The board is the process's, not a round's: a probe still in flight never holds back other
//! pairs' next probes, and a seed's watcher picks up every probe of its seed whenever it was
//! sent. Senders and watchers write the board; the prober reads it and settles what its rounds
//! wait for once it has handled the events (so that a confirmation probe asked for by an
//! outcome is on the board before the probe that asked for it is settled). Neither side imports
//! the other, and nobody calls the prober back: events go one way, over a channel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::dns_audit::SeenIpAuditor;
use crate::metrics::Metrics;
use crate::state::probes::{ProbeRecord, ProbeStore};

/// How long sending waits for the watchers' first look at their mailboxes (at most the probe
/// timeout).
pub const BASELINE_WAIT: Duration = Duration::from_secs(45);

/// How a probe's send stands, as the watchers see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SendState {
    /// Not resolved yet: the probe has no deadline yet and can never be `missing`.
    Pending,
    /// Accepted by the SMTP server at this Unix time / instant.
    Accepted { at: f64, instant: Instant },
    /// Refused or failed: not watched.
    Failed,
}

/// Where a probe on the board is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Watch {
    /// In flight: its send pending or accepted (a deferred probe too): watched until found or
    /// timed out.
    InFlight,
    /// Timed out (`missing` or `unknown`): still looked for until its late window ends, by
    /// whichever watcher of its seed runs.
    Expired,
    /// Found, refused, or never sent: not looked for; leaves the board once settled.
    Done,
}

/// One probe on the board.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) record: ProbeRecord,
    pub(crate) send: SendState,
    pub(crate) watch: Watch,
    /// An `overdue` event was sent for it.
    pub(crate) overdue_noted: bool,
    /// The round it belongs to need not wait for it any more.
    pub(crate) settled: bool,
    /// When it leaves the board whatever happens (Unix seconds): the end of its late window.
    pub(crate) watched_until: f64,
}

/// How far a route's mail system has got with its deliveries to one receiver (an IMAP
/// server): the acceptance of the newest probe found there, and when that was found. A mail
/// system delivers a destination's queue roughly in the order it accepted the mail, so a probe
/// accepted well after the frontier is still queued behind others, and its watcher need not
/// ask for it at the poll interval yet ([`Board::behind`]).
#[derive(Debug, Clone, Copy)]
struct Frontier {
    accepted: Instant,
    found: Instant,
}

/// A frontier counts only while the route's mail keeps arriving at the receiver: this soon
/// after its last find. A mail system that paused (or a new round, later) gets no estimate.
pub(crate) const FRONTIER_FRESH: Duration = Duration::from_secs(5);

/// Who watches a mailbox: a seed's watcher, or a bounce mailbox's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Watcher {
    Seed(String),
    Bounces(String),
}

/// Everything on the board, behind its lock.
#[derive(Default)]
pub(crate) struct BoardState {
    pub(crate) probes: HashMap<String, Entry>,
    /// The ids of `probes` by seed: a watcher's look at its seed's probes reads its own, not
    /// the whole board (a thousand watchers polling a board of thousands of probes).
    by_seed: HashMap<String, HashSet<String>>,
    /// When a probe was last found, in any mailbox.
    pub(crate) last_found: Option<Instant>,
    /// How far each route's mail system has delivered to each receiver: see [`Frontier`].
    /// By route, then receiver.
    frontiers: HashMap<String, HashMap<String, Frontier>>,
    /// The watchers running, each with the generation of its claim.
    running: HashMap<Watcher, u64>,
    /// Watchers that released their claim and are finishing (cleaning up) before they end.
    closing: HashMap<Watcher, u64>,
    generation: u64,
    /// The running watchers that have had their first look at their mailbox.
    ready: HashSet<Watcher>,
    /// Per watcher, the signal of its first look (or its end), for the sends waiting for it.
    ready_signals: HashMap<Watcher, Arc<tokio::sync::Notify>>,
    /// Seeds whose mailbox could not be read at the last look: a probe we cannot look for is
    /// not overdue.
    unreadable: HashSet<String>,
}

impl BoardState {
    /// Takes a probe off the board, and out of its seed's index.
    fn remove(&mut self, id: &str) {
        let Some(e) = self.probes.remove(id) else {
            return;
        };
        if let Some(ids) = self.by_seed.get_mut(&e.record.seed) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_seed.remove(&e.record.seed);
            }
        }
    }
}

/// The board, shared by the prober, the senders and the watchers, with a signal for every
/// change (a send resolved, a probe registered, found, expired or settled).
#[derive(Clone, Default)]
pub(crate) struct Board(Arc<BoardShared>);

#[derive(Default)]
pub(crate) struct BoardShared {
    state: Mutex<BoardState>,
    changed: tokio::sync::Notify,
}

impl Board {
    pub(crate) fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes everyone waiting in [`Board::changed`].
    pub(crate) fn notify(&self) {
        self.0.changed.notify_waiters();
    }

    /// A wait for the next change; enable it before looking at the board, so that a change in
    /// between is not missed.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.changed.notified()
    }

    /// Puts a probe that is about to be sent (or resumed after a restart) on the board.
    pub(crate) fn register(&self, entry: Entry) {
        {
            let mut b = self.lock();
            b.by_seed
                .entry(entry.record.seed.clone())
                .or_default()
                .insert(entry.record.probe_id.clone());
            b.probes.insert(entry.record.probe_id.clone(), entry);
        }
        self.notify();
    }

    /// The SMTP server accepted the probe at `at`.
    pub(crate) fn accepted(&self, id: &str, at: f64) {
        if let Some(e) = self.lock().probes.get_mut(id) {
            e.send = SendState::Accepted {
                at,
                instant: Instant::now(),
            };
            e.record.sent_at = Some(at);
        }
        self.notify();
    }

    /// The probe is done: found, refused by the receiver, or never sent. Watchers stop looking
    /// for it; the prober settles it once it handled its outcome.
    pub(crate) fn done(&self, id: &str, send_failed: bool) {
        if let Some(e) = self.lock().probes.get_mut(id) {
            e.watch = Watch::Done;
            if send_failed {
                e.send = SendState::Failed;
            }
        }
        self.notify();
    }

    /// The probe timed out (`record` as now stored) and is now only looked for in its late
    /// window.
    pub(crate) fn expired(&self, record: ProbeRecord) {
        if let Some(e) = self.lock().probes.get_mut(&record.probe_id) {
            e.watch = Watch::Expired;
            e.record = record;
        }
        self.notify();
    }

    /// The probe's stored record changed (a delay notice came back): keep the board's copy in
    /// step, still in flight.
    pub(crate) fn update(&self, record: ProbeRecord) {
        if let Some(e) = self.lock().probes.get_mut(&record.probe_id) {
            e.record = record;
        }
    }

    /// The probes of a pair in flight (a round that skips the pair waits for them instead).
    pub(crate) fn in_flight_of(&self, route: &str, seed: &str) -> Vec<String> {
        self.lock()
            .probes
            .values()
            .filter(|e| {
                e.watch == Watch::InFlight && e.record.route == route && e.record.seed == seed
            })
            .map(|e| e.record.probe_id.clone())
            .collect()
    }

    /// Whether none of `ids` is in flight any more.
    pub(crate) fn none_in_flight(&self, ids: &[String]) -> bool {
        let b = self.lock();
        ids.iter()
            .all(|id| b.probes.get(id).is_none_or(|e| e.watch != Watch::InFlight))
    }

    /// The probe's round need not wait for it any more; a done probe leaves the board.
    pub(crate) fn settle(&self, id: &str) {
        {
            let mut b = self.lock();
            match b.probes.get(id).map(|e| e.watch) {
                Some(Watch::Done) => {
                    b.remove(id);
                }
                Some(_) => {
                    if let Some(e) = b.probes.get_mut(id) {
                        e.settled = true;
                    }
                }
                None => {}
            }
        }
        self.notify();
    }

    /// Marks an overdue probe as reported; false when it already was (or is not in flight).
    pub(crate) fn note_overdue(&self, id: &str) -> bool {
        let mut b = self.lock();
        match b.probes.get_mut(id) {
            Some(e) if e.watch == Watch::InFlight && !e.overdue_noted => {
                e.overdue_noted = true;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn send_state(&self, id: &str) -> SendState {
        self.lock()
            .probes
            .get(id)
            .map_or(SendState::Failed, |e| e.send)
    }

    /// When a probe was last found.
    pub(crate) fn last_found(&self) -> Option<Instant> {
        self.lock().last_found
    }

    /// A probe was found just now at `receiver` (its IMAP server): the route's frontier there
    /// moves up to its acceptance.
    pub(crate) fn found(&self, id: &str, receiver: &str) {
        let now = Instant::now();
        let mut b = self.lock();
        b.last_found = Some(now);
        let Some((route, SendState::Accepted { instant, .. })) =
            b.probes.get(id).map(|e| (e.record.route.clone(), e.send))
        else {
            return;
        };
        let f = b
            .frontiers
            .entry(route)
            .or_default()
            .entry(receiver.to_string())
            .or_insert(Frontier {
                accepted: instant,
                found: now,
            });
        f.accepted = f.accepted.max(instant);
        f.found = now;
    }

    /// How long after the route's frontier at `receiver` a probe accepted at `accepted` was
    /// accepted: zero when it is not behind, or when nothing of the route was found there in
    /// the [`FRONTIER_FRESH`] before `now` (no estimate, so no reason to wait).
    pub(crate) fn behind(
        &self,
        route: &str,
        receiver: &str,
        accepted: Instant,
        now: Instant,
    ) -> Duration {
        self.lock()
            .frontiers
            .get(route)
            .and_then(|r| r.get(receiver))
            .filter(|f| now < f.found + FRONTIER_FRESH)
            .map_or(Duration::ZERO, |f| {
                accepted.saturating_duration_since(f.accepted)
            })
    }

    /// Whether every probe of the round is settled.
    pub(crate) fn round_settled(&self, round_id: i64) -> bool {
        self.lock()
            .probes
            .values()
            .all(|e| e.record.round_id != round_id || e.settled)
    }

    /// The probes a seed's watcher looks for (in flight or in their late window), by id.
    pub(crate) fn watched_at(&self, seed: &str) -> Vec<Entry> {
        let b = self.lock();
        b.by_seed
            .get(seed)
            .into_iter()
            .flatten()
            .filter_map(|id| b.probes.get(id))
            .filter(|e| e.watch != Watch::Done)
            .cloned()
            .collect()
    }

    /// Drops probes whose late window ended (whatever their state: the store keeps them).
    pub(crate) fn forget_older(&self, now: f64) {
        let mut b = self.lock();
        let old: Vec<String> = b
            .probes
            .values()
            .filter(|e| e.watched_until <= now)
            .map(|e| e.record.probe_id.clone())
            .collect();
        for id in old {
            b.remove(&id);
        }
    }

    /// Claims `w` for a new watcher task: `None` when one runs already (it will see the new
    /// probes on the board), else the claim's generation.
    pub(crate) fn claim(&self, w: &Watcher) -> Option<u64> {
        let mut b = self.lock();
        if b.running.contains_key(w) {
            return None;
        }
        b.generation += 1;
        let generation = b.generation;
        b.running.insert(w.clone(), generation);
        Some(generation)
    }

    /// A watcher with nothing in flight left to watch releases its claim and ends; checked and
    /// released under one lock, so a probe registered meanwhile finds no watcher and starts one.
    pub(crate) fn release_if_idle(&self, w: &Watcher, in_flight: impl Fn(&Entry) -> bool) -> bool {
        let mut b = self.lock();
        let busy = b
            .probes
            .values()
            .any(|e| e.watch == Watch::InFlight && in_flight(e));
        if busy {
            return false;
        }
        if let Some(generation) = b.running.remove(w) {
            b.closing.insert(w.clone(), generation);
        }
        b.ready.remove(w);
        true
    }

    /// A watcher task ended abnormally (cancelled, panicked): its claim goes, unless a newer
    /// watcher holds the mailbox's claim by now.
    pub(crate) fn release(&self, w: &Watcher, generation: u64) {
        let signal = {
            let mut b = self.lock();
            if b.running.get(w) == Some(&generation) {
                b.running.remove(w);
                b.ready.remove(w);
            }
            if b.closing.get(w) == Some(&generation) {
                b.closing.remove(w);
            }
            b.ready_signals.remove(w)
        };
        if let Some(s) = signal {
            s.notify_waiters();
        }
    }

    /// Whether `w` still holds the claim of this generation.
    #[cfg(test)]
    pub(crate) fn holds(&self, w: &Watcher, generation: u64) -> bool {
        self.lock().running.get(w) == Some(&generation)
    }

    /// Whether a watcher is finishing (cleaning up) or runs with nothing of its mailbox in
    /// flight (it is about to).
    pub(crate) fn winding_down(&self) -> bool {
        let b = self.lock();
        let in_flight = |seed: Option<&str>| {
            b.probes
                .values()
                .any(|e| e.watch == Watch::InFlight && seed.is_none_or(|s| e.record.seed == s))
        };
        !b.closing.is_empty()
            || b.running.keys().any(|w| match w {
                Watcher::Seed(s) => !in_flight(Some(s)),
                Watcher::Bounces(_) => !in_flight(None),
            })
    }

    /// Whether the seed's mailbox could be read at the last look (true before any look).
    pub(crate) fn set_readable(&self, seed: &str, readable: bool) {
        let mut b = self.lock();
        if readable {
            b.unreadable.remove(seed);
        } else {
            b.unreadable.insert(seed.to_string());
        }
    }

    pub(crate) fn is_readable(&self, seed: &str) -> bool {
        !self.lock().unreadable.contains(seed)
    }

    /// The watcher had its first look at its mailbox.
    pub(crate) fn set_ready(&self, w: &Watcher) {
        let signal = {
            let mut b = self.lock();
            b.ready.insert(w.clone());
            b.ready_signals.remove(w)
        };
        if let Some(s) = signal {
            s.notify_waiters();
        }
        self.notify();
    }

    /// A wait for `w`'s first look (or its end): enable it before asking [`Board::is_ready`],
    /// so that a first look in between is not missed. Sends wait on their own watchers, not
    /// on every change of the board.
    pub(crate) fn ready_signal(&self, w: &Watcher) -> Arc<tokio::sync::Notify> {
        self.lock()
            .ready_signals
            .entry(w.clone())
            .or_default()
            .clone()
    }

    pub(crate) fn is_ready(&self, w: &Watcher) -> bool {
        self.lock().ready.contains(w)
    }

    pub(crate) fn entry(&self, id: &str) -> Option<Entry> {
        self.lock().probes.get(id).cloned()
    }
}

/// What a watcher or a sender reports to the prober.
#[derive(Debug)]
pub(crate) enum Event {
    /// A probe has an outcome (as now recorded): found, refused, deferred, expired, not sent.
    /// `last` when its round need not wait for it any more (not for a delay notice).
    Outcome {
        record: Box<ProbeRecord>,
        last: bool,
    },
    /// A probe in flight was not found a while (`probe.confirm_after`) after its acceptance,
    /// while its mailbox was readable.
    Overdue { probe_id: String },
}

/// The sending end of the events.
pub(crate) type Events = tokio::sync::mpsc::UnboundedSender<Event>;

/// What every watcher is given.
pub(crate) struct WatchCtx {
    pub(crate) store: Arc<ProbeStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// The config in force when the watcher started; it keeps it until it ends.
    pub(crate) config: Arc<Config>,
    pub(crate) board: Board,
    pub(crate) events: Events,
    /// When the watcher started (Unix seconds).
    pub(crate) started: f64,
    /// Audits the address the receiver saw of each probe found (`None`: no resolver).
    pub(crate) seen_ips: Option<Arc<SeenIpAuditor>>,
}

impl WatchCtx {
    /// The earliest arrival a watcher asks its mailbox for: the late window before it started,
    /// and a day more (servers date messages by their own clock and time zone, and IMAP `SINCE`
    /// compares dates only, RFC 9051 §6.4.4).
    pub(crate) fn since(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::<chrono::Utc>::from_timestamp(
            self.started as i64 - 86_400 - self.config.probe.late_window.as_secs() as i64,
            0,
        )
        .unwrap_or_else(chrono::Utc::now)
    }

    /// When a watcher's first look must be done (sending does not wait longer for it).
    pub(crate) fn baseline_until(&self) -> Instant {
        Instant::now() + BASELINE_WAIT.min(self.config.probe.timeout)
    }

    /// Reports an event to the prober (gone only at shutdown, when nothing needs it).
    pub(crate) fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

#[cfg(test)]
mod tests;
