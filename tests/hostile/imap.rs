//! Seed side: IMAP servers that fail the read in every way we could think of, while the route
//! is a well-behaved sink, so the send really succeeds. A probe whose mailbox could not be read
//! is `unknown` (exit 3, README "Commands") — never `missing`, which would claim we looked and
//! it was not there. Also: memory stays bounded, error text stays short, command lines stay
//! short, and secrets stay out of logs and results.

use serde_json::Value;

use crate::child::{Finished, Running};
use crate::imap_server::{self, ImapServer, Mode};
use crate::setup::{
    Expect, IMAP_PASSWORD, IMAP_USER, Setup, assert_once, json, route, short, single,
};
use crate::{HARD_LIMIT, ONCE_WITHIN, smtp_server};

/// Runs `once --json` with the seed served in `mode` and the route on a sink.
fn once(
    mode: Mode,
    seed_tls: &str,
    probe_extra: &str,
    seed_extra: &str,
    envs: &[(&str, &str)],
) -> (Finished, ImapServer) {
    let setup = Setup::new();
    let sink = smtp_server::start(smtp_server::Mode::Sink);
    let imap = imap_server::start(mode, seed_tls == "tls");
    let config = setup.config(
        probe_extra,
        &route(sink.port, "none"),
        &setup.seed(imap.port, seed_tls, seed_extra),
    );
    let config = config.to_str().expect("utf-8 path");
    let run =
        Running::spawn(&["once", "--config", config, "--json"], envs).finish_within(HARD_LIMIT);
    (run, imap)
}

fn unreadable(reasons: &'static [&'static str]) -> Expect {
    Expect {
        exit: 3,
        state: "unknown",
        placement: Some("unknown"),
        reasons,
    }
}

/// Fails unless the server saw `verb`: otherwise the scenario was never reached.
fn assert_reached(imap: &ImapServer, verb: &str) {
    assert!(
        imap.record.saw(verb),
        "the client never sent {verb}, so the scenario was not reached\n{}",
        imap.record.transcript()
    );
}

#[test]
fn imap_server_that_never_greets_is_unknown_within_the_probe_timeout() {
    // STARTTLS reads the greeting before any TLS, so this needs no certificate.
    let (run, imap) = once(Mode::NoGreeting, "starttls", "timeout = \"5s\"", "", &[]);
    assert!(
        imap.record.connections() >= 1,
        "the seed was never contacted"
    );
    assert_once(&run, ONCE_WITHIN, &unreadable(&["timeout"]));
}

#[test]
fn imap_idle_with_keepalives_forever_ends_at_the_probe_timeout() {
    // IDLE is used for waits of 5 s or more: a long poll interval and an 8 s probe timeout make
    // the watcher idle right after the baseline check.
    let (run, imap) = once(
        Mode::IdleStall,
        "tls",
        "timeout = \"8s\"",
        "poll_interval = \"30s\"",
        &[],
    );
    assert_reached(&imap, "IDLE");
    assert_once(&run, ONCE_WITHIN, &unreadable(&["timeout"]));
}

fn huge_literal(size: u64) {
    let (run, imap) = once(Mode::HugeLiteral(size), "tls", "timeout = \"5s\"", "", &[]);
    assert_reached(&imap, "FETCH");
    assert_once(&run, ONCE_WITHIN, &unreadable(&["protocol"]));
}

#[test]
fn imap_literal_of_512_mib_is_refused_without_buffering_it() {
    huge_literal(536_870_912);
}

#[test]
fn imap_literal_of_256_mib_is_refused_without_buffering_it() {
    // Just under async-imap's own 512 MiB buffer cap, which the 512 MiB case runs into.
    huge_literal(268_435_456);
}

#[test]
fn imap_megabytes_of_garbage_leave_a_short_error() {
    let (run, imap) = once(Mode::Garbage, "tls", "timeout = \"5s\"", "", &[]);
    assert_reached(&imap, "SELECT");
    run.exit_code();
    let report = json(&run);
    let mut long = Vec::new();
    long_strings(&report, "$", &mut long);
    assert!(
        long.is_empty() && run.stdout.len() < 64 * 1024,
        "`once --json` is {} bytes (limit 64 KB); strings over 1024 chars: {long:?}\n{}",
        run.stdout.len(),
        short(single(&report, &run))
    );
    assert_once(&run, ONCE_WITHIN, &unreadable(&["protocol"]));
}

/// Every string (key or value) longer than 1024 chars, by path and length.
fn long_strings(v: &Value, path: &str, out: &mut Vec<(String, usize)>) {
    match v {
        Value::String(s) if s.chars().count() > 1024 => out.push((path.to_string(), s.len())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                long_strings(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                if k.chars().count() > 1024 {
                    out.push((format!("{path} key"), k.len()));
                }
                long_strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn imap_search_with_100000_uids_keeps_command_lines_short() {
    let (run, imap) = once(Mode::ManyUids, "tls", "timeout = \"3s\"", "", &[]);
    assert_reached(&imap, "FETCH");
    run.exit_code();
    assert!(
        imap.record.longest_line() <= 8 * 1024,
        "the client sent a {} byte command line (limit 8 KB; UID sets can be ranges like 1:100000)\n{}",
        imap.record.longest_line(),
        imap.record.transcript()
    );
    // Every command was answered, so the mailbox was read: a probe not in it is missing.
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
}

#[test]
fn imap_connection_closed_mid_fetch_every_time_is_unknown() {
    let (run, imap) = once(Mode::CloseMidFetch, "tls", "timeout = \"5s\"", "", &[]);
    assert_reached(&imap, "FETCH");
    assert_once(&run, ONCE_WITHIN, &unreadable(&["network"]));
}

#[test]
fn imap_search_refused_is_unknown_not_missing() {
    // async-imap reads SEARCH answers until the tagged line without looking at its status:
    // the guard's record of the tagged NO is what keeps this from reading as "not there".
    let (run, imap) = once(Mode::RefuseSearch, "tls", "timeout = \"3s\"", "", &[]);
    assert_reached(&imap, "SEARCH");
    assert_once(&run, ONCE_WITHIN, &unreadable(&["protocol"]));
}

#[test]
fn imap_login_refused_leaks_neither_password_nor_user() {
    let (run, imap) = once(
        Mode::RejectLogin,
        "tls",
        "timeout = \"3s\"",
        "",
        &[("RUST_LOG", "trace")],
    );
    assert_reached(&imap, "LOGIN");
    run.exit_code();
    let mut leaks = Vec::new();
    if run.stderr.contains(IMAP_PASSWORD) {
        leaks.push(format!(
            "the password is in the RUST_LOG=trace log ({} times), e.g. …{}…",
            run.stderr.matches(IMAP_PASSWORD).count(),
            around(&run.stderr, IMAP_PASSWORD)
        ));
    }
    for secret in [IMAP_USER, IMAP_PASSWORD] {
        if run.stdout.contains(secret) {
            leaks.push(format!(
                "`once --json` contains {secret:?}: …{}…",
                around(&run.stdout, secret)
            ));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert_once(&run, ONCE_WITHIN, &unreadable(&["auth"]));
}

/// Up to 120 bytes either side of the first `needle` in `hay`.
fn around(hay: &str, needle: &str) -> String {
    let Some(at) = hay.find(needle) else {
        return String::new();
    };
    let mut start = at.saturating_sub(120);
    while !hay.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + needle.len() + 120).min(hay.len());
    while !hay.is_char_boundary(end) {
        end += 1;
    }
    hay[start..end].to_string()
}
