//! A probe must never delete or alter a message it did not send: ordinary mail and a forged
//! probe message in a seed mailbox survive rounds byte for byte.

use crate::common;
use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use futures::TryStreamExt;

fn seed_config(dir: &std::path::Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{}{}{}",
            probe_section(dir, "20s", ""),
            route("good", "probe <probe@sender.test>", ""),
            seed("s7", "seed7")
        ),
    )
}

async fn snapshot(seed: &mailcanary::config::Seed) -> BTreeMap<u32, Vec<u8>> {
    let mut s = mailcanary::imap::connect::login(seed, &Default::default())
        .await
        .expect("login");
    s.select("INBOX").await.expect("select");
    let fetched: Vec<_> = s
        .uid_fetch("1:*", "(UID BODY.PEEK[])")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch stream");
    let mut out = BTreeMap::new();
    for f in fetched {
        if let (Some(uid), Some(body)) = (f.uid, f.body()) {
            out.insert(uid, body.to_vec());
        }
    }
    let _ = s.logout().await;
    out
}

#[test]
fn ordinary_and_forged_messages_are_never_touched() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = seed_config(dir.path());
    let config = mailcanary::config::load(&path).expect("valid config");
    let seed = config.seeds[0].clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = rt.block_on(async {
        let mut s = mailcanary::imap::connect::login(&seed, &Default::default()).await.expect("login");
        s.select("INBOX").await.expect("select");
        // Start from an empty test mailbox (this test's own seed7).
        empty_selected_folder(&mut s).await;
        for i in 0..20 {
            let msg = format!(
                "From: Friend {i} <friend{i}@example.org>\r\nTo: seed7@seed.test\r\nSubject: ordinary message {i}\r\n\
                 Message-ID: <ordinary-{i}@example.org>\r\nDate: Sat, 28 Nov 2026 04:00:00 +0000\r\n\r\nHello number {i}.\r\n"
            );
            s.append("INBOX", Some("(\\Flagged)"), None, msg.as_bytes()).await.expect("append");
        }
        // Looks like a probe, carries our header, but the MAC is wrong.
        let forged = "From: probe <probe@sender.test>\r\nTo: seed7@seed.test\r\nSubject: Your weekly account summary\r\n\
                      Message-ID: <mc.0123456789abcdef0123456789abcdef@sender.test>\r\n\
                      X-Mailcanary-Probe: v1.0123456789abcdef0123456789abcdef.good.s7.1795840000.00112233445566778899aabbccddeeff\r\n\
                      Date: Sat, 28 Nov 2026 04:00:00 +0000\r\n\r\nforged\r\n";
        s.append("INBOX", None, None, forged.as_bytes()).await.expect("append forged");
        let _ = s.logout().await;
        snapshot(&seed).await
    });
    assert_eq!(before.len(), 21);

    for _ in 0..2 {
        let out = Command::new(bin())
            .args(["once", "--json", "--config"])
            .arg(&path)
            .output()
            .expect("once");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["results"][0]["placement"], "inbox", "{json:#}");
    }
    let after = rt.block_on(snapshot(&seed));
    assert_eq!(
        after, before,
        "every message we did not send is still there, byte for byte (and our probes were cleaned up)"
    );
}
