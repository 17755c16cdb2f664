//! The lab's fault switch (`lab/mailstack fault NAME on|off`, issue #21) against the real daemons.
//! Each test switches one fault on twice (idempotent), sees its effect on the fault route
//! (probe@fault.test from 127.0.0.9) and the fault seeds (fault-seed.test: MX 127.0.0.12, Dovecot
//! 127.0.0.13) — Junk, `dkim=fail`, PTR NXDOMAIN, the DNSBL answer, the 5xx and its bounce, closed
//! ports — switches it off twice and sees the lab back to normal. A guard switches the fault off
//! when a test fails. The fault tests hold one file lock ([`FAULT_LOCK`] in the temporary
//! directory) so that two faults never overlap; a benchmark that switches faults takes it too.
//!
//! Mailboxes: fault1..fault7 (one per test; fault9..fault14 are bench/time-to-page's) and the fault route's bounce mailbox fault-bounces;
//! nothing of seed.test.

use crate::common;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::support::{LabLock, lab_lock};
use common::*;
use serde_json::Value;

/// The lock every user of the fault switch holds (flock(2) on this file in the temporary
/// directory; `flock /tmp/mailcanary-lab-faults.lock …` from a shell).
const FAULT_LOCK: &str = "mailcanary-lab-faults.lock";
const LAB_DNS: &str = "127.0.53.53";

fn mailstack(args: &[&str]) -> Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/mailstack"))
        .args(args)
        .output()
        .expect("run lab/mailstack")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `fault status`'s word for one fault: "on" or "off".
fn fault_state(name: &str) -> String {
    let out = mailstack(&["fault", "status"]);
    assert!(out.status.success(), "fault status: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("fault status does not list {name}: {}", text(&out)))
}

fn switch(name: &str, state: &str) {
    let out = mailstack(&["fault", name, state]);
    assert!(out.status.success(), "fault {name} {state}: {}", text(&out));
    assert_eq!(fault_state(name), state, "after fault {name} {state}");
}

/// One fault switched on for a test, under the fault lock; switched off again when dropped,
/// whether the test passed or failed.
struct Fault {
    name: &'static str,
    off: bool,
    _lock: LabLock,
}

impl Fault {
    /// Takes the lock, makes sure the fault starts off, then switches it on twice.
    fn on(name: &'static str) -> Fault {
        require_lab();
        let lock = lab_lock(
            FAULT_LOCK,
            "the lab's fault switch",
            Duration::from_secs(900),
        );
        switch(name, "off");
        let fault = Fault {
            name,
            off: false,
            _lock: lock,
        };
        let t0 = Instant::now();
        switch(name, "on");
        eprintln!("fault {name} on in {:.2} s", t0.elapsed().as_secs_f64());
        switch(name, "on");
        fault
    }

    /// Switches the fault off twice (idempotent).
    fn off(&mut self) {
        let t0 = Instant::now();
        switch(self.name, "off");
        eprintln!(
            "fault {} off in {:.2} s",
            self.name,
            t0.elapsed().as_secs_f64()
        );
        switch(self.name, "off");
        self.off = true;
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if !self.off {
            let out = mailstack(&["fault", self.name, "off"]);
            if !out.status.success() {
                eprintln!("could not switch fault {} off: {}", self.name, text(&out));
            }
        }
    }
}

// ---------------------------------------------------------------- configs

fn fault_route(name: &str, extra: &str) -> String {
    route(
        name,
        "probe <probe@fault.test>",
        &format!("envelope_from = \"bounces@fault.test\"\nbounces = \"fault\"\n{extra}"),
    )
}

/// A fault seed (user@fault-seed.test on the fault seeds' Dovecot, implicit TLS).
fn fault_seed(user: &str) -> String {
    format!(
        "[seeds.{user}]\naddress = \"{user}@fault-seed.test\"\nhost = \"127.0.0.13\"\nport = 993\ntls = \"tls\"\n\
         ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"{user}\"\npassword_file = \"{LAB_DIR}/secrets/imap-password\"\n\
         authserv_ids = [\"mx.fault-seed.test\"]\npoll_interval = \"20ms\"\n"
    )
}

fn fault_bounce_mailbox() -> String {
    format!(
        "[bounce_mailboxes.fault]\naddress = \"bounces@fault.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"fault-bounces\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\n"
    )
}

/// `mailcanary once --json` of the fault route (and `extra_routes`) to one fault seed.
fn once(dir: &Path, user: &str, extra_routes: &str) -> Value {
    let config = write_config(
        dir,
        &format!(
            "{}{}{extra_routes}{}{}",
            probe_section(dir, "30s", ""),
            fault_route("fault", ""),
            fault_seed(user),
            fault_bounce_mailbox()
        ),
    );
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("run mailcanary once");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("once --json printed no JSON ({e}): {}", text(&out)))
}

