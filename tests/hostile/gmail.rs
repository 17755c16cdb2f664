//! Gmail's extensions end to end: `mailcanary once` with a `provider = "gmail"` seed against
//! our X-GM-EXT-1 stand-in ([`crate::gmail_server`]; Dovecot cannot speak X-GM-EXT-1). The probe
//! really goes through SMTP (the stand-in's MX side files it) and is found over IMAP by its
//! Message-ID (`X-GM-RAW "rfc822msgid:…"`), never by a header search and never in All Mail;
//! an inbox hit gets its tab; throttling answers are honoured.
//!
//! The politeness figures of docs/benchmarks.md come from here: each scenario prints
//! `politeness-figure` lines with the IMAP commands and connections one round cost.

use serde_json::Value;

use crate::child::{Finished, Running};
use std::time::Duration;

use crate::gmail_server::{self, Filing, GmailServer, Mode, Timing};
use crate::setup::{Expect, Setup, assert_once, route, short, single};
use crate::{HARD_LIMIT, ONCE_WITHIN};

/// Runs `once --json` with one route (`route_extra` appended) and one Gmail seed.
fn once(filing: Filing, mode: Mode, timeout: &str, route_extra: &str) -> (Finished, GmailServer) {
    once_against(gmail_server::start(filing, mode), timeout, route_extra)
}

fn once_against(gmail: GmailServer, timeout: &str, route_extra: &str) -> (Finished, GmailServer) {
    let setup = Setup::new();
    let config = setup.config(
        &format!("timeout = \"{timeout}\""),
        &format!("{}{route_extra}\n", route(gmail.smtp_port, "none")),
        &setup.gmail_seed(gmail.imap_port, ""),
    );
    let config = config.to_str().expect("utf-8 path");
    let run =
        Running::spawn(&["once", "--config", config, "--json"], &[]).finish_within(HARD_LIMIT);
    (run, gmail)
}

/// The client lines that are commands (a tag and a verb; IDLE's `DONE` is not one).
fn commands(gmail: &GmailServer) -> usize {
    gmail
        .imap
        .lines()
        .iter()
        .filter(|l| l.split_whitespace().count() >= 2)
        .count()
}

/// What every Gmail round must (not) have done, whatever it found.
fn assert_gmail_manners(gmail: &GmailServer) {
    let t = gmail.imap.transcript();
    assert!(
        gmail.imap.saw("X-GM-RAW \"rfc822msgid:"),
        "no Message-ID search\n{t}"
    );
    assert!(
        !gmail.imap.saw("HEADER X-Mailcanary-Probe"),
        "a header search was sent to Gmail\n{t}"
    );
    assert!(
        !gmail.imap.saw("All Mail"),
        "[Gmail]/All Mail was read\n{t}"
    );
}

fn figure(scenario: &str, gmail: &GmailServer) {
    // One line per scenario for docs/benchmarks.md ("Politeness at Gmail"), with the
    // commands by verb (`UID SEARCH` counted as SEARCH).
    let mut verbs = std::collections::BTreeMap::new();
    for line in gmail.imap.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let verb = match words.as_slice() {
            [_, "UID", verb, ..] | [_, verb, ..] => verb.to_ascii_uppercase(),
            _ => continue,
        };
        *verbs.entry(verb).or_insert(0) += 1;
    }
    let verbs: Vec<String> = verbs.iter().map(|(v, n)| format!("{v}:{n}")).collect();
    eprintln!(
        "politeness-figure\t{scenario}\tcommands={}\tconnections={}\t{}",
        commands(gmail),
        gmail.imap.connections(),
        verbs.join(",")
    );
}

fn resolved(exit: i32, placement: &'static str) -> Expect {
    Expect {
        exit,
        state: "resolved",
        placement: Some(placement),
        reasons: &[],
    }
}

