//! Structural checks of every Grafana dashboard in `grafana/dashboards/`: stable uids, the
//! `datasource` variable used by every panel and query (no hard-coded datasource), the
//! `mailcanary` tag, `$__rate_interval` in every range, known metric names only, valid
//! PromQL, and JSON that matches its generator `grafana/generate.py` (the Grafana Foundation
//! SDK's builders). `dashboard_queries.rs` holds the queries to their reviewed fixture.
//!
//! The expressions come from `tests/common/exprs.rs` (`all_promql_exprs`), shared with
//! `live_monitoring.rs`, which runs them against a live Prometheus.
//!
//! Needs the test virtualenv with the SDK (generator check; `sudo scripts/install-test-deps`)
//! and promtool/prometheus (PromQL parse, alert rules): `apt-get install prometheus`. Run with
//! `cargo nextest run --test lab -E 'test(/dashboard/)'`.

use crate::common::exprs;
use crate::common::support;
use std::collections::BTreeSet;
use std::process::Command;

use exprs::{
    Dashboard, ExprSource, all_promql_exprs, dashboard_exprs, dashboards, panels,
    substitute_grafana_vars,
};
use serde_json::Value;
use support::{read, repo, require_tool, run_ok, test_venv_python};

/// The dashboards' uids: links and bookmarks depend on them, so they never change.
const EXPECTED_UIDS: &[&str] = &[
    "mailcanary-overview",
    "mailcanary-probe",
    "mailcanary-reports",
];

/// Aggregations that leave `vantage` out of their label list, each with the reason:
/// (dashboard uid, panel title, why). A heatmap draws one bucket distribution, so it sums the
/// selected vantages together (its query still filters on `$vantage`).
const VANTAGE_MERGED: &[(&str, &str, &str)] = &[
    (
        "mailcanary-overview",
        "Delivery latency heatmap",
        "one distribution per heatmap",
    ),
    (
        "mailcanary-probe",
        "Delivery latency heatmap",
        "one distribution per heatmap",
    ),
    (
        "mailcanary-overview",
        "Firing mailcanary alerts",
        "one count per severity; `or vector(0)` needs a label-free result",
    ),
];

/// Range selectors other than `[$__rate_interval]`, each with the reason it is needed:
/// (dashboard uid, panel title, range, why). None so far.
const JUSTIFIED_RANGES: &[(&str, &str, &str, &str)] = &[];

fn datasource_ref() -> Value {
    serde_json::json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// The committed JSON is what `grafana/generate.py` builds now, with the SDK of the test
/// virtualenv (pinned in `grafana/requirements-generate.txt`).
#[test]
fn generated_dashboards_are_up_to_date() {
    run_ok(Command::new(test_venv_python()).args(["grafana/generate.py", "--check"]));
}

#[test]
fn dashboards_have_the_expected_uids_and_tag() {
    let all = dashboards();
    let uids: BTreeSet<&str> = all.iter().map(Dashboard::uid).collect();
    assert_eq!(uids.len(), all.len(), "two dashboards share a uid");
    assert_eq!(uids, EXPECTED_UIDS.iter().copied().collect::<BTreeSet<_>>());
    for d in &all {
        let tags = d.json["tags"].as_array().cloned().unwrap_or_default();
        assert!(
            tags.contains(&Value::from("mailcanary")),
            "{}: no `mailcanary` tag",
            d.name()
        );
        assert!(
            d.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}: no title",
            d.name()
        );
    }
    println!("{} dashboards checked", all.len());
}

