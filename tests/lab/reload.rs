//! Config reload of a running `mailcanary run`: SIGHUP and `POST /-/reload` put a changed file
//! in force (a new route is probed, a removed route's series leave /metrics) while the IMAP
//! connections of the unchanged seed are kept (Dovecot logs no new login); an invalid file is
//! refused — logged with its errors, answered with a generic error, exported as
//! `mailcanary_config_last_reload_successful 0` — and the running config goes on probing. A
//! reload during a round applies only from the next.
//!
//! Mailboxes: the lab's `seed4` (these tests' only); the round test's first probe goes to
//! `seed20` (the instances test's, where it is another instance's probe and left alone).

use std::path::Path;
use std::time::Duration;

use crate::common::live::wait_for;
use crate::common::support::{Daemon, http, series_value};
use crate::common::*;

const USER: &str = "seed4";

const GOOD_SENT: &str = r#"mailcanary_probes_sent_total{route="good",seed="r4"}"#;
const SPAM_SENT: &str = r#"mailcanary_probes_sent_total{route="spam",seed="r4"}"#;
const SPAM_FOUND: &str =
    r#"mailcanary_probes_received_total{placement="spam",route="spam",seed="r4"}"#;
const OK: &str = "mailcanary_config_last_reload_successful";
const OK_AT: &str = "mailcanary_config_last_reload_success_timestamp_seconds";

fn config(dir: &Path, listen: &str, spam_route: bool, extra: &str) -> String {
    let spam = if spam_route {
        route(
            "spam",
            "probe <probe@sender.test>",
            "message.text = \"Hello,\\n\\nAct now: mailcanary-lab-spam-phrase. Limited offer!\\n\"",
        )
    } else {
        String::new()
    };
    format!(
        "{}{}{spam}{}",
        run_sections(dir, listen, "*/2 * * * * *", "20s", "reload-test", extra),
        route("good", "probe <probe@sender.test>", ""),
        seed("r4", USER),
    )
}

fn value(daemon: &Daemon, series: &str) -> Option<f64> {
    series_value(&scrape(daemon), series)
}

/// Waits until `series` reaches at least `at_least`.
fn wait_value(daemon: &Daemon, series: &str, at_least: f64) {
    wait_for(
        &format!("{series} >= {at_least}"),
        Duration::from_secs(40),
        || match value(daemon, series) {
            Some(v) if v >= at_least => Ok(()),
            other => Err(format!("{other:?}")),
        },
        || daemon.log(),
    );
}

/// Dovecot's logins of the test's user so far.
fn logins() -> usize {
    dovecot_logins(USER)
}

fn reload(daemon: &Daemon) -> (u16, String) {
    http(&daemon.addr, "POST", "/-/reload", None).expect("POST /-/reload")
}

