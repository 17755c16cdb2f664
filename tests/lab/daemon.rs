//! `mailcanary run` against the lab for a few rounds: the metrics say what happened, and a seed
//! whose IMAP server goes away is `unknown` (not missing) and recovers by itself.

use crate::common;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Kills the daemon even when an assertion fails.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP forwarder to the lab's IMAP server that the test can switch off and on: the real
/// Dovecot stays up for the other tests, while this seed sees its server vanish.
struct Switch {
    port: u16,
    up: Arc<AtomicBool>,
}

fn pipe(mut a: TcpStream, mut b: TcpStream, up: Arc<AtomicBool>) {
    let _ = a.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16384];
    loop {
        if !up.load(Ordering::Relaxed) {
            let _ = a.shutdown(std::net::Shutdown::Both);
            let _ = b.shutdown(std::net::Shutdown::Both);
            return;
        }
        match a.read(&mut buf) {
            Ok(0) => {
                let _ = b.shutdown(std::net::Shutdown::Write);
                return;
            }
            Ok(n) => {
                if b.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Switch {
    fn start() -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if !flag.load(Ordering::Relaxed) {
                    drop(conn); // "connection closed": the server is away
                    continue;
                }
                let Ok(upstream) = TcpStream::connect("127.0.0.3:993") else {
                    continue;
                };
                let (c2, u2) = (
                    conn.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                let (f1, f2) = (flag.clone(), flag.clone());
                std::thread::spawn(move || pipe(conn, upstream, f1));
                std::thread::spawn(move || pipe(u2, c2, f2));
            }
        });
        Switch { port, up }
    }
}

fn get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of one series in the exposition text, by its exact label set.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

