//! The control: the same harness against servers that behave (RFC 5321 sink, RFC 3501 empty
//! mailbox). It must pass today — it proves the failures elsewhere are mailcanary's, not the
//! harness's: configs are accepted, both servers are reached, the round ends in time, the peak
//! RSS is measured, and a probe the mailbox really does not hold is `missing`.

use crate::child::Running;
use crate::setup::{Expect, Setup, assert_once, route};
use crate::{HARD_LIMIT, ONCE_WITHIN, imap_server, smtp_server};

#[test]
fn control_well_behaved_servers_give_missing_in_time() {
    let setup = Setup::new();
    let sink = smtp_server::start(smtp_server::Mode::Sink);
    let imap = imap_server::start(imap_server::Mode::Empty, true);
    let config = setup.config(
        "timeout = \"2s\"",
        &route(sink.port, "none"),
        &setup.seed(imap.port, "tls", ""),
    );
    let config = config.to_str().expect("utf-8 path");
    let run =
        Running::spawn(&["once", "--config", config, "--json"], &[]).finish_within(HARD_LIMIT);
    assert!(sink.record.saw("DATA"), "{}", sink.record.transcript());
    assert!(imap.record.saw("SEARCH"), "{}", imap.record.transcript());
    assert!(run.peak_rss_kb > 0, "VmHWM was never read");
    assert_once(
        &run,
        ONCE_WITHIN,
        &Expect {
            exit: 2,
            state: "missing",
            placement: Some("missing"),
            reasons: &[],
        },
    );
    eprintln!(
        "control: {:.1} s, peak RSS {:.0} MB",
        run.elapsed.as_secs_f64(),
        run.peak_rss_mb()
    );
}
