//! `check-dns --config config/lab.toml` against the lab DNS: every lab fault route yields exactly
//! its cause, and the good routes none.

use crate::common;
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn every_lab_route_gets_exactly_its_cause() {
    common::require_lab();
    let out = Command::new(common::bin())
        .args(["check-dns", "--json", "--config", "config/lab.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run check-dns");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let got: BTreeMap<String, Vec<String>> = json
        .as_array()
        .expect("one report per route")
        .iter()
        .map(|r| {
            let causes = r["causes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (r["route"].as_str().unwrap_or_default().to_string(), causes)
        })
        .collect();
    let want: BTreeMap<String, Vec<String>> = [
        ("good", vec![]),
        ("good-oauth", vec![]),
        ("spam", vec![]),
        ("spf-fail", vec!["spf_ip_not_authorized"]),
        ("dkim-fail", vec!["dkim_key_mismatch"]),
        ("dmarc-fail", vec!["dmarc_not_aligned"]),
        ("no-ptr", vec!["ptr_missing"]),
        ("listed", vec!["blocklisted"]),
        ("rejected", vec!["ptr_missing"]),
        ("deferred", vec![]),
    ]
    .into_iter()
    .map(|(r, c)| (r.to_string(), c.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(out.status.code(), Some(2), "failing checks are critical");
}

/// The readable report adds a line per provider's sender requirement the DNS alone shows
/// unmet: the no-ptr route's address has no PTR, which Gmail and Yahoo require of all senders;
/// the good route has none.
#[test]
fn the_readable_report_names_the_requirements_the_dns_shows_unmet() {
    common::require_lab();
    let out = Command::new(common::bin())
        .args(["check-dns", "--config", "config/lab.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run check-dns");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with(
            "  requirement no-ptr: ptr_fcrdns unmet at Gmail, Yahoo Mail (the IPv4 address \
             127.0.0.5 has no PTR record): ptr_missing: Publish a PTR record for the IPv4 address \
             127.0.0.5"
        )),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("  requirement good:")),
        "{text}"
    );
}
