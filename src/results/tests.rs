//! A result in words ([`super::words`]): what the status page and `once` say about a result.

use super::words::{FailureGroup, group_failures, in_words, render_text};
use super::{ProbeResult, Results, latest_of_each_pair};
use crate::diagnosis::Diagnosis;
use crate::outcome::Placement;
use crate::status::Status;
use crate::verdict::{AuthResult, SpamVerdict, Verdict};

fn result(route: &str, seed: &str, placement: Option<Placement>, status: Status) -> ProbeResult {
    ProbeResult {
        route: route.into(),
        seed: seed.into(),
        probe_id: "p".into(),
        state: match placement {
            Some(Placement::Missing) => crate::state::probes::ProbeState::Missing,
            Some(Placement::Unknown) => crate::state::probes::ProbeState::Unknown,
            Some(_) => crate::state::probes::ProbeState::Resolved,
            None => crate::state::probes::ProbeState::Sent,
        },
        placement,
        folder: placement.map(|p| {
            if p == Placement::Spam {
                "Junk"
            } else {
                "INBOX"
            }
            .into()
        }),
        tab: None,
        verdict: placement.map(|_| Verdict {
            spf: AuthResult::Pass,
            dkim: AuthResult::Pass,
            dmarc: AuthResult::Pass,
            ..Verdict::default()
        }),
        spam: None,
        smtp: None,
        delivery_seconds: Some(0.2),
        late: false,
        expired_as: None,
        status,
        diagnosis: vec![],
        error: None,
        error_reason: None,
        sent_at: Some(100.0),
        bounce: None,
        kind: crate::state::probes::ProbeKind::Scheduled,
        pair_state: None,
        path: None,
        seen_ip: None,
        direction: crate::config::Direction::Outbound,
    }
}

#[test]
fn causes_name_what_failed() {
    let mut r = result("dkim-fail", "seed9", Some(Placement::Spam), Status::Warning);
    if let Some(v) = r.verdict.as_mut() {
        v.dkim = AuthResult::Fail;
    }
    r.spam = Some(SpamVerdict {
        flagged: true,
        score: Some(16.5),
        threshold: Some(15.0),
        rules: vec!["R_DKIM_REJECT".into()],
        source: None,
    });
    r.diagnosis = vec![Diagnosis {
        cause: crate::diagnosis::Cause::DkimKeyMismatch,
        fix: "publish the signing key".into(),
    }];
    let c = in_words(&r, true);
    assert_eq!(c[0], "dkim_key_mismatch: publish the signing key");
    assert!(c.contains(&"filed as spam (Junk)".to_string()));
    assert!(c.contains(&"DKIM fail".to_string()));
    assert!(
        c.iter()
            .any(|s| s.contains("spam 16.5/15") && s.contains("R_DKIM_REJECT"))
    );
}

fn spf_failing(route: &str, seed: &str, sent_at: f64) -> ProbeResult {
    let mut r = result(route, seed, Some(Placement::Inbox), Status::Warning);
    if let Some(v) = r.verdict.as_mut() {
        v.spf = AuthResult::Fail;
    }
    r.sent_at = Some(sent_at);
    r
}

fn seeds_of<'a>(groups: &[FailureGroup<'a>]) -> Vec<(&'a str, Vec<&'a str>)> {
    groups
        .iter()
        .map(|g| (g.first.route.as_str(), g.seeds.clone()))
        .collect()
}

#[test]
fn agreeing_seeds_of_a_route_are_one_group() {
    let results = [
        spf_failing("spf-fail", "seed10", 120.0),
        spf_failing("spf-fail", "seed9", 100.0),
        spf_failing("spf-fail", "seed2", 110.0),
    ];
    let groups = group_failures(&results);
    assert_eq!(
        seeds_of(&groups),
        [("spf-fail", vec!["seed2", "seed9", "seed10"])]
    );
    assert_eq!(groups[0].causes, ["SPF fail"]);
    // The group is as recent as its latest probe.
    assert_eq!(groups[0].sent_at, Some(120.0));
}

