//! Connection sharing: the folders of a seed share one logged-in connection where the server
//! can tell about the folder that is not selected (NOTIFY, RFC 5465), so a seed costs one
//! connection, not two. The spam folder borrows the inbox's connection to look
//! ([`FolderConn::borrow_from`]) and hands it back ([`FolderConn::hand_back`]); NOTIFY tells the
//! inbox's connection when the spam folder changed ([`FolderConn::take_other_news`]).

use std::time::{Duration, Instant};

use super::connect::ImapSession;
use super::guard::Budget;
use super::{Capabilities, FolderConn, ImapError};

/// How long the folder a connection hears about through NOTIFY may go unlooked at while
/// checks run, in case a notification was lost.
const OTHER_FOLDER_RECHECK: Duration = Duration::from_secs(30);

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

impl FolderConn {
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

    /// NOTIFY SET for the selected folder and `other` (RFC 5465 §3.1): new and expunged
    /// messages. A refusal leaves `notify_set` false (the other folder is then looked at on
    /// every check); a broken connection is an error.
    pub(super) async fn set_notify(&mut self, other: &str) -> Result<(), ImapError> {
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
}
