//! The page, judged by what reaches a receiver: `bench/time-to-page` in a short run (one stack
//! probing every 15 s, the fault route to three fault seeds, the Debian Prometheus and
//! Alertmanager with the shipped rules and configs, a webhook receiver) with the lab's
//! `spam-content` fault switched on, then a reload of mailcanary.
//!
//! - The break at three seeds of one route is **one** notification, carrying the route-wide
//!   `MailcanaryRouteInSpam` (the per-seed alerts fire in Prometheus but Alertmanager mutes them),
//!   within the schedule interval + 150 s of the switch, and no second notification while the
//!   fault stays on past Alertmanager's group_interval.
//! - Confirmation probes: at most one per pair for the break.
//! - A reload of mailcanary brings no critical notification.
//!
//! Holds the lab's fault lock through the bench; every fault is switched off on the way out
//! (the bench's own `finally`). Takes about 7 minutes.

use crate::common;
use std::process::Command;

#[test]
fn a_route_wide_break_pages_once_within_the_target_and_a_reload_pages_never() {
    let out = tempfile::tempdir().expect("temporary directory");
    let run = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/time-to-page"))
        .args([
            "--schedules",
            "15s",
            "--timeout",
            "30s",
            "--faults",
            "spam-content",
            "--no-missing",
            "--transients",
            "reload",
            "--watch",
            "60s",
            "--bin",
            common::bin(),
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("run bench/time-to-page");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench/time-to-page failed: {stderr}");
    let result: serde_json::Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {stderr}"));
    let scenario = |name: &str| {
        result["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["scenario"] == name))
            .map(|r| r["stacks"]["s15"].clone())
            .unwrap_or_else(|| panic!("no {name} scenario in {result:#}"))
    };

    let spam = scenario("spam-content");
    let seconds = spam["seconds_to_page"]
        .as_f64()
        .unwrap_or_else(|| panic!("no page for spam-content: {spam:#}\n{stderr}"));
    assert!(
        seconds <= 15.0 + 150.0,
        "paged {seconds} s after the break, target 165 s: {spam:#}"
    );
    assert_eq!(
        spam["first_alerts"],
        serde_json::json!(["MailcanaryRouteInSpam"]),
        "the first notification must carry the route-wide alert only: {spam:#}"
    );
    assert_eq!(
        spam["notifications_firing"], 1,
        "a route-wide break is one notification: {spam:#}"
    );
    let confirmations = spam["confirmation_probes"].as_u64().unwrap_or(u64::MAX);
    assert!(
        (1..=3).contains(&confirmations),
        "one confirmation probe per pair at most (3 pairs): {spam:#}"
    );

    let reload = scenario("reload");
    assert_eq!(
        reload["notifications_critical"], 0,
        "a reload must not page: {reload:#}"
    );
}