fn result<'a>(json: &'a Value, route: &str) -> &'a Value {
    json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["route"] == route))
        .unwrap_or_else(|| panic!("no result for route {route} in {json:#}"))
}

/// The spam filter's rule names of a result (without their scores).
fn rules(r: &Value) -> Vec<String> {
    r["spam"]["rules"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .map(|x| x.split('(').next().unwrap_or(x).to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_all_pass(r: &Value) {
    assert_eq!(r["placement"], "inbox", "{r:#}");
    assert_eq!(r["folder"], "INBOX", "{r:#}");
    for m in ["spf", "dkim", "dmarc"] {
        assert_eq!(r["verdict"][m], "pass", "{m}: {r:#}");
    }
    assert_eq!(r["verdict"]["authserv_id"], "mx.fault-seed.test", "{r:#}");
}

// ---------------------------------------------------------------- DNS

/// `dig` at the lab DNS: (status, answers).
fn dig(args: &[&str]) -> (String, Vec<String>) {
    let out = Command::new("dig")
        .args(["+time=2", "+tries=2", &format!("@{LAB_DNS}")])
        .args(args)
        .output()
        .expect("run dig (bind9-dnsutils, installed by lab/mailstack up)");
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = all
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string();
    let short = Command::new("dig")
        .args(["+short", "+time=2", "+tries=2", &format!("@{LAB_DNS}")])
        .args(args)
        .output()
        .expect("run dig");
    let answers = String::from_utf8_lossy(&short.stdout)
        .lines()
        .map(String::from)
        .collect();
    (status, answers)
}

/// `mailcanary check-dns --json` of the fault route's domain and address.
fn check_dns() -> Value {
    let out = Command::new(bin())
        .args([
            "check-dns",
            "--nameserver",
            &format!("{LAB_DNS}:53"),
            "--domain",
            "fault.test",
            "--ip",
            "127.0.0.9",
            "--helo",
            "mail.fault.test",
            "--selector",
            "lab",
            "--dnsbl",
            "dnsbl.test",
            "--json",
        ])
        .output()
        .expect("run mailcanary check-dns");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check-dns --json printed no JSON ({e}): {}", text(&out)))
}

fn causes(report: &Value) -> Vec<String> {
    report["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- plain SMTP / IMAP

fn port_open(addr: &str) -> bool {
    TcpStream::connect_timeout(&addr.parse().expect("address"), Duration::from_secs(2)).is_ok()
}

/// Submits one message of the fault route to `user`@fault-seed.test with swaks; its Message-ID.
fn submit_fault_mail(user: &str) -> String {
    let id = format!(
        "<fault-{}-{}@fault.test>",
        std::process::id(),
        support::unix_now()
    );
    let password = std::fs::read_to_string(lab_path("secrets/submit-password"))
        .expect("submit password")
        .trim()
        .to_string();
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.2", "--port", "587", "--tls"])
        .arg("--tls-ca-path")
        .arg(lab_path("ca/ca.pem"))
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "submit",
            "--auth-password",
        ])
        .arg(&password)
        .args(["--from", "bounces@fault.test", "--to"])
        .arg(format!("{user}@fault-seed.test"))
        .args([
            "--h-From",
            "probe <probe@fault.test>",
            "--h-Subject",
            "fault test",
        ])
        .arg("--header")
        .arg(format!("Message-Id: {id}"))
        .output()
        .expect("run swaks");
    assert!(out.status.success(), "swaks: {}", text(&out));
    id
}

/// A fault seed's mailbox as the library's IMAP client sees it.
fn fault_mailbox(dir: &Path, user: &str) -> mailcanary::config::Seed {
    let path = write_config(
        dir,
        &format!(
            "{}{}{}",
            probe_section(dir, "30s", ""),
            route("fault", "probe <probe@fault.test>", ""),
            fault_seed(user)
        ),
    );
    let cfg = mailcanary::config::load(&path).expect("valid config");
    cfg.seeds[0].clone()
}

/// Whether the INBOX of `mailbox` holds a message with this Message-ID (Err: IMAP failed).
fn in_inbox(mailbox: &mailcanary::config::Seed, message_id: &str) -> Result<bool, String> {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut s = mailcanary::imap::connect::login(mailbox, &Default::default())
            .await
            .map_err(|e| format!("login: {e}"))?;
        s.select("INBOX")
            .await
            .map_err(|e| format!("select: {e}"))?;
        let uids = s
            .uid_search(format!("HEADER Message-ID \"{message_id}\""))
            .await
            .map_err(|e| format!("search: {e}"))?;
        let _ = s.logout().await;
        Ok(!uids.is_empty())
    })
}

/// Seconds until `message_id` shows in the INBOX (panics after `limit`).
fn wait_delivered(mailbox: &mailcanary::config::Seed, message_id: &str, limit: Duration) -> f64 {
    let t0 = Instant::now();
    loop {
        if in_inbox(mailbox, message_id) == Ok(true) {
            return t0.elapsed().as_secs_f64();
        }
        assert!(
            t0.elapsed() < limit,
            "{message_id} not in {}'s INBOX after {limit:?}",
            mailbox.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The sending Postfix's queue entries for `user`@fault-seed.test (postqueue -j).
fn queued_for(user: &str) -> usize {
    let out = Command::new("postqueue")
        .arg("-c")
        .arg(lab_path("postfix-out/etc"))
        .arg("-j")
        .output()
        .expect("run postqueue");
    let needle = format!("\"{user}@fault-seed.test\"");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

// ---------------------------------------------------------------- the faults

#[test]
fn spam_content_files_only_the_fault_routes_mail_in_junk() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The lab's good route (probe@sender.test from 127.0.0.2) to the same seed: never touched.
    let good = route("good", "probe <probe@sender.test>", "");
    let mut fault = Fault::on("spam-content");
    let json = once(dir.path(), "fault1", &good);
    let r = result(&json, "fault");
    assert_eq!(r["placement"], "spam", "{r:#}");
    assert_eq!(r["folder"], "Junk", "{r:#}");
    assert!(
        rules(r).iter().any(|x| x == "LAB_FAULT_SPAM_CONTENT"),
        "{r:#}"
    );
    for m in ["spf", "dkim", "dmarc"] {
        assert_eq!(
            r["verdict"][m], "pass",
            "spam-content changes nothing else: {r:#}"
        );
    }
    assert_eq!(result(&json, "good")["placement"], "inbox", "{json:#}");

    fault.off();
    let json = once(dir.path(), "fault1", "");
    assert_all_pass(result(&json, "fault"));
}

#[test]
fn dkim_key_makes_dkim_fail_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fault = Fault::on("dkim-key");
    let (_, txt) = dig(&["lab._domainkey.fault.test", "TXT"]);
    let published: String = txt.concat().replace(['"', ' '], "");
    let other = std::fs::read_to_string(lab_path("dkim/fault.test.other.lab.pub")).expect("key");
    assert!(
        published.ends_with(other.trim()),
        "the other key is published: {published}"
    );
    let json = once(dir.path(), "fault2", "");
    let r = result(&json, "fault");
    assert_eq!(r["verdict"]["dkim"], "fail", "{r:#}");
    assert_eq!(r["verdict"]["spf"], "pass", "{r:#}");
    // SPF passes aligned (envelope bounces@fault.test), so DMARC still passes (RFC 7489 §4.2).
    assert_eq!(r["verdict"]["dmarc"], "pass", "{r:#}");

    fault.off();
    let json = once(dir.path(), "fault2", "");
    assert_all_pass(result(&json, "fault"));
}

#[test]
fn ptr_removes_the_fault_routes_ptr() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        dig(&["-x", "127.0.0.9"]).1,
        ["mail.fault.test."],
        "the PTR before the fault"
    );
    let mut fault = Fault::on("ptr");
    let (status, answers) = dig(&["-x", "127.0.0.9"]);
    assert_eq!(status, "NXDOMAIN", "{answers:?}");
    assert!(causes(&check_dns()).contains(&"ptr_missing".to_string()));
    // The other addresses keep theirs.
    assert_eq!(dig(&["-x", "127.0.0.2"]).1, ["mail.sender.test."]);
    // The receiving MX finds no name for 127.0.0.9: rspamd's rDNS rules fire.
    let json = once(dir.path(), "fault3", "");
    let r = result(&json, "fault");
    assert!(rules(r).iter().any(|x| x == "RDNS_NONE"), "{r:#}");

    fault.off();
    assert_eq!(dig(&["-x", "127.0.0.9"]).1, ["mail.fault.test."]);
    let report = check_dns();
    assert_eq!(causes(&report), Vec::<String>::new(), "{report:#}");
    let json = once(dir.path(), "fault3", "");
    let r = result(&json, "fault");
    assert_all_pass(r);
    assert!(!rules(r).iter().any(|x| x == "RDNS_NONE"), "{r:#}");
}

#[test]
fn listed_puts_the_fault_routes_address_in_the_lab_dnsbl() {
    let (status, _) = dig(&["9.0.0.127.dnsbl.test", "A"]);
    assert_eq!(status, "NXDOMAIN", "127.0.0.9 listed before the fault");
    let mut fault = Fault::on("listed");
    assert_eq!(dig(&["9.0.0.127.dnsbl.test", "A"]).1, ["127.0.0.2"]);
    let (_, txt) = dig(&["9.0.0.127.dnsbl.test", "TXT"]);
    assert!(txt.concat().contains("127.0.0.9 is listed"), "{txt:?}");
    let report = check_dns();
    assert!(
        causes(&report).contains(&"blocklisted".to_string()),
        "{report:#}"
    );
    // 127.0.0.6 (the listed route) stays listed, the good route's address stays clean.
    assert_eq!(dig(&["6.0.0.127.dnsbl.test", "A"]).1, ["127.0.0.2"]);
    assert_eq!(dig(&["2.0.0.127.dnsbl.test", "A"]).1, ["127.0.0.2"]);
    // The fault seeds' MX consults the list, as the big receivers do: the probe is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let json = once(dir.path(), "fault3", "");
    let r = result(&json, "fault");
    assert_eq!(r["state"], "rejected", "{r:#}");
    assert!(
        r["bounce"]["diagnostic_code"]
            .as_str()
            .is_some_and(|d| d.starts_with("554") && d.contains("dnsbl.test")),
        "{r:#}"
    );
    assert!(
        r["diagnosis"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c["cause"] == "blocklisted")),
        "{r:#}"
    );

    fault.off();
    assert_eq!(dig(&["9.0.0.127.dnsbl.test", "A"]).0, "NXDOMAIN");
    let report = check_dns();
    assert_eq!(causes(&report), Vec::<String>::new(), "{report:#}");
    assert_eq!(dig(&["6.0.0.127.dnsbl.test", "A"]).1, ["127.0.0.2"]);
}

