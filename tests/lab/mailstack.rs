//! The mail lab itself: everything it runs listens on loopback only, and `status` agrees; the
//! ipv6 route (issue #22: mail that reaches the MX over IPv6 from an address with no PTR) and the
//! inbound loop (the world's mail through the provider side to the admin's own mailbox, judged by
//! sender.test's own MX).

use crate::common;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::*;

/// Socket inodes owned by the lab's daemons (found through /proc/<pid>/exe and fd links).
fn lab_socket_inodes() -> HashSet<u64> {
    let lab_binaries = [
        "/usr/lib/postfix/",
        "/usr/sbin/dovecot",
        "/usr/lib/dovecot/",
        "/usr/bin/rspamd",
        "/usr/sbin/nsd",
        "/usr/bin/glewlwyd",
    ];
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.path();
        let Ok(exe) = std::fs::read_link(pid.join("exe")) else {
            continue;
        };
        let exe = exe.to_string_lossy().into_owned();
        if !lab_binaries.iter().any(|b| exe.starts_with(b)) {
            continue;
        }
        for fd in std::fs::read_dir(pid.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let l = link.to_string_lossy();
                if let Some(n) = l.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
                    && let Ok(n) = n.parse()
                {
                    inodes.insert(n);
                }
            }
        }
    }
    inodes
}

fn is_loopback_hex(addr: &str) -> bool {
    // /proc/net/tcp: IPv4 as little-endian hex ("0100007F" = 127.0.0.1); IPv6 as 32 hex digits.
    match addr.len() {
        8 => addr.ends_with("7F"),
        32 => {
            addr == "00000000000000000000000001000000"
                || addr.starts_with("0000000000000000FFFF0000") && addr.ends_with("7F")
        }
        _ => false,
    }
}

#[test]
fn the_lab_listens_on_loopback_only() {
    common::require_lab();
    let ours = lab_socket_inodes();
    assert!(!ours.is_empty(), "found no socket of the lab's daemons");
    let mut listening = 0;
    for (table, listen_state) in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != listen_state {
                continue;
            }
            let inode: u64 = f[9].parse().unwrap_or(0);
            if !ours.contains(&inode) {
                continue;
            }
            let addr = f[1].split(':').next().unwrap_or("");
            assert!(
                is_loopback_hex(addr),
                "a lab daemon listens on a non-loopback address: {table} {}",
                f[1]
            );
            listening += 1;
        }
    }
    assert!(
        listening >= 9,
        "expected the lab's listeners (DNS, 587, 465, 1587, 25, 143, 993, milter, OAuth2), saw {listening}"
    );
}

#[test]
fn status_reports_every_daemon_up() {
    common::require_lab();
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lab/mailstack"))
        .arg("status")
        .output()
        .expect("run lab/mailstack status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for d in [
        "nsd",
        "rspamd",
        "glewlwyd",
        "dovecot",
        "postfix-out",
        "postfix-in",
        "postfix-provider",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{d} ")) && l.contains(" up ")),
            "{d} not up: {text}"
        );
    }
    // The fault seeds' daemons are up, or stopped by the fault a fault test switched on.
    for (d, fault) in [("dovecot-fault", "imap-down"), ("postfix-fault", "mx-down")] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{d} "))
                && (l.contains(" up ") || l.ends_with(&format!("stopped by fault {fault}")))),
            "{d} neither up nor stopped by {fault}: {text}"
        );
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Submits one message with swaks as the lab's `submit` user at `server` (587, STARTTLS);
/// returns its Message-ID.
fn submit(server: &str, envelope_from: &str, from: &str, to: &str, body: &str) -> String {
    let id = format!(
        "<lab-{}-{}-{}@mailcanary.test>",
        std::process::id(),
        support::unix_now(),
        to.replace('@', ".")
    );
    let password = std::fs::read_to_string(lab_path("secrets/submit-password"))
        .expect("submit password")
        .trim()
        .to_string();
    let out = Command::new("swaks")
        .args([
            "--server",
            server,
            "--port",
            "587",
            "--tls",
            "--tls-ca-path",
        ])
        .arg(lab_path("ca/ca.pem"))
        .args([
            "--auth",
            "PLAIN",
            "--auth-user",
            "submit",
            "--auth-password",
        ])
        .arg(&password)
        .args(["--from", envelope_from, "--to", to, "--h-From", from])
        .args(["--h-Subject", "lab route test", "--body", body, "--header"])
        .arg(format!("Message-Id: {id}"))
        .output()
        .expect("run swaks (installed by lab/mailstack up)");
    assert!(out.status.success(), "swaks: {}", output_text(&out));
    id
}

