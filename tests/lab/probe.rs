//! End-to-end: `mailcanary once` against the real loopback mail lab (Postfix, rspamd,
//! policyd-spf, Dovecot, NSD). Each test reads its own seed mailbox.

use crate::common;
use std::process::Command;

use common::*;
use serde_json::Value;

fn once(config: &std::path::Path) -> (i32, Value) {
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run mailcanary once");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "once --json printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn result<'a>(json: &'a Value, route: &str) -> &'a Value {
    json["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["route"] == route))
        .unwrap_or_else(|| panic!("no result for route {route} in {json:#}"))
}

/// The classic IPv6 failure (issue #22): the sending Postfix leaves over IPv6 from ::1, which
/// has no PTR, while the admin's route lists only its IPv4 address. `once` reads the path the
/// probe took, sees ::1 on the receiving hop, audits it on the lab DNS and names `ptr_missing`
/// for the IPv6 address (with the fix naming it and its reverse zone) and
/// `unexpected_sending_ip`. Reads seed2, whose other test (mailstack.rs) only reads its own
/// message by Message-ID.
#[test]
fn once_audits_the_ipv6_address_the_mx_saw() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "30s", ""),
            route(
                "ipv6",
                "probe <probe@ipv6.test>",
                "sending_ips = [\"127.0.0.2\"]"
            ),
            seed("s2", "seed2")
        ),
    );
    let (_, json) = once(&config);
    let r = result(&json, "ipv6");
    assert_eq!(r["placement"], "inbox", "{r:#}");
    let seen = &r["path"]["seen"];
    assert_eq!(seen["ip"], "::1", "{r:#}");
    assert_eq!(seen["family"], "ipv6");
    assert_eq!(seen["helo"], "mail.ipv6.test");
    assert_eq!(seen["by"], "mx.seed.test");
    assert_eq!(seen["tls"], true, "{r:#}");
    let hops = r["path"]["hops"].as_array().expect("hops");
    assert!(hops.len() >= 2, "{r:#}");
    assert_eq!(r["seen_ip"]["ip"], "::1", "{r:#}");
    assert_eq!(r["seen_ip"]["expected"], false);
    let fix = |cause: &str| -> String {
        r["diagnosis"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["cause"] == cause))
            .and_then(|d| d["fix"].as_str())
            .unwrap_or_else(|| panic!("no {cause} in {r:#}"))
            .to_string()
    };
    let ptr = fix("ptr_missing");
    assert!(
        ptr.contains("the IPv6 address ::1")
            && ptr.contains("0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"),
        "{ptr}"
    );
    assert!(fix("unexpected_sending_ip").contains("the IPv6 address ::1"));
    assert_eq!(r["status"], "warning", "{r:#}");

    // The readable form ends with the providers' requirements the probe shows unmet: Gmail and
    // Yahoo require a PTR (with FCrDNS) of the address they see.
    let out = Command::new(bin())
        .args(["once", "--config"])
        .arg(&config)
        .output()
        .expect("run mailcanary once");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with(
            "requirement ipv6: ptr_fcrdns unmet at Gmail, Yahoo Mail (the IPv6 address ::1 has no \
             PTR record): ptr_missing: Publish a PTR record for the IPv6 address ::1"
        )),
        "{text}"
    );
}

