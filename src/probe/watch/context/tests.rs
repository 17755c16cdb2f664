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
