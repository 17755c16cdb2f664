//! The rounds and probes of the state: every probe from send to verdict. A probe that was sent
//! and not yet resolved survives a restart, even `kill -9`, and is watched again; it is never
//! sent twice.
//!
//! Every row names the instance that sent it (`probe.instance`); a store opened for one
//! instance reads and changes only that instance's rows (rows from before instances existed
//! are the local instance's). Pruning by age removes anyone's.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Db, StateError};

use crate::clock::now;
use crate::outcome::SendOutcome;
use crate::outcome::{Bounce, Judgement, Placement};
use crate::truncate;

/// Where a probe is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// Recorded before SMTP; if we crash here we cannot know whether it left, so it is watched.
    Sending,
    Sent,
    SendFailed,
    Resolved,
    Missing,
    Unknown,
    /// A bounce came back: the receiving server refused it (final).
    Rejected,
    /// A delay notice came back: the sending server keeps trying (still watched).
    Deferred,
}

impl ProbeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeState::Sending => "sending",
            ProbeState::Sent => "sent",
            ProbeState::SendFailed => "send_failed",
            ProbeState::Resolved => "resolved",
            ProbeState::Missing => "missing",
            ProbeState::Unknown => "unknown",
            ProbeState::Rejected => "rejected",
            ProbeState::Deferred => "deferred",
        }
    }

    pub fn parse(s: &str) -> ProbeState {
        match s {
            "sending" => ProbeState::Sending,
            "sent" => ProbeState::Sent,
            "send_failed" => ProbeState::SendFailed,
            "resolved" => ProbeState::Resolved,
            "missing" => ProbeState::Missing,
            "rejected" => ProbeState::Rejected,
            "deferred" => ProbeState::Deferred,
            _ => ProbeState::Unknown,
        }
    }
}

/// Why a probe was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// On the schedule (or by `once`).
    Scheduled,
    /// Outside the schedule, to confirm a bad (or overdue) outcome of its pair.
    Confirmation,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Scheduled => "scheduled",
            ProbeKind::Confirmation => "confirmation",
        }
    }

    pub fn parse(s: &str) -> ProbeKind {
        if s == "confirmation" {
            ProbeKind::Confirmation
        } else {
            ProbeKind::Scheduled
        }
    }
}

/// One probe as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRecord {
    pub probe_id: String,
    pub round_id: i64,
    pub route: String,
    pub seed: String,
    pub message_id: String,
    pub state: ProbeState,
    pub created_at: f64,
    pub sent_at: Option<f64>,
    pub smtp: Option<SendOutcome>,
    pub placement: Option<Placement>,
    pub folder: Option<String>,
    pub judgement: Option<Judgement>,
    pub delivery_seconds: Option<f64>,
    /// Its outcome came after its timeout: found late, or refused by a bounce that came late.
    pub late: bool,
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub resolved_at: Option<f64>,
    /// The bounce or delay notice that came back, if any.
    pub bounce: Option<Bounce>,
    /// Sent on the schedule, or to confirm its pair's bad outcome.
    pub kind: ProbeKind,
    /// What it was recorded as at its timeout (`Missing` or `Unknown`) before its late outcome
    /// replaced that: the earlier outcome stays visible.
    pub expired_as: Option<ProbeState>,
}

/// The probes of one instance, in the state file.
pub struct ProbeStore {
    db: Arc<Db>,
    /// The instance whose probes this store records and reads.
    instance: String,
}

/// The assignments of an outcome that may come after the timeout: a probe recorded `missing`
/// or `unknown` becomes `late`, and keeps that earlier outcome in `expired_as` (SQLite reads
/// `state` as it was before the UPDATE).
const LATE_NEWS: &str = "late = CASE WHEN state IN ('missing', 'unknown') THEN 1 ELSE 0 END, \
     expired_as = CASE WHEN state IN ('missing', 'unknown') THEN state ELSE NULL END";

const COLUMNS: &str = "probe_id, round_id, route, seed, message_id, state, created_at, sent_at, smtp_json, \
     placement, folder, judgement_json, delivery_seconds, late, error, error_reason, resolved_at, bounce_json, kind, expired_as";

impl ProbeStore {
    /// Opens (or creates) the state at `path` for `instance`.
    pub fn open(path: &Path, instance: &str) -> Result<ProbeStore, StateError> {
        Ok(ProbeStore::new(
            Arc::new(Db::open(path, instance)?),
            instance,
        ))
    }

