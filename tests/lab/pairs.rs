//! A pair's standing and its confirmation probes, against the real lab: a bad outcome (the
//! `spam` route filed in Junk) sends a confirmation probe at once and, when it agrees, the pair
//! is `confirmed` in one `once`; with the seed's budget at 0 the pair stays `suspect`; and in
//! `run`, a probe in flight (the `deferred` route's, refused with 421 until its timeout) never
//! holds back another pair's next probes: the `good` route keeps probing on schedule while
//! the deferred pair skips its turns and says so.

use crate::common;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::live::wait_for;
use common::support::series_value;
use common::*;
use serde_json::Value;

/// The seed these tests send to: no other test reads it.
const USER: &str = "seed14";

fn once(config: &Path) -> (i32, Value) {
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run mailcanary once");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "once --json printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn result<'a>(json: &'a Value, route: &str) -> &'a Value {
    json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["route"] == route))
        .unwrap_or_else(|| panic!("no result for route {route} in {json:#}"))
}

fn spam_route() -> String {
    route(
        "spam",
        "probe <probe@sender.test>",
        "message.text = \"Hello,\\n\\nAct now: mailcanary-lab-spam-phrase. Limited offer!\\n\"",
    )
}

/// Probes of `route` recorded in the state, by kind.
fn kinds(dir: &Path, route: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("state.sqlite")).expect("open state");
    let mut stmt = conn
        .prepare("SELECT kind FROM probes WHERE route = ?1 ORDER BY created_at")
        .expect("prepare");
    stmt.query_map([route], |r| r.get::<_, String>(0))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows")
}

#[test]
fn a_bad_outcome_is_confirmed_at_once_and_a_good_one_is_not_probed_again() {
    require_lab();
    let _seed = support::lab_lock("mailcanary-lab-seed14.lock", USER, Duration::from_secs(300));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}{}",
            probe_section(dir.path(), "30s", ""),
            route("good", "probe <probe@sender.test>", ""),
            spam_route(),
            seed("p", USER),
        ),
    );
    let (code, json) = once(&config);
    assert_eq!(
        json["results"].as_array().map(Vec::len),
        Some(2),
        "{json:#}"
    );
    let spam = result(&json, "spam");
    assert_eq!(spam["placement"], "spam", "{spam:#}");
    assert_eq!(
        spam["kind"], "confirmation",
        "the confirmation supersedes: {spam:#}"
    );
    assert_eq!(spam["pair_state"], "confirmed", "{spam:#}");
    let good = result(&json, "good");
    assert_eq!(good["kind"], "scheduled");
    assert_eq!(good["pair_state"], "ok");
    assert_eq!(code, 1, "spam is a warning");
    assert_eq!(kinds(dir.path(), "spam"), ["scheduled", "confirmation"]);
    assert_eq!(
        kinds(dir.path(), "good"),
        ["scheduled"],
        "a good outcome is not confirmed"
    );

    // The next run starts where the pair stands: confirmed, and still spam, so no further
    // confirmation is sent.
    let (_, json) = once(&config);
    let spam = result(&json, "spam");
    assert_eq!(spam["kind"], "scheduled", "{spam:#}");
    assert_eq!(spam["pair_state"], "confirmed");
    assert_eq!(
        kinds(dir.path(), "spam"),
        ["scheduled", "confirmation", "scheduled"]
    );
}

#[test]
fn with_no_budget_left_a_bad_outcome_stays_suspect() {
    require_lab();
    let _seed = support::lab_lock("mailcanary-lab-seed14.lock", USER, Duration::from_secs(300));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}confirmations_per_hour = 0\n",
            probe_section(dir.path(), "30s", ""),
            spam_route(),
            seed("p", USER),
        ),
    );
    let (_, json) = once(&config);
    let spam = result(&json, "spam");
    assert_eq!(spam["kind"], "scheduled", "{spam:#}");
    assert_eq!(spam["pair_state"], "suspect", "{spam:#}");
    assert_eq!(kinds(dir.path(), "spam"), ["scheduled"]);
}

#[test]
fn a_probe_in_flight_never_holds_back_another_pairs_next_probes() {
    require_lab();
    let _seed = support::lab_lock("mailcanary-lab-seed14.lock", USER, Duration::from_secs(300));
    let dir = tempfile::tempdir().expect("tempdir");
    let bounce_box = format!(
        "[bounce_mailboxes.lab]\naddress = \"bounces@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"bounces\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\n"
    );
    let d = dir.path().to_path_buf();
    let daemon = start_run(dir.path(), "pairs", move |addr| {
        format!(
            "{}{}{}{}{bounce_box}",
            run_sections(&d, addr, "*/2 * * * * *", "30s", "pairs", ""),
            route("good", "probe <probe@sender.test>", ""),
            route(
                "deferred",
                "probe <probe@deferred.test>",
                "envelope_from = \"bounces@deferred.test\"\nbounces = \"lab\""
            ),
            seed("p", USER),
        )
    });
    let m = |s: &str| series_value(&scrape(&daemon), s).unwrap_or(0.0);
    const GOOD_FOUND: &str =
        r#"mailcanary_probes_received_total{placement="inbox",route="good",seed="p"}"#;
    const DEFERRED_SENT: &str = r#"mailcanary_probes_sent_total{route="deferred",seed="p"}"#;
    const DEFERRED_SKIPPED: &str = r#"mailcanary_probes_skipped_total{route="deferred",seed="p"}"#;
    // Within the deferred probe's 30 s timeout, `good` is probed and found round after round.
    wait_for(
        "good probed on schedule while the deferred probe is in flight",
        Duration::from_secs(25),
        || {
            let (found, skipped) = (m(GOOD_FOUND), m(DEFERRED_SKIPPED));
            if found >= 4.0 && skipped >= 3.0 {
                Ok(())
            } else {
                Err(format!(
                    "good found {found}, deferred turns skipped {skipped}"
                ))
            }
        },
        || daemon.log(),
    );
    let text = scrape(&daemon);
    let v = |s: &str| series_value(&text, s).unwrap_or(0.0);
    // The deferred pair: its first probe and one confirmation (a delay notice is a bad
    // outcome), both still in flight — nothing more was sent to it.
    assert_eq!(v(DEFERRED_SENT), 2.0, "{}", daemon.log());
    assert_eq!(
        v(r#"mailcanary_confirmation_probes_total{route="deferred",seed="p"}"#),
        1.0
    );
    assert_eq!(
        v(r#"mailcanary_pair_state{route="deferred",seed="p",state="confirmed"}"#),
        1.0,
        "both deferred: confirmed"
    );
    assert_eq!(
        v(r#"mailcanary_last_placement{placement="deferred",route="deferred",seed="p"}"#),
        1.0
    );
    assert_eq!(
        v(r#"mailcanary_pair_state{route="good",seed="p",state="ok"}"#),
        1.0
    );
    assert_eq!(
        v(r#"mailcanary_probes_skipped_total{route="good",seed="p"}"#),
        0.0,
        "good never waited for anything"
    );
}
