use super::*;

#[test]
fn a_queued_probe_is_polled_at_a_quarter_of_its_lag_behind_the_deliveries_at_most_queued_pause() {
    let poll = Duration::from_millis(250);
    let ms = Duration::from_millis;
    // Not behind, or only a little: the poll interval.
    assert_eq!(due_pause(poll, Duration::ZERO), poll);
    assert_eq!(due_pause(poll, ms(800)), poll);
    // Behind: a quarter of it.
    assert_eq!(due_pause(poll, ms(2_000)), ms(500));
    // Far behind: at most QUEUED_PAUSE.
    assert_eq!(due_pause(poll, Duration::from_secs(60)), QUEUED_PAUSE);
    // A seed polled slower than that anyway keeps its own interval.
    assert_eq!(
        due_pause(Duration::from_secs(2), Duration::from_secs(60)),
        Duration::from_secs(2)
    );
}
