use super::*;
use crate::state::probes::{ProbeKind, ProbeState};

fn record(id: &str, round_id: i64, route: &str, seed: &str) -> ProbeRecord {
    ProbeRecord {
        probe_id: id.into(),
        round_id,
        route: route.into(),
        seed: seed.into(),
        message_id: format!("<{id}@test>"),
        state: ProbeState::Sending,
        created_at: 100.0,
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
    }
}

fn entry(id: &str, round_id: i64, route: &str, seed: &str) -> Entry {
    Entry {
        record: record(id, round_id, route, seed),
        send: SendState::Pending,
        watch: Watch::InFlight,
        overdue_noted: false,
        settled: false,
        watched_until: 1000.0,
    }
}

#[test]
fn a_round_is_settled_when_every_probe_of_it_is() {
    let board = Board::default();
    board.register(entry("a", 1, "r", "s1"));
    board.register(entry("b", 1, "r", "s2"));
    board.register(entry("c", 2, "r", "s1"));
    assert!(!board.round_settled(1));
    board.accepted("a", 101.0);
    assert!(matches!(board.send_state("a"), SendState::Accepted { at, .. } if at == 101.0));
    board.done("a", false);
    board.settle("a");
    assert!(
        board.entry("a").is_none(),
        "a done probe leaves the board once settled"
    );
    assert!(!board.round_settled(1));
    board.expired(record("b", 1, "r", "s2"));
    board.settle("b");
    assert!(board.round_settled(1));
    assert_eq!(
        board.watched_at("s2").len(),
        1,
        "an expired probe is still looked for"
    );
    assert!(!board.round_settled(2));
    assert!(board.round_settled(3), "a round with nothing on the board");
}

#[test]
fn only_probes_in_flight_hold_a_pair_and_a_watcher() {
    let board = Board::default();
    board.register(entry("a", 1, "r", "s1"));
    assert!(!board.in_flight_of("r", "s1").is_empty());
    assert!(board.in_flight_of("r", "s2").is_empty());
    let w = Watcher::Seed("s1".into());
    let first = board.claim(&w).expect("claimed");
    assert!(board.claim(&w).is_none(), "one watcher per mailbox");
    board.set_ready(&w);
    assert!(board.is_ready(&w));
    assert!(!board.release_if_idle(&w, |e| e.record.seed == "s1"));
    assert_eq!(board.in_flight_of("r", "s1"), vec!["a".to_string()]);
    board.expired(record("a", 1, "r", "s1"));
    assert!(board.in_flight_of("r", "s1").is_empty());
    assert!(board.none_in_flight(&["a".to_string(), "gone".to_string()]));
    assert!(board.release_if_idle(&w, |e| e.record.seed == "s1"));
    assert!(!board.is_ready(&w));
    let second = board
        .claim(&w)
        .expect("released: the next probe starts a new watcher");
    board.release(&w, first);
    assert!(
        board.holds(&w, second),
        "an old watcher never releases a newer one's claim"
    );
    board.release(&w, second);
    assert!(!board.holds(&w, second));
}

#[test]
fn overdue_is_reported_once_and_only_in_flight() {
    let board = Board::default();
    board.register(entry("a", 1, "r", "s1"));
    assert!(board.note_overdue("a"));
    assert!(!board.note_overdue("a"));
    board.register(entry("b", 1, "r", "s1"));
    board.expired(record("b", 1, "r", "s1"));
    assert!(!board.note_overdue("b"));
    assert!(!board.note_overdue("nope"));
}

#[test]
fn probes_leave_the_board_when_their_late_window_ends() {
    let board = Board::default();
    board.register(entry("a", 1, "r", "s1"));
    board.forget_older(999.0);
    assert!(board.entry("a").is_some());
    board.forget_older(1000.0);
    assert!(board.entry("a").is_none());
}

#[test]
fn kinds_round_trip() {
    for k in [ProbeKind::Scheduled, ProbeKind::Confirmation] {
        assert_eq!(ProbeKind::parse(k.as_str()), k);
    }
}

