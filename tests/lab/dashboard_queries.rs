//! The dashboards against their reviewed queries, `tests/fixtures/monitoring/dashboard_queries.toml`:
//! the same dashboards (uid, title), the same alert annotation and template variables (the
//! `datasource` variable, `vantage` and the selectors with their queries), and the same panels in
//! the same order (type, title, minimum interval) with the same targets (expr, legend, instant or
//! range, format). The fixture was extracted from the hand-written generator's JSON before the
//! dashboards moved to the Grafana Foundation SDK, so this is the "queries before and after"
//! comparison; `dashboards::generated_dashboards_are_up_to_date` ties the checked-in JSON read
//! here to `grafana/generate.py`. A new panel is added to the fixture by hand (see its header).
//!
//! Needs nothing but the files.

use crate::common::exprs::{self, Dashboard, dashboards};
use crate::common::support::{read, repo};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const FIXTURE: &str = "tests/fixtures/monitoring/dashboard_queries.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    dashboard: Vec<FixtureDashboard>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureDashboard {
    uid: String,
    title: String,
    annotation: String,
    variable: Vec<Variable>,
    panel: Vec<Panel>,
}

/// A template variable: `query` is what Grafana runs (the datasource type for the `datasource`
/// variable, the `label_values(...)` definition for a query variable). `all_value` is set when
/// the variable offers "All", to that value.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Variable {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    query: String,
    #[serde(default)]
    multi: bool,
    all_value: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Panel {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    interval: Option<String>,
    #[serde(default)]
    target: Vec<Target>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Target {
    expr: String,
    legend: String,
    #[serde(default)]
    instant: bool,
    #[serde(default = "time_series")]
    format: String,
}

fn time_series() -> String {
    "time_series".to_string()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "(absent)".to_string(),
        other => other.to_string(),
    }
}

/// A dashboard variable as the fixture writes it.
fn variable_of(v: &Value) -> Variable {
    let kind = text(&v["type"]);
    // A query variable's `definition` is the query as written; `query.query` what Grafana runs.
    let query = if kind == "query" {
        let definition = text(&v["definition"]);
        let runs = text(&v["query"]["query"]);
        if definition == runs {
            definition
        } else {
            format!("definition {definition:?} but query {runs:?}")
        }
    } else {
        text(&v["query"])
    };
    let all_value = (v["includeAll"] == true).then(|| text(&v["allValue"]));
    Variable {
        name: text(&v["name"]),
        kind,
        query,
        multi: v["multi"] == true,
        all_value,
    }
}

/// A panel as the fixture writes it. A target that is both (or neither) instant and range gets
/// that said in its format, so it cannot pass for either.
fn panel_of(p: &Value) -> Panel {
    let targets = p["targets"].as_array().into_iter().flatten();
    Panel {
        kind: text(&p["type"]),
        title: text(&p["title"]),
        interval: p["interval"].as_str().map(String::from),
        target: targets
            .map(|t| {
                let instant = t["instant"] == true;
                let mut format = text(&t["format"]);
                if (t["range"] == true) == instant {
                    format = format!("{format} (instant {}, range {})", t["instant"], t["range"]);
                }
                Target {
                    expr: text(&t["expr"]),
                    legend: text(&t["legendFormat"]),
                    instant,
                    format,
                }
            })
            .collect(),
    }
}

/// Where `dashboard`'s panels differ from the fixture's: panels only in one of them, panels
/// out of order, and each field that differs in a panel both have (the nth panel of a type and
/// title in one is matched with the nth of the same type and title in the other).
fn panel_problems(uid: &str, fixture: &[Panel], dashboard: &[Panel]) -> Vec<String> {
    type Key<'a> = (&'a str, &'a str, usize);
    fn keyed(panels: &[Panel]) -> Vec<(Key<'_>, &Panel)> {
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        panels
            .iter()
            .map(|p| {
                let n = seen.entry((&p.kind, &p.title)).or_insert(0);
                *n += 1;
                ((p.kind.as_str(), p.title.as_str(), *n), p)
            })
            .collect()
    }
    let want = keyed(fixture);
    let got = keyed(dashboard);
    let want_map: BTreeMap<Key, &Panel> = want.iter().copied().collect();
    let got_map: BTreeMap<Key, &Panel> = got.iter().copied().collect();
    let mut problems = Vec::new();
    for (key, _) in &got {
        if !want_map.contains_key(key) {
            problems.push(format!(
                "{uid}: {} panel {:?} is not in {FIXTURE}: add it there, at its place, with its queries",
                key.0, key.1
            ));
        }
    }
    for (key, _) in &want {
        if !got_map.contains_key(key) {
            problems.push(format!(
                "{uid}: {} panel {:?} of {FIXTURE} is missing",
                key.0, key.1
            ));
        }
    }
    let order = |list: &[(Key, &Panel)], other: &BTreeMap<Key, &Panel>| -> Vec<String> {
        list.iter()
            .filter(|(k, _)| other.contains_key(k))
            .map(|(k, _)| format!("{} {:?}", k.0, k.1))
            .collect()
    };
    let (want_order, got_order) = (order(&want, &got_map), order(&got, &want_map));
    if want_order != got_order {
        problems.push(format!(
            "{uid}: panels in another order\n  fixture:   {want_order:?}\n  dashboard: {got_order:?}"
        ));
    }
    for (key, want) in &want {
        let Some(got) = got_map.get(key) else {
            continue;
        };
        let at = format!("{uid}, {} panel {:?}", key.0, key.1);
        if want.interval != got.interval {
            problems.push(format!(
                "{at}: minimum interval {:?}, fixture {:?}",
                got.interval, want.interval
            ));
        }
        if want.target.len() != got.target.len() {
            problems.push(format!(
                "{at}: {} targets, fixture {}",
                got.target.len(),
                want.target.len()
            ));
        }
        for (i, (w, g)) in want.target.iter().zip(&got.target).enumerate() {
            if w != g {
                problems.push(format!(
                    "{at}, target {}:\n  fixture:   {w:?}\n  dashboard: {g:?}",
                    i + 1
                ));
            }
        }
    }
    problems
}

