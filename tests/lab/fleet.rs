//! A fleet, live: two instances, `site-a` and `site-b`, probe the loopback lab (every route of
//! `config/lab.toml` but `deferred`) into one shared seed mailbox with the same token key,
//! each scraped by its own Prometheus in agent mode (`--enable-feature=agent` in Debian's 2.42,
//! `--agent` in later releases; `external_labels: {vantage}`)
//! that remote-writes into one central Prometheus (`--web.enable-remote-write-receiver`,
//! loading the shipped rules). After three rounds, on the central Prometheus:
//!
//! - both vantages' series are there, with the same metric names;
//! - every probe of both instances was resolved (found, or refused by the receiver for the
//!   `rejected` route): none missing, unknown or forged — so neither instance deleted a
//!   message of the other's (that probe would be missing). (A send the lab's SMTP server
//!   refuses while another test restarts a lab daemon is no probe, and not counted here.)
//! - every dashboard and rule expression (`exprs::all_promql_exprs`) runs; panels and variables
//!   return data; every panel and variable result that keeps the `vantage` label has both
//!   vantages; a result that merges the vantages on purpose (a heatmap, a count of alerts) must
//!   filter on the dashboards' `$vantage` variable and return data with each vantage selected;
//!   any other merging result is a problem.
//!
//! Mailbox: the lab's `seed8` (this test's only), as seed `fleet` in both instances; the lab's
//! `bounces` mailbox is shared with the other tests as a real bounce mailbox is (each instance
//! reads only its own bounces), and its report mailbox is read (never changed) under the
//! report tests' lock, with two reports of this run planted for the report panels. Everything listens on 127.0.0.1; every wait is bounded.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::exprs::{ExprSource, all_promql_exprs, substitute_grafana_vars};
use crate::common::live::{self, MAX_WAIT, wait_for};
use crate::common::support::{
    Daemon, files_ending, http, prom_query, require_tool, result_len, start_daemon, unix_now,
};
use crate::common::*;

const VANTAGES: [&str; 2] = ["site-a", "site-b"];
const USER: &str = "seed8";
const SEED: &str = "fleet";
const ROUNDS: usize = 3;
/// What `$__rate_interval` becomes in the dashboards' queries.
const RATE_INTERVAL: &str = "1m";

/// `config/lab.toml`'s routes and bounce mailbox (as the live monitoring test uses them), one
/// round every 5 s, seed `fleet` = lab user seed8, this instance's name and state.
fn mailcanary_config(dir: &Path, instance: &str, listen: &str) -> String {
    let state = dir.join(format!("{instance}.sqlite"));
    let mut config: toml::Table = live::config(&state, listen)
        .parse()
        .expect("the live test config is TOML");
    let probe = config
        .get_mut("probe")
        .and_then(toml::Value::as_table_mut)
        .expect("[probe]");
    probe.insert("instance".into(), instance.into());
    probe.insert("schedule".into(), "*/5 * * * * *".into());
    let seeds = config
        .get("seeds")
        .and_then(toml::Value::as_table)
        .expect("[seeds]");
    let mut seed = seeds
        .values()
        .next()
        .and_then(toml::Value::as_table)
        .cloned()
        .expect("a seed to copy");
    seed.insert("address".into(), format!("{USER}@seed.test").into());
    seed.insert("username".into(), USER.into());
    let mut only = toml::Table::new();
    only.insert(SEED.into(), seed.into());
    config.insert("seeds".into(), only.into());
    toml::to_string(&config).expect("serialise")
}

fn central_prometheus(dir: &Path) -> Daemon {
    let mut config =
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n".to_string();
    for file in files_ending("prometheus/rules", ".yml") {
        config.push_str(&format!("  - {:?}\n", file.to_str().expect("UTF-8 path")));
    }
    let dir = dir.join("central");
    std::fs::create_dir_all(&dir).expect("central dir");
    std::fs::write(dir.join("prometheus.yml"), config).expect("write central config");
    start_daemon(
        &require_tool(&["prometheus"]),
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            "--web.enable-remote-write-receiver".to_string(),
        ],
        &dir,
    )
}

/// A Prometheus in agent mode scraping `target` every second and remote-writing to `central`
/// with `vantage` as external label.
fn agent(dir: &Path, vantage: &str, target: &str, central: &str) -> Daemon {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  external_labels:\n    vantage: {vantage}\n\
         scrape_configs:\n  - job_name: mailcanary\n    static_configs:\n      - targets: [\"{target}\"]\n\
         remote_write:\n  - url: \"http://{central}/api/v1/write\"\n    queue_config:\n\
         \x20     batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
    );
    let dir = dir.join(format!("agent-{vantage}"));
    std::fs::create_dir_all(&dir).expect("agent dir");
    std::fs::write(dir.join("agent.yml"), config).expect("write agent config");
    start_daemon(
        &require_tool(&["prometheus"]),
        &[
            // Agent mode: `--enable-feature=agent` in Debian's 2.42 (`--agent` in later releases).
            "--enable-feature=agent".to_string(),
            format!("--config.file={}", dir.join("agent.yml").display()),
            format!("--storage.agent.path={}", dir.join("wal").display()),
        ],
        &dir,
    )
}

