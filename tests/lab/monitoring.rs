//! The monitoring package, checked with the tools that consume it: promtool (rules, rule
//! unit tests, Prometheus config), amtool and a throw-away Alertmanager (config,
//! inhibition), docker-compose (compose file), plus the alert conventions: every alert has
//! severity, summary, description and a runbook_url whose anchor exists in docs/runbook.md.
//!
//! promtool, prometheus and amtool are required (`apt-get install prometheus
//! prometheus-alertmanager`); only the docker-compose check is skipped when its tool is
//! absent. Run with `cargo nextest run --test monitoring`.

use crate::common::support;
use std::collections::BTreeSet;
use std::process::Command;

use support::{files_ending, find_tool, http, read, repo, require_tool, run_ok, start_daemon};

const RUNBOOK_PREFIX: &str = "https://github.com/mailcanary/mailcanary/blob/main/docs/runbook.md#";

/// Alerts about the exporter as a whole: their series carry neither route nor seed.
const NO_ROUTE_NO_SEED: &[&str] = &[
    "MailcanaryExporterDown",
    "MailcanaryExporterAbsent",
    "MailcanaryProbeStale",
    "MailcanaryVantageSilent",
    "MailcanaryConfigReloadFailed",
    "MailcanaryWatchdog",
];
/// Alerts whose metrics carry a seed but no route.
const SEED_ONLY: &[&str] = &["MailcanaryForgedProbes"];
/// Alerts whose metrics carry a route but no seed (route-wide breaks, counted over the seeds;
/// the DNS audit is per route).
const ROUTE_ONLY: &[&str] = &[
    "MailcanaryRouteInSpam",
    "MailcanaryRouteMissing",
    "MailcanaryRouteRejected",
    "MailcanaryRouteNotSent",
    "MailcanaryRouteSPFNotPassing",
    "MailcanaryRouteDKIMNotPassing",
    "MailcanaryRouteDMARCNotPassing",
    "MailcanaryDNSCheckFailing",
    "MailcanaryDNSBlocklisted",
    "MailcanaryDKIMKeyWeak",
    "MailcanarySPFLookupsNearLimit",
    "MailcanaryRequirementUnmet",
];
/// Alerts about what the report mailboxes bring in: no route or seed, but the label their
/// description must name instead.
const REPORT_ALERTS: &[(&str, &str)] = &[
    ("MailcanaryDMARCAlignmentFailing", "domain"),
    ("MailcanaryTLSReportFailures", "domain"),
    ("MailcanaryDMARCReportsStopped", "reporter"),
    ("MailcanaryComplaintsReceived", "domain"),
    ("MailcanaryReportMailboxStale", "mailbox"),
    ("MailcanaryForgedBounces", "mailbox"),
];
/// The dead man's switch: always firing, on purpose, routed to a heartbeat receiver; the one
/// alert whose severity is `none` (it pages nobody while it fires).
const WATCHDOG: &str = "MailcanaryWatchdog";

fn paths(files: &[std::path::PathBuf]) -> Vec<&std::path::Path> {
    files.iter().map(|p| p.as_path()).collect()
}

#[test]
fn promtool_check_rules() {
    let promtool = require_tool(&["promtool"]);
    let files = files_ending("prometheus/rules", ".yml");
    let out = run_ok(
        Command::new(promtool)
            .args(["check", "rules"])
            .args(paths(&files)),
    );
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
    assert!(!out.contains("WARNING"), "promtool warns:\n{out}");
}

#[test]
fn promtool_test_rules() {
    let promtool = require_tool(&["promtool"]);
    let files = files_ending("prometheus/tests", ".yml");
    let out = run_ok(
        Command::new(promtool)
            .args(["test", "rules"])
            .args(paths(&files)),
    );
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
}

#[test]
fn promtool_check_config() {
    let promtool = require_tool(&["promtool"]);
    let out = run_ok(Command::new(promtool).args(["check", "config", "prometheus/prometheus.yml"]));
    // The config loads the rule files through a relative glob: make sure it found them all.
    let rule_files = files_ending("prometheus/rules", ".yml");
    assert!(
        out.contains(&format!("SUCCESS: {} rule files found", rule_files.len())),
        "{out}"
    );
    let config = read(&repo().join("prometheus/prometheus.yml"));
    assert!(
        config.contains("job_name: mailcanary"),
        "the rules and dashboards expect job=\"mailcanary\""
    );
}