fn dashboard_problems(want: &FixtureDashboard, d: &Dashboard) -> Vec<String> {
    let uid = &want.uid;
    let json = &d.json;
    let mut problems = Vec::new();
    if text(&json["title"]) != want.title {
        problems.push(format!(
            "{uid}: title {}, fixture {:?}",
            json["title"], want.title
        ));
    }
    let annotations: Vec<String> = json["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| text(&a["expr"]))
        .collect();
    if annotations != [want.annotation.clone()] {
        problems.push(format!(
            "{uid}: annotation queries {annotations:?}, fixture [{:?}]",
            want.annotation
        ));
    }
    let variables: Vec<Variable> = json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(variable_of)
        .collect();
    if variables != want.variable {
        problems.push(format!(
            "{uid}: template variables\n  fixture:   {:?}\n  dashboard: {variables:?}",
            want.variable
        ));
    }
    // Rows included, and the panels inside a collapsed row right after it.
    let panels: Vec<Panel> = exprs::panels(json).into_iter().map(panel_of).collect();
    problems.extend(panel_problems(uid, &want.panel, &panels));
    problems
}

#[test]
fn dashboards_match_the_query_fixture() {
    let fixture: Fixture =
        toml::from_str(&read(&repo().join(FIXTURE))).unwrap_or_else(|e| panic!("{FIXTURE}: {e}"));
    let all = dashboards();
    let mut problems = Vec::new();
    let mut targets = 0;
    for want in &fixture.dashboard {
        let Some(d) = all.iter().find(|d| d.uid() == want.uid) else {
            problems.push(format!("{}: no dashboard with this uid", want.uid));
            continue;
        };
        targets += want.panel.iter().map(|p| p.target.len()).sum::<usize>();
        problems.extend(dashboard_problems(want, d));
    }
    for d in &all {
        if !fixture.dashboard.iter().any(|w| w.uid == d.uid()) {
            problems.push(format!(
                "{} (uid {:?}) is not in {FIXTURE}",
                d.name(),
                d.uid()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the dashboards differ from {FIXTURE}:\n{}",
        problems.join("\n")
    );
    assert!(targets > 0, "{FIXTURE} lists no query: it compares nothing");
    println!(
        "{} dashboards, {targets} panel queries as in the fixture",
        fixture.dashboard.len()
    );
}

/// The comparison itself: a changed expr, a new panel and a reordering are each caught.
#[test]
fn query_fixture_comparison_catches_differences() {
    let panel = |kind: &str, title: &str, expr: &str| Panel {
        kind: kind.to_string(),
        title: title.to_string(),
        interval: None,
        target: vec![Target {
            expr: expr.to_string(),
            legend: "{{vantage}}".to_string(),
            instant: false,
            format: time_series(),
        }],
    };
    let fixture = [panel("stat", "A", "up"), panel("timeseries", "B", "x")];
    let same = [panel("stat", "A", "up"), panel("timeseries", "B", "x")];
    assert!(panel_problems("d", &fixture, &same).is_empty());

    let changed = [panel("stat", "A", "up == 1"), panel("timeseries", "B", "x")];
    let p = panel_problems("d", &fixture, &changed);
    assert!(p.len() == 1 && p[0].contains("target 1"), "{p:?}");

    let added = [
        panel("stat", "A", "up"),
        panel("stat", "A", "up"),
        panel("timeseries", "B", "x"),
    ];
    let p = panel_problems("d", &fixture, &added);
    assert!(p.len() == 1 && p[0].contains("is not in"), "{p:?}");

    let reordered = [panel("timeseries", "B", "x"), panel("stat", "A", "up")];
    let p = panel_problems("d", &fixture, &reordered);
    assert!(p.len() == 1 && p[0].contains("another order"), "{p:?}");
}