#[test]
fn run_exports_what_the_rounds_saw_and_recovers_from_a_lost_imap_server() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let switch = Switch::start();
    let probe = format!(
        "[probe]\nschedule = \"*/4 * * * * *\"\ntimeout = \"3s\"\nlate_window = \"10m\"\nlisten = \"127.0.0.1:{port}\"\n\
         state = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\n[dns_audit]\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n",
        dir.path().join("state.sqlite").display()
    );
    let seeds = format!(
        "{}{}",
        seed("m15", "seed15"),
        seed_at("m16", "seed16", "127.0.0.1", switch.port)
    );
    let config = write_config(dir.path(), &format!("{probe}{}{seeds}", all_routes()));
    let _daemon = Daemon(
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mailcanary run"),
    );
    let metrics = |port| get(port, "/metrics");
    wait_until("two probe rounds", 60, || {
        value(
            &metrics(port),
            "mailcanary_probes_sent_total{route=\"good\",seed=\"m15\"}",
        )
        .unwrap_or(0.0)
            >= 2.0
            && value(
                &metrics(port),
                "mailcanary_probes_received_total{placement=\"inbox\",route=\"good\",seed=\"m15\"}",
            )
            .unwrap_or(0.0)
                >= 2.0
    });
    let m = metrics(port);
    let v = |s: &str| value(&m, s).unwrap_or_else(|| panic!("series {s} missing from /metrics"));
    assert!(
        v("mailcanary_probes_received_total{placement=\"spam\",route=\"spam\",seed=\"m15\"}")
            >= 1.0
    );
    // A pair's outcome counters appear when first counted (the series budget): none is 0.
    assert_eq!(
        value(
            &m,
            "mailcanary_probes_received_total{placement=\"spam\",route=\"good\",seed=\"m15\"}"
        )
        .unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        v("mailcanary_last_placement{placement=\"inbox\",route=\"good\",seed=\"m15\"}"),
        1.0
    );
    assert_eq!(
        v("mailcanary_last_placement{placement=\"spam\",route=\"spam\",seed=\"m15\"}"),
        1.0
    );
    assert_eq!(
        v("mailcanary_last_auth_pass{method=\"dkim\",route=\"dkim-fail\",seed=\"m15\"}"),
        0.0
    );
    assert_eq!(
        v("mailcanary_last_auth_pass{method=\"spf\",route=\"spf-fail\",seed=\"m15\"}"),
        0.0
    );
    assert_eq!(
        v("mailcanary_last_auth_pass{method=\"dmarc\",route=\"dmarc-fail\",seed=\"m15\"}"),
        0.0
    );
    assert_eq!(
        v("mailcanary_last_auth_pass{method=\"dkim\",route=\"good\",seed=\"m15\"}"),
        1.0
    );
    assert!(
        v("mailcanary_auth_results_total{method=\"spf\",result=\"fail\",route=\"spf-fail\"}")
            >= 1.0
    );
    assert_eq!(
        v("mailcanary_diagnosis{cause=\"ptr_missing\",route=\"no-ptr\",seed=\"m15\"}"),
        1.0
    );
    // Causes that do not apply have no series at all (bounded cardinality).
    assert_eq!(
        value(
            &m,
            "mailcanary_diagnosis{cause=\"ptr_missing\",route=\"good\",seed=\"m15\"}"
        ),
        None
    );
    assert!(v("mailcanary_last_success_timestamp_seconds{route=\"good\",seed=\"m15\"}") > 1.7e9);
    assert!(v("mailcanary_last_round_timestamp_seconds") > 1.7e9);
    assert_eq!(v("mailcanary_round_interval_seconds"), 4.0);
    assert!(v("mailcanary_delivery_duration_seconds_count{route=\"good\"}") >= 2.0);
    let delivery = v("mailcanary_last_delivery_duration_seconds{route=\"good\",seed=\"m15\"}");
    assert!(
        delivery > 0.0 && delivery < 60.0,
        "last delivery {delivery} s"
    );
    assert_eq!(
        v("mailcanary_send_failures_total{reason=\"auth\",route=\"good\"}"),
        0.0
    );
    assert_eq!(v("mailcanary_forged_probes_total{seed=\"m15\"}"), 0.0);
    wait_until("the DNS audit", 30, || {
        value(
            &metrics(port),
            "mailcanary_dns_check_ok{check=\"ptr\",route=\"no-ptr\"}",
        ) == Some(0.0)
    });
    let m = metrics(port);
    assert_eq!(
        value(&m, "mailcanary_dns_check_ok{check=\"ptr\",route=\"good\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "mailcanary_dkim_key_bits{route=\"good\"}"),
        Some(2048.0)
    );
    assert!(get(port, "/healthz").starts_with("ok"));
    assert!(get(port, "/readyz").starts_with("ready"));
    let api: serde_json::Value =
        serde_json::from_str(&get(port, "/api/results")).expect("/api/results is JSON");
    assert_eq!(api["results"].as_array().map(Vec::len), Some(12));

    // The IMAP server of seed m16 goes away: its probes become unknown, never missing.
    switch.up.store(false, Ordering::Relaxed);
    let unknown = "mailcanary_probes_unknown_total{route=\"good\",seed=\"m16\"}";
    wait_until("an unknown probe", 40, || {
        value(&metrics(port), unknown).unwrap_or(0.0) >= 1.0
    });
    let m = metrics(port);
    // Counted from the first missing probe (the series budget): none is no series, or 0.
    assert_eq!(
        value(
            &m,
            "mailcanary_probes_missing_total{route=\"good\",seed=\"m16\"}"
        )
        .unwrap_or(0.0),
        0.0
    );
    assert!(
        value(
            &m,
            "mailcanary_imap_errors_total{reason=\"network\",seed=\"m16\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        value(
            &m,
            "mailcanary_last_placement{placement=\"unknown\",route=\"good\",seed=\"m16\"}"
        ),
        Some(1.0)
    );

    // It comes back: the daemon recovers by itself, and the probes it could not see are late.
    switch.up.store(true, Ordering::Relaxed);
    wait_until("recovery", 40, || {
        value(
            &metrics(port),
            "mailcanary_last_placement{placement=\"inbox\",route=\"good\",seed=\"m16\"}",
        ) == Some(1.0)
    });
    wait_until("late probes", 40, || {
        value(
            &metrics(port),
            "mailcanary_probes_late_total{route=\"good\",seed=\"m16\"}",
        )
        .unwrap_or(0.0)
            >= 1.0
    });
}
