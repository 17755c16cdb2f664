//! Reads a seed mailbox over IMAP (async-imap, RFC 3501): connections kept across rounds,
//! reconnected on demand — one for the inbox and the spam folder together where the server
//! offers NOTIFY (RFC 5465; the spam folder borrows it to read, [`FolderConn::borrow_from`]), else one
//! per folder. New messages are announced by NOOP or IDLE; a few are fetched straight from the
//! UID watermark, many are searched first. At most 16 logins run at once per
//! server. It only ever *reads* (BODY.PEEK, so `\Seen` is untouched) and cleans up UIDs the
//! caller has proven to be ours.
//!
//! What a server (or anyone who can mail the seed) sends cannot make it hang or grow:
//! - every command, the login and IDLE have a deadline; keep-alives do not extend IDLE;
//! - fetching is header-first: for new UIDs only the probe header and Message-ID, at most
//!   4 KiB each (a partial fetch, RFC 3501 §6.4.5), then the header section — never the body —
//!   of the messages the caller verified as probes, at most 1 MiB each, in small batches;
//! - the [`guard`] refuses literals, lines and answers over fixed limits before they are parsed;
//! - the UID watermark moves past a UID only after that UID was read, so a failed or stalled
//!   FETCH is retried on the next check and never loses a probe.
//!
//! At a server that announces Gmail's extensions ([`crate::gmail`]), probes are found by their
//! Message-ID (`X-GM-RAW "rfc822msgid:…"`) instead of a header search, an inbox hit gets its
//! tab, `[Gmail]/All Mail` is never selected, and throttling answers make the connection back
//! off (any server's: the words are Gmail's, the courtesy is general).

pub mod connect;
pub mod guard;
pub mod uids;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_imap::types::NameAttribute;
use futures::TryStreamExt;

use crate::config::{Cleanup, Seed};
use crate::gmail::{self, Tab, Throttle};
use crate::probe::token;
use crate::truncate;
use connect::ImapSession;
use guard::Budget;
use uids::uid_set;

/// Why reading a mailbox failed. `reason()` is the fixed metric label. Details are server
/// text, capped in length (see [`crate::truncate`]); they never carry the user name or password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
    /// No TCP connection, or the connection dropped.
    #[error("cannot connect to IMAP server {server}: {detail}")]
    Network { server: String, detail: String },
    /// The TLS handshake or certificate check failed.
    #[error("TLS with IMAP server {server} failed: {detail}")]
    Tls { server: String, detail: String },
    /// The server refused the login.
    #[error("IMAP server {server} rejected the login: {detail}")]
    Auth { server: String, detail: String },
    /// The server did not answer before the deadline.
    #[error("IMAP server {server} did not answer within {seconds} s")]
    Timeout { server: String, seconds: u64 },
    /// The server answered NO/BAD, something unparsable, or more than we accept.
    #[error("IMAP server {server}: {detail}")]
    Protocol { server: String, detail: String },
    /// The server throttles this account (Gmail's `[THROTTLED]`, exceeded bandwidth or command
    /// limits, too many connections): we back off.
    #[error("IMAP server {server} throttles this account: {detail}")]
    Throttled { server: String, detail: String },
}

