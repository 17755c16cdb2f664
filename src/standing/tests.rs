use super::*;

fn bad(p: Problem) -> Outcome {
    Outcome::Bad(p)
}

#[test]
fn one_bad_outcome_is_suspect_and_asks_for_a_confirmation() {
    let mut pair = Standing::default();
    assert_eq!(
        pair.on_outcome("p1", 10.0, bad(Problem::Spam), 11.0),
        Ask::Confirm
    );
    assert_eq!(pair.state, PairState::Suspect);
    assert_eq!(pair.problem, Some(Problem::Spam));
    assert_eq!(pair.since, 11.0);
}

#[test]
fn a_confirmation_that_agrees_confirms_and_one_that_does_not_clears_without_a_page() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Spam), 11.0);
    pair.confirmation_sent("c1", 11.0);
    assert_eq!(
        pair.on_outcome("c1", 11.0, bad(Problem::Spam), 12.0),
        Ask::Nothing
    );
    assert_eq!(pair.state, PairState::Confirmed);
    assert_eq!(pair.confirmation, None);

    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Spam), 11.0);
    pair.confirmation_sent("c1", 11.0);
    pair.on_outcome("c1", 11.0, Outcome::Good, 12.0);
    assert_eq!(pair.state, PairState::Ok);
    assert_eq!(pair.problem, None);
}

#[test]
fn a_confirmed_pair_recovers_then_is_ok() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 1.0, bad(Problem::Rejected), 1.0);
    pair.on_outcome("p2", 2.0, bad(Problem::Rejected), 2.0);
    assert_eq!(pair.state, PairState::Confirmed);
    pair.on_outcome("p3", 3.0, Outcome::Good, 3.0);
    assert_eq!(pair.state, PairState::Recovered);
    pair.on_outcome("p4", 4.0, Outcome::Good, 4.0);
    assert_eq!(pair.state, PairState::Ok);
}

#[test]
fn a_bad_outcome_after_recovery_is_suspect_again_not_confirmed() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 1.0, bad(Problem::Spam), 1.0);
    pair.on_outcome("p2", 2.0, bad(Problem::Spam), 2.0);
    pair.on_outcome("p3", 3.0, Outcome::Good, 3.0);
    assert_eq!(
        pair.on_outcome("p4", 4.0, bad(Problem::Spam), 4.0),
        Ask::Confirm
    );
    assert_eq!(pair.state, PairState::Suspect);
}

#[test]
fn different_problems_in_a_row_still_confirm_and_the_latest_is_named() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 1.0, bad(Problem::Spam), 1.0);
    pair.on_outcome("p2", 2.0, bad(Problem::Auth), 2.0);
    assert_eq!(pair.state, PairState::Confirmed);
    assert_eq!(pair.problem, Some(Problem::Auth));
}

#[test]
fn unknown_outcomes_change_nothing() {
    let mut pair = Standing::default();
    assert_eq!(
        pair.on_outcome("p1", 1.0, Outcome::Neutral, 1.0),
        Ask::Nothing
    );
    assert_eq!(pair, Standing::default());
    pair.on_outcome("p2", 2.0, bad(Problem::Spam), 2.0);
    pair.confirmation_sent("c1", 2.0);
    pair.on_outcome("c1", 2.0, Outcome::Neutral, 3.0);
    assert_eq!(pair.state, PairState::Suspect);
    assert!(
        pair.confirmation.is_some(),
        "an unreadable mailbox is no answer"
    );
}

#[test]
fn an_older_probes_outcome_is_history() {
    // A lost probe: the confirmation sent when it was overdue arrived; its `missing` later is
    // news about the past.
    let mut pair = Standing::default();
    assert_eq!(pair.on_overdue("p1", 10.0, 130.0), Ask::Confirm);
    pair.confirmation_sent("c1", 130.0);
    pair.on_outcome("c1", 130.0, Outcome::Good, 131.0);
    assert_eq!(
        pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0),
        Ask::Nothing
    );
    assert_eq!(pair.state, PairState::Ok);
}

#[test]
fn a_missing_probe_whose_overdue_confirmation_is_not_there_either_is_confirmed_at_once() {
    let mut pair = Standing::default();
    assert_eq!(pair.on_overdue("p1", 10.0, 130.0), Ask::Confirm);
    pair.confirmation_sent("c1", 130.0);
    assert_eq!(pair.on_overdue("c1", 130.0, 250.0), Ask::Nothing);
    assert_eq!(pair.state, PairState::Ok, "overdue alone is not an outcome");
    assert_eq!(
        pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0),
        Ask::Nothing
    );
    assert_eq!(pair.state, PairState::Confirmed);
    assert_eq!(pair.problem, Some(Problem::Missing));
}

