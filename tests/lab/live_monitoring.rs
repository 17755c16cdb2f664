//! The monitoring package against the real thing: a real `mailcanary run` probing the loopback
//! mail lab (every route of `config/lab.toml` × seed9, seed10, a round every 10 s), scraped every second by a real
//! Prometheus that loads the shipped `prometheus/rules/*.yml` and evaluates them every second.
//! After three rounds:
//!
//! - every PromQL expression of every dashboard panel, variable and annotation and of every
//!   rule (`exprs::all_promql_exprs`, Grafana variables substituted) runs through
//!   `/api/v1/query` and succeeds; every panel and variable query returns data (a panel that
//!   asks for a series the probe does not export fails the test, naming the missing metric).
//!   Annotations and rules may return nothing: they select alerts and failures;
//! - the fault routes raise their alerts in that Prometheus, pending or firing (the `for:`
//!   durations are the shipped ones, too long to wait for firing): spam → ProbeInSpam,
//!   spf-fail → SPFNotPassing, dkim-fail → DKIMNotPassing, dmarc-fail → DMARCNotPassing, for
//!   both seeds; the good route raises none;
//! - `promtool check metrics` on the scraped `/metrics` has nothing to say about a
//!   `mailcanary_*` metric (but the accepted, justified `ACCEPTED_LINTS`), and the output follows the house naming rules (prefix, `_total`,
//!   labels only from config names and fixed enums);
//! - `/api/results` lists a result per route × seed (14 with the lab's 7 routes) with the
//!   expected placements (good → inbox, spam → spam, the auth fault routes → inbox) and
//!   verdicts, and the exported placement and auth gauges agree with it.
//!
//! Every problem is collected and reported together. Both processes are stopped when the test
//! ends, failing or not; every wait is bounded (`live::MAX_WAIT`). Needs the lab
//! (`sudo lab/mailstack up`) and `prometheus`/`promtool` (`apt-get install prometheus`).
//! Takes about 30 s, mostly waiting for the rounds.

use crate::common;
use crate::common::exprs;
use crate::common::live;
use crate::common::support;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exprs::{ExprSource, all_promql_exprs, substitute_grafana_vars};
use live::{MAX_WAIT, ROUTES, SEEDS, wait_for};
use support::{Daemon, files_ending, http, prom_query, require_tool, result_len, start_daemon};

/// What `$__rate_interval` (and the other interval variables) become: four rounds, sixty scrapes.
const RATE_INTERVAL: &str = "1m";
/// Probe rounds to wait for before querying.
const ROUNDS: usize = 3;

/// The alert each fault route must raise, for every seed.
const EXPECTED_ALERTS: &[(&str, &str)] = &[
    ("spam", "MailcanaryProbeInSpam"),
    ("spf-fail", "MailcanarySPFNotPassing"),
    ("dkim-fail", "MailcanaryDKIMNotPassing"),
    ("dmarc-fail", "MailcanaryDMARCNotPassing"),
    ("rejected", "MailcanaryProbeRejected"),
];

/// Label names the exporter may use (house rule: config names and fixed enums only; `le` of
/// histograms).
const ALLOWED_LABELS: &[&str] = &[
    "route",
    "seed",
    "placement",
    "method",
    "result",
    "reason",
    "class",
    "cause",
    "check",
    "domain",
    "reporter",
    "disposition",
    "dkim",
    "spf",
    "result_type",
    "mailbox",
    "zone",
    "version",
    "state",
    "le",
    "hop",
    "provider",
    "requirement",
    "type",
    "session",
];

fn tail(log: String) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn start_prometheus(dir: &Path, target: &str) -> Daemon {
    let prometheus = require_tool(&["prometheus"]);
    // The shipped rule files, unchanged; their groups set no `interval`, so the global 1 s
    // evaluation applies and alerts turn pending one evaluation after the probe reports.
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: mailcanary\n    static_configs:\n      - targets: [\"{target}\"]\n\
         rule_files:\n"
    );
    for file in files_ending("prometheus/rules", ".yml") {
        config.push_str(&format!("  - {:?}\n", file.to_str().expect("UTF-8 path")));
    }
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    start_daemon(
        &prometheus,
        &[
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        ],
        dir,
    )
}

