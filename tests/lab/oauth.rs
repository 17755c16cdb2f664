//! OAuth2 logins against the lab's real OAuth2 server (glewlwyd, `lab/glewlwyd.sh`): the seed
//! `oauth1` (Dovecot takes only OAuth2 tokens for it, checked by RFC 7662 introspection) and the
//! `good-oauth` submission on 127.0.0.2:1587 (its SASL takes only OAuth2 tokens of oauth1).
//! Access tokens live 10 s in the lab, so they expire mid-run.
//!
//! Each test gets its own refresh token from glewlwyd (the password grant, the lab's stand-in
//! for a person), so revoking one touches no other test. The tests share the seed oauth1 and
//! take a file lock on it. The device flow's polling is tested here as far as glewlwyd shows
//! it (authorization_pending until a person approves, then the token); slow_down, expired_token
//! and access_denied are unit tests against a fake endpoint (`src/oauth/tests.rs`): glewlwyd's
//! codes live 10 minutes and its interval is met by a polite client.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::support::{http, start_on_free_port};
use common::*;
use serde_json::Value;

const OAUTH: &str = "http://127.0.0.20:4593/api";

fn secret(name: &str) -> String {
    std::fs::read_to_string(lab_path(&format!("secrets/{name}")))
        .unwrap_or_else(|e| panic!("lab secret {name}: {e} (is the lab up with glewlwyd?)"))
        .trim()
        .to_string()
}

/// `curl ARGS` → (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A fresh refresh token of oauth1 from glewlwyd's `instance` (password grant), in
/// `dir/refresh-token`.
fn refresh_token_of(instance: &str, dir: &Path) -> (PathBuf, String) {
    let client = format!("mailcanary:{}", secret("oauth-client-secret"));
    let password = format!("password={}", secret("oauth1-password"));
    let (code, body) = curl(&[
        "-u",
        &client,
        "-d",
        "grant_type=password",
        "-d",
        "username=oauth1",
        "--data-urlencode",
        &password,
        "-d",
        "scope=mail",
        &format!("{OAUTH}/{instance}/token/"),
    ]);
    assert_eq!(code, 200, "glewlwyd password grant ({instance}): {body}");
    let json: Value = serde_json::from_str(&body).expect("token JSON");
    let token = json["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let file = dir.join("refresh-token");
    std::fs::write(&file, &token).expect("write refresh token");
    (file, token)
}

/// A fresh refresh token of oauth1 from the `oidc` instance, in `dir/refresh-token`.
fn refresh_token(dir: &Path) -> (PathBuf, String) {
    refresh_token_of("oidc", dir)
}

/// The `[oauth2]` table of the lab client with `refresh_file`.
fn oauth_table(section: &str, refresh_file: &Path) -> String {
    format!(
        "[{section}.oauth2]\ntoken_url = \"{OAUTH}/oidc/token\"\n\
         device_authorization_url = \"{OAUTH}/oidc/device_authorization\"\nclient_id = \"mailcanary\"\n\
         client_secret_file = \"{LAB_DIR}/secrets/oauth-client-secret\"\n\
         refresh_token_file = \"{}\"\nscope = \"mail\"\n",
        refresh_file.display()
    )
}

/// The good-oauth route (OAuth2-only submission on 127.0.0.2:1587).
fn oauth_route(refresh_file: &Path) -> String {
    format!(
        "[routes.good-oauth]\nhost = \"127.0.0.2\"\nport = 1587\ntls = \"starttls\"\n\
         ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"oauth1\"\nauth = \"oauth2\"\n\
         from = \"probe <probe@sender.test>\"\n{}\n",
        oauth_table("routes.good-oauth", refresh_file)
    )
}

/// The seed oauth1 (IMAP with OAuth2 only).
fn oauth_seed(refresh_file: &Path) -> String {
    format!(
        "[seeds.oauth1]\naddress = \"oauth1@seed.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nauth = \"oauth2\"\n\
         authserv_ids = [\"mx.seed.test\"]\npoll_interval = \"20ms\"\n{}\n",
        oauth_table("seeds.oauth1", refresh_file)
    )
}

/// Exclusive use of the seed oauth1 while held.
fn lock_oauth1() -> common::support::LabLock {
    common::support::lab_lock(
        "mailcanary-lab-oauth1.lock",
        "oauth1",
        Duration::from_secs(180),
    )
}

fn once(config: &Path) -> (i32, Value, String) {
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run mailcanary once");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("once printed no JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stdout + &stderr)
}

