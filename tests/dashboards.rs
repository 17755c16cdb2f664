//! Structural checks of every Grafana dashboard in `grafana/dashboards/`: stable uids, the
//! `datasource` variable used by every panel and query (no hard-coded datasource), the
//! `mailcanary` tag, `$__rate_interval` in every range, known metric names only, valid
//! PromQL, and JSON that matches its generator `grafana/generate.py`.
//!
//! [`all_promql_exprs`] collects every PromQL expression of every panel, variable,
//! annotation and alert rule, for tests that run them against a live Prometheus.
//!
//! Needs python3 (generator check) and promtool/prometheus (PromQL parse, alert rules):
//! `apt-get install prometheus`. Run with `cargo nextest run --test dashboards`.

#[path = "fixtures/monitoring/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{files_ending, find_tool, read, repo, require_tool, run_ok};

/// The dashboards' uids: links and bookmarks depend on them, so they never change.
const EXPECTED_UIDS: &[&str] = &["mailcanary-overview", "mailcanary-probe"];

/// Range selectors other than `[$__rate_interval]`, each with the reason it is needed:
/// (dashboard uid, panel title, range, why). None so far.
const JUSTIFIED_RANGES: &[(&str, &str, &str, &str)] = &[];

fn datasource_ref() -> Value {
    serde_json::json!({ "type": "prometheus", "uid": "${datasource}" })
}

struct Dashboard {
    file: PathBuf,
    json: Value,
}

impl Dashboard {
    fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }
    fn name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

fn dashboards() -> Vec<Dashboard> {
    files_ending("grafana/dashboards", ".json")
        .into_iter()
        .map(|file| {
            let json = serde_json::from_str(&read(&file))
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", file.display()));
            Dashboard { file, json }
        })
        .collect()
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

/// Where an expression comes from, for messages and for live-query tests.
#[derive(Debug, Clone)]
pub enum ExprSource {
    Panel {
        dashboard: String,
        panel: String,
        ref_id: String,
    },
    Variable {
        dashboard: String,
        variable: String,
    },
    Annotation {
        dashboard: String,
        name: String,
    },
    AlertRule {
        group: String,
        alert: String,
    },
}

#[derive(Debug, Clone)]
pub struct PromExpr {
    pub source: ExprSource,
    /// As written, Grafana variables (`$route`, `$__rate_interval`) included.
    pub expr: String,
}

impl PromExpr {
    pub fn is_dashboard(&self) -> bool {
        !matches!(self.source, ExprSource::AlertRule { .. })
    }
}

/// The expression with Grafana's variables replaced, ready for Prometheus' query API:
/// `$route`/`$seed` match anything, `$__rate_interval` becomes `rate_interval` (e.g. "2m").
pub fn substitute_grafana_vars(expr: &str, rate_interval: &str) -> String {
    expr.replace("$__rate_interval", rate_interval)
        .replace("=~\"$route\"", "=~\".*\"")
        .replace("=~\"$seed\"", "=~\".*\"")
        .replace("=\"$route\"", "=~\".*\"")
        .replace("=\"$seed\"", "=~\".*\"")
}

/// The selector inside a Grafana `label_values(selector, label)` variable query.
fn label_values_selector(query: &str) -> Option<&str> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    Some(inner.rsplit_once(',')?.0.trim())
}

/// Every PromQL expression of every dashboard panel target, variable query (its series
/// selector), annotation, and alerting rule (as Prometheus loaded it from
/// `prometheus/rules/`). Starts a loopback Prometheus for the rules.
pub fn all_promql_exprs() -> Vec<PromExpr> {
    let mut exprs = dashboard_exprs();
    let (alerts, records) = support::loaded_rules();
    for alert in alerts {
        exprs.push(PromExpr {
            source: ExprSource::AlertRule {
                group: alert.group,
                alert: alert.name,
            },
            expr: alert.expr,
        });
    }
    for record in records {
        exprs.push(PromExpr {
            source: ExprSource::AlertRule {
                group: record.group,
                alert: record.name,
            },
            expr: record.expr,
        });
    }
    exprs
}

/// The dashboard part of [`all_promql_exprs`] (no Prometheus needed).
pub fn dashboard_exprs() -> Vec<PromExpr> {
    let mut exprs = Vec::new();
    for d in dashboards() {
        let dashboard = d.uid().to_string();
        for panel in panels(&d.json) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    exprs.push(PromExpr {
                        source: ExprSource::Panel {
                            dashboard: dashboard.clone(),
                            panel: panel["title"].as_str().unwrap_or_default().to_string(),
                            ref_id: target["refId"].as_str().unwrap_or_default().to_string(),
                        },
                        expr: expr.to_string(),
                    });
                }
            }
        }
        for var in d.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if var["type"] == "query" {
                let query = var["definition"].as_str().unwrap_or_default();
                let selector = label_values_selector(query).unwrap_or_else(|| {
                    panic!(
                        "{dashboard}: variable query {query:?} is not label_values(selector, label)"
                    )
                });
                exprs.push(PromExpr {
                    source: ExprSource::Variable {
                        dashboard: dashboard.clone(),
                        variable: var["name"].as_str().unwrap_or_default().to_string(),
                    },
                    expr: selector.to_string(),
                });
            }
        }
        for annotation in d.json["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = annotation["expr"].as_str() {
                exprs.push(PromExpr {
                    source: ExprSource::Annotation {
                        dashboard: dashboard.clone(),
                        name: annotation["name"].as_str().unwrap_or_default().to_string(),
                    },
                    expr: expr.to_string(),
                });
            }
        }
    }
    assert!(
        !exprs.is_empty(),
        "no PromQL expression found in any dashboard"
    );
    exprs
}

#[test]
fn generated_dashboards_are_up_to_date() {
    let python = find_tool(&["python3"]).unwrap_or_else(|| {
        panic!("python3 not found on PATH: the dashboards are generated by grafana/generate.py (apt-get install python3)")
    });
    run_ok(Command::new(python).args(["grafana/generate.py", "--check"]));
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
        for (label, metric) in [
            ("route", "mailcanary_probes_sent_total"),
            ("seed", "mailcanary_probes_sent_total"),
        ] {
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