/// One lab mailbox (IMAP user `user` on the lab's Dovecot, 127.0.0.3:993) as a seed.
fn mailbox(dir: &Path, user: &str, address: &str) -> mailcanary::config::Seed {
    let path = write_config(
        dir,
        &format!(
            "{}{}[seeds.{user}]\naddress = \"{address}\"\nhost = \"127.0.0.3\"\nport = 993\ntls = \"tls\"\n\
             ca_file = \"{LAB_DIR}/ca/ca.pem\"\nusername = \"{user}\"\npassword_file = \"{LAB_DIR}/secrets/imap-password\"\n",
            probe_section(dir, "30s", ""),
            route("r", "probe <probe@sender.test>", ""),
        ),
    );
    mailcanary::config::load(&path)
        .expect("valid config")
        .seeds
        .remove(0)
}

/// The header section of the message with this Message-ID in `folder`, once it is there (at most
/// 30 s).
fn header_section(mailbox: &mailcanary::config::Seed, folder: &str, message_id: &str) -> String {
    use futures::TryStreamExt;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t0 = std::time::Instant::now();
    loop {
        let found = rt.block_on(async {
            let mut s = mailcanary::imap::connect::login(mailbox, &Default::default())
                .await
                .expect("login");
            s.select(folder).await.expect("select");
            let uids = s
                .uid_search(format!("HEADER Message-ID \"{message_id}\""))
                .await
                .expect("search");
            let mut header = None;
            if let Some(uid) = uids.into_iter().next() {
                let fetched: Vec<_> = s
                    .uid_fetch(uid.to_string(), "BODY.PEEK[HEADER]")
                    .await
                    .expect("fetch")
                    .try_collect()
                    .await
                    .expect("fetch stream");
                header = fetched
                    .iter()
                    .find_map(|f| f.header().map(|h| String::from_utf8_lossy(h).into_owned()));
            }
            let _ = s.logout().await;
            header
        });
        if let Some(h) = found {
            return h;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "{message_id} not in {}/{folder} after 30 s",
            mailbox.name
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `dig` at the lab DNS: the status word (NOERROR, NXDOMAIN, ...).
fn dig_status(args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["+time=2", "+tries=2", "@127.0.53.53"])
        .args(args)
        .output()
        .expect("run dig");
    let all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string()
}

/// Unfolded header fields named `name` (RFC 5322 §2.2.3), in order.
fn fields(header: &str, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in header.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(c) = current.as_mut() {
                c.push(' ');
                c.push_str(line.trim());
            }
            continue;
        }
        if let Some(c) = current.take() {
            out.push(c);
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            current = Some(v.trim().to_string());
        }
    }
    out.extend(current);
    out
}

#[test]
fn ipv6_route_reaches_the_mx_from_1_with_no_ptr() {
    require_lab();
    assert_eq!(
        dig_status(&["-x", "::1"]),
        "NXDOMAIN",
        "::1 must have no PTR (and the lab DNS must say so, not refuse)"
    );
    assert_eq!(dig_status(&["mail.ipv6.test", "AAAA"]), "NOERROR");
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = mailbox(dir.path(), "seed2", "seed2@seed.test");
    let id = submit(
        "127.0.0.2",
        "probe@ipv6.test",
        "probe <probe@ipv6.test>",
        "seed2@seed.test",
        "Hello over IPv6.",
    );
    let header = header_section(&seed, "INBOX", &id);
    eprintln!("{header}");
    let received = fields(&header, "Received");
    assert!(
        received.iter().any(|r| r.starts_with(
            "from mail.ipv6.test (unknown [IPv6:::1]) by mx.seed.test (Postfix) with ESMTPS"
        )),
        "the MX saw ::1 with no name: {received:#?}"
    );
    let spf = fields(&header, "Received-SPF").concat();
    assert!(
        spf.starts_with("Pass (mailfrom)") && spf.contains("client-ip=::1;"),
        "{spf}"
    );
    let ar = fields(&header, "Authentication-Results").concat();
    for want in [
        "mx.seed.test;",
        "dkim=pass header.d=ipv6.test",
        "spf=pass",
        "dmarc=pass",
    ] {
        assert!(ar.contains(want), "{want} not in {ar}");
    }
    // rspamd sees no reverse name: its rDNS rule is the only complaint.
    let spamd = fields(&header, "X-Spamd-Result").concat();
    assert!(spamd.contains("RDNS_NONE("), "{spamd}");
}