#[test]
fn mx_refuse_bounces_the_fault_route_with_a_5xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fault = Fault::on("mx-refuse");
    let json = once(dir.path(), "fault4", "");
    let r = result(&json, "fault");
    assert_eq!(r["state"], "rejected", "{r:#}");
    assert_eq!(r["placement"], "rejected", "{r:#}");
    assert_eq!(r["bounce"]["action"], "failed", "{r:#}");
    assert_eq!(r["bounce"]["status"], "5.7.1", "{r:#}");
    assert!(
        r["bounce"]["diagnostic_code"]
            .as_str()
            .is_some_and(|d| d.starts_with("550 5.7.1") && d.contains("mx-refuse")),
        "{r:#}"
    );

    fault.off();
    let json = once(dir.path(), "fault4", "");
    assert_all_pass(result(&json, "fault"));
}

#[test]
fn imap_down_stops_the_fault_seeds_imap_and_delivery_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailbox = fault_mailbox(dir.path(), "fault6");
    assert!(port_open("127.0.0.13:993") && port_open("127.0.0.13:143"));
    let mut fault = Fault::on("imap-down");
    assert!(!port_open("127.0.0.13:993"), "IMAPS still answers");
    assert!(!port_open("127.0.0.13:143"), "IMAP still answers");
    assert!(in_inbox(&mailbox, "<none@fault.test>").is_err());
    // The lab counts as up: the daemon is stopped by a fault that is on.
    let status = mailstack(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .lines()
            .any(|l| l.starts_with("dovecot-fault ") && l.ends_with("stopped by fault imap-down")),
        "{}",
        text(&status)
    );
    // Delivery (LMTP, a Dovecot service) waits on the fault seeds' MX meanwhile.
    let id = submit_fault_mail("fault6");
    std::thread::sleep(Duration::from_secs(3));

    fault.off();
    assert!(port_open("127.0.0.13:993") && port_open("127.0.0.13:143"));
    let seconds = wait_delivered(&mailbox, &id, Duration::from_secs(30));
    eprintln!("mail sent while IMAP was down was in the INBOX {seconds:.1} s after imap-down off");
}

