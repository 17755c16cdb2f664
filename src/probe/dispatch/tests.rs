use super::*;
use crate::probe::judge::judge;
use crate::probe::watch::context::{Entry, SendState, Watch};
use crate::state::probes::ProbeStore;

fn config(per_hour: u32) -> Arc<Config> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let text = format!(
        "[probe]\ntoken_key_file = \"token.key\"\ninstance = \"t\"\n\
         [routes.main]\nhost = \"127.0.0.1\"\nport = 9\nfrom = \"p@example.com\"\ntls = \"none\"\n\
         [seeds.s1]\naddress = \"s1@example.com\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n\
         confirmations_per_hour = {per_hour}\n"
    );
    match crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml")) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{e}"),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<ProbeStore>,
    metrics: Arc<crate::metrics::Metrics>,
    launcher: Arc<Launcher>,
    dispatcher: Dispatcher,
}

fn fixture(per_hour: u32) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(ProbeStore::open(&dir.path().join("s.sqlite"), "t").expect("store"));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let config = config(per_hour);
    metrics.preset(&config);
    let setup = Arc::new(RwLock::new(Arc::new(
        Setup::build(config, None).expect("setup"),
    )));
    let (events, _received) = tokio::sync::mpsc::unbounded_channel();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let launcher = Arc::new(Launcher::new(
        store.clone(),
        metrics.clone(),
        events,
        shutdown,
    ));
    let dispatcher = Dispatcher::new(launcher.clone(), setup);
    Fixture {
        _dir: dir,
        store,
        metrics,
        launcher,
        dispatcher,
    }
}

const SPAM: &[u8] = b"Authentication-Results: mx.seed.test; spf=pass smtp.mailfrom=sender.test; dkim=pass header.d=sender.test; dmarc=pass header.from=sender.test\r\nX-Spam: Yes\r\nSubject: x\r\n\r\n";

/// Records a probe of main → s1 created at `created` and resolved in `placement`.
fn found(f: &Fixture, id: &str, created: f64, placement: Placement) -> ProbeRecord {
    f.store
        .insert_sending(
            1,
            id,
            "main",
            "s1",
            &format!("<{id}@x>"),
            created,
            ProbeKind::Scheduled,
        )
        .expect("insert");
    let j = judge(SPAM, &["mx.seed.test".to_string()], &Default::default());
    f.store
        .resolve(id, placement, "Junk", &j, Some(1.0))
        .expect("resolve");
    let record = f.store.get(id).expect("get").expect("stored");
    f.launcher.board.register(Entry {
        record: record.clone(),
        send: SendState::Accepted {
            at: created,
            instant: std::time::Instant::now(),
        },
        watch: Watch::Done,
        overdue_noted: false,
        settled: false,
        watched_until: created + 1e6,
    });
    record
}

fn gauge(f: &Fixture, state: &str) -> i64 {
    f.metrics
        .standing
        .pair_state
        .with_label_values(&["main", "s1", state])
        .get()
}

#[test]
fn outcomes_are_told_from_the_stored_record() {
    let f = fixture(0);
    let spam = found(&f, "a", 10.0, Placement::Spam);
    assert_eq!(outcome_of(&spam), Outcome::Bad(Problem::Spam));
    let inbox = found(&f, "b", 11.0, Placement::Inbox);
    assert_eq!(outcome_of(&inbox), Outcome::Good);
    let mut unknown = inbox.clone();
    unknown.state = ProbeState::Unknown;
    assert_eq!(outcome_of(&unknown), Outcome::Neutral);
    let mut failed = inbox.clone();
    failed.state = ProbeState::SendFailed;
    assert_eq!(outcome_of(&failed), Outcome::Bad(Problem::NotSent));
    let mut fail_auth = inbox;
    if let Some(j) = fail_auth.judgement.as_mut() {
        j.verdict.dkim = crate::verdict::AuthResult::parse("fail");
    }
    assert_eq!(outcome_of(&fail_auth), Outcome::Bad(Problem::Auth));
}

#[test]
fn two_bad_outcomes_confirm_the_pair_and_its_standing_is_kept() {
    let mut f = fixture(0);
    let first = found(&f, "a", 10.0, Placement::Spam);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(first),
        last: true,
    });
    assert_eq!(gauge(&f, "suspect"), 1);
    assert_eq!(gauge(&f, "ok"), 0);
    assert!(f.launcher.board.entry("a").is_none(), "settled and gone");
    // The budget is 0: no confirmation, counted; the next probe confirms.
    assert_eq!(
        f.metrics
            .standing
            .confirmations_skipped
            .with_label_values(&["s1", "budget"])
            .get(),
        1
    );
    let second = found(&f, "b", 20.0, Placement::Spam);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(second),
        last: true,
    });
    assert_eq!(gauge(&f, "confirmed"), 1);
    let stored = f.store.pairs().expect("pairs");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].2.state, PairState::Confirmed);
    assert_eq!(stored[0].2.problem, Some(Problem::Spam));

    // A restart reads the standing back and exports it before any probe.
    let again = Dispatcher::new(f.launcher.clone(), f.dispatcher.setup.clone());
    assert_eq!(
        again
            .pairs
            .get(&("main".to_string(), "s1".to_string()))
            .map(|p| p.state),
        Some(PairState::Confirmed)
    );
    let good = found(&f, "c", 30.0, Placement::Inbox);
    let mut again = again;
    again.handle(Event::Outcome {
        record: Box::new(good),
        last: true,
    });
    assert_eq!(gauge(&f, "recovered"), 1);
}

#[test]
fn an_old_outcome_arriving_late_changes_nothing() {
    let mut f = fixture(0);
    let newer = found(&f, "new", 20.0, Placement::Inbox);
    let older = found(&f, "old", 10.0, Placement::Spam);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(newer),
        last: true,
    });
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(older),
        last: true,
    });
    assert_eq!(gauge(&f, "ok"), 1);
}

