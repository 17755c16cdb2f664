//! Bounce mailboxes: where a route's envelope sender receives its delivery status
//! notifications (RFC 3464; RFC 3461 asked for them with a signed `ENVID` and `RET=HDRS`).
//! Anyone can mail the envelope sender, so a bounce changes a probe only when it *proves*
//! itself ours ([`claim`]): a probe token in its returned headers that verifies with the
//! token key, or the signed envelope id as its `Original-Envelope-Id`. It then resolves the
//! probe as `rejected` (or marks it `deferred` for a delay notice) the moment it arrives —
//! late news too, for a probe that had already timed out (kept `late`, with its earlier
//! outcome). A bounce that only names one of our probes (a Message-ID, a bare or badly signed
//! envelope id, a token that does not verify) is counted as forged and never touched.
//! Anything else in the mailbox is never touched and never counted.

use std::time::Duration;

use super::context::{Entry, Event, WatchCtx, Watcher};
use crate::config::Secret;
use crate::imap::{Candidate, FolderConn, ImapError};
use crate::outcome::Bounce;
use crate::probe::token::{self, EnvelopeId, Token};
use crate::state::StateError;
use crate::state::probes::{ProbeRecord, ProbeStore};
use crate::verdict::dsn::Dsn;

/// A bounce mailbox, kept across rounds like a seed's folders.
pub struct BounceMailbox {
    pub name: String,
    pub conn: FolderConn,
    /// The last error reading it, cleared by a successful check.
    pub last_error: Option<ImapError>,
    /// Set while a watcher uses the connection; still set at the next round means the last
    /// watcher was cancelled mid-command.
    in_use: bool,
}

impl BounceMailbox {
    pub fn new(mailbox: &crate::config::Seed) -> Self {
        BounceMailbox {
            name: mailbox.name.clone(),
            conn: FolderConn::for_bounces(mailbox),
            last_error: None,
            in_use: false,
        }
    }
}

/// Whether a message's From, Subject and Content-Type look like a bounce worth reading: a
/// `multipart/report` (RFC 6522), or a mailer-daemon / postmaster sender, or a subject as the
/// common MTAs write them. Pure: the caller fetches only these.
pub fn looks_like_bounce(fields: &[u8]) -> bool {
    let Some(headers) = mail_parser::MessageParser::new().parse_headers(fields) else {
        return false;
    };
    if headers
        .header(mail_parser::HeaderName::ContentType)
        .and_then(|v| v.as_content_type())
        .is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
    {
        return true;
    }
    let from = headers
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if from.starts_with("mailer-daemon@") || from.starts_with("postmaster@") {
        return true;
    }
    let subject = headers.subject().unwrap_or_default().to_ascii_lowercase();
    [
        "undeliver",
        "delivery status notification",
        "returned mail",
        "failure notice",
        "delivery failure",
        "delayed mail",
        "mail delivery failed",
    ]
    .iter()
    .any(|w| subject.contains(w))
}

/// What proved a bounce ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A probe token of this instance in the returned header fields, MAC verified (`v2`, or
    /// `v1` from before instances), naming the probe's route and seed.
    Token,
    /// A signed envelope id of this instance (`Original-Envelope-Id`, [`token::envelope_id`]).
    EnvelopeId,
}

/// Why a bounce that names one of our probes is not believed. Each is a fixed `reason` of
/// `mailcanary_forged_bounces_total` ([`crate::metrics::probe_series::FORGED_BOUNCE_REASONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unproven {
    /// A probe token whose MAC does not verify.
    Token,
    /// An envelope id of our form whose MAC does not verify, or a bare probe id (what releases
    /// before signed envelope ids sent: anyone who knew the id could write it).
    EnvelopeId,
    /// Only the probe's Message-ID. It decides nothing: every relay, the seed's provider and
    /// every mail log (Postfix's `message-id=`) see it, and it is no secret of ours.
    MessageId,
    /// A token and an envelope id that both verify but name two different probes.
    Mismatch,
}

impl Unproven {
    pub fn as_str(self) -> &'static str {
        match self {
            Unproven::Token => "token",
            Unproven::EnvelopeId => "envelope_id",
            Unproven::MessageId => "message_id",
            Unproven::Mismatch => "mismatch",
        }
    }
}

/// What a bounce is to this instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// It names none of this instance's probes of a route that bounces here: someone else's
    /// bounce, never touched, never counted.
    NotOurs,
    /// A valid token of another instance sharing the mailbox and the key: its bounce.
    Foreign,
    /// It proves itself a bounce of this probe: recorded, then cleaned up like a probe.
    Proven { record: ProbeRecord, by: Proof },
    /// It names this probe but proves nothing: the probe is not changed, the bounce is left
    /// in the mailbox and counted as forged.
    Unproven { record: ProbeRecord, why: Unproven },
}