#[test]
fn amtool_check_config() {
    let amtool = require_tool(&["amtool"]);
    // The shipped config and the paging example (a receiver that does not send mail), each
    // with the same three inhibitions: route-wide over per-seed, route-wide critical over
    // route-wide warnings, critical over warnings of the same route and seed.
    for file in [
        "alertmanager/alertmanager.yml",
        "alertmanager/examples/paging.yml",
    ] {
        let out = run_ok(Command::new(&amtool).args(["check-config", file]));
        assert!(out.contains("SUCCESS"), "{file}: {out}");
        assert!(out.contains("3 inhibit rules"), "{file}: {out}");
    }
    let example = read(&repo().join("alertmanager/examples/paging.yml"));
    assert!(
        !example.contains("email_configs"),
        "the paging example must not page through mail"
    );
}

#[test]
fn docker_compose_config() {
    let Some(compose) = find_tool(&["docker-compose"]) else {
        println!(
            "SKIPPED docker_compose_config: docker-compose not found (apt-get install docker-compose)"
        );
        return;
    };
    run_ok(Command::new(&compose).args(["-f", "docker-compose.yml", "config", "--quiet"]));
    let resolved = run_ok(Command::new(&compose).args(["-f", "docker-compose.yml", "config"]));
    for service in ["mailcanary:", "prometheus:", "alertmanager:", "grafana:"] {
        assert!(
            resolved.contains(service),
            "service {service} missing:\n{resolved}"
        );
    }
    // Published ports: loopback only.
    for line in resolved
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- ") && l.contains(":"))
    {
        let value = line.trim_start_matches("- ").trim_matches('"');
        if value.ends_with("/tcp") || value.ends_with("/udp") {
            assert!(
                value.starts_with("127.0.0.1:"),
                "port published beyond loopback: {line}"
            );
        }
    }
}

/// Lower-case GitHub heading anchors of a markdown file.
fn anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_has_severity_annotations_and_a_runbook_anchor() {
    let (alerts, _) = support::loaded_rules();
    let runbook_anchors = anchors(&read(&repo().join("docs/runbook.md")));
    let mut problems = Vec::new();
    for alert in &alerts {
        let name = &alert.name;
        match alert.label("severity") {
            Some("critical" | "warning") => {}
            Some("none") if name == WATCHDOG => {}
            other => problems.push(format!(
                "{name}: severity {other:?}, expected critical or warning"
            )),
        }
        for key in ["summary", "description", "runbook_url"] {
            if alert.annotation(key).is_none_or(|v| v.trim().is_empty()) {
                problems.push(format!("{name}: no {key} annotation"));
            }
        }
        let description = alert.annotation("description").unwrap_or_default();
        let names_route = description.contains("{{ $labels.route }}");
        let names_seed = description.contains("{{ $labels.seed }}");
        let report_label = REPORT_ALERTS
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, l)| *l);
        if let Some(label) = report_label
            && !description.contains(&format!("{{{{ $labels.{label} }}}}"))
        {
            problems.push(format!(
                "{name}: description does not name {{{{ $labels.{label} }}}}"
            ));
        }
        let (want_route, want_seed) =
            if NO_ROUTE_NO_SEED.contains(&name.as_str()) || report_label.is_some() {
                (false, false)
            } else if SEED_ONLY.contains(&name.as_str()) {
                (false, true)
            } else if ROUTE_ONLY.contains(&name.as_str()) {
                (true, false)
            } else {
                (true, true)
            };
        if want_route && !names_route {
            problems.push(format!(
                "{name}: description does not name {{{{ $labels.route }}}}"
            ));
        }
        if want_seed && !names_seed {
            problems.push(format!(
                "{name}: description does not name {{{{ $labels.seed }}}}"
            ));
        }
        match alert
            .annotation("runbook_url")
            .and_then(|u| u.strip_prefix(RUNBOOK_PREFIX))
        {
            Some(anchor) if runbook_anchors.contains(anchor) => {
                if anchor != name.to_lowercase() {
                    problems.push(format!(
                        "{name}: runbook anchor #{anchor} is not the alert's own section"
                    ));
                }
            }
            Some(anchor) => problems.push(format!(
                "{name}: docs/runbook.md has no heading for #{anchor}"
            )),
            None => problems.push(format!(
                "{name}: runbook_url does not start with {RUNBOOK_PREFIX}"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} alerts checked:\n{}",
        alerts.len(),
        problems.join("\n")
    );
    println!("{} alerts checked", alerts.len());
}