/// `vantage → value` of a `… by (vantage)` query; an error unless both vantages are there.
fn per_vantage(central: &str, expr: &str) -> Result<Vec<f64>, String> {
    let data = prom_query(central, expr)?;
    VANTAGES
        .iter()
        .map(|v| {
            data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["metric"]["vantage"] == *v)
                .and_then(|s| s["value"][1].as_str()?.parse().ok())
                .ok_or_else(|| format!("{expr}: no value for vantage {v}: {data}"))
        })
        .collect()
}

/// The `vantage` values of a query result's series (none: the result merged them).
fn vantages_of(data: &serde_json::Value) -> BTreeSet<String> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["metric"]["vantage"].as_str().map(String::from))
        .collect()
}

#[test]
fn two_vantages_remote_write_into_one_prometheus_and_every_query_sees_both() {
    let started = Instant::now();
    require_lab();
    require_tool(&["prometheus"]);
    let exprs = all_promql_exprs();
    // The report panels need reports: one DMARC, one TLS and one complaint report of this run's own in the
    // lab's report mailbox (read, never changed: `after` is `keep`), as the live test does.
    let _reports = report_mail::lock_report_mailbox();
    let nonce = format!("fleet-{}-{}", std::process::id(), unix_now());
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(report_mail::plant(
            &[
                report_mail::dmarc_mail(&nonce, &format!("<dmarc-{nonce}@google.com>")),
                report_mail::tls_mail(&nonce, &format!("<tls-{nonce}@google.com>")),
                report_mail::arf_mail(&format!("<cfl-{nonce}@yahoo.com>")),
            ],
            false,
        ));
    let dir = tempfile::tempdir().expect("tempdir");

    // The shared mailbox starts empty.
    let probe_config = write_config(
        dir.path(),
        &mailcanary_config(dir.path(), "site-a", "127.0.0.1:0"),
    );
    let seed = mailcanary::config::load(&probe_config)
        .expect("valid config")
        .seeds[0]
        .clone();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let mut s = mailcanary::imap::connect::login(&seed, &Default::default())
                .await
                .expect("login");
            for folder in ["INBOX", "Junk"] {
                s.select(folder).await.expect("select");
                empty_selected_folder(&mut s).await;
            }
            let _ = s.logout().await;
        });

    let central = central_prometheus(dir.path());
    let mut sites = Vec::new();
    for vantage in VANTAGES {
        let d = dir.path().to_path_buf();
        let probe = start_run(dir.path(), vantage, move |addr| {
            mailcanary_config(&d, vantage, addr)
        });
        let agent = agent(dir.path(), vantage, &probe.addr, &central.addr);
        sites.push((vantage, probe, agent));
    }
    let logs = || {
        let mut out = format!("--- central prometheus:\n{}", central.log());
        for (v, probe, agent) in &sites {
            out += &format!(
                "\n--- mailcanary {v}:\n{}\n--- agent {v}:\n{}",
                probe.log(),
                agent.log()
            );
        }
        out
    };
    let routes = live::routes();
    let want = (ROUNDS * routes.len()) as f64;
    // One selector over the four outcome counters: a pair's appear when first counted (the
    // series budget), and a sum of four sums is empty while one of them has no series.
    let settled = "sum by (vantage) \
         ({__name__=~\"mailcanary_probes_(received|missing|unknown|rejected)_total\"})";
    wait_for(
        &format!("{ROUNDS} rounds of both vantages in the central Prometheus"),
        MAX_WAIT,
        || {
            let values = per_vantage(&central.addr, settled)?;
            if values.iter().all(|v| *v >= want) {
                Ok(())
            } else {
                Err(format!(
                    "settled probes per vantage {values:?}, want {want}"
                ))
            }
        },
        logs,
    );
    let rounds_done = Instant::now();
    let mut problems = Vec::new();

    // Both vantages' series, the same metric names.
    let names = |v: &str| -> BTreeSet<String> {
        let data = prom_query(
            &central.addr,
            &format!("count by (__name__) ({{__name__=~\"mailcanary_.+\", vantage=\"{v}\"}})"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["metric"]["__name__"].as_str().map(String::from))
            .collect()
    };
    let (a, b) = (names(VANTAGES[0]), names(VANTAGES[1]));
    assert!(
        a.len() >= 20,
        "only {} mailcanary metrics from {}: {a:?}",
        a.len(),
        VANTAGES[0]
    );
    if a != b {
        problems.push(format!(
            "metric names differ between the vantages: only {}: {:?}; only {}: {:?}",
            VANTAGES[0],
            a.difference(&b).collect::<Vec<_>>(),
            VANTAGES[1],
            b.difference(&a).collect::<Vec<_>>()
        ));
    }

    // Every probe of both resolved, at a moment between rounds (a round in flight has probes
    // sent and not found yet): nothing missing, unknown or forged.
    wait_for(
        "every probe of both vantages resolved",
        Duration::from_secs(60),
        || {
            let open = per_vantage(
                &central.addr,
                "sum by (vantage) (mailcanary_probes_sent_total) \
                 - sum by (vantage) \
                   ({__name__=~\"mailcanary_probes_(received|rejected)_total\"})",
            )?;
            let mut bad = Vec::new();
            for metric in [
                "mailcanary_probes_missing_total",
                "mailcanary_probes_unknown_total",
                "mailcanary_forged_probes_total",
            ] {
                // No series yet is none counted (a pair's counters appear when first counted).
                let expr = format!(
                    "sum by (vantage) ({metric}) \
                     or 0 * sum by (vantage) (mailcanary_probes_sent_total)"
                );
                let values = per_vantage(&central.addr, &expr)?;
                if values != [0.0, 0.0] {
                    bad.push(format!("{metric} {values:?}"));
                }
            }
            if open == [0.0, 0.0] && bad.is_empty() {
                Ok(())
            } else {
                Err(format!("sent and not resolved {open:?}; {bad:?}"))
            }
        },
        logs,
    );
    for (vantage, probe, _) in &sites {
        let (code, body) = http(&probe.addr, "GET", "/api/results", None).expect("results");
        let json: serde_json::Value = serde_json::from_str(&body).expect("results JSON");
        let results = json["results"].as_array().cloned().unwrap_or_default();
        if results.len() != routes.len() {
            problems.push(format!(
                "{vantage}: /api/results (HTTP {code}) lists {} results for {} routes",
                results.len(),
                routes.len()
            ));
        }
        for r in &results {
            let placement = r["placement"].as_str().unwrap_or("null");
            if ["missing", "unknown", "null"].contains(&placement) || r["late"] == true {
                problems.push(format!("{vantage}: {r}"));
            }
        }
    }
    let foreign = per_vantage(
        &central.addr,
        "sum by (vantage) (mailcanary_foreign_probes_total)",
    )
    .unwrap_or_default();

    // Every dashboard and rule expression on the central Prometheus.
    let (mut ran, mut with_data, mut selected) = (0, 0, 0);
    let settle_deadline = Instant::now() + Duration::from_secs(30);
    for e in &exprs {
        let query = substitute_grafana_vars(&e.expr, RATE_INTERVAL);
        ran += 1;
        let mut data = match prom_query(&central.addr, &query) {
            Ok(data) => data,
            Err(why) => {
                problems.push(format!("{}: query failed: {why}\n    {query}", e.source));
                continue;
            }
        };
        let needs_data = matches!(
            e.source,
            ExprSource::Panel { .. } | ExprSource::Variable { .. }
        );
        // A rate() or increase() needs two samples in its window, and the agents remote-write in
        // batches: when the rounds end quickly, give the second sample a few seconds.
        while needs_data && result_len(&data) == 0 && Instant::now() < settle_deadline {
            std::thread::sleep(Duration::from_millis(500));
            if let Ok(d) = prom_query(&central.addr, &query) {
                data = d;
            }
        }
        if result_len(&data) == 0 {
            if needs_data {
                problems.push(format!("{}: no data\n    {query}", e.source));
            }
            continue;
        }
        with_data += 1;
        let seen = vantages_of(&data);
        // The dead man's switch (`vector(1)`) is about the alerting pipeline, not a vantage.
        if seen.is_empty() && e.expr.trim() == "vector(1)" {
            continue;
        }
        if seen.is_empty() {
            if !e.expr.contains("$vantage") && !e.expr.contains("${vantage}") {
                problems.push(format!(
                    "{}: merges the vantages and has no $vantage to select one\n    {query}",
                    e.source
                ));
                continue;
            }
            // Merged on purpose: each vantage selected in turn has its own data.
            selected += 1;
            for v in VANTAGES {
                let one = e.expr.replace("${vantage}", v).replace("$vantage", v);
                let one = substitute_grafana_vars(&one, RATE_INTERVAL);
                match prom_query(&central.addr, &one) {
                    Ok(d) if result_len(&d) > 0 || !needs_data => {}
                    Ok(_) => problems.push(format!(
                        "{}: no data with vantage {v} selected\n    {one}",
                        e.source
                    )),
                    Err(why) => problems.push(format!("{}: {why}\n    {one}", e.source)),
                }
            }
        } else if seen.len() != VANTAGES.len() && needs_data {
            // A rule selects failures: one vantage may have one the other has not. A panel must
            // show both; a rate() needs two samples of each vantage in its window, and the
            // agents remote-write in batches, so give the slower one a few seconds.
            let mut seen = seen;
            while seen.len() != VANTAGES.len() && Instant::now() < settle_deadline {
                std::thread::sleep(Duration::from_millis(500));
                if let Ok(d) = prom_query(&central.addr, &query) {
                    seen = vantages_of(&d);
                }
            }
            if seen.len() != VANTAGES.len() {
                problems.push(format!("{}: only vantage {seen:?}\n    {query}", e.source));
            }
        }
    }
    println!(
        "{ran} expressions run on the central Prometheus, {with_data} with data, {selected} \
         merging the vantages run once per vantage; foreign probes seen {foreign:?}; \
         {:.1} s for {ROUNDS} rounds, {:.1} s in all",
        (rounds_done - started).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
