//! Several instances (`probe.instance`) sharing one seed mailbox and the token key, all with
//! `cleanup = "delete"`: each judges, counts and deletes only its own probes; another
//! instance's valid probe is counted as foreign (never forged) and left exactly as it is —
//! not deleted, not moved, not even `\Seen`.
//!
//! Mailbox: the lab's `seed20` (this test's only), Inbox and Junk (the `spam` route).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures::TryStreamExt;

use crate::common::live::wait_for;
use crate::common::support::{Daemon, series_value};
use crate::common::*;

const USER: &str = "seed20";
const SEED: &str = "shared";

fn config(dir: &Path, instance: &str, cleanup: &str, listen: &str) -> String {
    format!(
        "[probe]\nschedule = \"*/3 * * * * *\"\ntimeout = \"20s\"\nlate_window = \"10m\"\nlisten = \"{listen}\"\n\
         state = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\ninstance = \"{instance}\"\ncleanup = \"{cleanup}\"\n\
         [dns_audit]\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n{}{}{}",
        dir.join(format!("{instance}.sqlite")).display(),
        route("good", "probe <probe@sender.test>", ""),
        route(
            "spam",
            "probe <probe@sender.test>",
            "message.text = \"Hello,\\n\\nAct now: mailcanary-lab-spam-phrase. Limited offer!\\n\""
        ),
        seed(SEED, USER),
    )
}

/// Every message of `folder`: UID → (flags, raw bytes), read with BODY.PEEK (read-only).
async fn messages(
    seed: &mailcanary::config::Seed,
    folder: &str,
) -> BTreeMap<u32, (Vec<String>, Vec<u8>)> {
    let mut s = mailcanary::imap::connect::login(seed, &Default::default())
        .await
        .expect("login");
    s.examine(folder).await.expect("examine");
    let fetched: Vec<_> = s
        .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("fetch stream");
    let mut out = BTreeMap::new();
    for f in fetched {
        if let (Some(uid), Some(body)) = (f.uid, f.body()) {
            let flags = f
                .flags()
                .map(|fl| format!("{fl:?}"))
                // \Recent belongs to the session, not the message.
                .filter(|fl| fl != "Recent")
                .collect();
            out.insert(uid, (flags, body.to_vec()));
        }
    }
    let _ = s.logout().await;
    out
}

/// The messages of instance `instance` (by the instance field of their v2 token).
fn of_instance(
    all: BTreeMap<u32, (Vec<String>, Vec<u8>)>,
    instance: &str,
) -> BTreeMap<u32, (Vec<String>, Vec<u8>)> {
    let needle = format!(".{instance}.");
    all.into_iter()
        .filter(|(_, (_, raw))| {
            String::from_utf8_lossy(raw)
                .lines()
                .any(|l| l.starts_with("X-Mailcanary-Probe: v2.") && l.contains(&needle))
        })
        .collect()
}

fn once(config: &Path) -> serde_json::Value {
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run once");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("once --json: {e}\n{}", String::from_utf8_lossy(&out.stderr)))
}