/// The fleet convention (prometheus/rules/mailcanary.yml, header): whatever label the
/// collecting side adds (`vantage`) survives into every alert, and the description names the
/// vantage when there is one. `absent()` is the one exception: it returns only the labels of
/// its selector's equality matchers, so it cannot carry a label it did not select on.
/// prometheus/tests/fleet.yml proves the behaviour; this check keeps new rules from
/// reintroducing a fixed `by (...)` or `on (...)` list.
#[test]
fn every_alert_keeps_the_collecting_side_labels() {
    let (alerts, _) = support::loaded_rules();
    let mut problems = Vec::new();
    for alert in &alerts {
        let name = &alert.name;
        // absent() and the watchdog's vector(1) carry no labels of any series.
        if alert.expr.trim_start().starts_with("absent(") || name == WATCHDOG {
            continue;
        }
        for keyword in [" by (", " by(", " on (", " on("] {
            if alert.expr.contains(keyword) {
                problems.push(format!(
                    "{name}: `{}` keeps a fixed list of labels; use `without`/`ignoring` so \
                     that a collecting side's vantage label survives",
                    keyword.trim()
                ));
            }
        }
        let description = alert.annotation("description").unwrap_or_default();
        if !description.contains("{{ with $labels.vantage }}")
            && !description.contains("{{ $labels.vantage }}")
        {
            problems.push(format!(
                "{name}: description does not name the vantage \
                 ({{{{ with $labels.vantage }}}} ... {{{{ end }}}})"
            ));
        }
        // A description query that selects by instance must select by vantage too: in a
        // fleet, every agent scrapes its instance under the same address.
        if description.contains("instance=%q") && !description.contains("vantage=%q") {
            problems.push(format!(
                "{name}: a description query selects instance but not vantage"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} alerts checked:\n{}",
        alerts.len(),
        problems.join("\n")
    );
    assert!(
        alerts.len() > 1,
        "only {} alert loaded: the check is not looking",
        alerts.len()
    );
}

#[test]
fn every_alert_has_unit_tests() {
    let (alerts, _) = support::loaded_rules();
    let tests: String = files_ending("prometheus/tests", ".yml")
        .iter()
        .map(|f| read(f))
        .collect();
    let mut missing = Vec::new();
    for alert in &alerts {
        // Both sides of the `for:` boundary (or of the triggering event) need a case each.
        let cases = tests
            .matches(&format!("alertname: {}\n", alert.name))
            .count();
        if cases < 2 {
            missing.push(format!(
                "{}: {cases} alert_rule_test case(s), expected at least 2",
                alert.name
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn runbook_internal_links_resolve() {
    let runbook = read(&repo().join("docs/runbook.md"));
    let known = anchors(&runbook);
    let mut links = 0;
    for (i, _) in runbook.match_indices("](#") {
        let rest = &runbook[i + 3..];
        let anchor = &rest[..rest.find(')').expect("closing parenthesis")];
        assert!(
            known.contains(anchor),
            "docs/runbook.md links to missing #{anchor}"
        );
        links += 1;
    }
    assert!(links > 0, "no internal link found: the parser is broken");
}

/// Alertmanager's inhibition, checked on a real Alertmanager started on a loopback port
/// with our configuration (the receiver URL moved to a closed loopback port so that
/// nothing leaves the machine): a critical alert mutes the warnings of the same route and
/// seed (and vantage, in a fleet), and nothing else.
#[test]
fn alertmanager_inhibits_warnings_of_the_same_route_and_seed() {
    let alertmanager = require_tool(&["alertmanager", "prometheus-alertmanager"]);
    let dir = tempfile::tempdir().expect("temporary directory");

    let config = read(&repo().join("alertmanager/alertmanager.yml"));
    let url_lines: Vec<&str> = config
        .lines()
        .filter(|l| l.trim_start().starts_with("- url:"))
        .collect();
    assert_eq!(
        url_lines.len(),
        2,
        "expected two webhook urls in alertmanager.yml (notifications, heartbeat)"
    );
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = config.clone();
    for line in url_lines {
        let indent = &line[..line.find('-').unwrap()];
        config = config.replace(
            line,
            &format!("{indent}- url: http://127.0.0.1:{closed_port}/"),
        );
    }
    let config_path = dir.path().join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap();

    let daemon = start_daemon(
        &alertmanager,
        &[
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            "--cluster.listen-address=".to_string(),
        ],
        dir.path(),
    );

    // (labels, expected to be inhibited)
    let cases: &[(&[(&str, &str)], bool)] = &[
        (
            &[
                ("alertname", "MailcanaryProbeInSpam"),
                ("severity", "critical"),
                ("route", "primary"),
                ("seed", "gmail"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryDKIMNotPassing"),
                ("severity", "warning"),
                ("route", "primary"),
                ("seed", "gmail"),
            ],
            true,
        ),
        (
            &[
                ("alertname", "MailcanaryDKIMNotPassing"),
                ("severity", "warning"),
                ("route", "primary"),
                ("seed", "outlook"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryDKIMNotPassing"),
                ("severity", "warning"),
                ("route", "backup"),
                ("seed", "gmail"),
            ],
            false,
        ),
        // A refused probe mutes the warnings of its own route and seed.
        (
            &[
                ("alertname", "MailcanaryProbeRejected"),
                ("severity", "critical"),
                ("route", "primary"),
                ("seed", "yahoo"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanarySPFNotPassing"),
                ("severity", "warning"),
                ("route", "primary"),
                ("seed", "yahoo"),
            ],
            true,
        ),
        // A route-wide critical (no seed) must not mute the route's DNS-audit warnings.
        (
            &[
                ("alertname", "MailcanaryRouteNotSent"),
                ("severity", "critical"),
                ("problem", "not_sent"),
                ("route", "primary"),
            ],
            false,
        ),
        // A route-wide break mutes the per-seed alerts of its route and problem (one
        // notification, not one per seed), and the route-wide warnings that explain it; not
        // another problem at one of its seeds, nor the same problem on another route.
        (
            &[
                ("alertname", "MailcanaryRouteInSpam"),
                ("severity", "critical"),
                ("problem", "spam"),
                ("route", "third"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryProbeInSpam"),
                ("severity", "critical"),
                ("problem", "spam"),
                ("route", "third"),
                ("seed", "gmail"),
            ],
            true,
        ),
        (
            &[
                ("alertname", "MailcanaryProbeInSpam"),
                ("severity", "critical"),
                ("problem", "spam"),
                ("route", "third"),
                ("seed", "outlook"),
            ],
            true,
        ),
        (
            &[
                ("alertname", "MailcanaryProbeMissing"),
                ("severity", "critical"),
                ("problem", "missing"),
                ("route", "third"),
                ("seed", "yahoo"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryRouteDKIMNotPassing"),
                ("severity", "warning"),
                ("problem", "dkim"),
                ("route", "third"),
            ],
            true,
        ),
        (
            &[
                ("alertname", "MailcanaryProbeInSpam"),
                ("severity", "critical"),
                ("problem", "spam"),
                ("route", "fourth"),
                ("seed", "gmail"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryDNSCheckFailing"),
                ("severity", "warning"),
                ("route", "primary"),
                ("check", "spf"),
            ],
            false,
        ),
        // A fleet: a critical seen from one vantage mutes that vantage's warnings of the
        // same pair, not another vantage's.
        (
            &[
                ("alertname", "MailcanaryProbeMissing"),
                ("severity", "critical"),
                ("vantage", "site-a"),
                ("route", "primary"),
                ("seed", "fastmail"),
            ],
            false,
        ),
        (
            &[
                ("alertname", "MailcanaryDeliverySlow"),
                ("severity", "warning"),
                ("vantage", "site-a"),
                ("route", "primary"),
                ("seed", "fastmail"),
            ],
            true,
        ),
        (
            &[
                ("alertname", "MailcanaryDeliverySlow"),
                ("severity", "warning"),
                ("vantage", "site-b"),
                ("route", "primary"),
                ("seed", "fastmail"),
            ],
            false,
        ),
    ];
    let body = serde_json::Value::Array(
        cases
            .iter()
            .map(|(labels, _)| {
                let labels: serde_json::Map<String, serde_json::Value> = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                    .collect();
                serde_json::json!({ "labels": labels, "annotations": { "summary": "test" } })
            })
            .collect(),
    );
    let (code, text) = http(
        &daemon.addr,
        "POST",
        "/api/v2/alerts",
        Some(&body.to_string()),
    )
    .expect("POST alerts");
    assert_eq!(code, 200, "POST /api/v2/alerts: {text}\n{}", daemon.log());

    // The inhibitor learns about source alerts asynchronously: poll until it settles.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, text) = http(&daemon.addr, "GET", "/api/v2/alerts", None).expect("GET alerts");
        assert_eq!(code, 200, "GET /api/v2/alerts: {text}");
        let alerts: Vec<serde_json::Value> = serde_json::from_str(&text).expect("alerts JSON");
        let mut mismatches = Vec::new();
        for (labels, want_inhibited) in cases {
            let found = alerts.iter().find(|a| {
                labels.iter().all(|(k, v)| a["labels"][*k] == *v)
                    && a["labels"].as_object().map(|m| m.len()) == Some(labels.len())
            });
            let inhibited = found
                .and_then(|a| a["status"]["inhibitedBy"].as_array())
                .is_some_and(|by| !by.is_empty());
            if found.is_none() || inhibited != *want_inhibited {
                mismatches.push(format!(
                    "{labels:?}: inhibited={inhibited}, want {want_inhibited}"
                ));
            }
        }
        if mismatches.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "inhibition not as expected after 20 s:\n{}\nalerts: {text}",
            mismatches.join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