#[test]
fn disagreeing_seeds_and_other_routes_are_groups_of_their_own() {
    let mut spam = spf_failing("spf-fail", "seed3", 100.0);
    spam.placement = Some(Placement::Spam);
    spam.folder = Some("Junk".into());
    let mut critical = spf_failing("spf-fail", "seed4", 100.0);
    critical.status = Status::Critical;
    let results = [
        spf_failing("spf-fail", "seed1", 100.0),
        spf_failing("spf-fail", "seed2", 100.0),
        spam,
        critical,
        spf_failing("other", "seed1", 100.0),
    ];
    let groups = group_failures(&results);
    // Worst first, then by route and seed.
    assert_eq!(
        seeds_of(&groups),
        [
            ("spf-fail", vec!["seed4"]),
            ("other", vec!["seed1"]),
            ("spf-fail", vec!["seed1", "seed2"]),
            ("spf-fail", vec!["seed3"]),
        ]
    );
    assert_eq!(groups[3].causes, ["filed as spam (Junk)", "SPF fail"]);
}

#[test]
fn passing_and_in_flight_results_are_not_failures() {
    let mut unsent = result("good", "seed2", None, Status::Unknown);
    unsent.error = Some("554 rejected".into());
    let results = [
        result("good", "seed1", Some(Placement::Inbox), Status::Ok),
        result("good", "seed3", None, Status::Unknown),
        unsent,
    ];
    let groups = group_failures(&results);
    assert_eq!(seeds_of(&groups), [("good", vec!["seed2"])]);
    assert_eq!(groups[0].causes, ["not sent", "554 rejected"]);
    assert!(group_failures(&[]).is_empty());
}

#[test]
fn once_prints_each_result_on_a_line_and_its_causes_under_it() {
    let ok = result("good", "seed1", Some(Placement::Inbox), Status::Ok);
    let failing = spf_failing("spf-fail", "seed1", 100.0);
    let text = render_text(&Results {
        status: Status::Warning,
        results: vec![ok, failing],
    });
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("OK       good/seed1"), "{text}");
    assert!(lines[1].starts_with("WARNING  spf-fail/seed1"), "{text}");
    assert!(lines[1].contains("spf=fail ✗"), "{text}");
    assert_eq!(lines[2], "         SPF fail");
    assert_eq!(lines[3], "status: WARNING");
}

#[test]
fn the_text_marks_a_confirmation_and_a_pair_that_is_not_ok() {
    let mut r = result("spam", "seed1", Some(Placement::Spam), Status::Warning);
    r.kind = crate::state::probes::ProbeKind::Confirmation;
    r.pair_state = Some(crate::standing::PairState::Confirmed);
    let text = render_text(&Results {
        status: Status::Warning,
        results: vec![r],
    });
    assert!(text.contains(" [confirmation] pair=confirmed\n"), "{text}");
    let ok = result("good", "seed1", Some(Placement::Inbox), Status::Ok);
    let text = render_text(&Results {
        status: Status::Ok,
        results: vec![ok],
    });
    assert!(!text.contains("pair="), "{text}");
}

#[test]
fn once_shows_one_record_per_pair_the_newest_with_an_outcome() {
    use crate::state::probes::{ProbeKind, ProbeRecord, ProbeState};
    let record = |id: &str, route: &str, created: f64, state: ProbeState| ProbeRecord {
        probe_id: id.into(),
        round_id: 1,
        route: route.into(),
        seed: "s".into(),
        message_id: String::new(),
        state,
        created_at: created,
        sent_at: None,
        smtp: None,
        placement: None,
        folder: None,
        judgement: None,
        delivery_seconds: None,
        late: false,
        error: None,
        error_reason: None,
        resolved_at: None,
        bounce: None,
        kind: ProbeKind::Scheduled,
        expired_as: None,
    };
    let records = vec![
        record("a1", "a", 1.0, ProbeState::Resolved),
        record("b1", "b", 1.0, ProbeState::Missing),
        record("a2", "a", 2.0, ProbeState::Resolved),
        // b's confirmation is still in flight: b shows its missing probe.
        record("b2", "b", 2.0, ProbeState::Sent),
    ];
    let ids: Vec<String> = latest_of_each_pair(&records)
        .into_iter()
        .map(|r| r.probe_id)
        .collect();
    assert_eq!(ids, ["a2", "b1"]);
}
