//! DMARC aggregate reports from a real reporter: the lab's receiving rspamd records the DMARC
//! result of every message it judges (in the lab's Redis) and `lab/mailstack dmarc-report`
//! (`rspamadm dmarc_report`) mails the day's aggregate report for sender.test to its rua=
//! address, dmarc-reports@sender.test. A real `mailcanary run` with `[report_mailboxes.lab]` reads it:
//! the report appears in the metrics, in `/api/reports` and on the status page; a copy of the
//! same report in another mail is counted once; the mails stay in the mailbox (`after = keep`).
//!
//! Owns the report mailbox while it runs (`report_mail::lock_report_mailbox`) and seed11.

use crate::common;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::live::wait_for;
use common::report_mail::{self, lock_report_mailbox, with_message_id};
use common::support::{Daemon, http, repo, start_on_free_port};
use common::*;

/// The reporter rspamd names in its reports (lab/templates/rspamd/local.d/dmarc.conf).
const LAB_ORG: &str = "mailcanary lab (rspamd)";

fn config(dir: &Path, listen: &str) -> String {
    let reports = format!(
        "[report_mailboxes.lab]\naddress = \"dmarc-reports@sender.test\"\nhost = \"127.0.0.3\"\nport = 993\n\
         tls = \"tls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"dmarc-reports\"\n\
         password_file = \"{LAB_DIR}/secrets/imap-password\"\ndomains = [\"sender.test\"]\n\
         schedule = \"*/2 * * * * *\"\nreporters = [\"google.com\", \"mailcanary\"]\n"
    );
    let probe = probe_section(dir, "30s", "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\""),
    );
    let good = route(
        "good",
        "probe <probe@sender.test>",
        "sending_ips = [\"127.0.0.2\"]",
    );
    // Reverse names of failing sources come from the lab DNS (probe_section's [dns_audit]).
    format!("{probe}{good}{}{reports}", seed("s11", "seed11"))
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn start(dir: &Path) -> Daemon {
    let path = dir.join("mailcanary.toml");
    start_on_free_port(dir, "/healthz", Duration::from_secs(30), |addr| {
        std::fs::write(&path, config(dir, addr)).expect("write config");
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .current_dir(dir);
        cmd
    })
}

