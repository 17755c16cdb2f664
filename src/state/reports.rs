//! The reports of the state: every report the report mailboxes brought, kept once. A report
//! is keyed by its kind, its reporter (org name, folded) and its report
//! id, as RFC 7489 §7.2.1.1 asks reporters to keep `report_id` unique per reporter; the
//! Message-IDs of mails already read are kept too, so a mail is fetched once, not every pass.

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Db, StateError};
use crate::reports::{Report, ReportKind};

/// One report as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// The reporter's org name, folded ([`crate::reports::labels::reporter_key`]).
    pub reporter_key: String,
    /// The reporter's metric label.
    pub reporter: String,
    /// The configured domain it is about.
    pub domain: String,
    /// The report mailbox it came from.
    pub mailbox: String,
    pub received_at: f64,
    pub report: Report,
}

/// The reports in the state file.
pub struct ReportStore {
    db: Arc<Db>,
}

impl ReportStore {
    /// The reports of the state `db`.
    pub fn new(db: Arc<Db>) -> ReportStore {
        ReportStore { db }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.conn()
    }

    /// Stores a report unless the same reporter's report with the same id is stored already.
    /// Returns whether it was new.
    pub fn insert(&self, r: &StoredReport) -> Result<bool, StateError> {
        let json = serde_json::to_string(&r.report)?;
        let (id, (begin, end)) = (r.report.report_id(), r.report.period());
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO reports (kind, reporter_key, report_id, reporter, domain, mailbox, \
             begin_ts, end_ts, received_at, report_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.report.kind().as_str(),
                r.reporter_key,
                id,
                r.reporter,
                r.domain,
                r.mailbox,
                begin,
                end,
                r.received_at,
                json
            ],
        )?;
        Ok(n == 1)
    }

    /// The Message-IDs of the mails of `mailbox` already read.
    pub fn seen_messages(&self, mailbox: &str) -> Result<HashSet<String>, StateError> {
        let c = self.conn();
        let mut st = c.prepare("SELECT message_id FROM report_messages WHERE mailbox = ?1")?;
        let ids = st
            .query_map(params![mailbox], |r| r.get::<_, String>(0))?
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(ids)
    }

    /// Remembers that a mail was read, and what came of it (a fixed word).
    pub fn remember_message(
        &self,
        mailbox: &str,
        message_id: &str,
        outcome: &str,
        at: f64,
    ) -> Result<(), StateError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO report_messages (mailbox, message_id, seen_at, outcome) \
             VALUES (?1, ?2, ?3, ?4)",
            params![mailbox, message_id, at, outcome],
        )?;
        Ok(())
    }

    /// Reports received at or after `since`, newest first; a row that no longer reads (an
    /// older or damaged entry) is skipped, not fatal.
    pub fn received_since(&self, since: f64) -> Result<Vec<StoredReport>, StateError> {
        self.query(
            "SELECT reporter_key, reporter, domain, mailbox, received_at, report_json FROM reports \
             WHERE received_at >= ?1 ORDER BY received_at DESC, end_ts DESC",
            params![since],
        )
    }

    /// The newest `limit` reports.
    pub fn latest(&self, limit: u32) -> Result<Vec<StoredReport>, StateError> {
        self.query(
            "SELECT reporter_key, reporter, domain, mailbox, received_at, report_json FROM reports \
             ORDER BY received_at DESC, end_ts DESC LIMIT ?1",
            params![limit],
        )
    }

    fn query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<StoredReport>, StateError> {
        let c = self.conn();
        let mut st = c.prepare(sql)?;
        let rows = st.query_map(p, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (reporter_key, reporter, domain, mailbox, received_at, json) = row?;
            match serde_json::from_str::<Report>(&json) {
                Ok(report) => out.push(StoredReport {
                    reporter_key,
                    reporter,
                    domain,
                    mailbox,
                    received_at,
                    report,
                }),
                Err(e) => tracing::warn!(error = %e, "stored report unreadable; skipped"),
            }
        }
        Ok(out)
    }

    /// The newest DMARC report period end per (domain, reporter), to restore
    /// `mailcanary_dmarc_last_report_timestamp_seconds` at start-up.
    pub fn last_dmarc_per_reporter(&self) -> Result<Vec<(String, String, i64)>, StateError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT domain, reporter, MAX(end_ts) FROM reports WHERE kind = ?1 \
             GROUP BY domain, reporter",
        )?;
        let rows = st
            .query_map(params![ReportKind::Dmarc.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The reverse name looked up for a source IP, if any was (`Some(None)`: looked up, none).
    pub fn source_name(&self, ip: &str) -> Result<Option<Option<String>>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM source_names WHERE ip = ?1",
                params![ip],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    pub fn set_source_name(&self, ip: &str, name: Option<&str>, at: f64) -> Result<(), StateError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO source_names (ip, name, looked_up_at) VALUES (?1, ?2, ?3)",
            params![ip, name, at],
        )?;
        Ok(())
    }

    /// Forgets reports received, mails read and names looked up before `older_than`. Mails
    /// are remembered a week longer than reports: a mail still in the mailbox is searched only
    /// within the retention window, so it is never read (and counted) twice.
    pub fn prune(&self, older_than: f64) -> Result<usize, StateError> {
        let c = self.conn();
        let n = c.execute(
            "DELETE FROM reports WHERE received_at < ?1",
            params![older_than],
        )?;
        c.execute(
            "DELETE FROM report_messages WHERE seen_at < ?1",
            params![older_than - 7.0 * 86_400.0],
        )?;
        c.execute(
            "DELETE FROM source_names WHERE looked_up_at < ?1",
            params![older_than],
        )?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::dmarc::AggregateReport;

    fn report(id: &str, end: i64) -> StoredReport {
        StoredReport {
            reporter_key: "google.com".into(),
            reporter: "google.com".into(),
            domain: "example.com".into(),
            mailbox: "rua".into(),
            received_at: 1000.0,
            report: Report::Dmarc(AggregateReport {
                org_name: "google.com".into(),
                report_id: id.into(),
                begin: end - 86_400,
                end,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_report_is_stored_once_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("s.sqlite"), "local").expect("open");
        let store = ReportStore::new(Arc::new(db));
        assert!(store.insert(&report("r1", 2000)).expect("insert"));
        assert!(!store.insert(&report("r1", 2000)).expect("insert again"));
        assert!(store.insert(&report("r2", 3000)).expect("insert other"));
        let back = store.latest(10).expect("latest");
        assert_eq!(back.len(), 2);
        assert_eq!(back.iter().filter(|r| r == &&report("r1", 2000)).count(), 1);
        assert_eq!(
            store.last_dmarc_per_reporter().expect("last"),
            vec![("example.com".to_string(), "google.com".to_string(), 3000)]
        );
        assert_eq!(store.prune(1001.0).expect("prune"), 2);
        assert!(store.latest(10).expect("latest").is_empty());
    }

    #[test]
    fn read_mails_are_remembered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("s.sqlite"), "local").expect("open");
        let store = ReportStore::new(Arc::new(db));
        store
            .remember_message("rua", "<a@b>", "stored", 10.0)
            .expect("remember");
        assert!(store.seen_messages("rua").expect("seen").contains("<a@b>"));
        assert!(store.seen_messages("other").expect("seen").is_empty());
    }
}
