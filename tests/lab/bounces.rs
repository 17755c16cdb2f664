//! Bounces against the real lab: the `rejected` route's probe is refused at RCPT with Gmail's
//! 550 5.7.25 no-PTR reply and resolves as `rejected` with cause `ptr_missing` seconds after
//! sending (long before `probe.timeout`); the `deferred` route's probe gets a delay notice
//! (421 4.7.0 TSS04), is `deferred`, then `missing` at its timeout with the deferral shown.
//! A foreign bounce and a bounce with a forged probe token in the bounce mailbox are left
//! exactly as they were.

use crate::common;
use std::path::Path;
use std::process::Command;

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
    let bounce_box = format!(
        "[bounce_mailboxes.lab]\naddress = \"bounces@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"bounces\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\n"
    );
    write_config(
        dir,
        &format!(
            "{}{routes}{}{bounce_box}",
            probe_section(dir, "12s", ""),
            seed("d12", "seed12")
        ),
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

/// The planted messages as they are now in the bounce mailbox (by Message-ID).
async fn find(
    mailbox: &mailcanary::config::Seed,
    ids: &[String],
    plant: Option<&[(String, Vec<u8>)]>,
) -> Vec<Vec<u8>> {
    let mut s = mailcanary::imap::connect::login(mailbox, &Default::default())
        .await
        .expect("login");
    if let Some(messages) = plant {
        for (_, raw) in messages {
            s.append("INBOX", None, None, raw).await.expect("append");
        }
    }
    s.select("INBOX").await.expect("select");
    let mut out = Vec::new();
    for id in ids {
        let uids = s
            .uid_search(format!("HEADER Message-ID \"{id}\""))
            .await
            .expect("search");
        for uid in uids {
            let fetched: Vec<_> = s
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await
                .expect("fetch")
                .try_collect()
                .await
                .expect("fetch stream");
            out.extend(fetched.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)));
        }
    }
    let _ = s.logout().await;
    out
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