fn placements(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["route"].as_str().unwrap_or("?").to_string(),
                r["placement"].as_str().unwrap_or("null").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn v(daemon: &Daemon, series: &str) -> f64 {
    series_value(&scrape(daemon), series).unwrap_or(0.0)
}

/// Every probe this daemon sent so far was found where it belongs, none missing or unknown,
/// none forged (polls until a moment between rounds: a round in flight has probes sent and
/// not found yet).
fn all_resolved(name: &str, daemon: &Daemon) {
    wait_for(
        &format!("{name}: every probe sent resolved, none forged"),
        Duration::from_secs(60),
        || {
            let m = scrape(daemon);
            let get = |s: &str| series_value(&m, s).unwrap_or(-1.0);
            let sent_good = get(r#"mailcanary_probes_sent_total{route="good",seed="shared"}"#);
            let sent_spam = get(r#"mailcanary_probes_sent_total{route="spam",seed="shared"}"#);
            let inbox = get(
                r#"mailcanary_probes_received_total{placement="inbox",route="good",seed="shared"}"#,
            );
            let spam = get(
                r#"mailcanary_probes_received_total{placement="spam",route="spam",seed="shared"}"#,
            );
            let bad = [
                r#"mailcanary_probes_missing_total{route="good",seed="shared"}"#,
                r#"mailcanary_probes_missing_total{route="spam",seed="shared"}"#,
                r#"mailcanary_probes_unknown_total{route="good",seed="shared"}"#,
                r#"mailcanary_probes_unknown_total{route="spam",seed="shared"}"#,
                r#"mailcanary_forged_probes_total{seed="shared"}"#,
            ]
            // No series yet is none counted (a pair's counters appear when first counted).
            .map(|s| series_value(&m, s).unwrap_or(0.0));
            if sent_good >= 2.0 && sent_good == inbox && sent_spam == spam && bad == [0.0; 5] {
                Ok(())
            } else {
                Err(format!(
                    "good sent {sent_good} inbox {inbox}, spam sent {sent_spam} spam {spam}, missing/unknown/forged {bad:?}"
                ))
            }
        },
        || daemon.log(),
    );
}

#[test]
fn instances_sharing_a_mailbox_delete_only_their_own_and_never_touch_the_others() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let keep_path = write_config(
        dir.path(),
        &config(dir.path(), "site-c", "keep", "127.0.0.1:0"),
    );
    let seed = mailcanary::config::load(&keep_path)
        .expect("valid config")
        .seeds[0]
        .clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut s = mailcanary::imap::connect::login(&seed, &Default::default())
            .await
            .expect("login");
        for folder in ["INBOX", "Junk"] {
            s.select(folder).await.expect("select");
            empty_selected_folder(&mut s).await;
        }
        let _ = s.logout().await;
    });

    // Two instances on the same mailbox, rounds at the same seconds, both deleting.
    let start = |instance: &'static str| {
        let d = dir.path().to_path_buf();
        start_run(dir.path(), instance, move |addr| {
            config(&d, instance, "delete", addr)
        })
    };
    let (a, b) = (start("site-a"), start("site-b"));
    all_resolved("site-a", &a);
    all_resolved("site-b", &b);

    // A third instance leaves its probes in the mailbox (cleanup = "keep").
    let kept = once(&keep_path);
    assert_eq!(
        placements(&kept),
        vec![
            ("good".to_string(), "inbox".to_string()),
            ("spam".to_string(), "spam".to_string())
        ],
        "{kept:#}"
    );
    let snapshot = || {
        rt.block_on(async {
            (
                of_instance(messages(&seed, "INBOX").await, "site-c"),
                of_instance(messages(&seed, "Junk").await, "site-c"),
            )
        })
    };
    let before = snapshot();
    // In Junk: the spam probe, and the confirmation probe its bad outcome sent at once.
    assert_eq!(
        (before.0.len(), before.1.len()),
        (1, 2),
        "site-c's kept probes"
    );
    // site-a and site-b each see both (a new UID in each folder they watch) in their next
    // rounds: counted as foreign, never forged, never judged, never touched.
    for (name, daemon) in [("site-a", &a), ("site-b", &b)] {
        let round_before = v(
            daemon,
            r#"mailcanary_probes_sent_total{route="good",seed="shared"}"#,
        );
        wait_for(
            &format!("{name}: two more rounds"),
            Duration::from_secs(30),
            || {
                let now = v(
                    daemon,
                    r#"mailcanary_probes_sent_total{route="good",seed="shared"}"#,
                );
                if now >= round_before + 2.0 {
                    Ok(())
                } else {
                    Err(format!("{now} probes sent"))
                }
            },
            || daemon.log(),
        );
        let foreign = v(daemon, r#"mailcanary_foreign_probes_total{seed="shared"}"#);
        assert!(foreign >= 2.0, "{name}: {foreign} foreign probes counted");
        all_resolved(name, daemon);
    }
    let after = snapshot();
    assert_eq!(
        after, before,
        "site-c's probes are still there, byte for byte, with the same flags"
    );
    for (flags, _) in after.0.values().chain(after.1.values()) {
        assert!(
            flags.is_empty(),
            "another instance's probe got flags {flags:?} (not even \\Seen)"
        );
    }

    // site-c, now deleting too, cleans up its own kept probes (judged already: not counted
    // again) and the new round's, and leaves the others' alone.
    let cleaned = write_config(
        dir.path(),
        &config(dir.path(), "site-c", "delete", "127.0.0.1:0"),
    );
    let second = once(&cleaned);
    assert_eq!(placements(&second), placements(&kept), "{second:#}");
    let gone = snapshot();
    assert_eq!(
        (gone.0.len(), gone.1.len()),
        (0, 0),
        "site-c deleted its own probes"
    );
    all_resolved("site-a", &a);
    all_resolved("site-b", &b);
}