#[test]
fn once_reports_every_fault_route_of_the_lab() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "30s", ""),
            all_routes(),
            seed("s3", "seed3")
        ),
    );
    let (code, json) = once(&config);
    assert_eq!(
        json["results"].as_array().map(Vec::len),
        Some(6),
        "{json:#}"
    );

    let good = result(&json, "good");
    assert_eq!(good["placement"], "inbox", "{good:#}");
    assert_eq!(good["folder"], "INBOX");
    for m in ["spf", "dkim", "dmarc"] {
        assert_eq!(good["verdict"][m], "pass", "good: {m} {good:#}");
    }
    assert_eq!(good["verdict"]["authserv_id"], "mx.seed.test");
    assert_eq!(good["smtp"]["code"], 250);
    assert!(
        good["smtp"]["queue_id"].is_string(),
        "Postfix names its queue id: {good:#}"
    );
    assert!(
        good["delivery_seconds"]
            .as_f64()
            .is_some_and(|d| d > 0.0 && d < 30.0)
    );
    assert_eq!(good["status"], "ok");

    let spam = result(&json, "spam");
    assert_eq!(spam["placement"], "spam", "{spam:#}");
    assert_eq!(spam["folder"], "Junk");

    assert_eq!(result(&json, "spf-fail")["verdict"]["spf"], "fail");
    assert_eq!(result(&json, "dkim-fail")["verdict"]["dkim"], "fail");
    assert_eq!(result(&json, "dmarc-fail")["verdict"]["dmarc"], "fail");

    // rspamd reports no iprev: the missing PTR shows as its rDNS rules instead.
    let no_ptr = result(&json, "no-ptr");
    let iprev = no_ptr["verdict"]["iprev"].as_str().unwrap_or("none");
    let rules: Vec<&str> = no_ptr["spam"]["rules"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        (iprev != "none" && iprev != "pass")
            || rules
                .iter()
                .any(|r| r.starts_with("RDNS_NONE") || r.starts_with("HFILTER_HOSTNAME_UNKNOWN")),
        "no-ptr must show the missing rDNS: {no_ptr:#}"
    );
    assert_eq!(no_ptr["status"], "warning", "{no_ptr:#}");

    assert_eq!(json["status"], "warning");
    assert_eq!(
        code, 1,
        "exit code 1 (warning): spam and auth failures, nothing missing"
    );
}

#[test]
fn a_probe_pending_at_sigkill_is_resolved_after_restart_and_never_resent() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = probe_section(dir.path(), "60s", "");
    let good = route("good", "probe <probe@sender.test>", "");
    // First life: the mailbox is unreadable (nothing listens on that port), so the probe stays
    // pending until we kill the process.
    let broken = write_config(
        dir.path(),
        &format!("{probe}{good}{}", seed_at("s5", "seed5", "127.0.0.3", 9)),
    );
    let mut child = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&broken)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let db = dir.path().join("state.sqlite");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let sent_id = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe was never recorded as sent"
        );
        if let Ok(conn) = rusqlite::Connection::open(&db)
            && let Ok(id) = conn.query_row(
                "SELECT probe_id FROM probes WHERE state = 'sent'",
                [],
                |r| r.get::<_, String>(0),
            )
        {
            break id;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // Second life: the mailbox is readable again.
    let fixed = write_config(dir.path(), &format!("{probe}{good}{}", seed("s5", "seed5")));
    let (_code, _json) = once(&fixed);
    let conn = rusqlite::Connection::open(&db).expect("open state");
    let (state, placement): (String, String) = conn
        .query_row(
            "SELECT state, placement FROM probes WHERE probe_id = ?1",
            [&sent_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the killed probe is still recorded");
    assert_eq!((state.as_str(), placement.as_str()), ("resolved", "inbox"));
    let rows: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM probes WHERE probe_id = ?1",
            [&sent_id],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(rows, 1, "a probe id is recorded (and sent) once");
    let rounds: i64 = conn
        .query_row("SELECT COUNT(*) FROM probes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        rounds, 2,
        "one probe per life: the pending one was watched, not resent"
    );
}

#[test]
fn an_unreadable_mailbox_is_unknown_not_missing() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "3s", ""),
            route("good", "probe <probe@sender.test>", ""),
            seed_at("s6", "seed6", "127.0.0.3", 9)
        ),
    );
    let (code, json) = once(&config);
    let r = result(&json, "good");
    assert_eq!(r["placement"], "unknown", "{r:#}");
    assert_eq!(r["error_reason"], "network", "{r:#}");
    assert_eq!(code, 3, "unknown, not critical");
    // The message did arrive: a later round with a readable mailbox finds it (late).
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            probe_section(dir.path(), "10s", ""),
            route("good", "probe <probe@sender.test>", ""),
            seed("s6", "seed6")
        ),
    );
    let (_, _) = once(&config);
    let conn = rusqlite::Connection::open(dir.path().join("state.sqlite")).expect("open");
    let late: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM probes WHERE state = 'resolved' AND late = 1",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        late, 1,
        "the probe that was unknown is recorded as late once found"
    );
}