impl ImapError {
    pub fn reason(&self) -> &'static str {
        match self {
            ImapError::Network { .. } => "network",
            ImapError::Tls { .. } => "tls",
            ImapError::Auth { .. } => "auth",
            ImapError::Timeout { .. } => "timeout",
            ImapError::Protocol { .. } => "protocol",
            ImapError::Throttled { .. } => "throttled",
        }
    }

    pub(crate) fn network(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Network {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn tls(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Tls {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn auth(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Auth {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn protocol(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Protocol {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    fn throttled(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Throttled {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    fn timeout(server: &str, limit: Duration) -> Self {
        ImapError::Timeout {
            server: server.to_string(),
            seconds: limit.as_secs(),
        }
    }
}

/// An I/O error: what the guard refused and what async-imap could not parse (both reach us
/// as I/O errors of kind `InvalidData` / `Other`) are `protocol`; the rest is `network`.
pub(crate) fn classify_io(server: &str, context: &str, e: std::io::Error) -> ImapError {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => {
            ImapError::protocol(server, format!("{context}: {e}"))
        }
        _ => ImapError::network(server, format!("{context}: {e}")),
    }
}

/// Logins under way to one IMAP server at most. A thousand seeds on one server logging in at
/// once (the first round of a large instance) overload it and the probe alike, and delay the
/// detection of the probes whose seeds are already watched; a server that does not answer only
/// holds up its own seeds' logins.
const LOGINS_PER_SERVER: usize = 16;

/// The gate for logins to `server` (`host:port`), shared by every connection to it.
fn login_gate(server: &str) -> std::sync::Arc<tokio::sync::Semaphore> {
    static GATES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>,
    > = std::sync::OnceLock::new();
    GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(server.to_string())
        .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(LOGINS_PER_SERVER)))
        .clone()
}

/// A mailbox name as an IMAP quoted string (RFC 3501 §4.3).
fn quoted(name: &str) -> String {
    let mut q = String::with_capacity(name.len() + 2);
    q.push('"');
    for c in name.chars().filter(|c| !matches!(c, '\r' | '\n')) {
        if matches!(c, '"' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Maps an async-imap error to our kinds.
pub(crate) fn classify(server: &str, context: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    match e {
        E::Io(io) => classify_io(server, context, io),
        E::ConnectionLost => ImapError::network(server, format!("{context}: connection lost")),
        other => ImapError::protocol(server, format!("{context}: {other}")),
    }
}

/// How long one IMAP command (or the whole login) may take before the connection counts as
/// broken.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// New UIDs whose probe header is fetched per command.
const FIELDS_BATCH: usize = 128;
/// New UIDs looked at per check; the rest wait for the next check (the watermark stays).
const MAX_NEW_PER_CHECK: usize = 1024;
/// Verified probes whose header section is fetched per command.
const HEADER_BATCH: usize = 8;
/// Searches after an announcement at Gmail before giving up on an expected message being
/// indexed (at the preset's 2 s poll interval, about 10 s of index lag).
const GMAIL_INDEX_GRACE: u8 = 5;
/// Message-IDs per Gmail search (`rfc822msgid:a OR rfc822msgid:b …`): keeps the line short.
const GMAIL_IDS_PER_SEARCH: usize = 20;
/// The most new messages whose probe header is fetched straight from the watermark
/// (`UID FETCH <watermark>:*`, one command) instead of searched for first: a mailbox that was
/// sent many messages at once is searched, so no answer grows with a mail bomb.
const DIRECT_FETCH_MAX: u32 = 64;
/// How long the folder a connection hears about through NOTIFY may go unlooked at while
/// checks run, in case a notification was lost.
const OTHER_FOLDER_RECHECK: Duration = Duration::from_secs(30);
/// The probe header and Message-ID fit easily; a forged one cannot make us read more.
const FIELDS_PARTIAL: u32 = 4096;
/// A real receiver's header section (Received, ARC, Authentication-Results) fits easily.
const HEADER_PARTIAL: u32 = 1024 * 1024;

/// The probe header and Message-ID of a new message, to verify before fetching more.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub uid: u32,
    /// RFC822.SIZE, as the server reports it.
    pub size: Option<u32>,
    /// The header fields `X-Mailcanary-Probe` and `Message-ID` (at most 4 KiB).
    pub fields: Vec<u8>,
}

/// What a watched folder holds, which decides what is searched and fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A seed's folder: messages with our probe header; the header section of verified ones.
    Probes,
    /// A bounce mailbox: every new message; the start (256 KiB) of those whose From, Subject
    /// and Content-Type look like a bounce, to read the delivery status report.
    Bounces,
    /// A report mailbox: every new message; the whole of those the caller wants (a DMARC or
    /// TLS report is an attachment), read in [`WHOLE_CHUNK`] pieces.
    Reports,
}

/// A whole message is read in pieces of this size (partial fetches, RFC 3501 §6.4.5), so a
/// report mail never needs a literal over the guard's limit.
const WHOLE_CHUNK: u32 = 1024 * 1024;
/// The largest message read whole (the report reader's own input limit).
pub const MAX_WHOLE_BYTES: u32 = crate::reports::MAX_INPUT_BYTES as u32;

/// How much of a bounce is read: the report and the returned headers come first.
const BOUNCE_PARTIAL: u32 = 256 * 1024;

/// A verified probe's header section (or a bounce's start), as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// What the server offers that changes how we clean up (asked once per connection).
#[derive(Debug, Clone, Copy, Default)]
struct Capabilities {
    /// MOVE (RFC 6851).
    move_: bool,
    /// UIDPLUS (RFC 4315): UID EXPUNGE removes only the given UIDs.
    uidplus: bool,
    /// Gmail's IMAP extensions (`X-GM-EXT-1`).
    gmail: bool,
    /// NOTIFY (RFC 5465): the server tells about other folders than the selected one.
    notify: bool,
    /// IDLE (RFC 2177).
    idle: bool,
}

/// A logged-in connection handed from one folder of a mailbox to another
/// ([`FolderConn::borrow_from`], [`FolderConn::hand_back`]): the folders of a seed share one connection where the server can tell
/// about the folder that is not selected (NOTIFY), so a seed costs one connection, not two.
struct Lease {
    session: ImapSession,
    budget: Budget,
    caps: Capabilities,
    selected: Option<String>,
    notify_set: bool,
}

/// One folder of a mailbox and the connection that has it selected (its own, or one it shares
/// with the mailbox's other folder and borrows for a look).
pub struct FolderConn {
    kind: FolderKind,
    seed: Seed,
    server: String,
    pub folder: String,
    session: Option<ImapSession>,
    budget: Budget,
    caps: Capabilities,
    /// The folder the session has selected (it may have been lent to another folder).
    selected: Option<String>,
    /// The other folder of the mailbox this connection is to hear about (NOTIFY, RFC 5465).
    notify_for: Option<String>,
    /// NOTIFY is set on this session for `notify_for`.
    notify_set: bool,
    /// Something may have changed in `notify_for` since it was last looked at: the server said
    /// so (`* STATUS`), or it cannot have (new session, an IDLE consumed what it said).
    other_news: bool,
    /// When `notify_for` was last reported looked at ([`Self::take_other_news`]).
    other_looked_at: Option<Instant>,
    /// The UIDNEXT up to which `notify_for` was read when it handed the connection back: what
    /// arrived there just before may never be notified, so a STATUS compares once this folder
    /// is selected again.
    other_read_to: Option<u32>,
    /// How many messages the session says the folder holds (SELECT, EXISTS, EXPUNGE).
    exists: Option<u32>,
    /// `exists` when the last read covered every message (`None`: not known).
    read_at: Option<u32>,
    uid_validity: Option<u32>,
    /// UIDNEXT at the last SELECT: where the first search may start watching from.
    uid_next: Option<u32>,
    /// The next UID not yet read: new messages get higher UIDs (RFC 3501 §2.3.1.1).
    watermark: Option<u32>,
    seen: HashSet<u32>,
    pub commands: u64,
    /// The server may hold messages no SEARCH has looked at: it announced some (`* n EXISTS`,
    /// RFC 3501 §7.3.1), an IDLE ended, or the connection is new. While false, a check whose
    /// NOOP announced nothing skips the SEARCH.
    announced: bool,
    /// Searches still owed to the last announcement at Gmail: its search index trails the
    /// mailbox, so a message announced by EXISTS may be found only a few checks later.
    index_grace: u8,
    /// Verified messages of ours waiting to be cleaned up in one command ([`Self::flush_cleanup`]),
    /// so cleanup never sits between a delivery and its detection. Forgotten if UIDVALIDITY
    /// changes: a UID of another validity may name someone else's message.
    to_clean: Vec<u32>,
    throttle: ThrottleState,
}

/// What the server's throttling answers asked of this connection.
#[derive(Debug, Default)]
struct ThrottleState {
    /// Throttling answers in a row; reset by a check without one.
    in_a_row: u32,
    /// No command before this instant (after a throttling answer).
    until: Option<Instant>,
    /// A throttling answer to a command that still worked, for the caller to count.
    slowed: Option<ImapError>,
}

impl ThrottleState {
    /// A throttling answer arrived: back off, longer each time in a row. Answers during a
    /// back-off (the rest of the check that met the first one) do not lengthen it.
    fn note(&mut self) -> Duration {
        let now = Instant::now();
        if let Some(until) = self.until.filter(|u| *u > now) {
            return until - now;
        }
        self.in_a_row = self.in_a_row.saturating_add(1);
        let pause = gmail::backoff(self.in_a_row);
        self.until = Some(now + pause);
        pause
    }

    /// Turns what the guard saw during a command into back-off and the command's result: a
    /// refusal (even of a command async-imap let pass) replaces the result, a slow-down is
    /// kept for the caller to count.
    fn after<T>(
        &mut self,
        budget: &Budget,
        server: &str,
        result: Result<T, ImapError>,
    ) -> Result<T, ImapError> {
        let failure = budget.take_failure();
        match (budget.take_throttle(), result) {
            (Some(Throttle::Refused), result) => {
                let pause = self.note();
                let why = match (result, failure) {
                    (Err(e), _) => e.to_string(),
                    (Ok(_), Some(line)) => line,
                    (Ok(_), None) => "the server refused the command".to_string(),
                };
                Err(ImapError::throttled(
                    server,
                    format!("backing off {} s: {why}", pause.as_secs()),
                ))
            }
            // async-imap reads a tagged NO/BAD to SEARCH as "nothing found": it is an error.
            (seen, Ok(_)) if failure.is_some() => {
                if seen.is_some() {
                    self.note();
                }
                Err(ImapError::protocol(
                    server,
                    format!(
                        "the server refused the command: {}",
                        failure.unwrap_or_default()
                    ),
                ))
            }
            (None, result) => result,
            (Some(_), result) => {
                let pause = self.note();
                self.slowed = Some(ImapError::throttled(
                    server,
                    format!(
                        "a command answered [THROTTLED]; backing off {} s",
                        pause.as_secs()
                    ),
                ));
                result
            }
        }
    }
}

impl FolderConn {
    pub fn new(seed: &Seed, folder: &str) -> Self {
        Self::of_kind(FolderKind::Probes, seed, folder)
    }

    /// A bounce mailbox's folder (`seed` holds its connection settings).
    pub fn for_bounces(mailbox: &Seed) -> Self {
        Self::of_kind(FolderKind::Bounces, mailbox, &mailbox.inbox_folder)
    }

    /// A report mailbox's folder (`seed` holds its connection settings).
    pub fn for_reports(mailbox: &Seed) -> Self {
        Self::of_kind(FolderKind::Reports, mailbox, &mailbox.inbox_folder)
    }

    fn of_kind(kind: FolderKind, seed: &Seed, folder: &str) -> Self {
        FolderConn {
            kind,
            seed: seed.clone(),
            server: format!("{}:{}", seed.host, seed.port),
            folder: folder.to_string(),
            session: None,
            budget: Budget::default(),
            caps: Capabilities::default(),
            selected: None,
            notify_for: None,
            notify_set: false,
            other_news: true,
            other_looked_at: None,
            other_read_to: None,
            exists: None,
            read_at: None,
            uid_validity: None,
            uid_next: None,
            watermark: None,
            seen: HashSet::new(),
            commands: 0,
            announced: true,
            index_grace: 0,
            to_clean: Vec::new(),
            throttle: ThrottleState::default(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.session.is_some()
    }

    /// Drops the connection; the next call reconnects.
    pub fn reset(&mut self) {
        self.session = None;
        self.selected = None;
        self.notify_set = false;
        self.other_news = true;
        self.announced = true;
    }

    /// Borrows the logged-in connection of `owner`, another folder of the same mailbox (its
    /// inbox, which hears about this folder through NOTIFY); the next command selects this
    /// folder on it. `false` when `owner` is not connected.
    pub fn borrow_from(&mut self, owner: &mut FolderConn) -> bool {
        match owner.lend() {
            Some(lease) => {
                self.adopt(lease);
                true
            }
            None => false,
        }
    }

    /// Gives a borrowed connection back to `owner`, which selects itself again at its next
    /// command and then asks (STATUS) whether this folder got more than it read: what arrived
    /// just before the hand-back may never be notified. Nothing to give after a failure
    /// dropped the connection: `owner` reconnects.
    pub fn hand_back(&mut self, owner: &mut FolderConn) {
        if let Some(lease) = self.lend() {
            owner.adopt(lease);
            owner.other_news |= self.announced || self.watermark.is_none();
            owner.other_read_to = self.watermark;
        }
    }

    /// Takes the logged-in connection away from this folder (`None` when not connected).
    fn lend(&mut self) -> Option<Lease> {
        // What the server said so far is about this folder, not the next one's.
        self.drain_unsolicited();
        let session = self.session.take()?;
        Some(Lease {
            session,
            budget: std::mem::take(&mut self.budget),
            caps: self.caps,
            selected: self.selected.take(),
            notify_set: std::mem::replace(&mut self.notify_set, false),
        })
    }

    fn adopt(&mut self, lease: Lease) {
        self.session = Some(lease.session);
        self.budget = lease.budget;
        self.caps = lease.caps;
        self.selected = lease.selected;
        self.notify_set = lease.notify_set;
    }

    /// Whether the server offers IDLE (known once connected).
    pub fn offers_idle(&self) -> bool {
        self.caps.idle
    }

    /// Whether the server offers NOTIFY (known once connected).
    pub fn offers_notify(&self) -> bool {
        self.caps.notify
    }

    /// Asks the server to tell, on this folder's connection, about new and expunged messages in
    /// `other` too (NOTIFY, RFC 5465), now and after every reconnect. `Ok(false)` when the
    /// server does not offer or refuses it: `other` then needs a connection of its own.
    pub async fn notify_about(&mut self, other: &str) -> Result<bool, ImapError> {
        self.notify_for = Some(other.to_string());
        self.ensure().await?;
        if !self.notify_set && self.caps.notify {
            self.set_notify(other).await?;
        }
        if !self.notify_set {
            self.notify_for = None;
        }
        Ok(self.notify_set)
    }

    /// Whether the folder named in [`Self::notify_about`] must be looked at: the server told of
    /// a change there, or could not have (no NOTIFY on this session, a new session, an IDLE
    /// that consumed what it said), or it was not looked at for [`OTHER_FOLDER_RECHECK`] — in
    /// case a notification was lost. Calling it counts as looking.
    pub fn take_other_news(&mut self) -> bool {
        let stale = self
            .other_looked_at
            .is_none_or(|t| t.elapsed() >= OTHER_FOLDER_RECHECK);
        let news = std::mem::replace(&mut self.other_news, false) || !self.notify_set || stale;
        if news {
            self.other_looked_at = Some(Instant::now());
        }
        news
    }

    /// The server announced new messages (EXISTS, or an IDLE that ended): search, and at
    /// Gmail keep searching a few checks if what is expected is not found at once.
    fn note_announcement(&mut self) {
        self.announced = true;
        self.index_grace = GMAIL_INDEX_GRACE;
    }

    /// Whether the server announced Gmail's extensions (known once connected).
    pub fn is_gmail(&self) -> bool {
        self.caps.gmail
    }

    /// How long the server asked us (by throttling) to leave it alone still.
    pub fn backoff_left(&self) -> Option<Duration> {
        self.throttle
            .until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// A throttling answer to a command that worked, once (for the caller to count and log).
    pub fn take_slowed(&mut self) -> Option<ImapError> {
        self.throttle.slowed.take()
    }

    /// Runs one command on the session with the command deadline and a fresh answer budget.
    async fn command<'a, T, F, Fut>(&'a mut self, context: &str, f: F) -> Result<T, ImapError>
    where
        F: FnOnce(&'a mut ImapSession) -> Fut,
        Fut: std::future::Future<Output = Result<T, async_imap::error::Error>> + 'a,
    {
        let server = self.server.clone();
        let Some(session) = self.session.as_mut() else {
            return Err(ImapError::network(&server, "not connected"));
        };
        self.budget.reset();
        self.commands += 1;
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, f(session)).await {
            Err(_) => Err(ImapError::timeout(&server, COMMAND_TIMEOUT)),
            Ok(Err(e)) => Err(classify(&server, context, e)),
            Ok(Ok(v)) => Ok(v),
        };
        self.throttle.after(&self.budget, &server, result)
    }

    /// Logs in if there is no connection, and selects this folder if the connection has
    /// another one selected. Returns whether it selected (a fresh look at the folder).
    async fn ensure(&mut self) -> Result<bool, ImapError> {
        if self.session.is_none() {
            self.login().await?;
        }
        if self.selected.as_deref() == Some(self.folder.as_str()) {
            return Ok(false);
        }
        self.select().await?;
        Ok(true)
    }

    async fn login(&mut self) -> Result<(), ImapError> {
        // Each session has its own budget: a lent session took the old one with it.
        self.budget = Budget::default();
        self.selected = None;
        self.notify_set = false;
        self.other_news = true;
        let gate = login_gate(&self.server);
        let _turn = gate.acquire().await;
        let login = tokio::time::timeout(COMMAND_TIMEOUT, connect::login(&self.seed, &self.budget))
            .await
            .map_err(|_| ImapError::timeout(&self.server, COMMAND_TIMEOUT))
            .and_then(|r| r);
        // "Too many simultaneous connections" comes as the login's NO. A refused step that
        // the login recovered from (a mechanism tried first) is not the login's failure.
        if login.is_ok() {
            let _ = self.budget.take_failure();
        }
        let session = self.throttle.after(&self.budget, &self.server, login)?;
        self.commands += 2;
        self.session = Some(session);
        let caps = self
            .command("CAPABILITY", |s| s.capabilities())
            .await
            .inspect_err(|_| self.session = None)?;
        self.caps = Capabilities {
            move_: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
            gmail: caps.has_str(gmail::CAPABILITY),
            notify: caps.has_str("NOTIFY"),
            idle: caps.has_str("IDLE"),
        };
        Ok(())
    }

    async fn select(&mut self) -> Result<(), ImapError> {
        let folder = self.folder.clone();
        if self.caps.gmail && gmail::is_all_mail(&folder, &[]) {
            // All Mail holds every message but spam: a probe there says nothing about where
            // it landed, and reading it spends the account's IMAP bandwidth.
            self.session = None;
            return Err(ImapError::protocol(
                &self.server,
                format!(
                    "refusing to read {folder:?}: Gmail's All Mail says nothing about placement; watch INBOX"
                ),
            ));
        }
        let mailbox = self
            .command(&format!("cannot select folder {folder:?}"), |s| {
                s.select(&folder)
            })
            .await
            .inspect_err(|_| self.reset())?;
        self.selected = Some(folder);
        if mailbox.uid_validity != self.uid_validity {
            // A new UIDVALIDITY means old UIDs mean nothing (RFC 3501 §2.3.1.1).
            self.uid_validity = mailbox.uid_validity;
            self.watermark = None;
            self.seen.clear();
            self.to_clean.clear();
        }
        self.uid_next = mailbox.uid_next;
        self.exists = Some(mailbox.exists);
        // Every message below the watermark was read, and the new ones have UIDs from the
        // watermark up to UIDNEXT: at most that many are new (fewer if some were expunged).
        self.read_at = match (self.uid_next, self.watermark) {
            (Some(next), Some(w)) => Some(mailbox.exists.saturating_sub(next.saturating_sub(w))),
            _ => None,
        };
        if !self.caps.gmail {
            // UIDNEXT says whether anything arrived since the last read (RFC 3501 §2.3.1.1);
            // at Gmail the search is by Message-ID and keeps its own account.
            self.announced = match (self.uid_next, self.watermark) {
                (Some(next), Some(w)) => next > w,
                _ => true,
            };
        }
        self.drain_unsolicited();
        if let Some(other) = self.notify_for.clone().filter(|_| self.caps.notify)
            && !self.notify_set
        {
            self.set_notify(&other).await?;
        }
        if let Some(read_to) = self.other_read_to.take()
            && let Some(other) = self.notify_for.clone().filter(|_| self.notify_set)
        {
            let status = self
                .command(
                    "STATUS",
                    |s| async move { s.status(&other, "(UIDNEXT)").await },
                )
                .await
                .inspect_err(|_| self.reset())?;
            self.drain_unsolicited();
            if status.uid_next.is_none_or(|next| next > read_to) {
                self.other_news = true;
            }
        }
        Ok(())
    }

    /// NOTIFY SET for the selected folder and `other` (RFC 5465 §3.1): new and expunged
    /// messages. A refusal leaves `notify_set` false (the other folder is then looked at on
    /// every check); a broken connection is an error.
    async fn set_notify(&mut self, other: &str) -> Result<(), ImapError> {
        let command = format!(
            "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (MAILBOXES {} (MessageNew MessageExpunge))",
            quoted(other)
        );
        match self
            .command("NOTIFY", |s| async move {
                s.run_command_and_check_ok(command).await
            })
            .await
        {
            Ok(()) => self.notify_set = true,
            Err(ImapError::Protocol { detail, .. }) => {
                tracing::debug!(folder = %self.folder, %detail, "the server refused NOTIFY");
            }
            Err(e) => {
                self.reset();
                return Err(e);
            }
        }
        self.other_news = true;
        Ok(())
    }

    /// Looks for new messages carrying our token header, reads their probe header, asks
    /// `decide` which are probes to judge, and fetches the header section of those. The first
    /// check after (re)connecting searches everything since `since`.
    ///
    /// `message_ids` are the Message-IDs of the probes expected here: at Gmail they are what is
    /// searched for (and nothing is searched when there are none); elsewhere the probe header is.
    pub async fn check<T>(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        noop: bool,
        message_ids: &[&str],
        decide: impl FnMut(&Candidate) -> Option<T>,
    ) -> Result<Vec<(Fetched, T)>, ImapError> {
        // A slow-down an earlier check's caller did not take is old news.
        self.throttle.slowed = None;
        let result = self.check_inner(since, noop, message_ids, decide).await;
        match &result {
            Err(_) => self.reset(),
            Ok(_) if self.throttle.slowed.is_none() => self.throttle.in_a_row = 0,
            Ok(_) => {}
        }
        result
    }

    async fn check_inner<T>(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        noop: bool,
        message_ids: &[&str],
        mut decide: impl FnMut(&Candidate) -> Option<T>,
    ) -> Result<Vec<(Fetched, T)>, ImapError> {
        let selected_now = self.ensure().await?;
        if noop && !selected_now {
            // NOOP lets the server announce what arrived since the last command (RFC 3501 §6.1.2).
            self.command("NOOP", |s| s.noop()).await?;
            self.drain_unsolicited();
        }
        if (noop || selected_now) && !self.announced && self.watermark.is_some() {
            // Nothing arrived since the last read: the NOOP (or SELECT's UIDNEXT) would have said so.
            return Ok(Vec::new());
        }
        self.announced = false;
        let exists_before = self.exists;
        let mut out = Vec::new();
        let mut complete = true;
        if let Some(from) = self.direct_fetch_from() {
            // A few new messages: their probe headers straight away, no search first.
            let candidates: Vec<Candidate> = self
                .fetch_fields(format!("{from}:*"))
                .await?
                .into_iter()
                .filter(|c| c.uid >= from && !self.seen.contains(&c.uid))
                .collect();
            let uids: Vec<u32> = candidates.iter().map(|c| c.uid).collect();
            self.read_batch(&uids, candidates, &mut decide, &mut out)
                .await?;
        } else {
            let new = self.new_uids(since, message_ids).await?;
            complete = new.len() < MAX_NEW_PER_CHECK;
            if self.kind == FolderKind::Probes
                && self.caps.gmail
                && new.len() < message_ids.len()
                && self.index_grace > 0
            {
                // Something expected was not found: at Gmail it may be announced but not yet
                // searchable, so search again at the next checks (a few, not forever).
                self.index_grace -= 1;
                self.announced = true;
            }
            for batch in new.chunks(FIELDS_BATCH) {
                let candidates = self.fetch_fields(uid_set(batch)).await?;
                self.read_batch(batch, candidates, &mut decide, &mut out)
                    .await?;
            }
        }
        if self.watermark.is_none() {
            // Nothing matched the first search: watch from what was next at SELECT.
            self.watermark = Some(self.uid_next.unwrap_or(1));
        }
        // Everything the server had counted before this read was looked at.
        self.read_at = exists_before.filter(|_| complete);
        Ok(out)
    }

    /// Asks `decide` about each candidate, reads the wanted ones (header section, or whole
    /// for reports), and only then moves the watermark past `uids`.
    async fn read_batch<T>(
        &mut self,
        uids: &[u32],
        candidates: Vec<Candidate>,
        decide: &mut impl FnMut(&Candidate) -> Option<T>,
        out: &mut Vec<(Fetched, T)>,
    ) -> Result<(), ImapError> {
        let wanted: Vec<(u32, T)> = candidates
            .iter()
            .filter(|c| uids.contains(&c.uid))
            .filter_map(|c| decide(c).map(|t| (c.uid, t)))
            .collect();
        let wanted_uids: Vec<u32> = wanted.iter().map(|(u, _)| *u).collect();
        let mut headers = Vec::new();
        if self.kind == FolderKind::Reports {
            for c in candidates.iter().filter(|c| wanted_uids.contains(&c.uid)) {
                let size = c.size.unwrap_or(MAX_WHOLE_BYTES).min(MAX_WHOLE_BYTES);
                headers.push(self.fetch_whole(c.uid, size).await?);
            }
        } else {
            for chunk in wanted_uids.chunks(HEADER_BATCH) {
                headers.extend(self.fetch_headers(chunk).await?);
            }
        }
        for (uid, t) in wanted {
            if let Some(pos) = headers.iter().position(|f| f.uid == uid) {
                out.push((headers.swap_remove(pos), t));
            }
        }
        // Only now, with every UID of the batch read, does the watermark pass them.
        self.seen.extend(uids.iter().copied());
        if let Some(last) = uids.iter().max() {
            self.watermark = Some(self.watermark.unwrap_or(0).max(last + 1));
        }
        Ok(())
    }

    /// UIDs of messages with our header that were not read yet, oldest first, at most
    /// [`MAX_NEW_PER_CHECK`].
    async fn new_uids(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        message_ids: &[&str],
    ) -> Result<Vec<u32>, ImapError> {
        let filters: Vec<String> = match self.kind {
            FolderKind::Probes if self.caps.gmail => message_ids
                .chunks(GMAIL_IDS_PER_SEARCH)
                .filter_map(gmail::message_id_search)
                .map(|key| format!(" {key}"))
                .collect(),
            // Tokens of this version (v2) and of probes sent before an upgrade (v1).
            FolderKind::Probes => vec![format!(
                " OR HEADER {h} \"v2.\" HEADER {h} \"v1.\"",
                h = token::HEADER
            )],
            FolderKind::Bounces | FolderKind::Reports => vec![String::new()],
        };
        // At Gmail the search is by Message-ID and its index trails the mailbox: a probe can
        // become searchable after a later one (higher UID) was found, so the UID watermark
        // must not hide it. `seen` still keeps every UID from being read twice.
        let by_message_id = self.kind == FolderKind::Probes && self.caps.gmail;
        let range = match self.watermark {
            Some(w) if !by_message_id => format!("UID {w}:*"),
            _ => format!("SINCE {}", since.format("%d-%b-%Y")),
        };
        let mut uids = HashSet::new();
        for filter in filters {
            let query = format!("{range}{filter}");
            uids.extend(self.command("SEARCH", |s| s.uid_search(query)).await?);
        }
        self.drain_unsolicited();
        let floor = if by_message_id {
            0
        } else {
            self.watermark.unwrap_or(0)
        };
        let mut new: Vec<u32> = uids
            .into_iter()
            .filter(|u| *u >= floor && !self.seen.contains(u))
            .collect();
        new.sort_unstable();
        new.truncate(MAX_NEW_PER_CHECK);
        Ok(new)
    }

    /// Reads what the server said on the side: `* n EXISTS` (RFC 3501 §7.3.1) and
    /// `* n EXPUNGE` keep the message count, and a `* STATUS` of the folder named in
    /// [`Self::notify_about`] (RFC 5465 §5.1) says it changed.
    fn drain_unsolicited(&mut self) {
        use async_imap::types::UnsolicitedResponse as U;
        let mut exists = false;
        let mut said = Vec::new();
        if let Some(s) = self.session.as_mut() {
            while let Ok(u) = s.unsolicited_responses.try_recv() {
                said.push(u);
            }
        }
        for u in said {
            match u {
                U::Exists(n) => {
                    exists = true;
                    self.exists = Some(n);
                }
                U::Expunge(seq) => self.note_expunged(Some(seq)),
                U::Status { mailbox, .. }
                    if self.notify_for.as_deref() == Some(mailbox.as_str()) =>
                {
                    self.other_news = true;
                }
                _ => {}
            }
        }
        if exists {
            self.note_announcement();
        }
    }

    /// A message left the folder (sequence number `seq`, when known): the counts follow.
    fn note_expunged(&mut self, seq: Option<u32>) {
        self.exists = self.exists.map(|n| n.saturating_sub(1));
        if let Some(read) = self.read_at
            && seq.is_none_or(|s| s <= read)
        {
            self.read_at = Some(read.saturating_sub(1));
        }
    }

    /// Where to fetch new messages' probe headers from without searching first: the
    /// watermark, when the server's count says only a few messages are new since the last
    /// read. `None`: search (first look, Gmail, many new messages, count unknown).
    fn direct_fetch_from(&self) -> Option<u32> {
        if self.kind == FolderKind::Probes && self.caps.gmail {
            return None;
        }
        let new = self.exists?.checked_sub(self.read_at?)?;
        (new <= DIRECT_FETCH_MAX).then_some(self.watermark?)
    }

    /// The probe header and Message-ID (or a report's or bounce's identifying fields) of the
    /// messages in the UID set.
    async fn fetch_fields(&mut self, set: String) -> Result<Vec<Candidate>, ImapError> {
        let fields = match self.kind {
            FolderKind::Probes => format!("{} MESSAGE-ID", token::HEADER.to_ascii_uppercase()),
            FolderKind::Bounces => "FROM SUBJECT CONTENT-TYPE AUTO-SUBMITTED".to_string(),
            FolderKind::Reports => "FROM SUBJECT CONTENT-TYPE MESSAGE-ID".to_string(),
        };
        let query =
            format!("(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({fields})]<0.{FIELDS_PARTIAL}>)");
        let fetched = self.fetch(set, query).await?;
        Ok(fetched
            .iter()
            .filter_map(|f| {
                Some(Candidate {
                    uid: f.uid?,
                    size: f.size,
                    fields: f.header().unwrap_or_default().to_vec(),
                })
            })
            .collect())
    }

    /// One UID FETCH, its answers collected (bounded by the guard's answer budget).
    async fn fetch(
        &mut self,
        set: String,
        query: String,
    ) -> Result<Vec<async_imap::types::Fetch>, ImapError> {
        self.command("FETCH", |s| async move {
            s.uid_fetch(&set, &query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await
    }

    async fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<Fetched>, ImapError> {
        let set = uid_set(uids);
        let kind = self.kind;
        let query = match kind {
            FolderKind::Probes => format!("(UID BODY.PEEK[HEADER]<0.{HEADER_PARTIAL}>)"),
            FolderKind::Bounces | FolderKind::Reports => {
                format!("(UID BODY.PEEK[]<0.{BOUNCE_PARTIAL}>)")
            }
        };
        let fetched = self.fetch(set, query).await?;
        Ok(fetched
            .iter()
            .filter_map(|f| {
                let raw = match kind {
                    FolderKind::Probes => f.header()?,
                    FolderKind::Bounces | FolderKind::Reports => f.body()?,
                };
                Some(Fetched {
                    uid: f.uid?,
                    raw: raw.to_vec(),
                })
            })
            .collect())
    }

    /// Reads one message whole, `size` bytes at most, in [`WHOLE_CHUNK`] pieces (never
    /// setting `\Seen`): each piece is one partial FETCH, so no literal outgrows the guard.
    async fn fetch_whole(&mut self, uid: u32, size: u32) -> Result<Fetched, ImapError> {
        let mut raw = Vec::new();
        let mut offset: u32 = 0;
        loop {
            let query = format!("(UID BODY.PEEK[]<{offset}.{WHOLE_CHUNK}>)");
            let fetched = self.fetch(uid.to_string(), query).await?;
            let piece = fetched
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
                .unwrap_or_default();
            raw.extend_from_slice(piece);
            offset = offset.saturating_add(piece.len() as u32);
            // A short piece is the end of the message (RFC 3501 §6.4.5: a partial fetch past
            // the end returns what there is).
            if (piece.len() as u32) < WHOLE_CHUNK || offset >= size {
                return Ok(Fetched { uid, raw });
            }
        }
    }

    /// The Gmail tab a message in this (inbox) folder was filed under: one `category:` search
    /// per tab restricted to its UID, Primary first, until one names it. `None` at a server
    /// without Gmail's extensions, or when no tab does (inbox categories switched off).
    pub async fn gmail_tab(&mut self, uid: u32) -> Result<Option<Tab>, ImapError> {
        if !self.caps.gmail || self.session.is_none() {
            return Ok(None);
        }
        for tab in Tab::ALL {
            let query = gmail::tab_search(uid, tab);
            let answer: Vec<u32> = match self.command("SEARCH", |s| s.uid_search(query)).await {
                Ok(set) => set.into_iter().collect(),
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            };
            if let Some(found) = gmail::tab_from_answer(uid, tab, &answer) {
                self.drain_unsolicited();
                return Ok(Some(found));
            }
        }
        self.drain_unsolicited();
        Ok(None)
    }

    /// Waits up to `max` for the server to announce a change (IDLE, RFC 2177), for the long tail
    /// of a missing message without polling a real provider, or until `interrupt` is notified
    /// (another folder's IDLE ended); either way it ends with DONE, keeping the connection. `max`
    /// is a hard deadline: the server's keep-alives (`* OK Still here`) do not extend it.
    pub async fn idle(
        &mut self,
        max: Duration,
        interrupt: &tokio::sync::Notify,
    ) -> Result<(), ImapError> {
        self.ensure().await?;
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        self.budget.reset();
        self.commands += 2;
        let server = self.server.clone();
        let whole = max + 2 * COMMAND_TIMEOUT;
        let idle = async move {
            let mut handle = session.idle();
            tokio::time::timeout(COMMAND_TIMEOUT, handle.init())
                .await
                .map_err(|_| ImapError::timeout(&server, COMMAND_TIMEOUT))?
                .map_err(|e| classify(&server, "IDLE", e))?;
            {
                let (wait, stop) = handle.wait_with_timeout(max);
                let wait = tokio::time::timeout(max, wait);
                tokio::pin!(wait);
                let answer = tokio::select! {
                    answer = &mut wait => answer,
                    () = interrupt.notified() => {
                        // Dropping the stop source ends the wait at once (ManualInterrupt).
                        drop(stop);
                        wait.await
                    }
                };
                if let Ok(answer) = answer {
                    answer.map_err(|e| classify(&server, "IDLE", e))?;
                }
            }
            tokio::time::timeout(COMMAND_TIMEOUT, handle.done())
                .await
                .map_err(|_| ImapError::timeout(&server, COMMAND_TIMEOUT))?
                .map_err(|e| classify(&server, "IDLE", e))
        };
        // Whatever ended the IDLE (an EXISTS, a STATUS of the other folder) was consumed by
        // the wait: search next, and look at the other folder.
        self.note_announcement();
        self.other_news = true;
        self.read_at = None;
        match tokio::time::timeout(whole, idle).await {
            Ok(Ok(session)) => {
                self.session = Some(session);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ImapError::timeout(&self.server, whole)),
        }
    }

    /// Notes a verified message of ours for the next [`Self::flush_cleanup`].
    pub fn defer_cleanup(&mut self, uid: u32) {
        if !self.to_clean.contains(&uid) {
            self.to_clean.push(uid);
        }
    }

    /// Whether messages wait for cleanup.
    pub fn cleanup_pending(&self) -> bool {
        !self.to_clean.is_empty()
    }

    /// Cleans up every deferred message in one command; on failure they wait for the next try.
    pub async fn flush_cleanup(&mut self, how: &Cleanup) -> Result<(), ImapError> {
        if self.to_clean.is_empty() {
            return Ok(());
        }
        let uids = std::mem::take(&mut self.to_clean);
        let result = self.cleanup(&uids, how).await;
        if result.is_err() {
            self.to_clean = uids;
        }
        result
    }

    /// Removes or moves messages that the caller has verified are ours, all in one command
    /// (a UID set). A failure drops the connection (the next call reconnects).
    pub async fn cleanup(&mut self, uids: &[u32], how: &Cleanup) -> Result<(), ImapError> {
        if *how == Cleanup::Keep || uids.is_empty() {
            return Ok(());
        }
        let result = self.cleanup_inner(uids, how).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn cleanup_inner(&mut self, uids: &[u32], how: &Cleanup) -> Result<(), ImapError> {
        self.ensure().await?;
        let uid_s = uid_set(uids);
        let caps = self.caps;
        let result = match how {
            Cleanup::Move(folder) if caps.move_ => {
                self.command("MOVE", |s| s.uid_mv(&uid_s, folder)).await
            }
            Cleanup::Move(folder) => {
                self.command("COPY", |s| s.uid_copy(&uid_s, folder)).await?;
                self.delete_uid(&uid_s).await
            }
            _ => self.delete_uid(&uid_s).await,
        };
        result.map_err(|e| match e {
            ImapError::Protocol { server, detail } => ImapError::Protocol {
                server,
                detail: truncate::cap(&format!("cleanup of UIDs {uid_s}: {detail}")),
            },
            other => other,
        })
    }

    async fn delete_uid(&mut self, uid: &str) -> Result<(), ImapError> {
        self.command("STORE", |s| async move {
            s.uid_store(uid, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if self.caps.uidplus {
            // UID EXPUNGE removes only this UID (RFC 4315 §2.1). A plain EXPUNGE would also remove
            // messages the user had marked \Deleted, so without UIDPLUS we leave it flagged.
            let gone = self
                .command("EXPUNGE", |s| async move {
                    s.uid_expunge(uid).await?.try_collect::<Vec<_>>().await
                })
                .await?;
            for seq in gone {
                self.note_expunged(Some(seq));
            }
        }
        Ok(())
    }

    /// Finds the spam folder: configured, else the one with SPECIAL-USE `\Junk` (RFC 6154),
    /// else the provider preset's, else a folder literally named Junk/Spam.
    pub async fn find_spam_folder(&mut self) -> Result<Option<String>, ImapError> {
        if let Some(f) = &self.seed.spam_folder {
            return Ok(Some(f.clone()));
        }
        self.ensure().await?;
        let names = self
            .command("LIST", |s| async move {
                s.list(Some(""), Some("*"))
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
        if let Some(n) = names
            .iter()
            .find(|n| n.attributes().contains(&NameAttribute::Junk))
        {
            return Ok(Some(n.name().to_string()));
        }
        if let Some(p) = &self.seed.preset_spam_folder {
            return Ok(Some(p.clone()));
        }
        Ok(names
            .iter()
            .map(|n| n.name().to_string())
            .find(|n| ["junk", "spam", "bulk"].contains(&n.to_ascii_lowercase().as_str())))
    }

    /// Logs out politely (used at shutdown), giving the server two seconds.
    pub async fn logout(&mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
        }
    }
}
