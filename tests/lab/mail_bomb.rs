//! A mail bomb cannot hide a probe or blow up memory: twenty forged 5 MB messages that carry a
//! probe header sit in the seed's INBOX (anyone who can mail the seed could put them there);
//! the real probe is still found in the inbox, the forged ones are counted and left exactly
//! as they are, and the process stays small (it never fetches an unverified message's body).

use crate::common;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;

const FORGED: usize = 20;
const FORGED_BYTES: usize = 5 * 1024 * 1024;

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{}{}{}",
            probe_section(dir, "30s", ""),
            route("good", "probe <probe@sender.test>", ""),
            seed("b13", "seed13")
        ),
    )
}

fn forged(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: probe <probe@sender.test>\r\nTo: seed13@seed.test\r\nSubject: forged {i}\r\n\
         Message-ID: <forged-{i}@sender.test>\r\nDate: Sun, 29 Nov 2026 04:00:00 +0000\r\n\
         X-Mailcanary-Probe: v1.{i:032x}.good.b13.1795840000.00112233445566778899aabbccddeeff\r\n\r\n"
    )
    .into_bytes();
    let line = b"All work and no play makes a forged probe a large one.\r\n";
    while m.len() < FORGED_BYTES {
        m.extend_from_slice(line);
    }
    m
}

async fn inbox_count(seed: &mailcanary::config::Seed, fill: bool) -> usize {
    let mut s = mailcanary::imap::connect::login(seed, &Default::default())
        .await
        .expect("login");
    s.select("INBOX").await.expect("select");
    if fill {
        empty_selected_folder(&mut s).await;
        for i in 0..FORGED {
            s.append("INBOX", None, None, &forged(i))
                .await
                .expect("append");
        }
    }
    let n = s.search("ALL").await.expect("search").len();
    let _ = s.logout().await;
    n
}

#[test]
fn twenty_forged_five_megabyte_probes_hide_nothing() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path());
    let cfg = mailcanary::config::load(&path).expect("valid config");
    let seed = cfg.seeds[0].clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    assert_eq!(rt.block_on(inbox_count(&seed, true)), FORGED);

    let started = Instant::now();
    let child = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run once");
    let mut rss = common::rss::Poller::start(child.id());
    let out = child.wait_with_output().expect("once output");
    let peak_mb = rss.stop() as f64 / 1024.0;
    eprintln!(
        "mail bomb: once took {:.1} s, peak RSS {peak_mb:.1} MB",
        started.elapsed().as_secs_f64()
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let result = &report["results"][0];
    assert_eq!(result["state"], "resolved", "{result}");
    assert_eq!(result["placement"], "inbox", "{result}");
    assert!(peak_mb < 100.0, "peak RSS {peak_mb:.1} MB");
    // The probe was cleaned up; every forged message is still there.
    assert_eq!(rt.block_on(inbox_count(&seed, false)), FORGED);
}