/// Who a bounce is about, and whether it proves it. Only a secret of ours decides: a probe
/// token that verifies (its MAC, RFC 2104, over probe id, instance, route, seed and send
/// time) or a signed envelope id (RFC 3461 §4.4). What strangers can know — the public id
/// served on `/api/results`, the Message-ID every relay and log sees, a bare probe id from an
/// older release's envelope id — only *names* a probe: such a bounce is [`Claim::Unproven`],
/// however real it may look. Someone who saw the probe itself on its way (a relay, the seed's
/// provider) can copy its token, but could as well refuse the probe for real: the path can
/// always fail a probe; the rest of the world cannot.
///
/// `probes` is this instance's store; `here` says whether a probe's route sends its bounces
/// to the mailbox being read (a bounce about any other probe is not this mailbox's).
pub fn claim(
    dsn: &Dsn,
    key: &Secret,
    instance: &str,
    probes: &ProbeStore,
    here: impl Fn(&ProbeRecord) -> bool,
) -> Result<Claim, StateError> {
    let find = |probe_id: &str| -> Result<Option<ProbeRecord>, StateError> {
        Ok(probes.get(probe_id)?.filter(|r| here(r)))
    };
    let mut proven: Vec<(ProbeRecord, Proof)> = Vec::new();
    // The strongest reference that names a probe without proving it: token, envelope id,
    // Message-ID, in that order.
    let mut named: Option<(ProbeRecord, Unproven)> = None;
    let mut note = |record: ProbeRecord, why: Unproven| {
        if named.is_none() {
            named = Some((record, why));
        }
    };
    if let Some(value) = dsn.probe_token.as_deref() {
        match Token::verify(value, key) {
            Ok(t) if !t.is_of(instance) => return Ok(Claim::Foreign),
            Ok(t) => {
                if let Some(r) =
                    find(&t.probe_id)?.filter(|r| r.route == t.route && r.seed == t.seed)
                {
                    proven.push((r, Proof::Token));
                }
            }
            Err(_) => {
                if let Some(r) = Token::named_probe(value)
                    .map(|id| find(&id))
                    .transpose()?
                    .flatten()
                {
                    note(r, Unproven::Token);
                }
            }
        }
    }
    if let Some(value) = dsn.original_envelope_id.as_deref() {
        match EnvelopeId::check(value, key, instance) {
            EnvelopeId::Signed(id) => {
                if let Some(r) = find(&id)? {
                    proven.push((r, Proof::EnvelopeId));
                }
            }
            EnvelopeId::BadMac(id) | EnvelopeId::Unsigned(id) => {
                if let Some(r) = find(&id)? {
                    note(r, Unproven::EnvelopeId);
                }
            }
            EnvelopeId::NotOurs => {}
        }
    }
    if let Some(mid) = dsn.original_message_id.as_deref() {
        let mid = mid.trim();
        let mid = if mid.starts_with('<') {
            mid.to_string()
        } else {
            format!("<{mid}>")
        };
        if let Some(r) = probes.by_message_id(&mid)?.filter(|r| here(r)) {
            note(r, Unproven::MessageId);
        }
    }
    Ok(match proven.as_slice() {
        [] => match named {
            Some((record, why)) => Claim::Unproven { record, why },
            None => Claim::NotOurs,
        },
        [(first, by), rest @ ..] if rest.iter().all(|(r, _)| r.probe_id == first.probe_id) => {
            Claim::Proven {
                record: first.clone(),
                by: *by,
            }
        }
        [(first, _), ..] => Claim::Unproven {
            record: first.clone(),
            why: Unproven::Mismatch,
        },
    })
}

/// The candidate filter of a bounce mailbox's check.
pub fn wanted(c: &Candidate) -> Option<()> {
    looks_like_bounce(&c.fields).then_some(())
}

/// Watches `bb` while probes of the routes that send their bounces to it are in flight (see
/// [`watch_while_needed`]); connections a cancelled watcher left mid-command are dropped first.
pub(crate) async fn watch(ctx: &WatchCtx, bb: &mut BounceMailbox) {
    if bb.in_use {
        bb.conn.reset();
    }
    bb.in_use = true;
    watch_while_needed(ctx, bb).await;
    bb.in_use = false;
}

/// Whether a probe on the board sends its bounces to mailbox `name`.
fn bounces_to(ctx: &WatchCtx, name: &str, e: &Entry) -> bool {
    ctx.config
        .route(&e.record.route)
        .is_some_and(|r| r.bounces.as_deref() == Some(name))
}

