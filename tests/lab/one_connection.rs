//! Where the server offers NOTIFY (RFC 5465; the lab's Dovecot does), a seed's inbox and spam
//! folder share one IMAP connection: a NOOP on the inbox hears about the spam folder, which
//! borrows the connection only to read. Round after round, with probes landing in both folders,
//! Dovecot logs one login for the seed, and every probe is found where it landed.
//!
//! Mailbox: the lab's `seed17` (this test's only).

use std::path::Path;
use std::time::Duration;

use crate::common::live::wait_for;
use crate::common::support::{Daemon, series_value};
use crate::common::*;

const USER: &str = "seed17";
const INBOX_FOUND: &str =
    r#"mailcanary_probes_received_total{placement="inbox",route="good",seed="n17"}"#;
const SPAM_FOUND: &str =
    r#"mailcanary_probes_received_total{placement="spam",route="spam",seed="n17"}"#;

fn config(dir: &Path, listen: &str) -> String {
    format!(
        "{}{}{}{}",
        run_sections(dir, listen, "*/3 * * * * *", "20s", "one-connection", ""),
        route("good", "probe <probe@sender.test>", ""),
        route(
            "spam",
            "probe <probe@sender.test>",
            "message.text = \"Hello,\\n\\nAct now: mailcanary-lab-spam-phrase. Limited offer!\\n\"",
        ),
        seed("n17", USER),
    )
}

/// Dovecot's logins of the test's user so far.
fn logins() -> usize {
    dovecot_logins(USER)
}

fn value(daemon: &Daemon, series: &str) -> f64 {
    series_value(&scrape(daemon), series).unwrap_or(0.0)
}

#[test]
fn inbox_and_spam_folder_share_one_connection_where_the_server_offers_notify() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let before = logins();
    let daemon = start_run(dir.path(), "one-connection", move |addr| config(&d, addr));
    wait_for(
        "three rounds' probes found in the inbox and in the spam folder",
        Duration::from_secs(60),
        || {
            let (inbox, spam) = (value(&daemon, INBOX_FOUND), value(&daemon, SPAM_FOUND));
            if inbox >= 3.0 && spam >= 3.0 {
                Ok(())
            } else {
                Err(format!("inbox {inbox}, spam {spam}"))
            }
        },
        || daemon.log(),
    );
    let metrics = scrape(&daemon);
    for bad in [
        r#"mailcanary_probes_received_total{placement="inbox",route="spam",seed="n17"}"#,
        r#"mailcanary_probes_received_total{placement="spam",route="good",seed="n17"}"#,
    ] {
        let found = series_value(&metrics, bad).unwrap_or(0.0);
        assert_eq!(found, 0.0, "{bad} is {found}");
    }
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("mailcanary_imap_errors_total{") && !l.ends_with(" 0")),
        "IMAP errors:\n{}",
        daemon.log()
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("mailcanary_forged_probes_total{") && !l.ends_with(" 0")),
        "forged probes counted"
    );
    // Dovecot writes its log line as the login happens; give a late line a moment.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        logins() - before,
        1,
        "one login for both folders and every round, Dovecot logged {}\n{}",
        logins() - before,
        daemon.log()
    );
}
