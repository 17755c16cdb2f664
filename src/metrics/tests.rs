//! The registry, and how the series follow the config across reloads.

use super::*;
use crate::config::Config;
use crate::gmail::Tab;
use crate::outcome::Placement;

#[test]
fn report_counts_never_send_a_counter_backwards() {
    use crate::reports::dmarc::{AggregateReport, Record};
    use crate::reports::tlsrpt::{Policy, TlsReport};
    let m = Metrics::new();
    let record = |count| Record {
        source_ip: "198.51.100.7".into(),
        count,
        header_from: "example.com".into(),
        ..Default::default()
    };
    // Counts the parser refuses (over 10^9): if one got here, the sum must not wrap to 1.
    let report = AggregateReport {
        org_name: "x".into(),
        report_id: "1".into(),
        end: 86_400,
        records: vec![record(u64::MAX), record(2)],
        ..Default::default()
    };
    m.reports
        .dmarc_report("rua", "example.com", "other", &report);
    m.reports
        .dmarc_report("rua", "example.com", "other", &report);
    let counter = m.reports.dmarc_messages.with_label_values(&[
        "example.com",
        "other",
        "none",
        "fail",
        "fail",
    ]);
    assert_eq!(counter.get(), u64::MAX);
    let policy = Policy {
        policy_type: "sts".into(),
        policy_domain: "example.com".into(),
        successful: u64::MAX,
        failed: 2,
        failures: vec![],
    };
    let tls = TlsReport {
        org_name: "x".into(),
        report_id: "1".into(),
        begin: 0,
        end: 86_400,
        contact: None,
        policies: vec![policy.clone(), policy.clone()],
    };
    m.reports
        .tls_report("rua", "example.com", "other", &tls, &[&policy, &policy]);
    let ok = m
        .reports
        .tls_sessions
        .with_label_values(&["example.com", "other", "successful"]);
    assert_eq!(ok.get(), u64::MAX);
}