#[tokio::test]
async fn a_suspect_pair_gets_one_confirmation_within_the_budget() {
    let mut f = fixture(1);
    let first = found(&f, "a", 10.0, Placement::Spam);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(first),
        last: true,
    });
    assert_eq!(
        f.metrics
            .standing
            .confirmation_probes
            .with_label_values(&["main", "s1"])
            .get(),
        1
    );
    let confirmations = f
        .store
        .confirmations_since("s1", 0.0)
        .expect("confirmations");
    assert_eq!(confirmations.len(), 1, "recorded as a confirmation");
    // Its round waits for it: it is on the board, in flight, unsettled.
    let pair = f
        .dispatcher
        .pairs
        .get(&("main".to_string(), "s1".to_string()))
        .cloned()
        .expect("pair");
    let c = pair.confirmation.expect("in flight");
    let entry = f.launcher.board.entry(&c.probe_id).expect("on the board");
    assert_eq!(entry.record.kind, ProbeKind::Confirmation);
    assert!(!entry.settled);
    assert!(!f.launcher.board.round_settled(1));
    // A second bad pair within the hour: the budget of 1 is spent.
    f.dispatcher.pairs.clear();
    let other = found(&f, "b", 30.0, Placement::Spam);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(other),
        last: true,
    });
    assert_eq!(
        f.metrics
            .standing
            .confirmations_skipped
            .with_label_values(&["s1", "budget"])
            .get(),
        1
    );
}

/// Whether the pair main → s1 has `cause` in `mailcanary_diagnosis`.
fn diagnosed(f: &Fixture, cause: &str) -> bool {
    f.metrics.render().lines().any(|l| {
        l.starts_with("mailcanary_diagnosis{") && l.contains(&format!("cause=\"{cause}\""))
    })
}

#[test]
fn a_late_bounce_neither_counts_twice_nor_rewrites_a_newer_result() {
    let mut f = fixture(0);
    let bounce = crate::outcome::Bounce {
        status: Some("5.7.25".into()),
        action: Some("failed".into()),
        remote_mta: Some("mx.seed.test".into()),
        diagnostic_code: Some("550 5.7.25 no PTR record".into()),
        class: "ptr".into(),
        method: None,
    };
    let timed_out = |id: &str, created: f64, placement: Placement| {
        f.store
            .insert_sending(
                1,
                id,
                "main",
                "s1",
                &format!("<{id}@x>"),
                created,
                ProbeKind::Scheduled,
            )
            .expect("insert");
        f.store.expire(id, placement, None, None).expect("expire");
        f.store.get(id).expect("get").expect("stored")
    };
    // p1 times out missing: the pair is suspect (the budget of 0 sends no confirmation).
    let p1 = timed_out("p1", 10.0, Placement::Missing);
    timed_out("p3", 5.0, Placement::Unknown);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(p1),
        last: true,
    });
    assert_eq!(gauge(&f, "suspect"), 1);
    // Its bounce comes after the timeout: the same probe, refused rather than lost.
    assert!(f.store.reject("p1", &bounce).expect("reject"));
    let late = f.store.get("p1").expect("get").expect("stored");
    assert!(late.late);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(late),
        last: true,
    });
    assert_eq!(gauge(&f, "suspect"), 1, "one probe confirms nothing");
    assert_eq!(gauge(&f, "confirmed"), 0);
    let stored = f.store.pairs().expect("pairs");
    assert_eq!(stored[0].2.problem, Some(Problem::Rejected));
    assert!(diagnosed(&f, "ptr_missing"), "the pair's latest result");
    // A newer probe arrives: ok. Then an older probe's bounce comes late: history.
    let p2 = found(&f, "p2", 20.0, Placement::Inbox);
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(p2),
        last: true,
    });
    assert_eq!(gauge(&f, "ok"), 1);
    assert!(!diagnosed(&f, "ptr_missing"));
    assert!(f.store.reject("p3", &bounce).expect("reject"));
    let old = f.store.get("p3").expect("get").expect("stored");
    f.dispatcher.handle(Event::Outcome {
        record: Box::new(old),
        last: true,
    });
    assert_eq!(gauge(&f, "ok"), 1);
    assert!(
        !diagnosed(&f, "ptr_missing"),
        "an older probe's late news leaves the newer result's diagnosis"
    );
}

/// The sender requirements are scored from every pair's latest result: once per
/// RESCORE_AFTER for the routes that had a probe found, not once per probe.
#[test]
fn requirements_are_scored_once_for_a_burst_of_found_probes() {
    let mut f = fixture(30);
    let series = |f: &Fixture| -> usize {
        use prometheus::core::Collector;
        f.metrics
            .requirements
            .met
            .collect()
            .iter()
            .map(|m| m.get_metric().len())
            .sum()
    };
    let before = tokio::time::Instant::now();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let r = found(&f, id, 10.0 + i as f64, Placement::Inbox);
        f.dispatcher.handle(Event::Outcome {
            record: Box::new(r),
            last: true,
        });
    }
    assert_eq!(series(&f), 0, "nothing scored per probe");
    let due = f.dispatcher.rescore_at.expect("a scoring is due");
    assert!(
        due >= before + RESCORE_AFTER,
        "the first found probe set it"
    );
    assert_eq!(
        f.dispatcher.rescore.iter().collect::<Vec<_>>(),
        ["main"],
        "each route once"
    );
    f.dispatcher.export_requirements();
    assert!(series(&f) > 0, "scored");
    assert!(f.dispatcher.rescore.is_empty() && f.dispatcher.rescore_at.is_none());
}
