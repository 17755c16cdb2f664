//! OAuth2 logins against servers of ours: an IMAP server that offers only XOAUTH2 (the lab's
//! Dovecot offers OAUTHBEARER too, which is preferred, so XOAUTH2 is exercised here) and a
//! token endpoint that hands out a fixed access token. A token the IMAP server refuses gets
//! Google's error challenge: the client must answer it (empty response), end as `unknown` with
//! reason `auth`, forget the token and ask the endpoint again on the next login — and neither
//! token shows in the log, even at RUST_LOG=trace.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;

use crate::child::{Finished, Running};
use crate::imap_server::{self, GOOD_TOKEN, ImapServer, Mode};
use crate::setup::{Expect, IMAP_USER, Setup, assert_once, json, route, single};
use crate::{HARD_LIMIT, ONCE_WITHIN, smtp_server};

/// A token endpoint answering every request with `access_token`; counts the requests.
fn token_endpoint(access_token: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 8192];
            let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let _ = sock.read(&mut buf);
            let body = format!(r#"{{"access_token":"{access_token}","expires_in":3600}}"#);
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

/// `once --json` with the seed on an XOAUTH2-only server, its token from the fake endpoint.
fn once(access_token: &'static str) -> (Finished, ImapServer, Arc<AtomicUsize>) {
    let setup = Setup::new();
    let sink = smtp_server::start(smtp_server::Mode::Sink);
    let imap = imap_server::start(Mode::XOAuth2Only, true);
    let (token_port, requests) = token_endpoint(access_token);
    let dir = tempfile::tempdir().expect("tempdir");
    let refresh = dir.path().join("refresh-token");
    std::fs::write(&refresh, "hostile-refresh-token\n").expect("write");
    // The seed as Setup writes it, with OAuth2 instead of the password.
    let seed = setup
        .seed(imap.port, "tls", "")
        .lines()
        .filter(|l| !l.starts_with("password_file"))
        .collect::<Vec<_>>()
        .join("\n")
        + &format!(
            "\nauth = \"oauth2\"\n\n[seeds.s.oauth2]\ntoken_url = \"http://127.0.0.1:{token_port}/token\"\n\
             client_id = \"hostile-client\"\nscope = \"https://mail.google.com/\"\n\
             refresh_token_file = \"{}\"\n",
            refresh.display()
        );
    let config = setup.config("timeout = \"3s\"", &route(sink.port, "none"), &seed);
    let config = config.to_str().expect("utf-8 path");
    let run = Running::spawn(
        &["once", "--config", config, "--json"],
        &[("RUST_LOG", "trace")],
    )
    .finish_within(HARD_LIMIT);
    drop(dir);
    (run, imap, requests)
}

fn xoauth2_line(token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={IMAP_USER}\x01auth=Bearer {token}\x01\x01"))
}

#[test]
fn an_xoauth2_only_server_gets_the_token_in_googles_format() {
    let (run, imap, requests) = once(GOOD_TOKEN);
    assert!(
        imap.record.saw("AUTHENTICATE XOAUTH2"),
        "{}",
        imap.record.transcript()
    );
    assert!(
        imap.record.saw(&xoauth2_line(GOOD_TOKEN)),
        "not the XOAUTH2 initial response:\n{}",
        imap.record.transcript()
    );
    assert!(imap.record.saw("SELECT"), "{}", imap.record.transcript());
    // Logged in and looked: the probe is missing (the server never has it), not unknown.
    let report = json(&run);
    let r = single(&report, &run);
    assert_eq!(r["placement"], "missing", "{r:#}");
    assert_eq!(
        requests.load(Ordering::Relaxed),
        1,
        "one token request served every login"
    );
    assert!(
        !run.stderr.contains(GOOD_TOKEN),
        "the access token is in the log"
    );
}

#[test]
fn a_refused_token_answers_the_error_challenge_and_is_unknown_with_reason_auth() {
    const BAD: &str = "hostile-access-token-revoked";
    let (run, imap, requests) = once(BAD);
    assert!(
        imap.record.saw(&xoauth2_line(BAD)),
        "{}",
        imap.record.transcript()
    );
    // The empty response to the error challenge is an empty line after the initial response.
    let lines = imap.record.lines();
    let at = lines
        .iter()
        .position(|l| l.contains(&xoauth2_line(BAD)))
        .expect("the initial response");
    assert_eq!(
        lines.get(at + 1).map(String::as_str),
        Some(""),
        "no empty response to the error challenge:\n{}",
        imap.record.transcript()
    );
    assert_once(
        &run,
        ONCE_WITHIN,
        &Expect {
            exit: 3,
            state: "unknown",
            placement: Some("unknown"),
            reasons: &["auth"],
        },
    );
    // The refused token was forgotten: the next login asked the endpoint again.
    assert!(
        requests.load(Ordering::Relaxed) >= 2,
        "the refused token was offered again ({} token requests)",
        requests.load(Ordering::Relaxed)
    );
    for secret in [BAD, "hostile-refresh-token"] {
        assert!(!run.stderr.contains(secret), "{secret} is in the log");
        assert!(!run.stdout.contains(secret), "{secret} is in the results");
    }
}