    /// The probes of `instance` in the state `db`.
    pub fn new(db: Arc<Db>, instance: &str) -> ProbeStore {
        ProbeStore {
            db,
            instance: instance.to_string(),
        }
    }

    /// The state file this store is part of (the other table families share it).
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.conn()
    }

    /// The instance whose rows this store reads and writes.
    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs one statement, prepared once per connection (the probe path runs the same few
    /// statements thousands of times a round).
    pub(super) fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn().prepare_cached(sql)?.execute(params)
    }

    pub fn start_round(&self) -> Result<i64, StateError> {
        let c = self.conn();
        c.execute(
            "INSERT INTO rounds (started_at) VALUES (?1)",
            params![now()],
        )?;
        Ok(c.last_insert_rowid())
    }

    pub fn finish_round(&self, id: i64) -> Result<(), StateError> {
        self.exec(
            "UPDATE rounds SET finished_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    pub fn last_round_finished(&self) -> Result<Option<f64>, StateError> {
        Ok(self
            .conn()
            .query_row("SELECT MAX(finished_at) FROM rounds", [], |r| {
                r.get::<_, Option<f64>>(0)
            })?)
    }

    /// Records a probe before it is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_sending(
        &self,
        round_id: i64,
        probe_id: &str,
        route: &str,
        seed: &str,
        message_id: &str,
        created_at: f64,
        kind: ProbeKind,
    ) -> Result<(), StateError> {
        self.exec(
            "INSERT INTO probes (probe_id, round_id, route, seed, message_id, state, created_at, instance, kind) VALUES (?1, ?2, ?3, ?4, ?5, 'sending', ?6, ?7, ?8)",
            params![probe_id, round_id, route, seed, message_id, created_at, self.instance, kind.as_str()],
        )?;
        Ok(())
    }

    /// When the confirmation probes sent to `seed` since `since` were created (the seed's
    /// confirmation budget survives a restart).
    pub fn confirmations_since(&self, seed: &str, since: f64) -> Result<Vec<f64>, StateError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(
            "SELECT created_at FROM probes WHERE seed = ?1 AND kind = 'confirmation' AND created_at > ?2 AND instance = ?3",
        )?;
        let rows = stmt
            .query_map(params![seed, since, self.instance], |r| r.get::<_, f64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn mark_sent(
        &self,
        probe_id: &str,
        outcome: &SendOutcome,
        sent_at: f64,
    ) -> Result<(), StateError> {
        self.exec(
            "UPDATE probes SET state = 'sent', sent_at = ?2, smtp_json = ?3 WHERE probe_id = ?1",
            params![probe_id, sent_at, serde_json::to_string(outcome)?],
        )?;
        Ok(())
    }

    pub fn mark_send_failed(
        &self,
        probe_id: &str,
        error: &str,
        reason: &str,
        code: Option<u16>,
    ) -> Result<(), StateError> {
        let smtp = code.map(|c| {
            serde_json::json!({"code": c, "queue_id": null, "duration_seconds": 0.0}).to_string()
        });
        self.exec(
            "UPDATE probes SET state = 'send_failed', error = ?2, error_reason = ?3, smtp_json = ?4, resolved_at = ?5 WHERE probe_id = ?1",
            params![probe_id, truncate::cap(error), reason, smtp, now()],
        )?;
        Ok(())
    }

    /// Records where a probe was found. Returns false when it was already resolved (a second
    /// copy of a resolved probe is not ours to judge again). Found after its timeout, it is
    /// `late`, and what it was recorded as then is kept in `expired_as`.
    pub fn resolve(
        &self,
        probe_id: &str,
        placement: Placement,
        folder: &str,
        judgement: &Judgement,
        delivery_seconds: Option<f64>,
    ) -> Result<bool, StateError> {
        let changed = self.exec(
            &format!(
                "UPDATE probes SET {LATE_NEWS}, \
                 state = 'resolved', placement = ?2, folder = ?3, judgement_json = ?4, delivery_seconds = ?5, resolved_at = ?6, error = NULL, error_reason = NULL \
                 WHERE probe_id = ?1 AND state IN ('sending', 'sent', 'deferred', 'missing', 'unknown')"
            ),
            params![probe_id, placement.as_str(), folder, serde_json::to_string(judgement)?, delivery_seconds, now()],
        )?;
        Ok(changed == 1)
    }

    /// Records a (proven) bounce: the probe is `rejected` (final), unless it was already
    /// resolved. A bounce for a probe that had timed out is news all the same: it is recorded
    /// `late`, with what the probe was recorded as then kept in `expired_as`. Returns whether
    /// it changed.
    pub fn reject(&self, probe_id: &str, bounce: &Bounce) -> Result<bool, StateError> {
        let changed = self.exec(
            &format!(
                "UPDATE probes SET {LATE_NEWS}, \
                 state = 'rejected', placement = 'rejected', bounce_json = ?2, resolved_at = ?3, error = NULL, error_reason = NULL \
                 WHERE probe_id = ?1 AND state IN ('sending', 'sent', 'deferred', 'missing', 'unknown')"
            ),
            params![probe_id, serde_json::to_string(bounce)?, now()],
        )?;
        Ok(changed == 1)
    }

    /// Whether `record` is its pair's latest result (no probe of the same route and seed
    /// created after it has an outcome): what `/api/results` shows, and what the gauges of the
    /// pair's latest outcome may follow. A late outcome of an older probe is history.
    pub fn is_latest_of_pair(&self, record: &ProbeRecord) -> Result<bool, StateError> {
        let newer: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM probes WHERE route = ?1 AND seed = ?2 AND instance = ?3 \
             AND created_at > ?4 AND state NOT IN ('sending', 'sent')",
            params![record.route, record.seed, self.instance, record.created_at],
            |r| r.get(0),
        )?;
        Ok(newer == 0)
    }

    /// Records a delay notice: the probe is `deferred` and still watched; the notice is kept
    /// (a later timeout shows it). Returns whether it changed.
    pub fn defer(&self, probe_id: &str, bounce: &Bounce) -> Result<bool, StateError> {
        let changed = self.exec(
            "UPDATE probes SET state = 'deferred', bounce_json = ?2 \
             WHERE probe_id = ?1 AND state IN ('sending', 'sent', 'deferred')",
            params![probe_id, serde_json::to_string(bounce)?],
        )?;
        Ok(changed == 1)
    }

    /// Marks a probe that the deadline passed: missing (mailbox readable) or unknown (not).
    pub fn expire(
        &self,
        probe_id: &str,
        placement: Placement,
        error: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StateError> {
        let state = if placement == Placement::Unknown {
            ProbeState::Unknown
        } else {
            ProbeState::Missing
        };
        self.exec(
            "UPDATE probes SET state = ?2, placement = ?3, error = ?4, error_reason = ?5 WHERE probe_id = ?1 AND state IN ('sending', 'sent', 'deferred', 'missing', 'unknown')",
            params![probe_id, state.as_str(), placement.as_str(), error.map(truncate::cap), reason],
        )?;
        Ok(())
    }

    pub fn get(&self, probe_id: &str) -> Result<Option<ProbeRecord>, StateError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM probes WHERE probe_id = ?1 AND instance = ?2"
        ))?;
        let row = stmt
            .query_row(params![probe_id, self.instance], row_to_raw)
            .optional()?;
        row.map(RawRow::into_record).transpose()
    }

    /// The probe with this Message-ID (`<...>`), if it is one of ours.
    pub fn by_message_id(&self, message_id: &str) -> Result<Option<ProbeRecord>, StateError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM probes WHERE message_id = ?1 AND message_id != '' AND instance = ?2"
        ))?;
        let row = stmt
            .query_row(params![message_id, self.instance], row_to_raw)
            .optional()?;
        row.map(RawRow::into_record).transpose()
    }

    /// Probes still to watch: sent (or possibly sent) and not resolved, newer than `since`.
    pub fn unresolved_since(&self, since: f64) -> Result<Vec<ProbeRecord>, StateError> {
        self.query(
            &format!("SELECT {COLUMNS} FROM probes WHERE state IN ('sending', 'sent', 'deferred', 'missing', 'unknown') AND created_at >= ?1 AND instance = ?2 ORDER BY created_at"),
            params![since, self.instance],
        )
    }

    pub fn round(&self, round_id: i64) -> Result<Vec<ProbeRecord>, StateError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM probes WHERE round_id = ?1 AND instance = ?2 ORDER BY seed, route"
            ),
            params![round_id, self.instance],
        )
    }

    /// The newest finished probe (found, missing, unknown or not sent) of every route × seed
    /// pair: probes still in flight are not results yet.
    pub fn latest_per_pair(&self) -> Result<Vec<ProbeRecord>, StateError> {
        self.query(
            &format!(
                "SELECT {COLUMNS} FROM probes p WHERE state NOT IN ('sending', 'sent') AND instance = ?1 AND created_at = \
                 (SELECT MAX(created_at) FROM probes q WHERE q.route = p.route AND q.seed = p.seed AND q.state NOT IN ('sending', 'sent') AND q.instance = ?1) \
                 ORDER BY seed, route"
            ),
            params![self.instance],
        )
    }

    /// The most recent failing result of each route × seed pair, newest first, at most `limit`
    /// pairs: a pair failing round after round (and its confirmation probes) does not push the
    /// other pairs' failures out of the list.
    pub fn recent_failures(&self, limit: u32) -> Result<Vec<ProbeRecord>, StateError> {
        self.query(
            &format!(
                "WITH failed AS (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY route, seed ORDER BY created_at DESC) AS nth \
                 FROM probes WHERE instance = ?2 AND (state IN ('send_failed', 'missing', 'unknown', 'rejected', 'deferred') OR placement IN ('spam', 'other') \
                 OR CASE WHEN json_valid(judgement_json) THEN \
                    json_extract(judgement_json, '$.verdict.spf') != 'pass' \
                    OR json_extract(judgement_json, '$.verdict.dkim') != 'pass' \
                    OR json_extract(judgement_json, '$.verdict.dmarc') != 'pass' \
                 ELSE 0 END)) \
                 SELECT {COLUMNS} FROM failed WHERE nth = 1 ORDER BY created_at DESC LIMIT ?1"
            ),
            params![limit, self.instance],
        )
    }

    /// Probes a process left in flight (`sending`/`sent`) and no round watches any more
    /// (created before `before`, i.e. older than `timeout + late_window`): a `sent` probe is
    /// `missing`, a `sending` one `unknown` (its send never finished: we cannot know). Returns
    /// the expired probes as they were, so the caller can count them.
    pub fn expire_orphans(&self, before: f64) -> Result<Vec<ProbeRecord>, StateError> {
        let orphans = self.query(
            &format!("SELECT {COLUMNS} FROM probes WHERE state IN ('sending', 'sent', 'deferred') AND created_at < ?1 AND instance = ?2"),
            params![before, self.instance],
        )?;
        for o in &orphans {
            let (placement, error, reason) = if o.state == ProbeState::Sending {
                (
                    Placement::Unknown,
                    Some("the process stopped while sending this probe"),
                    Some("orphaned"),
                )
            } else {
                (Placement::Missing, None, None)
            };
            self.expire(&o.probe_id, placement, error, reason)?;
        }
        Ok(orphans)
    }

    /// Deletes history older than the retention.
    pub fn prune(&self, older_than: f64) -> Result<usize, StateError> {
        let c = self.conn();
        let n = c.execute(
            "DELETE FROM probes WHERE created_at < ?1",
            params![older_than],
        )?;
        c.execute(
            "DELETE FROM rounds WHERE started_at < ?1",
            params![older_than],
        )?;
        Ok(n)
    }

    pub fn count(&self) -> Result<i64, StateError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM probes", [], |r| r.get(0))?)
    }

    fn query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<ProbeRecord>, StateError> {
        let c = self.conn();
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt
            .query_map(p, row_to_raw)?
            .collect::<Result<Vec<_>, _>>()?;
        // One unreadable row is logged and skipped: it must not hide every other result.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let id = row.probe_id.clone();
                row.into_record()
                    .inspect_err(|e| tracing::error!(probe_id = %id, error = %e, "skipping an unreadable probe row"))
                    .ok()
            })
            .collect())
    }
}

