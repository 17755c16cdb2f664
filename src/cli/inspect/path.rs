//! `mailcanary inspect` on a message: its path, from the `Received:` hops read by
//! [`crate::path`] (RFC 5321 §4.4): which hops are the receiver's own (believed), where the
//! receiver took the message from outside, what it saw there, and the handoff delays.

use std::fmt::Write as _;

use crate::cli::terminal::escape as clean;
use crate::path::{Hop, Leg, Path};

/// The most hops listed; the rest are counted.
const MAX_LISTED: usize = 30;

/// The path for a person.
pub(super) fn explain(path: &Path) -> String {
    if path.hops_total == 0 {
        return "Path: no Received: fields.\n".to_string();
    }
    let mut out = format!(
        "Path ({} hop{}, the last first; * = the receiver's own, believed):\n",
        path.hops_total,
        if path.hops_total == 1 { "" } else { "s" }
    );
    for (index, hop) in path.hops.iter().enumerate().take(MAX_LISTED) {
        let mark = if hop.trusted { '*' } else { ' ' };
        let here = if path.receiving_hop == Some(index) {
            "  <- the receiver took it here"
        } else {
            ""
        };
        let _ = writeln!(out, "{mark} {:>2}  {}{here}", index + 1, describe(hop));
    }
    if path.hops_total > MAX_LISTED.min(path.hops.len()) {
        let _ = writeln!(
            out,
            "  … and {} more",
            path.hops_total - MAX_LISTED.min(path.hops.len())
        );
    }
    match &path.seen {
        Some(seen) => {
            let ip = match (seen.ip, seen.family) {
                (Some(ip), Some(family)) => format!("{ip} ({})", family.name()),
                _ => "no address (the hop names none)".to_string(),
            };
            let helo = seen.helo.as_deref().map_or_else(
                || "no HELO".to_string(),
                |helo| format!("HELO {}", clean(helo)),
            );
            let reverse = seen.reverse_name.as_deref().map_or_else(
                || "no reverse name".to_string(),
                |name| format!("reverse name {}", clean(name)),
            );
            let tls = match (seen.tls, seen.tls_version) {
                (_, Some(version)) => format!("over {}", version.as_str()),
                (Some(true), None) => "over TLS (version not stated)".to_string(),
                (Some(false), None) => "without TLS".to_string(),
                (None, None) => "TLS not stated".to_string(),
            };
            let _ = writeln!(
                out,
                "The receiver saw {ip}, {helo}, {reverse}, {tls}{}.",
                seen.protocol
                    .map(|protocol| format!(" ({})", protocol.as_str()))
                    .unwrap_or_default()
            );
        }
        None => {
            let domains = if path.receiver_domains.is_empty() {
                "none known".to_string()
            } else {
                path.receiver_domains
                    .iter()
                    .map(|domain| clean(domain))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "No hop is the receiver's own (receiver domains: {domains}); none is believed."
            );
        }
    }
    if !path.handoffs.is_empty() {
        let legs: Vec<String> = path
            .handoffs
            .iter()
            .map(|handoff| {
                let leg = match handoff.hop {
                    Leg::ReceivingMx => "submission → receiving MX",
                    Leg::Mailbox => "receiving MX → mailbox",
                };
                format!("{leg} {} s", handoff.seconds)
            })
            .collect();
        let _ = writeln!(out, "Handoffs: {}.", legs.join(", "));
    }
    out
}

/// One hop on one line: by, from, protocol and TLS, time and delay.
fn describe(hop: &Hop) -> String {
    let mut out = format!("by {}", hop.by.as_deref().map_or("?".to_string(), clean));
    if let Some(from) = &hop.from {
        let name = from.helo.as_deref().map(clean);
        // A client whose HELO was its address literal is named once.
        let ip = from
            .ip
            .map(|ip| format!("[{ip}]"))
            .filter(|literal| name.as_ref() != Some(literal));
        let who: Vec<String> = [name, ip].into_iter().flatten().collect();
        if !who.is_empty() {
            let _ = write!(out, " from {}", who.join(" "));
        }
    }
    if let Some(protocol) = hop.protocol {
        let _ = write!(out, " with {}", protocol.as_str());
    }
    match (hop.tls, hop.tls_version, &hop.tls_cipher) {
        (_, Some(version), Some(cipher)) => {
            let _ = write!(out, " {} {}", version.as_str(), clean(cipher));
        }
        (_, Some(version), None) => {
            let _ = write!(out, " {}", version.as_str());
        }
        (Some(true), None, _) => out.push_str(" TLS"),
        _ => {}
    }
    if let Some(date) = &hop.date {
        let _ = write!(out, ", {date}");
    }
    if let Some(delay) = hop.delay_seconds {
        let _ = write!(out, " (+{delay} s)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{Receiver, read};

    #[test]
    fn explains_hops_trust_and_what_was_seen() {
        let raw = b"Received: from mx.seed.test by mx.seed.test with LMTP id 1; Tue, 12 Nov 2024 11:14:09 +0000\nReceived: from mail.sender.test (unknown [IPv6:2001:db8:53::25]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by mx.seed.test (Postfix) with ESMTPS id 2; Tue, 12 Nov 2024 11:14:08 +0000\nReceived: from [192.0.2.10] (unknown [192.0.2.10]) by mail.sender.test (Postfix) with ESMTPSA id 3; Tue, 12 Nov 2024 11:14:07 +0000\n\nbody\n";
        let path = read(raw, &Receiver::new(["seed.test"])).expect("message");
        assert_eq!(
            explain(&path),
            "Path (3 hops, the last first; * = the receiver's own, believed):\n\
             *  1  by mx.seed.test from mx.seed.test with LMTP, 2024-11-12T11:14:09Z (+1 s)\n\
             *  2  by mx.seed.test from mail.sender.test [2001:db8:53::25] with ESMTPS TLSv1.3 TLS_AES_256_GCM_SHA384, 2024-11-12T11:14:08Z (+1 s)  <- the receiver took it here\n\
             \u{20}  3  by mail.sender.test from [192.0.2.10] with ESMTPSA TLS, 2024-11-12T11:14:07Z\n\
             The receiver saw 2001:db8:53::25 (IPv6), HELO mail.sender.test, no reverse name, over TLSv1.3 (ESMTPS).\n\
             Handoffs: submission → receiving MX 1 s, receiving MX → mailbox 1 s.\n"
        );
    }

    #[test]
    fn explains_absences() {
        let none = read(b"Subject: x\n\nbody\n", &Receiver::default()).expect("message");
        assert_eq!(explain(&none), "Path: no Received: fields.\n");
        let raw = b"Received: from a.example ([192.0.2.1]) by b.example with ESMTP; Tue, 12 Nov 2024 11:14:08 +0000\n\n";
        let path = read(raw, &Receiver::new(["other.test"])).expect("message");
        assert!(
            explain(&path).ends_with(
                "No hop is the receiver's own (receiver domains: other.test); none is believed.\n"
            ),
            "{}",
            explain(&path)
        );
    }
}
