//! One test's world: a temporary directory with the token key, the IMAP password and the config
//! file (the options as documented in README.md and config/example.toml), and the checks every
//! `once --json` scenario makes on the result.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::child::Finished;
use crate::tls;

/// The seed's IMAP login: distinctive, so a leak is found by a plain substring search.
pub const IMAP_USER: &str = "hostile-imap-user-q7k2";
pub const IMAP_PASSWORD: &str = "Pw-9fX3-never-log-me-t8Zr";

/// Peak resident memory any scenario may reach.
pub const MAX_RSS_MB: f64 = 100.0;

pub struct Setup {
    dir: tempfile::TempDir,
    /// The DNS audit's nameserver (`run` audits at start): a loopback socket that never
    /// answers, so no query ever leaves the machine.
    dns: UdpSocket,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("token.key"),
            "hostile-test-token-key-0123456789\n",
        )
        .expect("write token key");
        std::fs::write(
            dir.path().join("imap-password"),
            format!("{IMAP_PASSWORD}\n"),
        )
        .expect("write password");
        let dns = UdpSocket::bind("127.0.0.1:0").expect("bind a silent DNS port");
        Setup { dir, dns }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the config: `[probe]` with `probe_extra` lines, one route `r`, one seed `s`.
    pub fn config(&self, probe_extra: &str, route: &str, seed: &str) -> PathBuf {
        let dns_port = self.dns.local_addr().expect("dns port").port();
        let text = format!(
            "[probe]\n\
             schedule = \"0 0 1 1 *\"\n\
             state = {state}\n\
             token_key_file = {key}\n\
             cleanup = \"keep\"\n\
             {probe_extra}\n\n\
             [dns_audit]\n\
             nameserver = \"127.0.0.1:{dns_port}\"\n\
             dnsbl_zones = []\n\n\
             {route}\n{seed}\n",
            state = toml_path(&self.path("state.sqlite")),
            key = toml_path(&self.path("token.key")),
        );
        let path = self.path("mailcanary.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// A seed mailbox at 127.0.0.1:`port` with the test CA; `extra` adds or overrides options.
    pub fn seed(&self, port: u16, tls: &str, extra: &str) -> String {
        format!(
            "[seeds.s]\n\
             address = \"seed@seed.test\"\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             tls = \"{tls}\"\n\
             ca_file = {ca}\n\
             username = \"{IMAP_USER}\"\n\
             password_file = {pw}\n\
             spam_folder = \"Junk\"\n\
             {extra}\n",
            ca = toml_path(&tls::ca_file()),
            pw = toml_path(&self.path("imap-password")),
        )
    }

    /// A seed with `provider = "gmail"` (the preset's folders, authserv-id and poll interval)
    /// whose IMAP server is at 127.0.0.1:`port` with the test CA.
    pub fn gmail_seed(&self, port: u16, extra: &str) -> String {
        format!(
            "[seeds.s]\n\
             provider = \"gmail\"\n\
             address = \"seed@gmail.test\"\n\
             host = \"127.0.0.1\"\n\
             port = {port}\n\
             ca_file = {ca}\n\
             username = \"{IMAP_USER}\"\n\
             password_file = {pw}\n\
             {extra}\n",
            ca = toml_path(&tls::ca_file()),
            pw = toml_path(&self.path("imap-password")),
        )
    }
}

/// A route to 127.0.0.1:`port`, without SMTP AUTH (refused without TLS), 3 s SMTP timeout.
pub fn route(port: u16, tls: &str) -> String {
    route_with_timeout(port, tls, "3s")
}

pub fn route_with_timeout(port: u16, tls: &str, timeout: &str) -> String {
    format!(
        "[routes.r]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         tls = \"{tls}\"\n\
         ca_file = {ca}\n\
         from = \"probe <probe@hostile.test>\"\n\
         helo = \"hostile.test\"\n\
         timeout = \"{timeout}\"\n",
        ca = toml_path(&tls::ca_file()),
    )
}

fn toml_path(p: &Path) -> String {
    Value::String(p.display().to_string()).to_string()
}

/// What a scenario's single probe must end as.
pub struct Expect {
    pub exit: i32,
    pub state: &'static str,
    /// `None`: `placement` must be null (a probe never sent).
    pub placement: Option<&'static str>,
    /// The accepted `error_reason`s; empty: it must be null.
    pub reasons: &'static [&'static str],
}

/// Checks a `once --json` run: it ended by itself within `within`, under the memory limit, with
/// one probe in the expected state (never `missing` unless expected) and exit status.
pub fn assert_once(run: &Finished, within: Duration, expect: &Expect) -> Value {
    let code = run.exit_code();
    assert!(
        run.elapsed <= within,
        "`once` took {:.1} s, more than {within:?}\n{}",
        run.elapsed.as_secs_f64(),
        run.log_tail()
    );
    assert_rss(run);
    let report = json(run);
    let result = single(&report, run);
    let state = result["state"].as_str().unwrap_or("");
    assert_eq!(
        state,
        expect.state,
        "probe state (`missing` only when the send and every mailbox read succeeded): {}\n{}",
        short(result),
        run.log_tail()
    );
    assert_eq!(
        result["placement"].as_str(),
        expect.placement,
        "placement: {}",
        short(result)
    );
    let reason = result["error_reason"].as_str();
    if expect.reasons.is_empty() {
        assert_eq!(reason, None, "error_reason: {}", short(result));
    } else {
        assert!(
            reason.is_some_and(|r| expect.reasons.contains(&r)),
            "error_reason {reason:?}, expected one of {:?}: {}",
            expect.reasons,
            short(result)
        );
    }
    assert_eq!(code, expect.exit, "exit status\n{}", run.log_tail());
    report
}

pub fn assert_rss(run: &Finished) {
    // One line per scenario for bench/hostile (docs/benchmarks.md): never asserted on time.
    eprintln!(
        "hostile-figure\t{}\t{:.1}\t{:.1}",
        std::thread::current().name().unwrap_or("?"),
        run.elapsed.as_secs_f64(),
        run.peak_rss_mb()
    );
    assert!(
        run.peak_rss_mb() < MAX_RSS_MB,
        "peak RSS {:.0} MB, limit {MAX_RSS_MB} MB\n{}",
        run.peak_rss_mb(),
        run.log_tail()
    );
}

/// The `once --json` document.
pub fn json(run: &Finished) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "`once --json` printed no JSON document ({e})\n{}",
            run.log_tail()
        )
    })
}

/// The one probe result of a one-route, one-seed round.
pub fn single<'a>(report: &'a Value, run: &Finished) -> &'a Value {
    match report["results"].as_array().map(Vec::as_slice) {
        Some([one]) => one,
        _ => panic!("expected exactly one result\n{}", run.log_tail()),
    }
}

/// A result for a failure message, each long string cut to its start and its length.
pub fn short(v: &Value) -> String {
    fn cut(v: &Value) -> Value {
        match v {
            Value::String(s) if s.len() > 200 => {
                let mut end = 200;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Value::String(format!("{}… ({} bytes)", &s[..end], s.len()))
            }
            Value::Array(a) => Value::Array(a.iter().map(cut).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), cut(v))).collect()),
            other => other.clone(),
        }
    }
    cut(v).to_string()
}