/// Reads a bounce mailbox while probes that may bounce into it are in flight, then once more.
async fn watch_while_needed(ctx: &WatchCtx, bb: &mut BounceMailbox) {
    let me = Watcher::Bounces(bb.name.clone());
    let since = ctx.since();
    let poll = ctx
        .config
        .bounce_mailboxes
        .iter()
        .find(|b| b.name == bb.name)
        .map_or(Duration::from_secs(1), |b| b.poll_interval)
        .max(Duration::from_millis(100));
    let baseline = ctx.baseline_until();
    if tokio::time::timeout_at(baseline.into(), check_bounces(ctx, bb, since, false))
        .await
        .is_err()
    {
        bb.conn.reset();
    }
    ctx.board.set_ready(&me);
    loop {
        let name = bb.name.clone();
        let stopping = ctx
            .board
            .release_if_idle(&me, |e| bounces_to(ctx, &name, e));
        let mut pause = if bb.last_error.is_some() {
            poll.max(Duration::from_secs(1))
        } else {
            poll
        };
        if let Some(backoff) = bb.conn.backoff_left() {
            // The server throttles the account: leave it alone as long as it asked (the
            // final look still happens).
            pause = pause.max(backoff);
        }
        if !stopping {
            tokio::time::sleep(pause).await;
        }
        let bound = crate::imap::COMMAND_TIMEOUT;
        if tokio::time::timeout(bound, check_bounces(ctx, bb, since, true))
            .await
            .is_err()
        {
            bb.conn.reset();
        }
        if stopping {
            return;
        }
    }
}

/// One look at a bounce mailbox: every new bounce that names a probe of ours is recorded and
/// cleaned up; anything else stays exactly as it is.
async fn check_bounces(
    ctx: &WatchCtx,
    bb: &mut BounceMailbox,
    since: chrono::DateTime<chrono::Utc>,
    noop: bool,
) {
    let found = bb.conn.check(since, noop, &[], wanted).await;
    if let Some(slowed) = bb.conn.take_slowed() {
        ctx.metrics.imap_error(&bb.name, &slowed);
    }
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            ctx.metrics.imap_error(&bb.name, &e);
            bb.last_error = Some(e);
            return;
        }
    };
    bb.last_error = None;
    for (fetched, ()) in found {
        match record_bounce(ctx, &bb.name, &fetched.raw) {
            Ok(true) => {
                if let Err(e) = bb
                    .conn
                    .cleanup(&[fetched.uid], &ctx.config.probe.cleanup)
                    .await
                {
                    tracing::warn!(mailbox = %bb.name, error = %e, "bounce cleanup failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot record a bounce"),
        }
    }
}

/// Reads one message of a bounce mailbox; when it proves itself a bounce of one of our probes
/// sent by a route that uses this mailbox, records it. Returns whether it is ours (to clean
/// up): a bounce that names one of our probes without proving it is counted as forged and
/// left exactly as it is.
fn record_bounce(ctx: &WatchCtx, mailbox: &str, raw: &[u8]) -> Result<bool, StateError> {
    let Ok(Some(dsn)) = crate::verdict::dsn::read(raw) else {
        return Ok(false);
    };
    let key = &ctx.config.probe.token_key;
    let here = |r: &ProbeRecord| {
        ctx.config
            .route(&r.route)
            .is_some_and(|route| route.bounces.as_deref() == Some(mailbox))
    };
    let record = match claim(&dsn, key, &ctx.config.probe.instance, &ctx.store, here)? {
        Claim::NotOurs | Claim::Foreign => return Ok(false),
        Claim::Unproven { record, why } => {
            ctx.metrics.forged_bounce(
                mailbox,
                why.as_str(),
                &token::public_id(key, &record.probe_id),
            );
            return Ok(false);
        }
        Claim::Proven { record, .. } => record,
    };
    let Some(bounce) = Bounce::from_dsn(&dsn) else {
        // Ours, but it reports no failure or delay (e.g. a "relayed" notice): nothing to record.
        return Ok(true);
    };
    if bounce.is_delay() {
        // A delay notice for a probe that timed out already changes nothing: the probe stays
        // what its timeout made it (with the last deferral it had).
        if ctx.store.defer(&record.probe_id, &bounce)? {
            ctx.metrics.bounce_read(&record.route);
            ctx.metrics
                .probe_deferred(&record.route, &record.seed, &bounce);
            // Still in flight: its round keeps waiting for where it lands.
            if let Some(now) = report(ctx, &record.probe_id, false)? {
                ctx.board.update(now);
            }
        }
    } else if ctx.store.reject(&record.probe_id, &bounce)? {
        // A bounce for a probe that had timed out (`missing`/`unknown`) is late news: recorded
        // `rejected` and `late`, its earlier outcome kept (`expired_as`), counted and logged;
        // the pair's gauges and standing move only if it is still the pair's latest news.
        let Some(now) = ctx.store.get(&record.probe_id)? else {
            return Ok(true);
        };
        let latest = !now.late || ctx.store.is_latest_of_pair(&now)?;
        ctx.metrics.bounce_read(&record.route);
        ctx.metrics
            .probe_rejected(&record.route, &record.seed, &bounce, now.late, latest);
        ctx.board.done(&record.probe_id, false);
        ctx.report(Event::Outcome {
            record: Box::new(now),
            last: true,
        });
    }
    Ok(true)
}

/// Reports a probe's outcome as now recorded; returns that record.
fn report(ctx: &WatchCtx, probe_id: &str, last: bool) -> Result<Option<ProbeRecord>, StateError> {
    let record = ctx.store.get(probe_id)?;
    if let Some(r) = &record {
        ctx.report(Event::Outcome {
            record: Box::new(r.clone()),
            last,
        });
    }
    Ok(record)
}

#[cfg(test)]
mod tests;
