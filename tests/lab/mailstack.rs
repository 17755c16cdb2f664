//! The mail lab itself: everything it runs listens on loopback only, and `status` agrees.

use crate::common;
use std::collections::HashSet;

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
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(d) && l.contains(" up ")),
            "{d} not up: {text}"
        );
    }
}