struct RawRow {
    probe_id: String,
    round_id: i64,
    route: String,
    seed: String,
    message_id: String,
    state: String,
    created_at: f64,
    sent_at: Option<f64>,
    smtp_json: Option<String>,
    placement: Option<String>,
    folder: Option<String>,
    judgement_json: Option<String>,
    delivery_seconds: Option<f64>,
    late: bool,
    error: Option<String>,
    error_reason: Option<String>,
    resolved_at: Option<f64>,
    bounce_json: Option<String>,
    kind: String,
    expired_as: Option<String>,
}

fn row_to_raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        probe_id: r.get(0)?,
        round_id: r.get(1)?,
        route: r.get(2)?,
        seed: r.get(3)?,
        message_id: r.get(4)?,
        state: r.get(5)?,
        created_at: r.get(6)?,
        sent_at: r.get(7)?,
        smtp_json: r.get(8)?,
        placement: r.get(9)?,
        folder: r.get(10)?,
        judgement_json: r.get(11)?,
        delivery_seconds: r.get(12)?,
        late: r.get::<_, i64>(13)? != 0,
        error: r.get(14)?,
        error_reason: r.get(15)?,
        resolved_at: r.get(16)?,
        bounce_json: r.get(17)?,
        kind: r.get(18)?,
        expired_as: r.get(19)?,
    })
}