#[test]
fn sighup_and_post_reload_apply_a_valid_config_and_refuse_an_invalid_one() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_path_buf();
    let daemon = start_run(dir.path(), "reload", move |addr| {
        config(&d, addr, false, "")
    });
    let path = dir.path().join("reload.toml");
    let write = |spam: bool, extra: &str| {
        std::fs::write(&path, config(dir.path(), &daemon.addr, spam, extra)).expect("write")
    };
    wait_value(&daemon, GOOD_SENT, 2.0);
    assert_eq!(value(&daemon, OK), Some(1.0), "the start counts as a load");
    let started_at = value(&daemon, OK_AT).expect("reload timestamp");
    assert!(started_at > 1.7e9, "{started_at}");
    assert_eq!(
        value(&daemon, SPAM_SENT),
        None,
        "no series for a route not configured"
    );
    let logins_before = logins();
    assert!(logins_before >= 2, "inbox and Junk connections");

    // SIGHUP with a new route: probed from the next round, series pre-initialised, and the
    // seed's connections kept.
    write(true, "");
    daemon.signal("HUP");
    wait_value(&daemon, SPAM_FOUND, 1.0);
    assert_eq!(value(&daemon, OK), Some(1.0));
    let reloaded_at = value(&daemon, OK_AT).expect("reload timestamp");
    assert!(reloaded_at > started_at, "{reloaded_at} > {started_at}");
    assert!(daemon.log().contains("config reloaded"), "{}", daemon.log());
    assert_eq!(
        logins(),
        logins_before,
        "the unchanged seed's IMAP connections were kept (no new Dovecot login)"
    );

    // An invalid file, by SIGHUP: refused, logged with its error, exported; the running config
    // goes on probing both routes.
    write(true, "cleanup = \"trash\"");
    daemon.signal("HUP");
    wait_for(
        "the refused reload exported",
        Duration::from_secs(10),
        || match value(&daemon, OK) {
            Some(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
        || daemon.log(),
    );
    let log = daemon.log();
    assert!(
        log.contains("config reload refused")
            && log.contains(
                r#"probe.cleanup: expected "delete", "keep" or "move:<folder>", got "trash""#
            ),
        "{log}"
    );
    assert_eq!(
        value(&daemon, OK_AT),
        Some(reloaded_at),
        "only a success moves the timestamp"
    );
    let spam_sent = value(&daemon, SPAM_SENT).expect("spam route series");
    wait_value(&daemon, SPAM_FOUND, spam_sent + 1.0);

    // The same file by HTTP: 500 with a generic answer; the reasons (which can quote paths
    // and values) are in the log only.
    let refused_before = daemon.log().matches("config reload refused").count();
    let (code, body) = reload(&daemon);
    assert_eq!(
        (code, body.as_str()),
        (500, "reload refused; see the log\n")
    );
    assert_eq!(
        daemon.log().matches("config reload refused").count(),
        refused_before + 1,
        "{}",
        daemon.log()
    );
    // What needs a restart is refused, saying so in the log.
    std::fs::write(&path, config(dir.path(), "127.0.0.1:1", true, "")).expect("write");
    let (code, body) = reload(&daemon);
    assert_eq!(
        (code, body.as_str()),
        (500, "reload refused; see the log\n")
    );
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "probe.listen: cannot change from {} to 127.0.0.1:1 while running; restart mailcanary",
            daemon.addr
        )),
        "{log}"
    );
    assert_eq!(value(&daemon, OK), Some(0.0));

    // POST with the route removed: in force, and its series leave /metrics for good.
    write(false, "");
    let (code, body) = reload(&daemon);
    assert_eq!(
        (code, body.as_str()),
        (200, "config reloaded; in force from the next round\n")
    );
    assert_eq!(value(&daemon, OK), Some(1.0));
    let good = value(&daemon, GOOD_SENT).expect("good route");
    wait_value(&daemon, GOOD_SENT, good + 2.0);
    let metrics = scrape(&daemon);
    assert!(
        !metrics.contains(r#"route="spam""#),
        "series of the removed route still exported:\n{metrics}"
    );
    assert_eq!(
        logins(),
        logins_before,
        "still the same IMAP connections after three reloads"
    );
    let (code, _) = http(&daemon.addr, "GET", "/-/reload", None).expect("GET /-/reload");
    assert_eq!(code, 405, "reload is POST only");
}

/// A reload during a round changes nothing in that round: its probe (sent to a mailbox the
/// seed does not read, so it can only time out) is watched to its timeout and counted
/// `missing`, the round finishes, and only the next round uses the new config (the seed's
/// address fixed: found in the inbox). Confirmation probes are off here: one sent when the
/// probe is overdue would already go out under the new config (as it should), which is not
/// what this test looks at.
#[test]
fn a_reload_waits_for_the_running_round_to_finish() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    // Seed `r` reads seed4 but, at first, its probes go to seed20 (this file's other mailbox,
    // where another instance's probe is left alone): they time out after 6 s.
    let config = |dir: &Path, listen: &str, address: &str| {
        format!(
            "{}{}{}",
            run_sections(
                dir,
                listen,
                "*/2 * * * * *",
                "6s",
                "reload-round",
                "confirm_after = \"0s\""
            ),
            route("good", "probe <probe@sender.test>", ""),
            seed("r", USER).replace("seed4@seed.test", address) + "confirmations_per_hour = 0\n",
        )
    };
    let d = dir.path().to_path_buf();
    let daemon = start_run(dir.path(), "round", move |addr| {
        config(&d, addr, "seed20@seed.test")
    });
    const SENT: &str = r#"mailcanary_probes_sent_total{route="good",seed="r"}"#;
    const MISSING: &str = r#"mailcanary_probes_missing_total{route="good",seed="r"}"#;
    const FOUND: &str =
        r#"mailcanary_probes_received_total{placement="inbox",route="good",seed="r"}"#;
    wait_value(&daemon, SENT, 1.0);
    // Counted from the first missing probe (the series budget): none yet is no series, or 0.
    assert_eq!(
        value(&daemon, MISSING).unwrap_or(0.0),
        0.0,
        "round 1 still running"
    );
    std::fs::write(
        dir.path().join("round.toml"),
        config(dir.path(), &daemon.addr, "seed4@seed.test"),
    )
    .expect("write");
    let (code, body) = reload(&daemon);
    assert_eq!(code, 200, "{body}");
    // Round 1 goes on with its config: its probe times out and is counted missing.
    wait_value(&daemon, MISSING, 1.0);
    wait_value(&daemon, FOUND, 1.0);
    let log = daemon.log();
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("{what:?} not logged:\n{log}"))
    };
    assert!(
        at("config reloaded") < at("probe not found before the timeout")
            && at("probe not found before the timeout") < at("round finished round_id=1")
            && at("round finished round_id=1") < at("probe found"),
        "reload, then round 1's timeout and end, then round 2's probe found:\n{log}"
    );
    assert_eq!(value(&daemon, MISSING), Some(1.0), "{log}");
}