#[test]
fn mx_down_queues_the_mail_until_the_mx_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailbox = fault_mailbox(dir.path(), "fault5");
    let mut fault = Fault::on("mx-down");
    assert!(
        !port_open("127.0.0.12:25"),
        "the fault seeds' MX still answers"
    );
    assert!(port_open("127.0.0.3:25"), "the seed.test MX must stay up");
    let status = mailstack(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    // The sending Postfix accepts the mail and keeps it queued.
    let id = submit_fault_mail("fault5");
    let t0 = Instant::now();
    while queued_for("fault5") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "not queued");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(
        in_inbox(&mailbox, &id),
        Ok(false),
        "delivered with the MX down"
    );
    assert!(queued_for("fault5") > 0, "no longer queued");

    fault.off();
    assert!(port_open("127.0.0.12:25"));
    // The sending Postfix's backoff is capped at 30 s (maximal_backoff_time).
    let seconds = wait_delivered(&mailbox, &id, Duration::from_secs(45));
    eprintln!("queued mail delivered {seconds:.1} s after mx-down off");
}

/// The fault seeds' MX's hold queue entries for `user`@fault-seed.test (postqueue -j).
fn held_for(user: &str) -> usize {
    let out = Command::new("postqueue")
        .arg("-c")
        .arg(lab_path("postfix-fault/etc"))
        .arg("-j")
        .output()
        .expect("run postqueue");
    let needle = format!("\"{user}@fault-seed.test\"");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|m| m["queue_name"] == "hold")
                && l.contains(&needle)
        })
        .count()
}

