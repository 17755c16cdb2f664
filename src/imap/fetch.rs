//! Finding and fetching new messages: NOOP (or IDLE) announces them, a few are fetched straight
//! from the UID watermark, many are searched first (by the probe header, or at Gmail by
//! Message-ID); header-first, bounded in size and count, and the watermark passes a UID only
//! once it was read.

use std::collections::HashSet;

use futures::TryStreamExt;

use super::uids::uid_set;
use super::{FolderConn, FolderKind, ImapError};
use crate::gmail::{self, Tab};

/// New UIDs whose probe header is fetched per command.
const FIELDS_BATCH: usize = 128;
/// New UIDs looked at per check; the rest wait for the next check (the watermark stays).
const MAX_NEW_PER_CHECK: usize = 1024;
/// Verified probes whose header section is fetched per command.
const HEADER_BATCH: usize = 8;
/// Message-IDs per Gmail search (`rfc822msgid:a OR rfc822msgid:b …`): keeps the line short.
const GMAIL_IDS_PER_SEARCH: usize = 20;
/// The most new messages whose probe header is fetched straight from the watermark
/// (`UID FETCH <watermark>:*`, one command) instead of searched for first: a mailbox that was
/// sent many messages at once is searched, so no answer grows with a mail bomb.
const DIRECT_FETCH_MAX: u32 = 64;
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

/// A whole message is read in pieces of this size (partial fetches, RFC 3501 §6.4.5), so a
/// report mail never needs a literal over the guard's limit.
pub(super) const WHOLE_CHUNK: u32 = 1024 * 1024;
/// How much of a bounce is read: the report and the returned headers come first.
const BOUNCE_PARTIAL: u32 = 256 * 1024;

/// A verified probe's header section (or a bounce's start), as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

impl FolderConn {
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
            if matches!(self.kind, FolderKind::Probes { .. })
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
        if let FolderKind::Reports { max_bytes } = self.kind {
            for c in candidates.iter().filter(|c| wanted_uids.contains(&c.uid)) {
                let size = c.size.unwrap_or(max_bytes).min(max_bytes);
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
            FolderKind::Probes { .. } if self.caps.gmail => message_ids
                .chunks(GMAIL_IDS_PER_SEARCH)
                .filter_map(gmail::message_id_search)
                .map(|key| format!(" {key}"))
                .collect(),
            // Tokens of this version (v2) and of probes sent before an upgrade (v1).
            FolderKind::Probes { header: h } => {
                vec![format!(" OR HEADER {h} \"v2.\" HEADER {h} \"v1.\"")]
            }
            FolderKind::Bounces | FolderKind::Reports { .. } => vec![String::new()],
        };
        // At Gmail the search is by Message-ID and its index trails the mailbox: a probe can
        // become searchable after a later one (higher UID) was found, so the UID watermark
        // must not hide it. `seen` still keeps every UID from being read twice.
        let by_message_id = matches!(self.kind, FolderKind::Probes { .. }) && self.caps.gmail;
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
    pub(super) fn drain_unsolicited(&mut self) {
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
    pub(super) fn note_expunged(&mut self, seq: Option<u32>) {
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
        if matches!(self.kind, FolderKind::Probes { .. }) && self.caps.gmail {
            return None;
        }
        let new = self.exists?.checked_sub(self.read_at?)?;
        (new <= DIRECT_FETCH_MAX).then_some(self.watermark?)
    }

    /// The probe header and Message-ID (or a report's or bounce's identifying fields) of the
    /// messages in the UID set.
    async fn fetch_fields(&mut self, set: String) -> Result<Vec<Candidate>, ImapError> {
        let fields = match self.kind {
            FolderKind::Probes { header } => {
                format!("{} MESSAGE-ID", header.to_ascii_uppercase())
            }
            FolderKind::Bounces => "FROM SUBJECT CONTENT-TYPE AUTO-SUBMITTED".to_string(),
            FolderKind::Reports { .. } => "FROM SUBJECT CONTENT-TYPE MESSAGE-ID".to_string(),
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
            FolderKind::Probes { .. } => format!("(UID BODY.PEEK[HEADER]<0.{HEADER_PARTIAL}>)"),
            FolderKind::Bounces | FolderKind::Reports { .. } => {
                format!("(UID BODY.PEEK[]<0.{BOUNCE_PARTIAL}>)")
            }
        };
        let fetched = self.fetch(set, query).await?;
        Ok(fetched
            .iter()
            .filter_map(|f| {
                let raw = match kind {
                    FolderKind::Probes { .. } => f.header()?,
                    FolderKind::Bounces | FolderKind::Reports { .. } => f.body()?,
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
}