/// `(name, labels, value)` of every sample in the text exposition format.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or((line, ""));
        let (name, labels_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        let mut rest = labels_text;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.insert(key.trim_start_matches(',').trim().to_string(), value);
            rest = &after[end..];
        }
        out.push((name.to_string(), labels, value.to_string()));
    }
    out
}

/// promtool lint findings on our metrics that are accepted, each with the reason. Matched
/// exactly: any other finding fails.
const ACCEPTED_LINTS: &[(&str, &str)] = &[(
    "mailcanary_dkim_key_bits use base unit \"bytes\" instead of \"bits\"",
    "DKIM key sizes are stated in bits everywhere (RFC 8301 §3.2: 1024, 2048); a _bytes \
     gauge reading 256 would be a trap for the people reading the alert",
)];

/// `promtool check metrics` on the exposition. Exit 1 (unparsable) is always a problem; its
/// lint findings (exit 3) are problems for `mailcanary_*` metrics unless listed in
/// [`ACCEPTED_LINTS`], and accepted for metrics of third-party collectors (the prometheus
/// crate's `process_*`), whose names we do not choose. Accepted findings are printed.
fn promtool_problems(text: &str) -> Vec<String> {
    let promtool = require_tool(&["promtool"]);
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("pipe /metrics into promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems = Vec::new();
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            for line in said.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if let Some((_, why)) = ACCEPTED_LINTS.iter().find(|(lint, _)| *lint == line) {
                    println!("accepted: promtool check metrics: {line} ({why})");
                } else if line.starts_with("mailcanary_") || !line.contains(' ') {
                    problems.push(format!("promtool check metrics: {line}"));
                } else {
                    println!("accepted (not our metric): promtool check metrics: {line}");
                }
            }
        }
        _ => problems.push(format!(
            "promtool check metrics failed ({}): {said}",
            out.status
        )),
    }
    problems
}

/// The house naming rules, on the live exposition.
fn naming_problems(text: &str, routes: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
        }
    }
    for (name, kind) in &types {
        if !name.starts_with("mailcanary_") && !name.starts_with("process_") {
            problems.push(format!("metric {name}: not under the mailcanary_ prefix"));
        }
        if kind == "counter" && !name.ends_with("_total") {
            problems.push(format!("counter {name}: name does not end in _total"));
        }
    }
    let placements = [
        "inbox", "spam", "other", "missing", "unknown", "rejected", "deferred", "not_sent",
    ];
    let pair_states = ["ok", "suspect", "confirmed", "recovered"];
    let legs = mailcanary::path::Leg::ALL.map(|leg| leg.as_str());
    let table = mailcanary::requirements::Table::embedded().expect("requirement table");
    let providers: Vec<&str> = table.providers.iter().map(|p| p.id.as_str()).collect();
    let requirements = mailcanary::requirements::RequirementId::ALL.map(|r| r.as_str());
    let mut reported = BTreeSet::new();
    for (name, labels, _) in samples(text) {
        for (key, value) in &labels {
            let bad = match key.as_str() {
                k if !ALLOWED_LABELS.contains(&k) => Some("label not allowed"),
                "route" if !routes.contains(value) => Some("not a configured route"),
                // IMAP errors of the bounce and report mailboxes carry their name as `seed`.
                "seed" if !SEEDS.contains(&value.as_str()) && value != "lab" => {
                    Some("not a configured seed or mailbox")
                }
                "mailbox" if value != "lab" => Some("not a configured report mailbox"),
                "domain" if value != "sender.test" => Some("not a configured report domain"),
                "placement" if !placements.contains(&value.as_str()) => Some("not a placement"),
                "state" if !pair_states.contains(&value.as_str()) => Some("not a pair state"),
                "class" if !mailcanary::metrics::REJECTION_CLASSES.contains(&value.as_str()) => {
                    Some("not a rejection class")
                }
                "hop" if !legs.contains(&value.as_str()) => Some("not a leg of the path"),
                "session" if !mailcanary::outcome::SmtpSession::NAMES.contains(&value.as_str()) => {
                    Some("not an SMTP session kind")
                }
                "type"
                    if !mailcanary::reports::arf::FeedbackType::ALL
                        .iter()
                        .any(|t| t.as_str() == value) =>
                {
                    Some("not a feedback type")
                }
                "provider" if !providers.contains(&value.as_str()) => {
                    Some("not a provider of the requirement table")
                }
                "requirement" if !requirements.contains(&value.as_str()) => {
                    Some("not a requirement id")
                }
                "version"
                    if name == "mailcanary_last_hop_tls"
                        && !mailcanary::path::LAST_HOP_TLS_LABELS.contains(&value.as_str()) =>
                {
                    Some("not a TLS version label")
                }
                _ => None,
            };
            if let Some(why) = bad
                && reported.insert((name.clone(), key.clone(), value.clone()))
            {
                problems.push(format!("{name}{{{key}=\"{value}\"}}: {why}"));
            }
        }
    }
    problems
}