impl RawRow {
    fn into_record(self) -> Result<ProbeRecord, StateError> {
        Ok(ProbeRecord {
            probe_id: self.probe_id,
            round_id: self.round_id,
            route: self.route,
            seed: self.seed,
            message_id: self.message_id,
            state: ProbeState::parse(&self.state),
            created_at: self.created_at,
            sent_at: self.sent_at,
            smtp: self
                .smtp_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            placement: self.placement.as_deref().and_then(Placement::parse),
            folder: self.folder,
            judgement: self
                .judgement_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            delivery_seconds: self.delivery_seconds,
            late: self.late,
            error: self.error,
            error_reason: self.error_reason,
            resolved_at: self.resolved_at,
            bounce: self
                .bounce_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()?,
            kind: ProbeKind::parse(&self.kind),
            expired_as: self.expired_as.as_deref().map(ProbeState::parse),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Judgement;
    use crate::verdict::{SpamVerdict, Verdict};

    #[test]
    fn one_unreadable_row_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ProbeStore::open(&dir.path().join("s.sqlite"), "local").expect("open");
        let r = s.start_round().expect("round");
        s.insert_sending(
            r,
            "good1",
            "good",
            "seed1",
            "<a@x>",
            100.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        s.insert_sending(
            r,
            "bad1",
            "spam",
            "seed1",
            "<b@x>",
            100.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        s.expire("good1", Placement::Missing, None, None)
            .expect("expire");
        // A row written by something else (or a broken disk): its JSON does not parse.
        s.conn()
            .execute(
                "UPDATE probes SET state = 'resolved', judgement_json = '{not json' WHERE probe_id = 'bad1'",
                [],
            )
            .expect("corrupt");
        let latest = s
            .latest_per_pair()
            .expect("the other rows are still served");
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].probe_id, "good1");
        assert!(s.recent_failures(10).is_ok());
    }

    #[test]
    fn recent_failures_are_the_newest_of_each_pair() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ProbeStore::open(&dir.path().join("s.sqlite"), "local").expect("open");
        let r = s.start_round().expect("round");
        for (id, route, at) in [
            ("spam1", "spam", 100.0),
            ("spam2", "spam", 200.0),
            ("spam3", "spam", 300.0),
            ("nsent", "down", 150.0),
            ("fine", "good", 400.0),
        ] {
            s.insert_sending(r, id, route, "seed1", "<m@x>", at, ProbeKind::Scheduled)
                .expect("insert");
        }
        for id in ["spam1", "spam2", "spam3", "nsent"] {
            s.expire(id, Placement::Missing, None, None)
                .expect("expire");
        }
        let ids: Vec<String> = s
            .recent_failures(10)
            .expect("failures")
            .into_iter()
            .map(|f| f.probe_id)
            .collect();
        assert_eq!(ids, ["spam3", "nsent"], "one per pair, newest first");
        assert_eq!(s.recent_failures(1).expect("failures").len(), 1);
    }

    #[test]
    fn orphans_expire_missing_or_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = ProbeStore::open(&dir.path().join("s.sqlite"), "local").expect("open");
        let r = s.start_round().expect("round");
        s.insert_sending(
            r,
            "sent1",
            "good",
            "seed1",
            "<a@x>",
            100.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        s.insert_sending(
            r,
            "sending1",
            "good",
            "seed2",
            "<b@x>",
            100.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        s.insert_sending(
            r,
            "young",
            "good",
            "seed3",
            "<c@x>",
            5000.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        let outcome = SendOutcome {
            code: 250,
            queue_id: None,
            duration_seconds: 0.1,
            session: crate::outcome::SmtpSession::Fresh,
        };
        s.mark_sent("sent1", &outcome, 101.0).expect("sent");
        let expired = s.expire_orphans(1000.0).expect("expire orphans");
        assert_eq!(expired.len(), 2);
        let state = |id: &str| s.get(id).expect("get").map(|r| r.state);
        assert_eq!(state("sent1"), Some(ProbeState::Missing));
        assert_eq!(state("sending1"), Some(ProbeState::Unknown));
        assert_eq!(state("young"), Some(ProbeState::Sending));
        assert_eq!(s.prune(1000.0).expect("prune"), 2);
        assert_eq!(s.count().expect("count"), 1);
    }

    #[test]
    fn life_of_a_probe_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite");
        {
            let s = ProbeStore::open(&path, "local").expect("open");
            let r = s.start_round().expect("round");
            s.insert_sending(
                r,
                "p1",
                "good",
                "seed1",
                "<m@x>",
                100.0,
                ProbeKind::Scheduled,
            )
            .expect("insert");
            s.mark_sent(
                "p1",
                &SendOutcome {
                    code: 250,
                    queue_id: Some("Q1".into()),
                    duration_seconds: 0.1,
                    session: crate::outcome::SmtpSession::Fresh,
                },
                100.1,
            )
            .expect("sent");
        }
        let s = ProbeStore::open(&path, "local").expect("reopen");
        let pending = s.unresolved_since(0.0).expect("query");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].state, ProbeState::Sent);
        s.expire("p1", Placement::Missing, None, None)
            .expect("expire");
        let j = Judgement {
            verdict: Verdict::default(),
            spam: SpamVerdict::default(),
            dkim_reason: None,
            spam_reasons: Vec::new(),
            client_ip: None,
            tab: None,
            path: None,
            seen_ip: None,
            headers: None,
            unsubscribe: None,
            error: None,
        };
        assert!(
            s.resolve("p1", Placement::Inbox, "INBOX", &j, Some(3.0))
                .expect("resolve")
        );
        assert!(
            !s.resolve("p1", Placement::Inbox, "INBOX", &j, Some(3.0))
                .expect("again")
        );
        let rec = s.get("p1").expect("get").expect("exists");
        assert!(rec.late, "found after the timeout counts as late");
        assert_eq!(rec.placement, Some(Placement::Inbox));
        assert_eq!(rec.smtp.and_then(|o| o.queue_id).as_deref(), Some("Q1"));
    }