#[test]
fn mx_hold_keeps_the_mail_at_the_mx_without_a_delay_notice_until_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailbox = fault_mailbox(dir.path(), "fault8");
    let mut fault = Fault::on("mx-hold");
    // The MX accepts it (the sending Postfix's queue empties) and holds it.
    let id = submit_fault_mail("fault8");
    let t0 = Instant::now();
    while held_for("fault8") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "not in the MX's hold queue"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(queued_for("fault8"), 0, "still queued at the sending side");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(in_inbox(&mailbox, &id), Ok(false), "delivered while held");

    fault.off();
    assert_eq!(held_for("fault8"), 0, "still held after mx-hold off");
    let seconds = wait_delivered(&mailbox, &id, Duration::from_secs(30));
    eprintln!("held mail delivered {seconds:.1} s after mx-hold off");
}

#[test]
fn misuse_of_the_fault_switch_is_refused_with_a_clear_message() {
    for (args, says) in [
        (&["fault"][..], "usage: lab/mailstack fault NAME on|off"),
        (
            &["fault", "no-such-fault", "on"][..],
            "unknown fault 'no-such-fault'",
        ),
        (
            &["fault", "ptr", "maybe"][..],
            "expected on or off, got 'maybe'",
        ),
        (&["fault", "ptr"][..], "usage:"),
        (&["fault", "on", "ptr"][..], "the fault's name comes first"),
        (&["fault", "all", "on"][..], "fault all: only 'off'"),
        (&["fault", "status", "extra"][..], "usage:"),
    ] {
        let out = mailstack(args);
        assert!(!out.status.success(), "{args:?} succeeded: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {}", text(&out));
        // Every fault is named in the usage.
        if says.starts_with("usage") {
            for f in [
                "spam-content",
                "dkim-key",
                "ptr",
                "listed",
                "mx-refuse",
                "imap-down",
                "mx-down",
                "mx-hold",
            ] {
                assert!(err.contains(f), "{args:?} does not name {f}: {err}");
            }
        }
    }
    let out = mailstack(&["fault", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 8);
}