/// `/api/results` against the lab's routes, and the exported gauges against `/api/results`.
fn results_problems(results: &serde_json::Value, metrics: &str, routes: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let list = results["results"].as_array().cloned().unwrap_or_default();
    if list.len() != routes.len() * SEEDS.len() {
        problems.push(format!(
            "/api/results lists {} results, expected {} ({} routes × {} seeds)",
            list.len(),
            routes.len() * SEEDS.len(),
            routes.len(),
            SEEDS.len()
        ));
    }
    let gauges = samples(metrics);
    let gauge = |name: &str, want: &[(&str, &str)]| -> Vec<(BTreeMap<String, String>, String)> {
        gauges
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l.clone(), v.clone()))
            .collect()
    };
    for route in routes.iter().map(String::as_str) {
        for seed in SEEDS {
            let found: Vec<&serde_json::Value> = list
                .iter()
                .filter(|r| r["route"] == route && r["seed"] == seed)
                .collect();
            let [r] = found.as_slice() else {
                problems.push(format!(
                    "/api/results: {} results for {route}/{seed}, expected 1",
                    found.len()
                ));
                continue;
            };
            let placement = r["placement"].as_str().unwrap_or("null");
            // The routes this test knows; any other lab route only has to agree with its gauges.
            let expected = match route {
                "spam" => "spam",
                "rejected" => "rejected",
                r if ROUTES.contains(&r) => "inbox",
                _ => placement,
            };
            if placement != expected {
                problems.push(format!(
                    "/api/results: {route}/{seed} placement {placement}, expected {expected}: {r}"
                ));
            }
            let verdict = &r["verdict"];
            let expect_fail = match route {
                "spf-fail" => Some("spf"),
                "dkim-fail" => Some("dkim"),
                "dmarc-fail" => Some("dmarc"),
                _ => None,
            };
            if let Some(method) = expect_fail
                && verdict[method] != "fail"
            {
                problems.push(format!(
                    "/api/results: {route}/{seed} {method} is {}, expected fail",
                    verdict[method]
                ));
            }
            if route == "rejected" {
                let bounce = &r["bounce"];
                if bounce["status"] != "5.7.25" || bounce["class"] != "ptr" {
                    problems.push(format!(
                        "/api/results: rejected/{seed} bounce {bounce}, expected status 5.7.25, class ptr"
                    ));
                }
                let causes: Vec<&str> = r["diagnosis"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|c| c["cause"].as_str()).collect())
                    .unwrap_or_default();
                if causes != ["ptr_missing"] {
                    problems.push(format!(
                        "/api/results: rejected/{seed} causes {causes:?}, expected [\"ptr_missing\"]"
                    ));
                }
                let refused = gauge(
                    "mailcanary_probes_rejected_total",
                    &[("route", route), ("seed", seed), ("class", "ptr")],
                );
                if !refused
                    .iter()
                    .any(|(_, v)| v.parse::<f64>().unwrap_or(0.0) >= 1.0)
                {
                    problems.push(format!(
                        "mailcanary_probes_rejected_total{{route=\"rejected\",seed=\"{seed}\",class=\"ptr\"}} not counted"
                    ));
                }
            }
            if route == "good" {
                for method in ["spf", "dkim", "dmarc"] {
                    if verdict[method] != "pass" {
                        problems.push(format!(
                            "/api/results: good/{seed} {method} is {}, expected pass",
                            verdict[method]
                        ));
                    }
                }
            }
            // The gauges say what /api/results says.
            let ones: Vec<String> = gauge(
                "mailcanary_last_placement",
                &[("route", route), ("seed", seed)],
            )
            .into_iter()
            .filter(|(_, v)| v == "1")
            .filter_map(|(l, _)| l.get("placement").cloned())
            .collect();
            if ones != [placement] {
                problems.push(format!(
                    "mailcanary_last_placement{{route=\"{route}\",seed=\"{seed}\"}} is 1 for {ones:?}, /api/results says {placement}"
                ));
            }
            // A refused probe has no verdict, and no auth gauges of its own.
            for method in ["spf", "dkim", "dmarc"]
                .into_iter()
                .filter(|_| !verdict.is_null())
            {
                let pass = verdict[method] == "pass";
                let want = if pass { "1" } else { "0" };
                let got = gauge(
                    "mailcanary_last_auth_pass",
                    &[("route", route), ("seed", seed), ("method", method)],
                );
                if got.len() != 1 || got[0].1 != want {
                    problems.push(format!(
                        "mailcanary_last_auth_pass{{route=\"{route}\",seed=\"{seed}\",method=\"{method}\"}} = {:?}, expected {want} (verdict {})",
                        got.iter().map(|(_, v)| v).collect::<Vec<_>>(),
                        verdict[method]
                    ));
                }
            }
        }
    }
    problems
}

