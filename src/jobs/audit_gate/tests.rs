use super::*;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// A config in `dir` with one route (`route_extra` added to it) and one seed.
fn config(dir: &Path, route_extra: &str) -> Arc<Config> {
    std::fs::write(dir.join("token.key"), "audit-gate-test-token-key-0123").expect("key");
    std::fs::write(dir.join("password"), "pw").expect("password");
    let text = format!(
        "[probe]\ntoken_key_file = \"token.key\"\n\
         [routes.main]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n{route_extra}\n\
         [seeds.s]\naddress = \"s@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n"
    );
    Arc::new(config::parse(&text, &dir.join("c.toml")).unwrap_or_else(|e| panic!("{e}")))
}

/// A gate whose audits take `audit_time`, counting how many ran at once at most.
fn counting_gate(audit_time: Duration) -> (Arc<AuditGate>, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let m = most.clone();
    let gate = AuditGate::new(Arc::new(move |_config: Arc<Config>| {
        let (now, most) = (now.clone(), m.clone());
        Box::pin(async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(audit_time).await;
            now.fetch_sub(1, Ordering::SeqCst);
        })
    }));
    (gate, most)
}

async fn until_idle(gate: &AuditGate) {
    for _ in 0..500 {
        if !gate.running() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gate never became idle");
}

#[tokio::test]
async fn a_reload_that_changes_nothing_audited_starts_no_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gate, _) = counting_gate(Duration::from_millis(1));
    let start = config(dir.path(), "sending_ips = [\"192.0.2.1\"]");
    assert!(gate.request(start.clone(), Trigger::Start));
    until_idle(&gate).await;
    // Same identities; only settings the audit does not read differ (the route's timeout).
    let same = config(
        dir.path(),
        "sending_ips = [\"192.0.2.1\"]\ntimeout = \"45s\"",
    );
    assert!(!gate.request(same, Trigger::Reload));
    assert_eq!(gate.started(), 1);
    // A new sending IP is audited.
    let changed = config(dir.path(), "sending_ips = [\"192.0.2.1\", \"192.0.2.2\"]");
    assert!(gate.request(changed.clone(), Trigger::Reload));
    until_idle(&gate).await;
    assert!(!gate.request(changed, Trigger::Reload));
    assert_eq!(gate.started(), 2);
}

#[tokio::test]
async fn a_dkim_key_rotated_under_the_same_file_name_is_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("dkim.pem");
    std::fs::write(&key, "first key").expect("key");
    let (gate, _) = counting_gate(Duration::from_millis(1));
    let c = config(
        dir.path(),
        "dkim_selector = \"s1\"\ndkim_key_file = \"dkim.pem\"",
    );
    gate.request(c.clone(), Trigger::Start);
    until_idle(&gate).await;
    assert!(!gate.request(c.clone(), Trigger::Reload));
    std::fs::write(&key, "second key").expect("key");
    assert!(gate.request(c, Trigger::Reload));
    until_idle(&gate).await;
    assert_eq!(gate.started(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_two_audits_at_once_and_a_burst_of_reloads_queues_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gate, most) = counting_gate(Duration::from_millis(500));
    // 50 configs, each with another sending IP (parsed before the clock starts).
    let reloads: Vec<Arc<Config>> = (0..50)
        .map(|i| config(dir.path(), &format!("sending_ips = [\"192.0.2.{i}\"]")))
        .collect();
    let first = config(dir.path(), "");
    gate.request(first.clone(), Trigger::Start);
    // A scheduled audit while one runs is skipped.
    assert!(!gate.request(first, Trigger::Schedule));
    // 50 reloads while the first audit runs: one queued audit.
    for c in reloads {
        assert!(gate.request(c, Trigger::Reload));
    }
    until_idle(&gate).await;
    assert_eq!(
        gate.started(),
        2,
        "the start-up audit and one for the reloads"
    );
    assert_eq!(most.load(Ordering::SeqCst), 1, "audits ran concurrently");
}

#[tokio::test]
async fn a_panicking_audit_does_not_close_the_gate_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = AuditGate::new(Arc::new(|_c: Arc<Config>| {
        Box::pin(async { panic!("audit failed on purpose") })
    }));
    gate.request(config(dir.path(), ""), Trigger::Start);
    until_idle(&gate).await;
    assert!(gate.request(config(dir.path(), ""), Trigger::Schedule));
}