#[test]
fn once_with_the_oauth_seed_and_route_lands_in_the_inbox_with_spf_dkim_dmarc_passing() {
    require_lab();
    let _lock = lock_oauth1();
    let dir = tempfile::tempdir().expect("tempdir");
    let (refresh_file, refresh) = refresh_token(dir.path());
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "30s", ""),
            oauth_route(&refresh_file),
            oauth_seed(&refresh_file)
        ),
    );
    let (code, json, output) = once(&config);
    let r = &json["results"][0];
    assert_eq!(r["route"], "good-oauth", "{json:#}");
    assert_eq!(r["seed"], "oauth1");
    assert_eq!(r["placement"], "inbox", "{json:#}\n{output}");
    assert_eq!(r["folder"], "INBOX");
    for m in ["spf", "dkim", "dmarc"] {
        assert_eq!(r["verdict"][m], "pass", "{m}: {r:#}");
    }
    assert_eq!(code, 0, "{output}");
    // Neither the refresh token nor any bearer token shows in what mailcanary printed.
    assert!(!output.contains(&refresh), "the refresh token was printed");
    assert!(
        !output.contains("eyJ"),
        "a JWT access token was printed: {output}"
    );
}

#[test]
fn a_password_login_of_the_oauth_only_users_is_refused() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    // The submit user's password, presented on the OAuth2-only submission port: AUTH may
    // succeed (Postfix only filters what EHLO announces) but no mail is relayed.
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "10s", ""),
            route("password-on-oauth-port", "probe <probe@sender.test>", "")
                .replace("port = 587", "port = 1587"),
            seed("s4", "seed4")
        ),
    );
    let (code, json, _) = once(&config);
    let r = &json["results"][0];
    assert_eq!(r["state"], "send_failed", "{json:#}");
    assert_eq!(r["smtp"], Value::Null);
    assert_eq!(code, 2, "{json:#}");
}

#[test]
fn a_revoked_refresh_token_makes_the_probe_unknown_with_reason_auth_never_missing() {
    require_lab();
    let _lock = lock_oauth1();
    let dir = tempfile::tempdir().expect("tempdir");
    let (refresh_file, refresh) = refresh_token(dir.path());
    let client = format!("mailcanary:{}", secret("oauth-client-secret"));
    let (code, body) = curl(&[
        "-u",
        &client,
        "--data-urlencode",
        &format!("token={refresh}"),
        "-d",
        "token_type_hint=refresh_token",
        &format!("{OAUTH}/oidc/revoke/"),
    ]);
    assert_eq!(code, 200, "revoke: {body}");
    // The probe is sent by the password route `good`; the seed cannot be read.
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "10s", ""),
            route("good", "probe <probe@sender.test>", ""),
            oauth_seed(&refresh_file)
        ),
    );
    let started = Instant::now();
    let (code, json, output) = once(&config);
    let r = &json["results"][0];
    assert_eq!(r["placement"], "unknown", "{json:#}\n{output}");
    assert_ne!(r["state"], "missing");
    assert_eq!(r["error_reason"], "auth", "{r:#}");
    // glewlwyd answers a revoked refresh token with a bare 400 (no RFC 6749 §5.2 body).
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("no OAuth2 access token: token endpoint")),
        "{r:#}"
    );
    assert_eq!(code, 3, "unknown exits 3: {output}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!output.contains(&refresh), "the refresh token was printed");
    assert!(
        output.contains("reason=\"auth\"") || output.contains("reason=auth"),
        "the auth error is logged with its reason: {output}"
    );
}

