//! Fault injection against the real lab: `mailcanary run` is killed with SIGKILL at random
//! moments of its rounds, twenty times, then one `once` round picks up what was left. Every
//! probe must then be recorded exactly once, none delivered twice, and none that the SMTP
//! server accepted lost (left `sent`, or in a mailbox without its result).

use crate::common;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures::TryStreamExt;
use rand::Rng;

const SEEDS: [(&str, &str); 2] = [("k18", "seed18"), ("k19", "seed19")];

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let probe = format!(
        "[probe]\nschedule = \"*/2 * * * * *\"\ntimeout = \"10s\"\nlate_window = \"10m\"\ncleanup = \"keep\"\n\
         listen = \"127.0.0.1:0\"\nstate = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\n\
         [dns_audit]\nschedule = \"0 0 1 1 *\"\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n",
        dir.join("state.sqlite").display()
    );
    let routes = format!(
        "{}{}",
        route("good", "probe <probe@sender.test>", ""),
        route("again", "probe <probe@sender.test>", "")
    );
    let seeds: String = SEEDS.iter().map(|(n, u)| seed(n, u)).collect();
    write_config(dir, &format!("{probe}{routes}{seeds}"))
}

/// Probe ids of the messages in a seed's INBOX and Junk, with how often each was delivered.
async fn delivered(seed: &mailcanary::config::Seed, wipe: bool) -> BTreeMap<String, usize> {
    let mut s = mailcanary::imap::connect::login(seed, &Default::default())
        .await
        .expect("login");
    let mut out = BTreeMap::new();
    for folder in ["INBOX", "Junk"] {
        s.select(folder).await.expect("select");
        if wipe {
            empty_selected_folder(&mut s).await;
            continue;
        }
        let fetched: Vec<_> = s
            .uid_fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (X-MAILCANARY-PROBE)])")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetch stream");
        for f in fetched {
            let header = String::from_utf8_lossy(f.header().unwrap_or_default()).to_string();
            if let Some(id) = header
                .split_once(':')
                .and_then(|(_, v)| v.trim().split('.').nth(1).map(str::to_string))
            {
                *out.entry(id).or_insert(0) += 1;
            }
        }
    }
    let _ = s.logout().await;
    out
}

#[test]
fn twenty_sigkills_lose_nothing_and_send_nothing_twice() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path());
    let cfg = mailcanary::config::load(&path).expect("valid config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for seed in &cfg.seeds {
        rt.block_on(delivered(seed, true));
    }
    let mut rng = rand::rng();
    for _ in 0..20 {
        let mut child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mailcanary run");
        std::thread::sleep(Duration::from_millis(rng.random_range(200..2500)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&path)
        .output()
        .expect("run once");
    assert!(
        out.status.code().is_some(),
        "once died: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let db = rusqlite::Connection::open(dir.path().join("state.sqlite")).expect("open state");
    let mut stmt = db
        .prepare("SELECT probe_id, state FROM probes")
        .expect("query");
    let rows: BTreeMap<String, String> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(rows.len() >= 8, "too few probes recorded: {}", rows.len());
    let mut mailbox: BTreeMap<String, usize> = BTreeMap::new();
    for seed in &cfg.seeds {
        mailbox.extend(rt.block_on(delivered(seed, false)));
    }
    assert!(!mailbox.is_empty(), "no probe arrived at all");
    for (id, copies) in &mailbox {
        assert_eq!(*copies, 1, "probe {id} was delivered {copies} times");
        assert_eq!(
            rows.get(id).map(String::as_str),
            Some("resolved"),
            "probe {id} is in a mailbox but not resolved in the state"
        );
    }
    let lost: BTreeSet<&String> = rows
        .iter()
        .filter(|(_, state)| state.as_str() == "sent")
        .map(|(id, _)| id)
        .collect();
    assert!(lost.is_empty(), "accepted probes left unresolved: {lost:?}");
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for s in rows.values() {
        *states.entry(s.as_str()).or_insert(0) += 1;
    }
    eprintln!(
        "{} probes recorded, {} delivered, states {states:?}",
        rows.len(),
        mailbox.len()
    );
}