fn causes(result: &Value) -> Vec<String> {
    result["diagnosis"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["cause"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn gmail_primary_tab_as_expected_is_ok_in_one_tab_search() {
    let (run, gmail) = once(
        Filing::Inbox("primary"),
        Mode::Normal,
        "10s",
        "expect_tab = \"primary\"",
    );
    let report = assert_once(&run, ONCE_WITHIN, &resolved(0, "inbox"));
    let result = single(&report, &run);
    assert_eq!(result["tab"], "primary", "{}", short(result));
    assert!(causes(result).is_empty(), "{}", short(result));
    assert_gmail_manners(&gmail);
    // Primary is tried first: one category search settles it.
    let tab_searches = gmail
        .imap
        .lines()
        .iter()
        .filter(|l| l.contains("X-GM-RAW \"category:"))
        .count();
    assert_eq!(tab_searches, 1, "{}", gmail.imap.transcript());
    // One connection per watched folder (INBOX and [Gmail]/Spam), nothing more.
    assert_eq!(gmail.imap.connections(), 2, "{}", gmail.imap.transcript());
    figure("primary", &gmail);
}

#[test]
fn gmail_politeness_with_a_realistic_delivery_delay() {
    // Gmail makes a message visible over IMAP seconds after accepting it: 8 s here, inside
    // the 20 s window in which the preset polls every 2 s (the costliest case per probe).
    let gmail = gmail_server::start_with(
        Filing::Inbox("primary"),
        Mode::Normal,
        Timing {
            delivery: Duration::from_secs(8),
            ..Timing::default()
        },
    );
    let (run, gmail) = once_against(gmail, "30s", "");
    let report = assert_once(&run, ONCE_WITHIN, &resolved(0, "inbox"));
    assert_eq!(single(&report, &run)["tab"], "primary");
    assert_gmail_manners(&gmail);
    assert_eq!(gmail.imap.connections(), 2, "{}", gmail.imap.transcript());
    // Set-up (7) and teardown (2); a search per folder before the send; a NOOP per folder
    // every 2 s, searching only after the server announced the message (`* n EXISTS`); the
    // find (SEARCH, 2 FETCH, 1 tab search): about 23. More would mean polling faster than the
    // preset, or searching without an announcement.
    let n = commands(&gmail);
    assert!(n <= 30, "{n} commands\n{}", gmail.imap.transcript());
    figure("delivery-8s", &gmail);
}

#[test]
fn gmail_message_found_late_by_search_is_not_lost_behind_a_later_one() {
    // Two routes, two probes. The first filed (lower UID) is searchable 5 s after the second:
    // Gmail's index trails its mailbox. Finding the second first must not move the search
    // past the first's UID — at Gmail the search is by Message-ID, never by UID range.
    let gmail = gmail_server::start_with(
        Filing::Inbox("primary"),
        Mode::Normal,
        Timing {
            first_index_lag: Duration::from_secs(5),
            ..Timing::default()
        },
    );
    let second = route(gmail.smtp_port, "none").replace("[routes.r]", "[routes.r2]");
    let (run, gmail) = once_against(gmail, "15s", &format!("\n{second}"));
    let report = crate::setup::json(&run);
    let results = report["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{}", run.log_tail());
    for r in &results {
        assert_eq!(
            (r["state"].as_str(), r["placement"].as_str()),
            (Some("resolved"), Some("inbox")),
            "{}\n{}",
            short(r),
            gmail.imap.transcript()
        );
    }
    assert_eq!(run.exit_code(), 0, "{}", run.log_tail());
    assert_gmail_manners(&gmail);
}

#[test]
fn gmail_promotions_tab_when_primary_is_expected_is_a_warning_with_its_cause() {
    let (run, gmail) = once(
        Filing::Inbox("promotions"),
        Mode::Normal,
        "10s",
        "expect_tab = \"primary\"",
    );
    let report = assert_once(&run, ONCE_WITHIN, &resolved(1, "inbox"));
    let result = single(&report, &run);
    assert_eq!(result["tab"], "promotions", "{}", short(result));
    assert_eq!(result["status"], "warning");
    assert_eq!(causes(result), ["gmail_tab"], "{}", short(result));
    let fix = result["diagnosis"][0]["fix"].as_str().unwrap_or("");
    assert!(fix.contains("promotions instead of primary"), "{fix}");
    assert_gmail_manners(&gmail);
    figure("promotions", &gmail);
}

#[test]
fn gmail_tab_without_expectation_is_reported_but_ok() {
    let (run, gmail) = once(Filing::Inbox("social"), Mode::Normal, "10s", "");
    let report = assert_once(&run, ONCE_WITHIN, &resolved(0, "inbox"));
    let result = single(&report, &run);
    assert_eq!(result["tab"], "social", "{}", short(result));
    assert_gmail_manners(&gmail);
}

#[test]
fn gmail_spam_has_no_tab() {
    let (run, gmail) = once(
        Filing::Spam,
        Mode::Normal,
        "10s",
        "expect_tab = \"primary\"",
    );
    let report = assert_once(&run, ONCE_WITHIN, &resolved(1, "spam"));
    let result = single(&report, &run);
    assert_eq!(result["folder"], "[Gmail]/Spam", "{}", short(result));
    assert_eq!(result["tab"], Value::Null, "{}", short(result));
    assert!(!causes(result).contains(&"gmail_tab".to_string()));
    assert_gmail_manners(&gmail);
    assert!(
        !gmail.imap.saw("category:"),
        "a spam hit has no tab to look up\n{}",
        gmail.imap.transcript()
    );
}

#[test]
fn gmail_throttled_answers_slow_the_client_but_the_probe_is_found() {
    let (run, gmail) = once(Filing::Inbox("primary"), Mode::Throttled, "10s", "");
    let report = assert_once(&run, ONCE_WITHIN, &resolved(0, "inbox"));
    assert_eq!(single(&report, &run)["tab"], "primary");
    assert!(
        run.stderr.contains("throttles this account") && run.stderr.contains("throttled"),
        "the throttling was not logged with its reason\n{}",
        run.log_tail()
    );
    assert_gmail_manners(&gmail);
}

#[test]
fn gmail_over_quota_is_unknown_and_backs_off_instead_of_polling() {
    let (run, gmail) = once(Filing::Inbox("primary"), Mode::OverQuota, "8s", "");
    assert_once(
        &run,
        ONCE_WITHIN,
        &Expect {
            exit: 3,
            state: "unknown",
            placement: Some("unknown"),
            reasons: &["throttled"],
        },
    );
    // Polling every 2 s (the preset) for 8 s would search 5 times or more; backing off 30 s
    // after the first refusal leaves the baseline search and one at the deadline.
    let searches = gmail
        .imap
        .lines()
        .iter()
        .filter(|l| l.contains("SEARCH"))
        .count();
    assert!(
        (1..=2).contains(&searches),
        "{searches} searches\n{}",
        gmail.imap.transcript()
    );
}
