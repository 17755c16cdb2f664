//! The IMAP client (async-imap, RFC 3501) that the probe's seed and bounce watchers and the
//! report mailboxes' reader share: it reads a mailbox's folder, connections kept across rounds,
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
//! One file per concern: [`error`] (why a read failed), [`connect`] (TLS and login),
//! [`share`] (one connection for a seed's two folders), [`fetch`] (finding and reading new
//! messages), [`cleanup`] (removing what the caller proved ours), [`throttle`] (backing off),
//! [`guard`] (bounds on what the server sends), [`uids`] (UID sets). It knows nothing of
//! probes or reports: the caller says which header marks a probe and how large a report may be
//! ([`FolderKind`]).
//!
//! At a server that announces Gmail's extensions ([`crate::gmail`]), probes are found by their
//! Message-ID (`X-GM-RAW "rfc822msgid:…"`) instead of a header search, an inbox hit gets its
//! tab, `[Gmail]/All Mail` is never selected, and throttling answers make the connection back
//! off (any server's: the words are Gmail's, the courtesy is general).

pub mod cleanup;
pub mod connect;
pub mod error;
pub mod fetch;
pub mod guard;
pub mod share;
pub mod throttle;
pub mod uids;

pub use error::ImapError;
pub use fetch::{Candidate, Fetched};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_imap::types::NameAttribute;
use futures::TryStreamExt;

use crate::config::Seed;
use crate::gmail;
use connect::ImapSession;
use guard::Budget;

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

/// How long one IMAP command (or the whole login) may take before the connection counts as
/// broken.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Searches after an announcement at Gmail before giving up on an expected message being
/// indexed (at the preset's 2 s poll interval, about 10 s of index lag).
const GMAIL_INDEX_GRACE: u8 = 5;
/// What a watched folder holds, which decides what is searched and fetched. The caller says
/// what it needs (the probe header's name, the largest report it reads): the client knows
/// nothing of probes or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// A seed's folder: messages with the probe header `header`; the header section of
    /// verified ones.
    Probes { header: &'static str },
    /// A bounce mailbox: every new message; the start (256 KiB) of those whose From, Subject
    /// and Content-Type look like a bounce, to read the delivery status report.
    Bounces,
    /// A report mailbox: every new message; the whole of those the caller wants (a DMARC or
    /// TLS report is an attachment), read in [`fetch::WHOLE_CHUNK`] pieces, `max_bytes` at
    /// most (a larger one is never fetched: [`Candidate::size`] lets the caller skip it).
    Reports { max_bytes: u32 },
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
    throttle: throttle::ThrottleState,
}

impl FolderConn {
    /// A seed's folder, where probes carry the header `probe_header`.
    pub fn new(seed: &Seed, folder: &str, probe_header: &'static str) -> Self {
        let kind = FolderKind::Probes {
            header: probe_header,
        };
        Self::of_kind(kind, seed, folder)
    }

    /// A bounce mailbox's folder (`seed` holds its connection settings).
    pub fn for_bounces(mailbox: &Seed) -> Self {
        Self::of_kind(FolderKind::Bounces, mailbox, &mailbox.inbox_folder)
    }

    /// A report mailbox's folder (`seed` holds its connection settings); no message larger
    /// than `max_bytes` is read.
    pub fn for_reports(mailbox: &Seed, max_bytes: u32) -> Self {
        let kind = FolderKind::Reports { max_bytes };
        Self::of_kind(kind, mailbox, &mailbox.inbox_folder)
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
            throttle: throttle::ThrottleState::default(),
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

    /// Whether the server offers IDLE (known once connected).
    pub fn offers_idle(&self) -> bool {
        self.caps.idle
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
            Ok(Err(e)) => Err(error::classify(&server, context, e)),
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
                .map_err(|e| error::classify(&server, "IDLE", e))?;
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
                    answer.map_err(|e| error::classify(&server, "IDLE", e))?;
                }
            }
            tokio::time::timeout(COMMAND_TIMEOUT, handle.done())
                .await
                .map_err(|_| ImapError::timeout(&server, COMMAND_TIMEOUT))?
                .map_err(|e| error::classify(&server, "IDLE", e))
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
