//! Bounces against the real lab: the `rejected` route's probe is refused at RCPT with Gmail's
//! 550 5.7.25 no-PTR reply and resolves as `rejected` with cause `ptr_missing` seconds after
//! sending (long before `probe.timeout`); the `deferred` route's probe gets a delay notice
//! (421 4.7.0 TSS04), is `deferred`, then `missing` at its timeout with the deferral shown.
//! A foreign bounce and a bounce with a forged probe token in the bounce mailbox are left
//! exactly as they were.
//!
//! Forged bounces for a real probe in flight (issue #20): a running instance's `deferred`
//! probe, and failure bounces written by someone who knows everything of it but the token key
//! — its probe id and Message-ID, with a bare envelope id, a badly signed one, a token with a
//! made-up MAC. The probe is not rejected (its real delay notice still defers it), each
//! forged bounce is counted in `mailcanary_forged_bounces_total` and left exactly as it was:
//! same bytes, no flag set.

use crate::common;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::live::wait_for;
use common::support::series_value;
use common::*;
use futures::TryStreamExt;

fn config(dir: &Path) -> std::path::PathBuf {
    let routes = format!(
        "{}{}",
        route(
            "rejected",
            "probe <probe@rejected.test>",
            "envelope_from = \"bounces@rejected.test\"\nbounces = \"lab\""
        ),
        route(
            "deferred",
            "probe <probe@deferred.test>",
            "envelope_from = \"bounces@deferred.test\"\nbounces = \"lab\""
        ),
    );
    write_config(
        dir,
        &format!(
            "{}{routes}{}{}",
            probe_section(dir, "12s", ""),
            seed("d12", "seed12"),
            bounce_box()
        ),
    )
}

/// The lab's bounce mailbox (user `bounces`), shared by the routes of rejected.test and
/// deferred.test.
fn bounce_box() -> String {
    format!(
        "[bounce_mailboxes.lab]\naddress = \"bounces@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"bounces\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\n"
    )
}

/// A bounce of someone else's message (the corpus' Postfix no-PTR bounce), and the same with a
/// probe token whose MAC is wrong; each with its own Message-ID to find it again.
fn planted() -> Vec<(String, Vec<u8>)> {
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dsn/postfix-no-ptr.eml"
    ))
    .expect("corpus bounce");
    let nonce = std::process::id();
    let foreign = corpus.replace(
        "Message-Id: <20250303100005.5B2C81F4A1@mail.sender.test>",
        &format!("Message-Id: <foreign-{nonce}@mail.sender.test>"),
    );
    let forged = corpus
        .replace(
            "Message-Id: <20250303100005.5B2C81F4A1@mail.sender.test>",
            &format!("Message-Id: <forged-{nonce}@mail.sender.test>"),
        )
        .replace(
            "Subject: ",
            "X-Mailcanary-Probe: v1.0123456789abcdef0123456789abcdef.rejected.d12.1795840000.00112233445566778899aabbccddeeff\nSubject: ",
        );
    vec![
        (
            format!("<foreign-{nonce}@mail.sender.test>"),
            foreign.replace('\n', "\r\n").into_bytes(),
        ),
        (
            format!("<forged-{nonce}@mail.sender.test>"),
            forged.replace('\n', "\r\n").into_bytes(),
        ),
    ]
}

