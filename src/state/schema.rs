//! The state file's tables, all in one place, and the migrations of older files. Tables are
//! created when missing (`IF NOT EXISTS`), so a file written by an older release opens as it
//! is; columns added since are added here.

use rusqlite::{Connection, params};

/// Every table: the rounds and probes ([`super::probes`]), each route × seed pair's standing
/// ([`super::pairs`]), then the reports the report
/// mailboxes brought, the mails read and the source names looked up ([`super::reports`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS probes (
    probe_id TEXT PRIMARY KEY,
    round_id INTEGER NOT NULL,
    route TEXT NOT NULL,
    seed TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    smtp_json TEXT,
    placement TEXT,
    folder TEXT,
    judgement_json TEXT,
    delivery_seconds REAL,
    late INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    error_reason TEXT,
    resolved_at REAL,
    bounce_json TEXT,
    instance TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'scheduled',
    expired_as TEXT
);
CREATE INDEX IF NOT EXISTS probes_state ON probes(state, created_at);
CREATE INDEX IF NOT EXISTS probes_pair ON probes(route, seed, created_at);
CREATE TABLE IF NOT EXISTS pairs (
    instance TEXT NOT NULL,
    route TEXT NOT NULL,
    seed TEXT NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    problem TEXT,
    counted_until REAL,
    confirmation_id TEXT,
    confirmation_created_at REAL,
    confirmation_overdue INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance, route, seed)
);
CREATE TABLE IF NOT EXISTS reports (
    kind TEXT NOT NULL,
    reporter_key TEXT NOT NULL,
    report_id TEXT NOT NULL,
    reporter TEXT NOT NULL,
    domain TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    begin_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    received_at REAL NOT NULL,
    report_json TEXT NOT NULL,
    PRIMARY KEY (kind, reporter_key, report_id)
);
CREATE INDEX IF NOT EXISTS reports_received ON reports(received_at);
CREATE TABLE IF NOT EXISTS report_messages (
    mailbox TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (mailbox, message_id)
);
CREATE TABLE IF NOT EXISTS source_names (
    ip TEXT PRIMARY KEY,
    name TEXT,
    looked_up_at REAL NOT NULL
);
";

/// Creates the missing tables of the state file and brings an older one up to date; rows of
/// the probes written before instances existed become `instance`'s.
pub(super) fn create(conn: &Connection, instance: &str) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    migrate(conn, instance)
}

/// Columns added after the first release, added to older state files on open. Rows written
/// before instances existed (instance `''`) are the opening instance's: it sent them.
fn migrate(conn: &Connection, instance: &str) -> rusqlite::Result<()> {
    let has_column = |name: &str| -> rusqlite::Result<bool> {
        conn.prepare("SELECT 1 FROM pragma_table_info('probes') WHERE name = ?1")?
            .exists(params![name])
    };
    if !has_column("bounce_json")? {
        conn.execute_batch("ALTER TABLE probes ADD COLUMN bounce_json TEXT")?;
    }
    if !has_column("instance")? {
        conn.execute_batch("ALTER TABLE probes ADD COLUMN instance TEXT NOT NULL DEFAULT ''")?;
    }
    if !has_column("kind")? {
        conn.execute_batch("ALTER TABLE probes ADD COLUMN kind TEXT NOT NULL DEFAULT 'scheduled'")?;
    }
    if !has_column("expired_as")? {
        conn.execute_batch("ALTER TABLE probes ADD COLUMN expired_as TEXT")?;
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS probes_instance ON probes(instance, state)")?;
    // A seed's confirmation budget is read back at its first confirmation after a start: with
    // a week of probes of a thousand seeds kept, a scan of the table per seed is not an option.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS probes_seed_kind ON probes(seed, kind, created_at)",
    )?;
    conn.execute(
        "UPDATE probes SET instance = ?1 WHERE instance = ''",
        params![instance],
    )?;
    Ok(())
}
