//! A real Prometheus (Debian's, as `scripts/install-test-deps` installs it) scraping a real
//! `mailcanary run --web.config.file` through TLS and basic auth, both on loopback: the job with
//! the CA and the password is `up == 1` with mailcanary's series, the job with a wrong password
//! is `up == 0`, and so is a job that does not trust the CA. The README's
//! "Securing the endpoint" in practice.
//!
//! mailcanary's route and seed point at a closed loopback port: its rounds fail at once and
//! touch no lab mailbox, so this test shares nothing with the others. Both processes are stopped
//! when the test ends, failing or not.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::live::wait_for;
use crate::common::support::{free_port, prom_query, require_tool, start_daemon};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/web");
const PASSWORD: &str = "lab-scrape-password-7Qx";

/// A `mailcanary run`, stopped by its process id when dropped.
struct Run {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
}

impl Run {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mailcanary(dir: &Path) -> Run {
    std::fs::write(dir.join("token.key"), "web-lab-token-key-0123456789").expect("key");
    std::fs::write(dir.join("imap-password"), "x").expect("password");
    let hash = bcrypt::hash(PASSWORD, 10).expect("bcrypt");
    let web = dir.join("web-config.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {FIXTURES}/server.pem\n  key_file: {FIXTURES}/server-key.pem\n\
             basic_auth_users:\n  prometheus: {hash}\n"
        ),
    )
    .expect("web config");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("mailcanary.toml");
    std::fs::write(
        &config,
        format!(
            "[probe]\nlisten = \"{addr}\"\nschedule = \"0 0 1 1 *\"\ntoken_key_file = \"token.key\"\n\
             state = \"state.sqlite\"\ninstance = \"web-lab\"\n\
             [dns_audit]\nnameserver = \"127.0.53.53:53\"\ndnsbl_zones = []\n\
             [routes.closed]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nfrom = \"p@sender.test\"\ntimeout = \"2s\"\n\
             [seeds.closed]\naddress = \"nobody@seed.test\"\nhost = \"127.0.0.1\"\nport = 1\npassword_file = \"imap-password\"\n"
        ),
    )
    .expect("config");
    let log = dir.join("mailcanary.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("start mailcanary");
    let mut run = Run { child, addr, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&run.addr).is_err() {
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("mailcanary exited ({status}):\n{}", run.log());
        }
        assert!(
            Instant::now() < deadline,
            "mailcanary not listening:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run
}

#[test]
fn prometheus_scrapes_through_tls_and_basic_auth_and_fails_with_a_wrong_password() {
    let prometheus = require_tool(&["prometheus"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mailcanary = start_mailcanary(dir.path());
    std::fs::write(dir.path().join("right.password"), PASSWORD).expect("password");
    std::fs::write(dir.path().join("wrong.password"), "not-the-password").expect("password");
    let target = &mailcanary.addr;
    let d = dir.path().display();
    // The scrape configs as prometheus/prometheus.yml writes them: scheme, tls_config, basic_auth.
    let job = |name: &str, ca: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {FIXTURES}/{ca}\n\
             \x20   basic_auth:\n      username: prometheus\n      password_file: {d}/{password}\n\
             \x20   static_configs:\n      - targets: [\"{target}\"]\n"
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}",
        job("mailcanary", "ca.pem", "right.password"),
        job("wrong-password", "ca.pem", "wrong.password"),
        job("untrusted-ca", "client-ca.pem", "right.password"),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).expect("prometheus.yml");
    let prometheus = start_daemon(
        &prometheus,
        &[
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
        ],
        dir.path(),
    );
    let logs = || {
        format!(
            "--- mailcanary:\n{}\n--- prometheus:\n{}",
            mailcanary.log(),
            prometheus.log()
        )
    };
    let up = |job: &str| -> Result<f64, String> {
        let data = prom_query(&prometheus.addr, &format!("up{{job=\"{job}\"}}"))?;
        crate::common::support::first_value(&data).ok_or_else(|| format!("no up for {job} yet"))
    };
    for (job, want) in [
        ("mailcanary", 1.0),
        ("wrong-password", 0.0),
        ("untrusted-ca", 0.0),
    ] {
        wait_for(
            &format!("up{{job=\"{job}\"}} == {want}"),
            Duration::from_secs(30),
            || match up(job)? {
                v if v == want => Ok(()),
                v => Err(format!("up is {v}")),
            },
            logs,
        );
    }
    // The authorised scrape got mailcanary's own series.
    wait_for(
        "mailcanary_build_info scraped through TLS",
        Duration::from_secs(30),
        || {
            let data = prom_query(
                &prometheus.addr,
                "count(mailcanary_build_info{job=\"mailcanary\"})",
            )?;
            match crate::common::support::first_value(&data) {
                Some(n) if n >= 1.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
        logs,
    );
    // mailcanary logged the refused handshakes of the untrusting job's client.
    assert!(
        mailcanary.log().contains("TLS handshake failed"),
        "{}",
        mailcanary.log()
    );
}