/// The planted messages as they are now in the bounce mailbox (by Message-ID), read-only.
async fn find(
    mailbox: &mailcanary::config::Seed,
    ids: &[String],
    plant: Option<&[(String, Vec<u8>)]>,
) -> Vec<Vec<u8>> {
    flags_and_bytes(mailbox, ids, plant)
        .await
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

#[test]
fn rejected_in_seconds_deferred_then_missing_and_foreign_bounces_untouched() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path());
    let cfg = mailcanary::config::load(&path).expect("valid config");
    let mailbox = cfg.bounce_mailboxes[0].clone();
    let messages = planted();
    let ids: Vec<String> = messages.iter().map(|(id, _)| id.clone()).collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = rt.block_on(find(&mailbox, &ids, Some(&messages)));
    assert_eq!(before.len(), 2, "planted bounces not found");

    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&path)
        .output()
        .expect("run once");
    assert_eq!(out.status.code(), Some(2), "a rejected probe is critical");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let result = |route: &str| {
        report["results"]
            .as_array()
            .and_then(|l| l.iter().find(|r| r["route"] == route))
            .cloned()
            .unwrap_or_else(|| panic!("no result for {route}: {report}"))
    };
    let causes = |r: &serde_json::Value| -> Vec<String> {
        r["diagnosis"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|c| c["cause"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };

    let rejected = result("rejected");
    assert_eq!(rejected["state"], "rejected", "{rejected}");
    assert_eq!(rejected["placement"], "rejected", "{rejected}");
    assert_eq!(rejected["status"], "critical", "{rejected}");
    assert_eq!(causes(&rejected), ["ptr_missing"], "{rejected}");
    assert_eq!(rejected["bounce"]["status"], "5.7.25", "{rejected}");
    assert_eq!(rejected["bounce"]["action"], "failed", "{rejected}");
    assert!(
        rejected["bounce"]["diagnostic_code"]
            .as_str()
            .is_some_and(|d| d.starts_with("550 5.7.25") && d.contains("PTR record")),
        "{rejected}"
    );

    let deferred = result("deferred");
    assert_eq!(deferred["state"], "missing", "{deferred}");
    assert_eq!(deferred["bounce"]["action"], "delayed", "{deferred}");
    assert_eq!(deferred["bounce"]["status"], "4.7.0", "{deferred}");
    assert_eq!(causes(&deferred), ["rate_limited"], "{deferred}");

    // Resolved in seconds, not at the 12 s timeout: read it from the state.
    let db = rusqlite::Connection::open(dir.path().join("state.sqlite")).expect("state");
    let seconds: f64 = db
        .query_row(
            "SELECT resolved_at - sent_at FROM probes WHERE route = 'rejected'",
            [],
            |r| r.get(0),
        )
        .expect("rejected probe row");
    eprintln!("rejected probe resolved {seconds:.2} s after the SMTP server accepted it");
    assert!(seconds < 8.0, "rejected only after {seconds:.1} s");

    let after = rt.block_on(find(&mailbox, &ids, None));
    assert_eq!(
        after, before,
        "a bounce that is not ours was changed or removed"
    );
}

const FORGERY_INSTANCE: &str = "forgery-lab";

/// A `run` with the `deferred` route only: its probe stays in flight (delay notices come back,
/// never a failure) for the whole test.
fn forgery_config(dir: &Path, listen: &str) -> String {
    format!(
        "{}{}{}{}",
        run_sections(dir, listen, "*/30 * * * *", "90s", FORGERY_INSTANCE, ""),
        route(
            "deferred",
            "probe <probe@deferred.test>",
            "envelope_from = \"bounces@deferred.test\"\nbounces = \"lab\""
        ),
        seed("d12", "seed12"),
        bounce_box()
    )
}

/// A failure bounce (the corpus' Postfix 5.7.25 bounce) for the probe with this probe id and
/// Message-ID, written without the token key: `how` says what it carries besides the
/// Message-ID. Its own Message-ID is returned with it, to find it again.
fn forged_for(probe_id: &str, message_id: &str, how: &str) -> (String, Vec<u8>) {
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dsn/postfix-no-ptr.eml"
    ))
    .expect("corpus bounce");
    let own = format!(
        "<forged-{how}-{}-{probe_id}@mail.sender.test>",
        std::process::id()
    );
    let made_up = "00".repeat(16);
    let (envid, token) = match how {
        "message_id" => (None, None),
        "envelope_id" => (Some(probe_id.to_string()), None),
        _ => (
            Some(format!("mc1.{probe_id}.{made_up}")),
            Some(format!(
                "v2.{probe_id}.{FORGERY_INSTANCE}.deferred.d12.1795840000.{made_up}"
            )),
        ),
    };
    let mut raw = corpus
        .replace(
            "Message-Id: <20250303100005.5B2C81F4A1@mail.sender.test>",
            &format!("Message-Id: {own}"),
        )
        .replace(
            "Message-ID: <mc.0f1e2d3c4b5a69788796a5b4c3d2e1f0@sender.test>",
            &format!("Message-ID: {message_id}"),
        );
    let token_line = "X-Mailcanary-Probe: v1.0f1e2d3c4b5a69788796a5b4c3d2e1f0.main.gmail.1741000001.00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    raw = raw.replace(
        token_line,
        &token.map_or(String::new(), |t| format!("X-Mailcanary-Probe: {t}\n")),
    );
    if let Some(envid) = envid {
        raw = raw.replace(
            "Reporting-MTA: dns; mail.sender.test\n",
            &format!("Reporting-MTA: dns; mail.sender.test\nOriginal-Envelope-Id: {envid}\n"),
        );
    }
    (own, raw.replace('\n', "\r\n").into_bytes())
}