/// One value of a series in a /metrics text.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[test]
fn access_tokens_that_expire_mid_run_are_refreshed_without_a_failed_probe() {
    require_lab();
    let _lock = lock_oauth1();
    let dir = tempfile::tempdir().expect("tempdir");
    let (refresh_file, _) = refresh_token(dir.path());
    let state = dir.path().join("state.sqlite");
    let daemon = start_on_free_port(dir.path(), "/healthz", Duration::from_secs(30), |addr| {
        let text = format!(
            "[probe]\nschedule = \"*/3 * * * * *\"\ntimeout = \"20s\"\nlate_window = \"1m\"\n\
             listen = \"{addr}\"\nstate = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\n\n{}{}",
            state.display(),
            oauth_route(&refresh_file),
            oauth_seed(&refresh_file)
        );
        let config = write_config(dir.path(), &text);
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config"]).arg(config);
        cmd
    });
    // Three token lifetimes (10 s each): the route's token is replaced at least twice.
    let started = Instant::now();
    let mut route_expiries = Vec::new();
    let mut seed_expiries = Vec::new();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(32) {
        if let Ok((200, m)) = http(&daemon.addr, "GET", "/metrics", None) {
            for (series, seen) in [
                (
                    "mailcanary_oauth_route_token_expiry_timestamp_seconds{route=\"good-oauth\"}",
                    &mut route_expiries,
                ),
                (
                    "mailcanary_oauth_token_expiry_timestamp_seconds{seed=\"oauth1\"}",
                    &mut seed_expiries,
                ),
            ] {
                if let Some(v) = value(&m, series)
                    && v > 0.0
                    && !seen.contains(&v)
                {
                    seen.push(v);
                }
            }
            last = m;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        route_expiries.len() >= 3,
        "the route's token was not refreshed as it expired: {route_expiries:?}\n{}",
        daemon.log()
    );
    assert!(
        seed_expiries.len() >= 3,
        "the seed's token was not refreshed as it expired: {seed_expiries:?}"
    );
    let inbox = value(
        &last,
        "mailcanary_probes_received_total{placement=\"inbox\",route=\"good-oauth\",seed=\"oauth1\"}",
    )
    .unwrap_or(0.0);
    assert!(inbox >= 5.0, "only {inbox} probes found:\n{}", daemon.log());
    for reason in ["auth", "network", "timeout", "tls", "smtp_permanent"] {
        let s =
            format!("mailcanary_send_failures_total{{reason=\"{reason}\",route=\"good-oauth\"}}");
        assert_eq!(value(&last, &s), Some(0.0), "{s}:\n{}", daemon.log());
    }
    for reason in ["auth", "network", "protocol"] {
        let s = format!("mailcanary_imap_errors_total{{reason=\"{reason}\",seed=\"oauth1\"}}");
        assert_eq!(value(&last, &s), Some(0.0), "{s}:\n{}", daemon.log());
    }
    for s in [
        "mailcanary_probes_unknown_total{route=\"good-oauth\",seed=\"oauth1\"}",
        "mailcanary_probes_missing_total{route=\"good-oauth\",seed=\"oauth1\"}",
    ] {
        // No series yet is none counted (a pair's counters appear when first counted).
        let n = value(&last, s).unwrap_or(0.0);
        assert_eq!(n, 0.0, "{s}:\n{}", daemon.log());
    }
    // No token in what the scrape or the results API serve, nor in the log.
    let (_, results) = http(&daemon.addr, "GET", "/api/results", None).expect("results");
    for text in [&last, &results, &daemon.log()] {
        assert!(!text.contains("eyJ"), "a JWT access token leaked");
        assert!(!text.contains(&secret("oauth-client-secret")));
    }
}

#[test]
fn oauth_login_runs_the_device_flow_against_the_lab_server() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let refresh_file = dir.path().join("new-refresh-token");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "30s", ""),
            route("good", "probe <probe@sender.test>", ""),
            oauth_seed(&refresh_file)
        ),
    );
    // The file does not exist yet: check-config says how to make it.
    let check = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .expect("check-config");
    assert_eq!(check.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&check.stderr).contains("`mailcanary oauth login` creates it"));

    let mut login = Command::new(bin())
        .args(["oauth", "login", "--seed", "oauth1", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oauth login");
    let mut stdout = login.stdout.take().expect("stdout");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(&mut stdout);
        reader.read_line(&mut first).expect("first line");
    }
    assert!(
        first.contains(&format!("{OAUTH}/oidc/device")),
        "verification URL: {first}"
    );
    let code = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("the user code ends the line")
        .to_string();
    // The client polls while nobody approved (authorization_pending); then a person logs in
    // to glewlwyd, grants the scope to the client and enters the code.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        login.try_wait().expect("wait").is_none(),
        "it waits for the approval"
    );
    let jar = dir.path().join("cookies");
    let jar = jar.to_str().expect("path");
    let user = format!(
        "{{\"username\":\"oauth1\",\"password\":\"{}\"}}",
        secret("oauth1-password")
    );
    let json = ["-H", "Content-Type: application/json"];
    let (c, b) = curl(
        &[
            &["-c", jar, "-X", "POST"][..],
            &json,
            &["-d", &user, &format!("{OAUTH}/auth/")],
        ]
        .concat(),
    );
    assert_eq!(c, 200, "user login: {b}");
    let (c, b) = curl(
        &[
            &["-b", jar, "-X", "PUT"][..],
            &json,
            &[
                "-d",
                "{\"scope\":\"mail\"}",
                &format!("{OAUTH}/auth/grant/mailcanary"),
            ],
        ]
        .concat(),
    );
    assert_eq!(c, 200, "grant: {b}");
    let (c, _) = curl(&[
        "-b",
        jar,
        "-o",
        "/dev/null",
        "-D",
        "-",
        &format!("{OAUTH}/oidc/device?code={code}&g_continue"),
    ]);
    assert_eq!(c, 302, "device approval");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = login.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "oauth login did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("stdout");
    let mut err = String::new();
    if let Some(mut e) = login.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).expect("stderr");
    }
    assert!(status.success(), "{first}{rest}{err}");
    let token = std::fs::read_to_string(&refresh_file).expect("refresh token written");
    assert!(!token.trim().is_empty());
    assert!(
        !rest.contains(token.trim()) && !err.contains(token.trim()),
        "token printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&refresh_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The new refresh token is one glewlwyd honours.
    let client = format!("mailcanary:{}", secret("oauth-client-secret"));
    let (c, b) = curl(&[
        "-u",
        &client,
        "-d",
        "grant_type=refresh_token",
        "--data-urlencode",
        &format!("refresh_token={}", token.trim()),
        &format!("{OAUTH}/oidc/token/"),
    ]);
    assert_eq!(c, 200, "refresh with the new token: {b}");
}

