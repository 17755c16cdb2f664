//! Shared helpers of the tests: the loopback mail lab (lab/mailstack) here, the monitoring
//! tools and daemons in [`support`], the PromQL of dashboards and rules in [`exprs`], a live
//! Prometheus in [`live`].
#![allow(dead_code)]

pub mod exprs;
pub mod live;
pub mod report_mail;
pub mod rss;
pub mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const LAB_DIR: &str = "/var/lib/mailcanary-lab";

/// Fails the test (never skips) when the lab is not running, saying how to start it.
pub fn require_lab() {
    for addr in [
        "127.0.0.2:587",
        "127.0.0.3:993",
        "127.0.0.3:25",
        "127.0.53.53:53",
    ] {
        let sock = addr.parse().expect("static address");
        if addr.ends_with(":53") {
            continue; // UDP; checked by the DNS tests
        }
        if TcpStream::connect_timeout(&sock, Duration::from_secs(2)).is_err() {
            panic!(
                "the mail lab is not running (nothing answers on {addr}): start it with `sudo lab/mailstack up`"
            );
        }
    }
}

pub fn lab_path(rel: &str) -> PathBuf {
    Path::new(LAB_DIR).join(rel)
}

/// One `[routes.X]` table of config/lab.toml's kind.
pub fn route(name: &str, from: &str, extra: &str) -> String {
    format!(
        "[routes.{name}]\nhost = \"127.0.0.2\"\nport = 587\ntls = \"starttls\"\nca_file = \"{LAB_DIR}/ca/ca.pem\"\n\
         username = \"submit\"\npassword_file = \"{LAB_DIR}/secrets/submit-password\"\nfrom = \"{from}\"\n{extra}\n"
    )
}

/// A seed table for lab user `user`, reading IMAP at `host:port` with implicit TLS.
pub fn seed_at(name: &str, user: &str, host: &str, port: u16) -> String {
    format!(
        "[seeds.{name}]\naddress = \"{user}@seed.test\"\nhost = \"{host}\"\nport = {port}\ntls = \"tls\"\n\
         ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"{user}\"\npassword_file = \"{LAB_DIR}/secrets/imap-password\"\n\
         authserv_ids = [\"mx.seed.test\"]\npoll_interval = \"20ms\"\n"
    )
}

pub fn seed(name: &str, user: &str) -> String {
    seed_at(name, user, "127.0.0.3", 993)
}

/// All six lab routes, as in config/lab.toml.
pub fn all_routes() -> String {
    [
        route(
            "good",
            "probe <probe@sender.test>",
            "sending_ips = [\"127.0.0.2\"]\ndkim_selector = \"lab\"",
        ),
        route(
            "spam",
            "probe <probe@sender.test>",
            "message.text = \"Hello,\\n\\nAct now: mailcanary-lab-spam-phrase. Limited offer!\\n\"",
        ),
        route(
            "spf-fail",
            "probe <probe@spf-fail.test>",
            "sending_ips = [\"127.0.0.4\"]",
        ),
        route("dkim-fail", "probe <probe@dkim-fail.test>", ""),
        route(
            "dmarc-fail",
            "probe <probe@dmarc-fail.test>",
            "envelope_from = \"bounce@sender.test\"",
        ),
        route(
            "no-ptr",
            "probe <probe@no-ptr.test>",
            "sending_ips = [\"127.0.0.5\"]",
        ),
    ]
    .concat()
}

/// A `[probe]` table with its state in `dir` (more `[probe]` keys in `extra`), and the lab's
/// `[dns_audit]` table: the address the receiver saw of each probe found is audited on the lab
/// DNS, as config/lab.toml has it (the host's resolver knows nothing of the lab's names).
pub fn probe_section(dir: &Path, timeout: &str, extra: &str) -> String {
    format!(
        "[probe]\nschedule = \"*/5 * * * *\"\ntimeout = \"{timeout}\"\nlate_window = \"10m\"\nlisten = \"127.0.0.1:0\"\n\
         state = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\n{extra}\n\
         [dns_audit]\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n",
        dir.join("state.sqlite").display()
    )
}

/// A `[probe]` table for a `mailcanary run` on `listen` (state in `dir`, instance `instance`,
/// more keys in `extra`), and the lab's `[dns_audit]` table.
pub fn run_sections(
    dir: &Path,
    listen: &str,
    schedule: &str,
    timeout: &str,
    instance: &str,
    extra: &str,
) -> String {
    format!(
        "[probe]\nschedule = \"{schedule}\"\ntimeout = \"{timeout}\"\nlate_window = \"10m\"\nlisten = \"{listen}\"\n\
         state = \"{}\"\ntoken_key_file = \"{LAB_DIR}/secrets/probe-key\"\ninstance = \"{instance}\"\n{extra}\n\
         [dns_audit]\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n",
        dir.join("state.sqlite").display()
    )
}

/// The lab Dovecot's logins of `user` so far (its log).
pub fn dovecot_logins(user: &str) -> usize {
    let log = std::fs::read_to_string(lab_path("log/dovecot.log")).expect("dovecot log");
    let needle = format!("Login: user=<{user}>,");
    log.lines().filter(|l| l.contains(&needle)).count()
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("mailcanary.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailcanary")
}

/// `mailcanary run` with the config `config(listen address)` written to `dir/<name>.toml`, on a
/// free loopback port, once `/healthz` answers; info logs without colours in `dir` (the
/// daemon's `log()`), with the lifecycle API on (`POST /-/reload`). Stopped (SIGTERM) when
/// dropped.
pub fn start_run(dir: &Path, name: &str, config: impl Fn(&str) -> String) -> support::Daemon {
    let path = dir.join(format!("{name}.toml"));
    let logs = dir.join(name);
    std::fs::create_dir_all(&logs).expect("log dir");
    support::start_on_free_port(&logs, "/healthz", Duration::from_secs(30), |addr| {
        std::fs::write(&path, config(addr)).expect("write config");
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--web.enable-lifecycle")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .current_dir(dir);
        cmd
    })
}

/// `GET /metrics` of a daemon (empty on error: the callers poll).
pub fn scrape(daemon: &support::Daemon) -> String {
    support::http(&daemon.addr, "GET", "/metrics", None)
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// Deletes every message of the folder selected in `session` (a test's own lab mailbox).
pub async fn empty_selected_folder(session: &mut mailcanary::imap::connect::ImapSession) {
    use futures::TryStreamExt;
    let _: Vec<_> = session
        .uid_store("1:*", "+FLAGS.SILENT (\\Deleted)")
        .await
        .expect("store")
        .try_collect()
        .await
        .expect("store");
    let _: Vec<_> = session
        .expunge()
        .await
        .expect("expunge")
        .try_collect()
        .await
        .expect("expunge");
}