#[test]
fn only_the_current_gmail_tab_has_a_series() {
    let m = Metrics::new();
    m.set_last_tab("r", "gmail", Some(Tab::Promotions));
    m.set_last_tab("r", "gmail", Some(Tab::Primary));
    let text = m.render();
    assert!(text.contains(r#"mailcanary_last_tab{route="r",seed="gmail",tab="primary"} 1"#));
    assert!(!text.contains(r#"tab="promotions""#), "{text}");
    m.set_last_tab("r", "gmail", None);
    assert!(!m.render().contains("mailcanary_last_tab{"));
}

#[test]
fn only_the_current_last_hop_tls_has_a_series() {
    let m = Metrics::new();
    m.set_last_hop_tls("r", "s1", "tls1.2");
    m.set_last_hop_tls("r", "s1", "tls1.3");
    m.set_last_hop_tls("r", "s2", "none");
    let text = m.render();
    assert!(text.contains(r#"mailcanary_last_hop_tls{route="r",seed="s1",version="tls1.3"} 1"#));
    assert!(!text.contains(r#"version="tls1.2""#), "{text}");
    assert!(text.contains(r#"mailcanary_last_hop_tls{route="r",seed="s2",version="none"} 1"#));
    assert_eq!(
        text.matches("mailcanary_last_hop_tls{").count(),
        2,
        "{text}"
    );
}

#[test]
fn complaints_count_their_incidents_under_their_type() {
    let m = Metrics::new();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/arf/microsoft-jmrp.eml"
    );
    let raw = std::fs::read(path).expect("fixture");
    let report = crate::reports::arf::parse(&raw).expect("ARF");
    let complaint = crate::reports::Complaint {
        report_message_id: "<1@hotmail.com>".into(),
        received: 0,
        report,
    };
    m.reports
        .complaint_report("rua", "sender.test", "other", &complaint);
    let kind = complaint.report.feedback_type.as_str();
    let text = m.render();
    let line = format!(
        "mailcanary_complaints_total{{domain=\"sender.test\",reporter=\"other\",type=\"{kind}\"}} 3"
    );
    assert!(text.contains(&line), "{text}");
}

#[test]
fn a_requirement_has_a_series_only_while_met_or_unmet() {
    let m = Metrics::new();
    m.set_requirement("r", "gmail", "ptr_fcrdns", Some(false));
    m.set_requirement("r", "gmail", "tls", Some(true));
    let text = m.render();
    assert!(text.contains(
        r#"mailcanary_requirement_met{provider="gmail",requirement="ptr_fcrdns",route="r"} 0"#
    ));
    assert!(
        text.contains(
            r#"mailcanary_requirement_met{provider="gmail",requirement="tls",route="r"} 1"#
        )
    );
    // Unknown this time (or not observable): no series, so `== 0` alerts only on what a probe
    // showed unmet.
    m.set_requirement("r", "gmail", "ptr_fcrdns", None);
    assert!(!m.render().contains(r#"requirement="ptr_fcrdns""#));
}

#[test]
fn handoffs_are_observed_per_route_and_leg() {
    use crate::path::{Handoff, Leg, Path, Receiver};
    let m = Metrics::new();
    let mut path = Path::from_hops(Vec::new(), 0, &Receiver::default());
    path.handoffs = vec![
        Handoff {
            hop: Leg::ReceivingMx,
            seconds: 3,
        },
        // Clocks that disagree: counted as 0, never negative.
        Handoff {
            hop: Leg::Mailbox,
            seconds: -2,
        },
    ];
    m.path_observed("r", "s1", &path);
    m.path_observed("r", "s2", &path);
    let text = m.render();
    assert!(
        text.contains(
            r#"mailcanary_handoff_duration_seconds_count{hop="receiving_mx",route="r"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"mailcanary_handoff_duration_seconds_sum{hop="receiving_mx",route="r"} 6"#)
    );
    assert!(text.contains(r#"mailcanary_handoff_duration_seconds_sum{hop="mailbox",route="r"} 0"#));
    assert!(!text.contains(
        r#"mailcanary_handoff_duration_seconds_count{hop="receiving_mx",route="r",seed"#
    ));
}

#[test]
fn registry_builds_and_renders() {
    let m = Metrics::new();
    m.probe
        .probes_sent
        .with_label_values(&["good", "seed1"])
        .inc();
    let text = m.render();
    assert!(text.contains("mailcanary_probes_sent_total{route=\"good\",seed=\"seed1\"} 1"));
    assert!(text.contains("# HELP mailcanary_last_round_timestamp_seconds"));
    assert!(text.contains("mailcanary_build_info{version="));
}

#[test]
fn unknown_results_are_other() {
    use crate::verdict::AuthResult;
    assert_eq!(AuthResult::parse("bestguesspass").label(), "other");
    assert_eq!(AuthResult::Pass.label(), "pass");
    assert!(AuthResult::LABELS.contains(&AuthResult::parse("PermError").label()));
}

pub(super) fn config(routes: &[&str], seeds: &[&str]) -> Config {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let mut text = "[probe]\ntoken_key_file = \"token.key\"\ninstance = \"t\"\n".to_string();
    for r in routes {
        text += &format!("[routes.{r}]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n");
    }
    for s in seeds {
        text += &format!(
            "[seeds.{s}]\naddress = \"{s}@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n"
        );
    }
    crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn series_follow_the_config_across_a_reload() {
    let m = Metrics::new();
    m.preset(&config(&["good", "spam"], &["s1", "s2"]));
    let text = m.render();
    assert!(text.contains("mailcanary_foreign_probes_total{seed=\"s2\"} 0"));
    assert!(text.contains(
        "# HELP mailcanary_foreign_probes_total Valid probe messages of another instance"
    ));
    assert!(text.contains("mailcanary_probes_sent_total{route=\"spam\",seed=\"s2\"} 0"));
    m.foreign_probe("s1", "INBOX", "site-b");
    m.set_diagnosis("spam", "s1", &["content_spam"], &["content_spam"]);
    m.set_last_placement("spam", "s1", Placement::Spam);
    // The reload drops route `spam` and seed `s2`.
    m.preset(&config(&["good"], &["s1"]));
    let text = m.render();
    for gone in ["route=\"spam\"", "seed=\"s2\""] {
        assert!(!text.contains(gone), "{gone} still exported:\n{text}");
    }
    assert!(text.contains("mailcanary_foreign_probes_total{seed=\"s1\"} 1"));
    assert!(text.contains("mailcanary_probes_sent_total{route=\"good\",seed=\"s1\"} 0"));
    // A probe of the removed route, still watched, is logged but brings no series back.
    m.set_last_placement("spam", "s1", Placement::Missing);
    m.probe_expired("spam", "s1", Placement::Missing, true);
    m.foreign_probe("s2", "INBOX", "site-b");
    let text = m.render();
    assert!(
        !text.contains("route=\"spam\"") && !text.contains("seed=\"s2\""),
        "{text}"
    );
}

#[test]
fn reload_gauges_are_exported_as_prometheus_exports_its_own() {
    let m = Metrics::new();
    m.config_loaded(true, 1_700_000_000.0);
    m.config_loaded(false, 1_700_000_100.0);
    let text = m.render();
    assert!(text.contains("# HELP mailcanary_config_last_reload_successful Whether the last configuration reload attempt was successful.\n# TYPE mailcanary_config_last_reload_successful gauge\nmailcanary_config_last_reload_successful 0\n"), "{text}");
    assert!(text.contains("# HELP mailcanary_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n# TYPE mailcanary_config_last_reload_success_timestamp_seconds gauge\nmailcanary_config_last_reload_success_timestamp_seconds 1700000000\n"), "{text}");
}