#[test]
fn a_confirmation_becoming_overdue_after_the_first_went_missing_confirms() {
    let mut pair = Standing::default();
    assert_eq!(
        pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0),
        Ask::Confirm
    );
    pair.confirmation_sent("c1", 610.0);
    assert_eq!(pair.state, PairState::Suspect);
    pair.on_overdue("c1", 610.0, 730.0);
    assert_eq!(pair.state, PairState::Confirmed);
}

#[test]
fn an_overdue_confirmation_does_not_confirm_another_problem() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Spam), 11.0);
    pair.confirmation_sent("c1", 11.0);
    pair.on_overdue("c1", 11.0, 131.0);
    assert_eq!(
        pair.state,
        PairState::Suspect,
        "the confirmation's own outcome decides"
    );
}

#[test]
fn at_most_one_confirmation_in_flight_per_pair() {
    let mut pair = Standing::default();
    assert_eq!(pair.on_overdue("p1", 10.0, 130.0), Ask::Confirm);
    pair.confirmation_sent("c1", 130.0);
    assert_eq!(pair.on_overdue("p2", 70.0, 190.0), Ask::Nothing);
    assert_eq!(
        pair.on_outcome("p2", 70.0, bad(Problem::Spam), 191.0),
        Ask::AlreadyConfirming
    );
    assert_eq!(pair.state, PairState::Suspect);
}

#[test]
fn a_deferred_probe_delivered_later_counts_again() {
    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Deferred), 20.0);
    assert_eq!(pair.state, PairState::Suspect);
    pair.on_outcome("p1", 10.0, Outcome::Good, 80.0);
    assert_eq!(pair.state, PairState::Ok);
}

#[test]
fn a_late_bounce_of_the_missing_probe_that_moved_the_pair_is_not_a_second_outcome() {
    let mut pair = Standing::default();
    assert_eq!(
        pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0),
        Ask::Confirm
    );
    pair.confirmation_sent("c1", 610.0);
    // The bounce of p1 comes after its timeout: the same probe, refused rather than lost.
    assert_eq!(
        pair.on_late_outcome("p1", 10.0, bad(Problem::Rejected), 700.0),
        Ask::Nothing
    );
    assert_eq!(pair.state, PairState::Suspect, "one probe does not confirm");
    assert_eq!(pair.since, 610.0);
    assert_eq!(
        pair.problem,
        Some(Problem::Rejected),
        "named more precisely"
    );
    assert!(
        pair.confirmation.is_some(),
        "its confirmation still decides"
    );
    // ... which it does.
    assert_eq!(
        pair.on_outcome("c1", 610.0, bad(Problem::Rejected), 620.0),
        Ask::Nothing
    );
    assert_eq!(pair.state, PairState::Confirmed);
}

#[test]
fn a_late_outcome_of_an_unknown_probe_counts_and_of_an_older_probe_is_history() {
    // `unknown` said nothing: the bounce that comes late is the pair's news.
    let mut pair = Standing::default();
    assert_eq!(
        pair.on_outcome("p1", 10.0, Outcome::Neutral, 610.0),
        Ask::Nothing
    );
    assert_eq!(
        pair.on_late_outcome("p1", 10.0, bad(Problem::Rejected), 700.0),
        Ask::Confirm
    );
    assert_eq!(pair.state, PairState::Suspect);
    // A newer probe moved the pair since: an older probe's late bounce changes nothing.
    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0);
    pair.on_outcome("p2", 20.0, Outcome::Good, 620.0);
    assert_eq!(
        pair.on_late_outcome("p1", 10.0, bad(Problem::Rejected), 700.0),
        Ask::Nothing
    );
    assert_eq!((pair.state, pair.problem), (PairState::Ok, None));
    // A missing probe found late after all still counts as good (the mail did arrive).
    let mut pair = Standing::default();
    pair.on_outcome("p1", 10.0, bad(Problem::Missing), 610.0);
    pair.on_late_outcome("p1", 10.0, Outcome::Good, 700.0);
    assert_eq!(pair.state, PairState::Ok);
}

#[test]
fn the_budget_is_a_sliding_hour_and_survives_a_restart() {
    let mut b = Budget::new(2, [100.0]);
    assert!(b.take(200.0));
    assert!(!b.take(300.0), "two in the last hour");
    assert_eq!(b.used(300.0), 2);
    assert!(b.take(3700.5), "the first one left the hour");
    let mut none = Budget::new(0, []);
    assert!(!none.take(1.0));
}

#[test]
fn words_round_trip() {
    for s in PairState::ALL {
        assert_eq!(PairState::parse(s.as_str()), Some(s));
    }
    for p in Problem::ALL {
        assert_eq!(Problem::parse(p.as_str()), Some(p));
    }
}