/// The messages of the bounce mailbox with these Message-IDs: (flags, bytes) each, read with
/// BODY.PEEK (read-only); with `plant`, appended first.
async fn flags_and_bytes(
    mailbox: &mailcanary::config::Seed,
    ids: &[String],
    plant: Option<&[(String, Vec<u8>)]>,
) -> Vec<(Vec<String>, Vec<u8>)> {
    let mut s = mailcanary::imap::connect::login(mailbox, &Default::default())
        .await
        .expect("login");
    if let Some(messages) = plant {
        for (_, raw) in messages {
            s.append("INBOX", None, None, raw).await.expect("append");
        }
    }
    s.examine("INBOX").await.expect("examine");
    let mut out = Vec::new();
    for id in ids {
        let uids = s
            .uid_search(format!("HEADER Message-ID \"{id}\""))
            .await
            .expect("search");
        for uid in uids {
            let fetched: Vec<_> = s
                .uid_fetch(uid.to_string(), "(FLAGS BODY.PEEK[])")
                .await
                .expect("fetch")
                .try_collect()
                .await
                .expect("fetch stream");
            for f in &fetched {
                let flags = f
                    .flags()
                    .map(|fl| format!("{fl:?}"))
                    .filter(|fl| fl != "Recent")
                    .collect();
                if let Some(body) = f.body() {
                    out.push((flags, body.to_vec()));
                }
            }
        }
    }
    let _ = s.logout().await;
    out
}

/// Deletes what the test planted in the bounce mailbox (by Message-ID), whatever happened.
struct Planted {
    mailbox: mailcanary::config::Seed,
    ids: Vec<String>,
}

impl Drop for Planted {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Runtime::new() else {
            return;
        };
        rt.block_on(async {
            let Ok(mut s) =
                mailcanary::imap::connect::login(&self.mailbox, &Default::default()).await
            else {
                return;
            };
            if s.select("INBOX").await.is_ok() {
                for id in &self.ids {
                    let Ok(uids) = s.uid_search(format!("HEADER Message-ID \"{id}\"")).await else {
                        continue;
                    };
                    for uid in uids {
                        if let Ok(stream) = s
                            .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
                            .await
                        {
                            let _: Result<Vec<_>, _> = stream.try_collect().await;
                        }
                        if let Ok(stream) = s.uid_expunge(uid.to_string()).await {
                            let _: Result<Vec<_>, _> = stream.try_collect().await;
                        }
                    }
                }
            }
            let _ = s.logout().await;
        });
    }
}