/// The inbound direction (issue #22): a route submitted through the lab's provider side
/// (127.0.0.14:587, standing for a big provider) to the admin's own mailbox (admin@sender.test),
/// so the result judges the admin's own MX, mail.sender.test: delivered to INBOX with SPF, DKIM
/// (the provider's signature) and DMARC passing as that MX reports them, and `direction`
/// says which way the pair measures. The admin
/// mailbox's other test (mailstack.rs) only reads its own messages by Message-ID.
#[test]
fn once_measures_the_inbound_direction_through_the_provider_side() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "{}[routes.world]\nhost = \"127.0.0.14\"\nport = 587\ntls = \"starttls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\n\
             username = \"submit\"\npassword_file = \"{LAB_DIR}/secrets/submit-password\"\n\
             from = \"probe <probe@provider.test>\"\nenvelope_from = \"bounces@provider.test\"\ndirection = \"inbound\"\n\n\
             [seeds.admin]\naddress = \"admin@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\ntls = \"tls\"\n\
             ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"admin\"\npassword_file = \"{LAB_DIR}/secrets/imap-password\"\n\
             authserv_ids = [\"mail.sender.test\"]\npoll_interval = \"20ms\"\nroutes = [\"world\"]\n",
            probe_section(dir.path(), "30s", ""),
        ),
    );
    let (code, json) = once(&config);
    let r = result(&json, "world");
    assert_eq!(r["direction"], "inbound", "{r:#}");
    assert_eq!(r["seed"], "admin", "{r:#}");
    assert_eq!(r["placement"], "inbox", "{r:#}");
    assert_eq!(r["verdict"]["authserv_id"], "mail.sender.test", "{r:#}");
    for m in ["spf", "dkim", "dmarc"] {
        assert_eq!(r["verdict"][m], "pass", "{m}: {r:#}");
    }
    assert_eq!(code, 0, "{json:#}");
}

/// Several probes of a round over one SMTP session (issue #23), through the lab's Postfix
/// submission (STARTTLS + AUTH, DKIM by rspamd): one send at a time, so the first opens the
/// session and the next follow on it. Each is accepted with its own queue id, lands in the
/// inbox and passes SPF, DKIM and DMARC, as a probe on a fresh session does. The session1..3
/// lab mailboxes belong to this test.
#[test]
fn probes_of_a_round_follow_one_another_over_one_smtp_session() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let seeds: String = (1..=3)
        .map(|i| seed(&format!("s{i}"), &format!("session{i}")))
        .collect();
    let config = write_config(
        dir.path(),
        &format!(
            "{}{}{seeds}",
            probe_section(dir.path(), "30s", "concurrency = 1\ncleanup = \"delete\""),
            route(
                "good",
                "probe <probe@sender.test>",
                "sending_ips = [\"127.0.0.2\"]\ndkim_selector = \"lab\""
            ),
        ),
    );
    let (code, json) = once(&config);
    let results = json["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{json:#}");
    let mut queue_ids = Vec::new();
    let mut sessions = Vec::new();
    for r in results {
        assert_eq!(r["placement"], "inbox", "{r:#}");
        for m in ["spf", "dkim", "dmarc"] {
            assert_eq!(r["verdict"][m], "pass", "{m}: {r:#}");
        }
        assert_eq!(r["smtp"]["code"], 250, "{r:#}");
        queue_ids.push(
            r["smtp"]["queue_id"]
                .as_str()
                .expect("queue id")
                .to_string(),
        );
        sessions.push(r["smtp"]["session"].as_str().expect("session").to_string());
    }
    queue_ids.sort();
    queue_ids.dedup();
    assert_eq!(queue_ids.len(), 3, "one queued message per probe: {json:#}");
    sessions.sort();
    // One opened the session; the watchers' first looks are done before the first send, so the
    // next two follow it within the idle limit.
    assert_eq!(sessions, ["fresh", "reused", "reused"], "{json:#}");
    assert_eq!(code, 0, "{json:#}");
}