#[test]
fn a_watcher_that_released_its_claim_is_winding_down_until_its_task_ends() {
    let board = Board::default();
    let w = Watcher::Seed("s1".into());
    let generation = board.claim(&w).expect("claimed");
    board.register(entry("a", 1, "r", "s1"));
    assert!(!board.winding_down(), "busy with a probe in flight");
    board.expired(record("a", 1, "r", "s1"));
    assert!(board.winding_down(), "nothing in flight: about to end");
    assert!(board.release_if_idle(&w, |e| e.record.seed == "s1"));
    assert!(board.winding_down(), "cleaning up");
    board.release(&w, generation);
    assert!(!board.winding_down());
}

#[test]
fn a_probe_accepted_after_the_routes_deliveries_is_behind_by_the_difference() {
    let board = Board::default();
    for id in ["a", "b", "c", "other-route"] {
        let route = if id == "other-route" { "r2" } else { "r" };
        board.register(entry(id, 1, route, &format!("s-{id}")));
        board.accepted(id, 101.0);
        std::thread::sleep(Duration::from_millis(30));
    }
    let accepted = |id: &str| match board.send_state(id) {
        SendState::Accepted { instant, .. } => instant,
        other => panic!("{other:?}"),
    };
    let (a, b, c) = (accepted("a"), accepted("b"), accepted("c"));
    let now = Instant::now();
    // Nothing found yet: no estimate, nobody waits.
    assert_eq!(board.behind("r", "imap:993", c, now), Duration::ZERO);

    board.found("a", "imap:993");
    let now = Instant::now();
    assert_eq!(board.behind("r", "imap:993", c, now), c - a);
    assert_eq!(board.behind("r", "imap:993", a, now), Duration::ZERO);
    // Another receiver, another route: their own deliveries, none known.
    assert_eq!(board.behind("r", "other:993", c, now), Duration::ZERO);
    assert_eq!(board.behind("r2", "imap:993", c, now), Duration::ZERO);

    // The frontier only moves forward: b found, then a late copy of a changes nothing.
    board.found("b", "imap:993");
    board.found("a", "imap:993");
    assert_eq!(board.behind("r", "imap:993", c, Instant::now()), c - b);

    // A route whose mail stopped arriving gives no estimate.
    let later = Instant::now() + FRONTIER_FRESH;
    assert_eq!(board.behind("r", "imap:993", c, later), Duration::ZERO);
}

#[test]
fn a_seeds_probes_are_read_from_its_own_index_which_follows_the_board() {
    let board = Board::default();
    board.register(entry("a", 1, "r", "s1"));
    board.register(entry("b", 1, "r2", "s1"));
    board.register(entry("c", 1, "r", "s2"));
    let ids = |seed: &str| {
        let mut v: Vec<String> = board
            .watched_at(seed)
            .into_iter()
            .map(|e| e.record.probe_id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids("s1"), ["a", "b"]);
    assert_eq!(ids("s2"), ["c"]);
    board.done("a", false);
    assert_eq!(ids("s1"), ["b"], "a done probe is not looked for");
    board.settle("a");
    assert!(board.entry("a").is_none());
    let mut late = entry("d", 1, "r", "s2");
    late.watched_until = 10.0;
    board.register(late);
    assert_eq!(ids("s2"), ["c", "d"]);
    board.forget_older(100.0);
    assert_eq!(ids("s2"), ["c"], "its late window ended");
    board.forget_older(2000.0);
    assert!(ids("s1").is_empty() && ids("s2").is_empty());
    assert!(board.lock().by_seed.is_empty(), "nothing left in the index");
}

#[tokio::test]
async fn a_send_waits_for_its_own_watchers_first_look_only() {
    let board = Board::default();
    let w = Watcher::Seed("s1".into());
    let signal = board.ready_signal(&w);
    let first_look = signal.notified();
    tokio::pin!(first_look);
    first_look.as_mut().enable();
    // Another watcher's first look, a probe registered: not this one's signal.
    board.set_ready(&Watcher::Seed("s2".into()));
    board.register(entry("a", 1, "r", "s1"));
    assert!(
        tokio::time::timeout(Duration::from_millis(20), first_look.as_mut())
            .await
            .is_err()
    );
    board.set_ready(&w);
    tokio::time::timeout(Duration::from_secs(1), first_look)
        .await
        .expect("woken by its own watcher's first look");
    assert!(board.is_ready(&w));
}