#[test]
fn rspamd_aggregate_report_is_read_counted_once_and_shown() {
    require_lab();
    let _mailbox = lock_report_mailbox();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(report_mail::plant(&[], true));
    let dir = tempfile::tempdir().expect("tempdir");

    // Lab traffic for rspamd to report on: one probe of the good route.
    let once_config = write_config(dir.path(), &config(dir.path(), "127.0.0.1:0"));
    let out = Command::new(bin())
        .args(["once", "--json", "--config"])
        .arg(&once_config)
        .output()
        .expect("run once");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the good route's probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // rspamd mails the aggregate report of today's lab traffic.
    let sent = Command::new(repo().join("lab/mailstack"))
        .arg("dmarc-report")
        .output()
        .expect("lab/mailstack dmarc-report");
    let said =
        String::from_utf8_lossy(&sent.stderr).to_string() + &String::from_utf8_lossy(&sent.stdout);
    assert!(sent.status.success(), "dmarc-report failed: {said}");
    let report_mail = wait_for(
        "rspamd's report in dmarc-reports@sender.test",
        Duration::from_secs(30),
        || {
            let all = rt.block_on(report_mail::contents());
            all.into_iter()
                .find(|m| String::from_utf8_lossy(m).contains("dmarc-reporter@seed.test"))
                .ok_or_else(|| "not delivered yet".to_string())
        },
        || said.clone(),
    );

    let daemon = start(dir.path());
    let logs = || daemon.log();
    let metrics = || -> Result<String, String> {
        match http(&daemon.addr, "GET", "/metrics", None) {
            Ok((200, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    };
    // rspamd's report names "mailcanary" (listed in `reporters`), but reaches the mailbox
    // unsigned and with no Authentication-Results (the lab relays it as it is): anyone could
    // have written it, so it is counted as `other`, never under the name it claims.
    let reports_total = "mailcanary_dmarc_reports_total{domain=\"sender.test\",reporter=\"other\"}";
    let claimed = "mailcanary_dmarc_reports_total{domain=\"sender.test\",reporter=\"mailcanary\"}";
    let text = wait_for(
        "the report counted in /metrics",
        Duration::from_secs(60),
        || {
            let text = metrics()?;
            if metric(&text, reports_total) >= 1.0 {
                Ok(text)
            } else {
                Err("not yet".into())
            }
        },
        logs,
    );
    assert_eq!(metric(&text, reports_total), 1.0, "{text}");
    assert_eq!(metric(&text, claimed), 0.0, "{text}");
    let aligned = metric(
        &text,
        "mailcanary_dmarc_messages_total{disposition=\"none\",dkim=\"pass\",domain=\"sender.test\",reporter=\"other\",spf=\"pass\"}",
    );
    assert!(
        aligned >= 1.0,
        "the good route's probe passes DMARC in the report:\n{text}"
    );
    assert!(
        metric(
            &text,
            "mailcanary_dmarc_last_report_timestamp_seconds{domain=\"sender.test\",reporter=\"other\"}"
        ) > 1.7e9,
        "{text}"
    );

    let (code, body) = http(&daemon.addr, "GET", "/api/reports", None).expect("GET /api/reports");
    assert_eq!(code, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let listed = api["reports"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{api}");
    assert_eq!(listed[0]["kind"], "dmarc_aggregate", "{api}");
    assert_eq!(listed[0]["org_name"], LAB_ORG, "{api}");
    assert_eq!(listed[0]["domain"], "sender.test", "{api}");
    assert!(listed[0]["total"].as_u64().unwrap_or(0) >= 1, "{api}");
    let (code, page) = http(&daemon.addr, "GET", "/", None).expect("GET /");
    assert_eq!(code, 200);
    assert!(page.contains("Reports from receivers"), "{page}");
    assert!(page.contains(LAB_ORG), "{page}");

    // The same report once more, in a mail of its own: read, not counted again.
    let copy = with_message_id(
        &report_mail,
        &format!("<copy-{}@seed.test>", std::process::id()),
    );
    rt.block_on(report_mail::plant(&[copy], false));
    wait_for(
        "the copy read as a duplicate",
        Duration::from_secs(30),
        || {
            if daemon
                .log()
                .contains("report already stored; not counted again")
            {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
        logs,
    );
    let text = metrics().expect("metrics");
    assert_eq!(metric(&text, reports_total), 1.0, "counted twice:\n{text}");
    // after = keep: both mails are still there, unchanged.
    let now = rt.block_on(report_mail::contents());
    assert_eq!(now.len(), 2, "the report mails were touched");
    assert!(now.contains(&report_mail), "rspamd's report mail changed");

    // A Google-style report with a failing source, and a TLS report with failures: the source
    // is shown with its reverse name from the lab DNS, the TLS failures are counted by type.
    let nonce = format!("{}-{}", std::process::id(), common::support::unix_now());
    rt.block_on(report_mail::plant(
        &[
            report_mail::dmarc_mail(&nonce, &format!("<dmarc-{nonce}@google.com>")),
            report_mail::tls_mail(&nonce, &format!("<tls-{nonce}@google.com>")),
        ],
        false,
    ));
    let api = wait_for(
        "the failing source with its reverse name in /api/reports",
        Duration::from_secs(30),
        || {
            let (_, body) =
                http(&daemon.addr, "GET", "/api/reports", None).map_err(|e| e.to_string())?;
            let api: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            if api["failing_sources"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                Ok(api)
            } else {
                Err(format!("{api}"))
            }
        },
        logs,
    );
    let source = &api["failing_sources"][0];
    assert_eq!(source["source_ip"], report_mail::FAILING_SOURCE, "{api}");
    assert_eq!(source["name"], report_mail::FAILING_SOURCE_NAME, "{api}");
    assert_eq!(
        (source["failing"].as_u64(), source["messages"].as_u64()),
        (Some(2), Some(2)),
        "{api}"
    );
    assert_eq!(
        api["tls_failures"][0]["result_type"], "certificate-expired",
        "{api}"
    );
    let text = metrics().expect("metrics");
    assert_eq!(
        metric(
            &text,
            "mailcanary_dmarc_messages_total{disposition=\"reject\",dkim=\"fail\",domain=\"sender.test\",reporter=\"google.com\",spf=\"fail\"}"
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "mailcanary_tls_failures_total{domain=\"sender.test\",reporter=\"google.com\",result_type=\"certificate-expired\"}"
        ),
        2.0,
        "{text}"
    );
    let (_, page) = http(&daemon.addr, "GET", "/", None).expect("GET /");
    assert!(
        page.contains(&format!("<td>{}</td>", report_mail::FAILING_SOURCE_NAME)),
        "the failing source's reverse name is not on the status page:\n{page}"
    );
}

/// A complaint feedback report (the corpus' Yahoo CFL report about a probe of sender.test) in
/// the report mailbox: counted once under its type, listed in `/api/reports` and on the status
/// page, and a second read (a restart) does not count it again.
#[test]
fn a_complaint_feedback_report_is_counted_once_and_shown() {
    require_lab();
    let _mailbox = lock_report_mailbox();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let raw =
        std::fs::read(repo().join("tests/fixtures/arf/yahoo-cfl-probe.eml")).expect("fixture");
    let nonce = format!("{}-{}", std::process::id(), common::support::unix_now());
    let mail = with_message_id(&raw, &format!("<cfl-{nonce}@yahoo.com>"));
    rt.block_on(report_mail::plant(&[mail], true));
    let dir = tempfile::tempdir().expect("tempdir");
    let series =
        "mailcanary_complaints_total{domain=\"sender.test\",reporter=\"other\",type=\"abuse\"}";
    for life in 0..2 {
        let daemon = start(dir.path());
        let text = wait_for(
            "the complaint counted in /metrics",
            Duration::from_secs(60),
            || match http(&daemon.addr, "GET", "/metrics", None) {
                Ok((200, body)) if life == 1 || metric(&body, series) >= 1.0 => Ok(body),
                other => Err(format!("{other:?}")),
            },
            || daemon.log(),
        );
        if life == 0 {
            assert_eq!(metric(&text, series), 1.0, "{text}");
        } else {
            // After a restart the mail is known: read once, never counted again.
            std::thread::sleep(Duration::from_secs(4));
            let again = http(&daemon.addr, "GET", "/metrics", None)
                .expect("metrics")
                .1;
            assert_eq!(metric(&again, series), 0.0, "counted again:\n{again}");
        }
        let (code, body) =
            http(&daemon.addr, "GET", "/api/reports", None).expect("GET /api/reports");
        assert_eq!(code, 200, "{body}");
        let api: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let complaints = &api["complaints"][0];
        assert_eq!(complaints["domain"], "sender.test", "{api}");
        assert_eq!(complaints["feedback_type"], "abuse", "{api}");
        assert_eq!(complaints["reports"], 1, "{api}");
        assert_eq!(complaints["about_probes"], 1, "{api}");
        let (_, page) = http(&daemon.addr, "GET", "/", None).expect("GET /");
        assert!(page.contains("Complaints (feedback loops)"), "{page}");
    }
}