#[test]
fn inbound_loop_our_mx_delivers_junks_and_refuses_the_worlds_mail() {
    require_lab();
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = mailbox(dir.path(), "admin", "admin@sender.test");
    let bounces = mailbox(dir.path(), "inbound-bounces", "bounces@provider.test");
    let from = "probe <probe@provider.test>";

    // Plain mail from the world: sender.test's MX checks it and files it in INBOX.
    let id = submit(
        "127.0.0.14",
        "bounces@provider.test",
        from,
        "admin@sender.test",
        "Hello.",
    );
    let header = header_section(&admin, "INBOX", &id);
    let received = fields(&header, "Received");
    assert!(
        received.iter().any(|r| r.starts_with(
            "from mail.provider.test (mail.provider.test [127.0.0.14]) by mail.sender.test (Postfix) with ESMTPS"
        )),
        "{received:#?}"
    );
    let ar = fields(&header, "Authentication-Results").concat();
    for want in [
        "mail.sender.test;",
        "dkim=pass header.d=provider.test",
        "spf=pass",
        "dmarc=pass",
    ] {
        assert!(ar.contains(want), "{want} not in {ar}");
    }
    assert!(
        fields(&header, "Received-SPF")
            .concat()
            .starts_with("Pass (mailfrom)"),
        "{header}"
    );
    assert!(
        fields(&header, "X-Spam-Status").concat().starts_with("No,"),
        "{header}"
    );

    // Spammy content: our MX files it in Junk.
    let id = submit(
        "127.0.0.14",
        "bounces@provider.test",
        from,
        "admin@sender.test",
        "Act now: mailcanary-lab-spam-phrase. Limited offer!",
    );
    let header = header_section(&admin, "Junk", &id);
    assert!(fields(&header, "X-Spam").concat() == "Yes", "{header}");

    // Content our MX refuses: the provider side's submission took it, our MX answered 554, the
    // provider bounced it to its sender.
    let id = submit(
        "127.0.0.14",
        "bounces@provider.test",
        from,
        "admin@sender.test",
        "Hello mailcanary-lab-reject-phrase.",
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t0 = std::time::Instant::now();
    let report = loop {
        let found = rt.block_on(async {
            use futures::TryStreamExt;
            let mut s = mailcanary::imap::connect::login(&bounces, &Default::default())
                .await
                .expect("login");
            s.select("INBOX").await.expect("select");
            let uids = s
                .uid_search(format!("TEXT \"{id}\""))
                .await
                .expect("search");
            let mut body = None;
            if let Some(uid) = uids.into_iter().next() {
                let fetched: Vec<_> = s
                    .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                    .await
                    .expect("fetch")
                    .try_collect()
                    .await
                    .expect("fetch stream");
                body = fetched
                    .iter()
                    .find_map(|f| f.body().map(|b| String::from_utf8_lossy(b).into_owned()));
            }
            let _ = s.logout().await;
            body
        });
        if let Some(b) = found {
            break b;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "no bounce of {id} in inbound-bounces after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(
        report.contains("Remote-MTA: dns; mail.sender.test"),
        "{report}"
    );
    assert!(
        report.contains("Diagnostic-Code: smtp; 554 5.7.1"),
        "our MX's refusal is quoted: {report}"
    );
}