#[test]
fn every_panel_and_query_uses_the_datasource_variable() {
    let all = dashboards();
    let ds = datasource_ref();
    let mut checked_panels = 0;
    for d in &all {
        let name = d.name();
        let vars = d.json["templating"]["list"]
            .as_array()
            .expect("templating.list");
        let var = |n: &str| vars.iter().find(|v| v["name"] == n);

        let datasource =
            var("datasource").unwrap_or_else(|| panic!("{name}: no `datasource` variable"));
        assert_eq!(
            datasource["type"], "datasource",
            "{name}: `datasource` variable type"
        );
        assert_eq!(
            datasource["query"], "prometheus",
            "{name}: `datasource` variable query"
        );
        // The fleet's vantage: multi-value with "All" as `.*`, which also matches series
        // without the label, so a single instance (no `vantage` label) sees everything.
        let vantage = var("vantage").unwrap_or_else(|| panic!("{name}: no `vantage` variable"));
        assert_eq!(
            vantage["multi"], true,
            "{name}: `vantage` must be multi-value"
        );
        assert_eq!(
            vantage["includeAll"], true,
            "{name}: `vantage` must offer All"
        );
        assert_eq!(vantage["allValue"], ".*", "{name}: `vantage` All value");
        // The probe dashboards pick route and seed, the reports dashboard domain and reporter.
        let selectors: &[(&str, &str)] = if d.uid() == "mailcanary-reports" {
            &[
                ("vantage", "mailcanary_dmarc_reports_total"),
                ("domain", "mailcanary_dmarc_reports_total"),
                ("reporter", "mailcanary_dmarc_reports_total"),
            ]
        } else {
            &[
                ("vantage", "mailcanary_probes_sent_total"),
                ("route", "mailcanary_probes_sent_total"),
                ("seed", "mailcanary_probes_sent_total"),
            ]
        };
        for &(label, metric) in selectors {
            let v = var(label).unwrap_or_else(|| panic!("{name}: no `{label}` variable"));
            assert_eq!(v["type"], "query", "{name}: `{label}` variable type");
            assert_eq!(v["datasource"], ds, "{name}: `{label}` variable datasource");
            let def = v["definition"].as_str().unwrap_or_default();
            assert!(
                def.starts_with(&format!("label_values({metric}"))
                    && def.ends_with(&format!(", {label})")),
                "{name}: `{label}` variable query {def:?}"
            );
        }

        let mut ids = BTreeSet::new();
        for panel in panels(&d.json) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(
                !title.is_empty(),
                "{name}: panel {} has no title",
                panel["id"]
            );
            assert!(
                ids.insert(panel["id"].as_u64().expect("panel id")),
                "{name}: duplicate panel id {}",
                panel["id"]
            );
            assert!(panel["gridPos"].is_object(), "{name}/{title}: no gridPos");
            if panel["type"] == "row" {
                continue;
            }
            checked_panels += 1;
            assert_eq!(panel["datasource"], ds, "{name}/{title}: panel datasource");
            let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
            let targets = targets.unwrap_or_else(|| panic!("{name}/{title}: no query"));
            for target in targets {
                assert_eq!(
                    target["datasource"], ds,
                    "{name}/{title}: target {} datasource",
                    target["refId"]
                );
                assert!(
                    target["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{name}/{title}: empty expr"
                );
            }
        }
    }
    assert!(checked_panels > 0, "no panel checked");
    println!(
        "{checked_panels} panels in {} dashboards checked",
        all.len()
    );
}

/// Any `datasource` anywhere (panels, targets, variables, annotations) is the variable;
/// the provisioned datasource's uid appears nowhere.
#[test]
fn no_hard_coded_datasource() {
    fn walk(value: &Value, path: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let here = format!("{path}.{key}");
                    if key == "datasource" && *v != datasource_ref() {
                        problems.push(format!("{here} = {v}"));
                    }
                    if key.to_lowercase().contains("datasourceuid") || key == "datasourceId" {
                        problems.push(format!("{here} = {v}"));
                    }
                    walk(v, &here, problems);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{path}[{i}]"), problems);
                }
            }
            Value::String(s) if s.contains("mailcanary-prometheus") => {
                problems.push(format!("{path} = {s:?}"))
            }
            _ => {}
        }
    }
    let provisioned = read(&repo().join("grafana/provisioning/datasources/prometheus.yml"));
    assert!(
        provisioned.contains("uid: mailcanary-prometheus"),
        "provisioned datasource uid changed: update this test"
    );
    for d in dashboards() {
        let mut problems = Vec::new();
        walk(&d.json, "", &mut problems);
        assert!(
            problems.is_empty(),
            "{}: hard-coded datasource:\n{}",
            d.name(),
            problems.join("\n")
        );
    }
}

