//! Bounce mailboxes: where a route's envelope sender receives its delivery status
//! notifications (RFC 3464; RFC 3461 asked for them with `ENVID` and `RET=HDRS`). A bounce
//! that names one of our probes — by a valid probe token in its returned headers, by its
//! Original-Envelope-Id, or by the probe's Message-ID — resolves that probe as `rejected`
//! (or marks it `deferred` for a delay notice) the moment it arrives. Anything else in the
//! mailbox is never touched and never counted.

use std::time::Duration;

use super::context::{Entry, Event, WatchCtx, Watcher};
use crate::config::Secret;
use crate::imap::{Candidate, FolderConn, ImapError};
use crate::outcome::Bounce;
use crate::probe::token::Token;
use crate::state::StateError;
use crate::state::probes::ProbeRecord;
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

/// How a bounce names its probe, in the order they are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A probe token that verifies with our key: the strongest proof.
    Token(Token),
    /// The Original-Envelope-Id (our `ENVID`, the probe id).
    EnvelopeId(String),
    /// The returned message's Message-ID (for bouncers that return no headers of ours).
    MessageId(String),
}

/// The references a bounce carries that could be ours, strongest first. A token that does
/// not verify is ignored, never trusted. Pure.
pub fn references(dsn: &Dsn, key: &Secret) -> Vec<Reference> {
    let mut out = Vec::new();
    if let Some(t) = dsn
        .probe_token
        .as_deref()
        .and_then(|v| Token::verify(v, key).ok())
    {
        out.push(Reference::Token(t));
    }
    if let Some(id) = dsn.original_envelope_id.as_deref().map(str::trim)
        && id.len() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit())
    {
        out.push(Reference::EnvelopeId(id.to_ascii_lowercase()));
    }
    if let Some(mid) = dsn.original_message_id.as_deref() {
        let mid = mid.trim();
        let mid = if mid.starts_with('<') {
            mid.to_string()
        } else {
            format!("<{mid}>")
        };
        out.push(Reference::MessageId(mid));
    }
    out
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

/// Reads one message of a bounce mailbox; when it is a bounce of one of our probes sent by a
/// route that uses this mailbox, records it. Returns whether it is ours (to clean up).
fn record_bounce(ctx: &WatchCtx, mailbox: &str, raw: &[u8]) -> Result<bool, StateError> {
    let Ok(Some(dsn)) = crate::verdict::dsn::read(raw) else {
        return Ok(false);
    };
    let Some(record) = probe_of(ctx, mailbox, &dsn)? else {
        return Ok(false);
    };
    let Some(bounce) = Bounce::from_dsn(&dsn) else {
        // Ours, but it reports no failure or delay (e.g. a "relayed" notice): nothing to record.
        return Ok(true);
    };
    if bounce.is_delay() {
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
        ctx.metrics.bounce_read(&record.route);
        ctx.metrics
            .probe_rejected(&record.route, &record.seed, &bounce);
        ctx.board.done(&record.probe_id, false);
        report(ctx, &record.probe_id, true)?;
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

/// The probe a bounce names, if it is ours and its route sends its bounces to `mailbox`.
fn probe_of(
    ctx: &WatchCtx,
    mailbox: &str,
    dsn: &crate::verdict::dsn::Dsn,
) -> Result<Option<ProbeRecord>, StateError> {
    for reference in references(dsn, &ctx.config.probe.token_key) {
        let record = match &reference {
            // Another instance sharing the mailbox and the key: its bounce, not ours.
            Reference::Token(t) if !t.is_of(&ctx.config.probe.instance) => return Ok(None),
            Reference::Token(t) => ctx
                .store
                .get(&t.probe_id)?
                .filter(|r| r.route == t.route && r.seed == t.seed),
            Reference::EnvelopeId(id) => ctx.store.get(id)?,
            Reference::MessageId(mid) => ctx.store.by_message_id(mid)?,
        };
        if let Some(r) = record
            && ctx
                .config
                .route(&r.route)
                .is_some_and(|route| route.bounces.as_deref() == Some(mailbox))
        {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new("0123456789abcdef-test-key")
    }

    #[test]
    fn bounces_are_told_from_ordinary_mail_by_their_headers() {
        assert!(looks_like_bounce(
            b"From: Mail Delivery System <MAILER-DAEMON@sender.test>\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n"
        ));
        assert!(looks_like_bounce(
            b"From: postmaster@example.net\r\nSubject: hi\r\n\r\n"
        ));
        assert!(looks_like_bounce(
            b"From: someone@example.net\r\nSubject: Delivery Status Notification (Failure)\r\n\r\n"
        ));
        assert!(!looks_like_bounce(
            b"From: friend@example.org\r\nSubject: lunch?\r\nContent-Type: text/plain\r\n\r\n"
        ));
        assert!(!looks_like_bounce(b""));
    }

    #[test]
    fn only_a_verifying_token_is_a_token_reference() {
        let t = Token::new(
            "0123456789abcdef0123456789abcdef",
            "site-a",
            "rejected",
            "s17",
            1,
        );
        let lab = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dsn/postfix-no-ptr.eml"
        ));
        let mut dsn = match lab
            .ok()
            .and_then(|raw| crate::verdict::dsn::read(&raw).ok().flatten())
        {
            Some(d) => d,
            None => panic!("corpus bounce unreadable"),
        };
        dsn.probe_token = Some(t.encode(&key()));
        dsn.original_envelope_id = Some("0123456789ABCDEF0123456789ABCDEF".to_string());
        dsn.original_message_id = Some("m1@sender.test".to_string());
        assert_eq!(
            references(&dsn, &key()),
            vec![
                Reference::Token(t.clone()),
                Reference::EnvelopeId("0123456789abcdef0123456789abcdef".to_string()),
                Reference::MessageId("<m1@sender.test>".to_string()),
            ]
        );
        dsn.probe_token = Some(t.encode(&Secret::new("another-key-of-16-chars")));
        dsn.original_envelope_id = Some("not-ours".to_string());
        assert_eq!(
            references(&dsn, &key()),
            vec![Reference::MessageId("<m1@sender.test>".to_string())]
        );
    }
}