/// The metric names of `expr` that have no series at all in Prometheus.
fn absent_metrics(prometheus: &str, expr: &str) -> Vec<String> {
    support::metric_names(expr)
        .into_iter()
        .filter(|name| {
            prom_query(prometheus, &format!("count({{__name__=\"{name}\"}})"))
                .map(|d| result_len(&d) == 0)
                .unwrap_or(true)
        })
        .collect()
}

#[test]
fn prometheus_runs_every_dashboard_and_alert_query_on_live_probe_metrics() {
    let started = Instant::now();
    common::require_lab();
    require_tool(&["promtool"]);
    let exprs = all_promql_exprs();
    let _seeds = live::lock_seeds();
    // The report panels need reports: one DMARC, one TLS and one complaint report of this run's
    // own, in the lab's report mailbox before mailcanary reads it at start-up.
    let _reports = common::report_mail::lock_report_mailbox();
    let nonce = format!("live-{}-{}", std::process::id(), support::unix_now());
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(common::report_mail::plant(
            &[
                common::report_mail::dmarc_mail(&nonce, &format!("<dmarc-{nonce}@google.com>")),
                common::report_mail::tls_mail(&nonce, &format!("<tls-{nonce}@google.com>")),
                common::report_mail::arf_mail(&format!("<cfl-{nonce}@yahoo.com>")),
            ],
            false,
        ));
    let locked = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mailcanary = live::start_mailcanary(dir.path());
    let prometheus = start_prometheus(dir.path(), &mailcanary.addr);
    let logs = || {
        format!(
            "--- mailcanary log (end):\n{}\n--- prometheus log (end):\n{}",
            tail(mailcanary.log()),
            tail(prometheus.log())
        )
    };

    // Rounds, as Prometheus saw them: every probe of ROUNDS rounds settled.
    // One selector over the four outcome counters: a pair's appear when first counted (the
    // series budget), and a sum of four sums is empty while one of them has no series.
    let settled_expr = "sum({__name__=~\"mailcanary_probes_(received|missing|unknown|rejected)_total\", \
         job=\"mailcanary\"})";
    let routes = live::routes();
    let want = (ROUNDS * routes.len() * SEEDS.len()) as f64;
    wait_for(
        &format!("{ROUNDS} probe rounds scraped by Prometheus"),
        MAX_WAIT,
        || {
            let data = prom_query(&prometheus.addr, settled_expr)?;
            let settled = support::first_value(&data).unwrap_or(0.0);
            if settled >= want {
                Ok(())
            } else {
                Err(format!("{settled} of {want} probes settled"))
            }
        },
        logs,
    );
    let rounds_done = Instant::now();

    let mut problems = Vec::new();

    // The fault routes' alerts, pending or firing.
    let expected: BTreeSet<(String, String, String)> = EXPECTED_ALERTS
        .iter()
        .flat_map(|(route, alert)| {
            SEEDS
                .iter()
                .map(move |seed| (alert.to_string(), route.to_string(), seed.to_string()))
        })
        .collect();
    let active = |addr: &str| -> Result<Vec<(String, String, String, String)>, String> {
        let (code, body) = http(addr, "GET", "/api/v1/alerts", None).map_err(|e| e.to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {code}: {e}: {body}"))?;
        Ok(json["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let l = |k: &str| a["labels"][k].as_str().unwrap_or_default().to_string();
                (
                    l("alertname"),
                    l("route"),
                    l("seed"),
                    a["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    };
    let alerts = wait_for(
        "the fault routes' alerts pending or firing",
        Duration::from_secs(30),
        || {
            let alerts = active(&prometheus.addr)?;
            let raised: BTreeSet<(String, String, String)> = alerts
                .iter()
                .filter(|(_, _, _, state)| state == "pending" || state == "firing")
                .map(|(a, r, s, _)| (a.clone(), r.clone(), s.clone()))
                .collect();
            let missing: Vec<_> = expected.difference(&raised).collect();
            if missing.is_empty() {
                Ok(alerts)
            } else {
                Err(format!("not raised: {missing:?}; active: {alerts:?}"))
            }
        },
        logs,
    );
    for (alert, route, seed, state) in &alerts {
        println!("alert {state}: {alert} route={route} seed={seed}");
        if route == "good" {
            problems.push(format!(
                "{alert} is {state} for the good route (seed {seed})"
            ));
        }
    }

    // Every expression through the query API.
    let mut ran = 0;
    let mut with_data = 0;
    for e in &exprs {
        let query = substitute_grafana_vars(&e.expr, RATE_INTERVAL);
        ran += 1;
        match prom_query(&prometheus.addr, &query) {
            Err(why) => problems.push(format!("{}: query failed: {why}\n    {query}", e.source)),
            Ok(data) => {
                let needs_data = matches!(
                    e.source,
                    ExprSource::Panel { .. } | ExprSource::Variable { .. }
                );
                if result_len(&data) > 0 {
                    with_data += 1;
                } else if needs_data {
                    let absent = absent_metrics(&prometheus.addr, &query);
                    problems.push(format!(
                        "{}: no data after {ROUNDS} rounds{}\n    {query}",
                        e.source,
                        if absent.is_empty() {
                            String::new()
                        } else {
                            format!(" (the probe exports no series named {})", absent.join(", "))
                        }
                    ));
                }
            }
        }
    }
    assert!(
        exprs.iter().any(|e| !e.is_dashboard()) && exprs.iter().any(|e| e.is_dashboard()),
        "expected both dashboard and rule expressions"
    );

    // The exposition itself, and /api/results against it.
    let (code, metrics) = http(&mailcanary.addr, "GET", "/metrics", None).expect("GET /metrics");
    assert_eq!(code, 200, "GET /metrics: {metrics}");
    problems.extend(promtool_problems(&metrics));
    problems.extend(naming_problems(&metrics, &routes));
    let results = live::settled_results(&mailcanary);
    // The exposition read at the same moment as the results (a round may have run since).
    let (_, metrics_now) = http(&mailcanary.addr, "GET", "/metrics", None).expect("GET /metrics");
    problems.extend(results_problems(&results, &metrics_now, &routes));

    let artifacts = live::artifacts();
    let _ = std::fs::write(artifacts.join("live-metrics.txt"), &metrics_now);
    let _ = std::fs::write(
        artifacts.join("live-results.json"),
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    );

    println!(
        "{ran} expressions run, {with_data} with data; {} alerts active; waited {:.1} s for the \
         seed lock, {:.1} s for {ROUNDS} rounds; {:.1} s in all",
        alerts.len(),
        (locked - started).as_secs_f64(),
        (rounds_done - locked).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n(exposition and results kept in test-artifacts/live-*)",
        problems.len(),
        problems.join("\n")
    );
}