/// The label lists of every `by (...)` in an expression.
fn by_lists(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in expr.match_indices(" by (") {
        let rest = &expr[i + " by (".len()..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// A fleet's vantages stay apart on every panel: each query filters on `$vantage`, each
/// aggregation keeps `vantage` (or is listed in VANTAGE_MERGED with its reason), and each
/// time series' legend names it. The annotation of firing alerts filters on it too.
#[test]
fn every_query_keeps_the_vantages_apart() {
    let exprs = dashboard_exprs();
    let mut problems = Vec::new();
    let mut aggregations = 0;
    for e in &exprs {
        // The vantage variable lists the vantages: it cannot filter on itself.
        let lists_vantages =
            matches!(&e.source, ExprSource::Variable { variable, .. } if variable == "vantage");
        if !lists_vantages && !e.expr.contains("vantage=~\"$vantage\"") {
            problems.push(format!(
                "{}: no vantage=~\"$vantage\" in {}",
                e.source, e.expr
            ));
        }
        let ExprSource::Panel {
            dashboard, panel, ..
        } = &e.source
        else {
            continue;
        };
        let merged = VANTAGE_MERGED
            .iter()
            .any(|(uid, title, _why)| uid == dashboard && title == panel);
        // An aggregation with no label list at all merges everything, vantages included.
        let merges_all = ["sum(", "max(", "min(", "avg(", "count(", "group("]
            .iter()
            .any(|op| e.expr.contains(op));
        for list in by_lists(&e.expr) {
            aggregations += 1;
            if !list.split(',').any(|l| l.trim() == "vantage") && !merged {
                problems.push(format!("{}: by ({list}) drops vantage", e.source));
            }
        }
        if merges_all && !merged {
            problems.push(format!(
                "{}: an aggregation without by (...) merges the vantages",
                e.source
            ));
        }
    }
    for d in dashboards() {
        for panel in panels(&d.json) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let legend = target["legendFormat"].as_str().unwrap_or_default();
                if target["format"] == "time_series" && !legend.contains("{{vantage}}") {
                    problems.push(format!(
                        "{}/{}: legend {legend:?} does not name {{{{vantage}}}}",
                        d.uid(),
                        panel["title"]
                    ));
                }
            }
        }
    }
    assert!(
        aggregations > 0,
        "no aggregation found: the check is not looking"
    );
    assert!(
        problems.is_empty(),
        "{} expressions checked:\n{}",
        exprs.len(),
        problems.join("\n")
    );
}

/// Ranges in PromQL (outside strings).
fn ranges(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut current: Option<String> = None;
    for c in expr.chars() {
        match (c, &mut current) {
            ('"', None) => in_string = !in_string,
            ('[', None) if !in_string => current = Some(String::new()),
            (']', Some(range)) => {
                out.push(std::mem::take(range));
                current = None;
            }
            (c, Some(range)) => range.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn every_range_is_the_rate_interval() {
    let exprs = dashboard_exprs();
    let mut problems = Vec::new();
    let mut rate_calls = 0;
    for e in &exprs {
        let ExprSource::Panel {
            dashboard, panel, ..
        } = &e.source
        else {
            continue;
        };
        rate_calls += e.expr.matches("rate(").count() + e.expr.matches("increase(").count();
        for range in ranges(&e.expr) {
            let justified = JUSTIFIED_RANGES
                .iter()
                .any(|(uid, title, r, _why)| uid == dashboard && title == panel && *r == range);
            if range != "$__rate_interval" && !justified {
                problems.push(format!("{dashboard}/{panel}: [{range}] in {}", e.expr));
            }
        }
        // Every rate()/increase() has a range, so counting ranges covers them: a call
        // without `[` would be a PromQL error, caught by `every_expr_parses`.
    }
    assert!(
        rate_calls > 0,
        "no rate()/increase() found: the check is not looking"
    );
    assert!(
        problems.is_empty(),
        "ranges other than $__rate_interval:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_metric_is_known() {
    let known: BTreeSet<String> = support::known_metrics().into_iter().collect();
    let exprs = all_promql_exprs();
    let mut unknown = Vec::new();
    let mut referenced = BTreeSet::new();
    for e in &exprs {
        let names = support::metric_names(&e.expr);
        if names.is_empty() && !e.expr.contains("vector(") {
            unknown.push(format!("{:?}: no metric found in {}", e.source, e.expr));
        }
        for name in names {
            if !known.contains(&name) {
                unknown.push(format!(
                    "{:?}: unknown metric {name} in {}",
                    e.source, e.expr
                ));
            }
            referenced.insert(name);
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
    assert!(
        exprs.iter().any(|e| !e.is_dashboard()),
        "no alert rule expression collected"
    );
    println!(
        "{} expressions, {} distinct metrics, all known",
        exprs.len(),
        referenced.len()
    );
}

#[test]
fn metric_name_extraction() {
    let names = support::metric_names(
        "histogram_quantile(0.9, sum by (route, le) (rate(a_bucket{x=\"y{z}\"}[$__rate_interval]))) \
         / on (job) group_left b_total > 1e3 unless c offset 5m or vector(0)",
    );
    assert_eq!(names, ["a_bucket", "b_total", "c"]);
}

/// Every dashboard expression is valid PromQL: promtool checks them as recording rules
/// (a JSON file is valid YAML).
#[test]
fn every_expr_parses() {
    let promtool = require_tool(&["promtool"]);
    let exprs = dashboard_exprs();
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({ "record": format!("dashboard:expr:{i}"), "expr": substitute_grafana_vars(&e.expr, "2m") }))
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": "dashboards", "rules": rules }] });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-exprs.yml");
    std::fs::write(&path, file.to_string()).unwrap();
    let out = run_ok(Command::new(promtool).arg("check").arg("rules").arg(&path));
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}"
    );
}
