//! Route side: SMTP servers that stall (RFC 5321 §4.5.3.2 gives clients per-reply timeouts; a
//! server dripping bytes defeats those, so the send needs a total deadline). A stalled send is
//! `send_failed` with reason `timeout` — never `missing`, since nothing was sent — and `once`
//! ends critical (exit 2) well within the bound. The seed is a well-behaved, empty mailbox, so
//! the route is the only thing wrong.

use std::time::Duration;

use crate::child::Running;
use crate::setup::{Expect, Setup, assert_once, route, route_with_timeout, short, single};
use crate::smtp_server::{self, Mode, SmtpServer};
use crate::{HARD_LIMIT, ONCE_WITHIN, imap_server};

const STALLED: Expect = Expect {
    exit: 2,
    state: "send_failed",
    placement: None,
    reasons: &["timeout"],
};

/// Runs `once --json` with the route table `route` and an empty, well-behaved seed.
fn once(route: &str, probe_timeout: &str) -> crate::child::Finished {
    let setup = Setup::new();
    let imap = imap_server::start(imap_server::Mode::Empty, true);
    let config = setup.config(
        &format!("timeout = \"{probe_timeout}\""),
        route,
        &setup.seed(imap.port, "tls", ""),
    );
    let config = config.to_str().expect("utf-8 path");
    Running::spawn(&["once", "--config", config, "--json"], &[]).finish_within(HARD_LIMIT)
}

/// A route served in `mode` with `tls`, 3 s SMTP timeout, 5 s probe timeout; `reached` checks
/// that the client got as far as the stall before the outcome is checked.
fn stalled_send(mode: Mode, tls: &str, reached: impl Fn(&SmtpServer)) {
    let smtp = smtp_server::start(mode);
    let run = once(&route(smtp.port, tls), "5s");
    reached(&smtp);
    assert_once(&run, ONCE_WITHIN, &STALLED);
}

fn contacted(smtp: &SmtpServer) {
    assert!(
        smtp.record.connections() >= 1,
        "the route was never contacted"
    );
}

#[test]
fn smtp_server_that_never_greets_is_a_send_timeout() {
    stalled_send(Mode::Silent, "none", contacted);
}

#[test]
fn smtp_greeting_dripped_one_byte_a_second_is_a_send_timeout() {
    stalled_send(Mode::DripGreeting, "none", contacted);
}

#[test]
fn smtp_server_stalling_after_data_is_a_send_timeout() {
    stalled_send(Mode::StallAfterData, "none", |smtp| {
        assert!(
            smtp.record.saw("DATA"),
            "the client never reached DATA, so the stall was not tested\n{}",
            smtp.record.transcript()
        )
    });
}

#[test]
fn implicit_tls_handshake_never_answered_is_a_send_timeout() {
    // Nobody answers the ClientHello: no certificate is needed to stall a TLS client.
    stalled_send(Mode::Silent, "tls", contacted);
}

#[test]
fn slow_but_successful_send_is_watched_for_the_probe_timeout_after_acceptance() {
    // The server takes 6 s to accept; the probe timeout (3 s) counts from acceptance (README:
    // "a probe not found within this time after sending"), so the probe is judged only after
    // ~9 s — and as missing, since this sink delivers nowhere — never expired while in flight.
    const ACCEPT_AFTER: Duration = Duration::from_secs(6);
    const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
    let smtp = smtp_server::start(Mode::SlowAccept(ACCEPT_AFTER));
    let run = once(&route_with_timeout(smtp.port, "none", "20s"), "3s");
    let report = assert_once(
        &run,
        ONCE_WITHIN,
        &Expect {
            exit: 2,
            state: "missing",
            placement: Some("missing"),
            reasons: &[],
        },
    );
    let result = single(&report, &run);
    assert!(
        result["sent_at"].is_number() && result["smtp"]["code"] == 250,
        "the accepted send is not recorded: {}",
        short(result)
    );
    assert!(
        run.elapsed >= ACCEPT_AFTER + PROBE_TIMEOUT,
        "`once` gave up after {:.1} s: the probe was not watched for {PROBE_TIMEOUT:?} after its \
         acceptance at {ACCEPT_AFTER:?}",
        run.elapsed.as_secs_f64()
    );
}