    #[test]
    fn rows_of_an_older_state_file_are_the_local_instances_and_others_stay_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.sqlite");
        {
            // A state file as the release before instances wrote it.
            let c = Connection::open(&path).expect("create");
            c.execute_batch(
                "CREATE TABLE rounds (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL);
                 CREATE TABLE probes (probe_id TEXT PRIMARY KEY, round_id INTEGER NOT NULL, route TEXT NOT NULL,
                   seed TEXT NOT NULL, message_id TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
                   sent_at REAL, smtp_json TEXT, placement TEXT, folder TEXT, judgement_json TEXT,
                   delivery_seconds REAL, late INTEGER NOT NULL DEFAULT 0, error TEXT, error_reason TEXT,
                   resolved_at REAL, bounce_json TEXT);
                 INSERT INTO rounds (started_at) VALUES (100.0);
                 INSERT INTO probes (probe_id, round_id, route, seed, message_id, state, created_at)
                   VALUES ('old1', 1, 'good', 'seed1', '<old1@x>', 'sent', 100.0);",
            )
            .expect("old schema");
        }
        let a = ProbeStore::open(&path, "site-a").expect("migrate");
        let old = a
            .get("old1")
            .expect("get")
            .expect("the old row is site-a's");
        assert_eq!(old.state, ProbeState::Sent);
        assert_eq!(a.unresolved_since(0.0).expect("unresolved").len(), 1);
        drop(a);
        // Another instance opening the same file later sees none of site-a's rows...
        let b = ProbeStore::open(&path, "site-b").expect("open as site-b");
        assert_eq!(b.get("old1").expect("get"), None);
        assert!(b.unresolved_since(0.0).expect("unresolved").is_empty());
        assert!(b.expire_orphans(1e12).expect("orphans").is_empty());
        assert_eq!(b.by_message_id("<old1@x>").expect("by message id"), None);
        let r = b.start_round().expect("round");
        b.insert_sending(
            r,
            "new1",
            "good",
            "seed1",
            "<new1@x>",
            200.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
        assert_eq!(b.latest_per_pair().expect("latest").len(), 0);
        b.expire("new1", Placement::Missing, None, None)
            .expect("expire");
        assert_eq!(b.latest_per_pair().expect("latest").len(), 1);
        assert_eq!(b.recent_failures(10).expect("failures").len(), 1);
        drop(b);
        // ... and site-a none of site-b's.
        let a = ProbeStore::open(&path, "site-a").expect("reopen as site-a");
        assert_eq!(a.get("new1").expect("get"), None);
        assert!(a.latest_per_pair().expect("latest").is_empty());
        assert!(a.recent_failures(10).expect("failures").is_empty());
        assert_eq!(a.count().expect("count"), 2, "both rows are in the file");
    }
}
