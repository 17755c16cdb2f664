//! The JSON contracts across changes: `check-dns --json` and `once --json` for the lab's
//! original routes (`tests/fixtures/golden/lab-routes.toml`) against golden files made by the
//! build before the layout changed. `check-dns` must be identical; `once` may only add fields
//! (the contract: fields are never removed or renamed), with the volatile values (ids, times,
//! queue ids) masked and spam rules compared as a set (rspamd orders equal scores freely).
//!
//! Two values were changed on purpose since: the `content_spam` fix names the rules that count
//! against the message ranked by score, no longer the first rules as written (which put
//! `DMARC_POLICY_ALLOW` and `R_SPF_ALLOW`, good signs, among the "top rules"); and the unsigned
//! `dmarc-fail` probe is also diagnosed `dkim_unsigned` (DMARC fails with no DKIM result); and
//! the `listed` probe is `blocklisted` (a warning): the address the receiving MX saw,
//! 127.0.0.6, is audited live against the route's `dnsbl_zones`, which list it (issue #22).

use crate::common;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn golden(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("golden file");
    serde_json::from_str(&text).expect("golden JSON")
}

fn config(dir: &Path) -> std::path::PathBuf {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden/lab-routes.toml"),
    )
    .expect("golden config");
    let text = template.replace("@STATE@", &dir.join("state.sqlite").display().to_string());
    write_config(dir, &text)
}

fn run_json(args: &[&str], config: &Path) -> Value {
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--json")
        .output()
        .expect("run mailcanary");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Masks what changes from run to run.
fn normalise(mut report: Value) -> Value {
    if let Some(results) = report["results"].as_array_mut() {
        for r in results.iter_mut() {
            for key in ["probe_id", "sent_at", "delivery_seconds"] {
                if !r[key].is_null() {
                    r[key] = Value::from("*");
                }
            }
            if r["smtp"].is_object() {
                r["smtp"]["queue_id"] = Value::from("*");
                r["smtp"]["duration_seconds"] = Value::from("*");
            }
            if let Some(rules) = r["spam"]["rules"].as_array_mut() {
                rules.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
            }
        }
        results.sort_by_key(|r| (r["route"].to_string(), r["seed"].to_string()));
    }
    report
}

/// Every key of `old` is in `new` with the same value (objects may gain keys).
fn contains(old: &Value, new: &Value, path: &str, problems: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in o {
                match n.get(k) {
                    Some(nv) => contains(v, nv, &format!("{path}.{k}"), problems),
                    None => problems.push(format!("{path}.{k}: removed")),
                }
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                contains(a, b, &format!("{path}[{i}]"), problems);
            }
        }
        _ if old == new => {}
        _ => problems.push(format!("{path}: was {old}, now {new}")),
    }
}

#[test]
fn check_dns_json_is_unchanged() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let now = run_json(&["check-dns"], &config(dir.path()));
    assert_eq!(now, golden("check-dns.json"));
}

#[test]
fn once_json_keeps_every_field_and_value() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let now = normalise(run_json(&["once"], &config(dir.path())));
    let mut problems = Vec::new();
    contains(&golden("once.json"), &now, "", &mut problems);
    assert!(
        problems.is_empty(),
        "once --json changed:\n{}",
        problems.join("\n")
    );
}