#[test]
fn a_refresh_token_the_server_rotates_is_written_back_to_its_file() {
    require_lab();
    // glewlwyd's second instance `oidc-rotate` hands out a new refresh token with every refresh
    // and refuses the old one (as Microsoft may). Its access tokens are not the ones Dovecot
    // introspects (introspection is per instance), so the login itself fails here: this test
    // is about the refresh token file.
    let _lock = lock_oauth1();
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, first) = refresh_token_of("oidc-rotate", dir.path());
    let seed = oauth_seed(&file).replace("/oidc/", "/oidc-rotate/");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "5s", ""),
            route("good", "probe <probe@sender.test>", ""),
            seed
        ),
    );
    let (_, _, output) = once(&config);
    let written = std::fs::read_to_string(&file).expect("read back");
    let written = written.trim();
    assert!(!written.is_empty());
    assert_ne!(
        written, first,
        "the rotated token was not written back:\n{output}"
    );
    assert!(
        !output.contains(written),
        "the new refresh token was printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let client = format!("mailcanary:{}", secret("oauth-client-secret"));
    let refresh = |token: &str| {
        curl(&[
            "-u",
            &client,
            "-d",
            "grant_type=refresh_token",
            "--data-urlencode",
            &format!("refresh_token={token}"),
            &format!("{OAUTH}/oidc-rotate/token/"),
        ])
        .0
    };
    assert_eq!(refresh(&first), 400, "the server refuses the old token");
}