#[test]
fn forged_bounces_for_a_real_probe_change_nothing_and_are_left_alone() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let mailbox = {
        let path = write_config(dir.path(), &forgery_config(dir.path(), "127.0.0.1:0"));
        mailcanary::config::load(&path)
            .expect("valid config")
            .bounce_mailboxes[0]
            .clone()
    };
    let d = dir.path().to_path_buf();
    let daemon = start_run(dir.path(), "forgery", move |addr| forgery_config(&d, addr));
    let state = dir.path().join("state.sqlite");
    let probe_state = |probe_id: &str| -> Option<String> {
        let db = rusqlite::Connection::open(&state).ok()?;
        db.query_row(
            "SELECT state FROM probes WHERE probe_id = ?1",
            [probe_id],
            |r| r.get(0),
        )
        .ok()
    };
    // The first round's probe, accepted by the SMTP server and in flight.
    let (probe_id, message_id) = wait_for(
        "the deferred route's probe in flight",
        Duration::from_secs(30),
        || {
            let db = rusqlite::Connection::open(&state).map_err(|e| e.to_string())?;
            db.query_row(
                "SELECT probe_id, message_id FROM probes WHERE route = 'deferred' \
                 AND state IN ('sent', 'deferred') ORDER BY created_at LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(|e| e.to_string())
        },
        || daemon.log(),
    );
    // Someone who knows all of it but the key writes failure bounces for it.
    let forged: Vec<(String, Vec<u8>)> = ["message_id", "envelope_id", "token"]
        .into_iter()
        .map(|how| forged_for(&probe_id, &message_id, how))
        .collect();
    let ids: Vec<String> = forged.iter().map(|(id, _)| id.clone()).collect();
    let _planted = Planted {
        mailbox: mailbox.clone(),
        ids: ids.clone(),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = rt.block_on(flags_and_bytes(&mailbox, &ids, Some(&forged)));
    assert_eq!(before.len(), 3, "planted bounces not found");

    // Each is read, counted as forged, and the probe's real delay notice still defers it.
    wait_for(
        "the forged bounces counted, the real delay notice recorded",
        Duration::from_secs(45),
        || {
            let m = scrape(&daemon);
            let forged = |reason: &str| {
                series_value(
                    &m,
                    &format!(
                        "mailcanary_forged_bounces_total{{mailbox=\"lab\",reason=\"{reason}\"}}"
                    ),
                )
                .unwrap_or(0.0)
            };
            let counted = ["message_id", "envelope_id", "token"].map(forged);
            let state = probe_state(&probe_id);
            if counted.iter().all(|&n| n >= 1.0) && state.as_deref() == Some("deferred") {
                Ok(())
            } else {
                Err(format!(
                    "forged (message_id, envelope_id, token) {counted:?}, probe {state:?}"
                ))
            }
        },
        || daemon.log(),
    );
    let m = scrape(&daemon);
    for class in [
        "auth",
        "ptr",
        "blocklist",
        "policy",
        "rate_limit",
        "recipient",
        "other",
    ] {
        let series = format!(
            "mailcanary_probes_rejected_total{{class=\"{class}\",route=\"deferred\",seed=\"d12\"}}"
        );
        // No series is none counted (a pair's counters appear when first counted).
        assert_eq!(series_value(&m, &series).unwrap_or(0.0), 0.0, "{series}");
    }
    assert_eq!(
        series_value(
            &m,
            "mailcanary_last_placement{placement=\"rejected\",route=\"deferred\",seed=\"d12\"}"
        ),
        Some(0.0)
    );
    assert_eq!(probe_state(&probe_id).as_deref(), Some("deferred"));
    assert!(
        daemon
            .log()
            .contains("ignoring a bounce that names one of our probes"),
        "the forgery is logged"
    );

    let after = rt.block_on(flags_and_bytes(&mailbox, &ids, None));
    assert_eq!(
        after, before,
        "a forged bounce was changed, flagged or removed"
    );
}
