//! Unit tests of the path reader; whole header sets are in `tests/received_corpus.rs`.

use std::net::IpAddr;

use super::receiver::{is_global, is_internal_name};
use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn hop(value: &str) -> Hop {
    parse_field(value)
}

fn from(hop: &Hop) -> &From {
    hop.from.as_ref().expect("a from clause")
}

#[test]
fn postfix_tls_clause_and_reverse_name() {
    let h = hop(
        "from mail.sender.example (mail.sender.example [198.51.100.25])\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\t(No client certificate requested)\tby mx.seed.example (Postfix) with ESMTPS id 4XnB2K1Zq5z9sRm\tfor <seed@seed.example>; Tue, 12 Nov 2024 11:14:08 +0000 (UTC)",
    );
    assert_eq!(h.by.as_deref(), Some("mx.seed.example"));
    let f = from(&h);
    assert_eq!(f.helo.as_deref(), Some("mail.sender.example"));
    assert_eq!(f.reverse_name.as_deref(), Some("mail.sender.example"));
    assert_eq!(f.ip, Some(ip("198.51.100.25")));
    assert_eq!(f.family, Some(Family::Ipv4));
    assert_eq!(h.protocol, Some(Protocol::Esmtps));
    assert_eq!(h.tls, Some(true));
    assert_eq!(h.tls_version, Some(TlsVersion::Tls13));
    assert_eq!(h.tls_cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(h.id.as_deref(), Some("4XnB2K1Zq5z9sRm"));
    assert_eq!(h.for_.as_deref(), Some("seed@seed.example"));
    assert_eq!(h.timestamp, Some(1_731_410_048));
    assert_eq!(h.date.as_deref(), Some("2024-11-12T11:14:08Z"));
}

#[test]
fn postfix_without_ptr_writes_unknown() {
    let h = hop(
        "from relay.sender.example (unknown [2001:db8:5::25]) by mx.seed.example (Postfix) with ESMTP id 4XnD0a1Bc2z3def for <seed@seed.example>; Tue, 12 Nov 2024 13:00:01 +0000 (UTC)",
    );
    let f = from(&h);
    assert_eq!(f.helo.as_deref(), Some("relay.sender.example"));
    assert_eq!(f.reverse_name, None, "`unknown` is no name");
    assert_eq!(f.ip, Some(ip("2001:db8:5::25")));
    assert_eq!(f.family, Some(Family::Ipv6));
    assert_eq!(h.protocol, Some(Protocol::Esmtp));
    assert_eq!(
        h.tls,
        Some(false),
        "ESMTP without a TLS clause is plain text"
    );
}

#[test]
fn ipv6_address_literals() {
    let h = hop(
        "from gal.sender.example (gal.sender.example [IPv6:2001:db8:1f07:1126:0:43:6f73:7461]) by lists.example.org (Postfix) with ESMTPS id C95E9C151087; Sun, 27 Aug 2023 03:00:06 -0700 (PDT)",
    );
    assert_eq!(from(&h).ip, Some(ip("2001:db8:1f07:1126:0:43:6f73:7461")));
    assert_eq!(from(&h).family, Some(Family::Ipv6));
    // A client that gave only an address literal as its HELO.
    let h = hop(
        "from [IPv6:2001:db8::7] (unknown [2001:db8::7]) by mx.seed.example (Postfix) with ESMTP id 1; Tue, 12 Nov 2024 13:00:01 +0000",
    );
    let f = from(&h);
    assert_eq!(f.ip, Some(ip("2001:db8::7")));
    assert_ne!(
        f.helo.as_deref(),
        Some("ipv6"),
        "the IPv6 tag is not a name"
    );
    // IPv4-mapped IPv6 is IPv4.
    let h = hop(
        "from Agni (localhost [::ffff:192.0.2.9]) by mx.seed.example with esmtp; Mon, 28 Oct 2002 14:48:52 -0800",
    );
    assert_eq!(from(&h).ip, Some(ip("192.0.2.9")));
    assert_eq!(from(&h).family, Some(Family::Ipv4));
}

#[test]
fn exim_dialects() {
    let new = hop(
        "from mail.sender.example ([198.51.100.25]) by mx.example.org with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.97) (envelope-from <bounce@sender.example>) id 1tA2b3-000abc-de for seed@example.org; Tue, 12 Nov 2024 11:14:08 +0000",
    );
    assert_eq!(new.protocol, Some(Protocol::Esmtps));
    assert_eq!(new.tls_version, Some(TlsVersion::Tls13));
    assert_eq!(new.tls_cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(from(&new).ip, Some(ip("198.51.100.25")));
    let old = hop(
        "from eggs.example.org ([2001:db8:142:3::10]) by lists.example.org with esmtps (TLS1.2:ECDHE_RSA_AES_256_GCM_SHA384:256) (Exim 4.90_1) (envelope-from <a@sender.example>) id 1rcdB1-0006i2-Ox for list@example.org; Tue, 20 Feb 2024 22:21:43 -0500",
    );
    assert_eq!(old.tls_version, Some(TlsVersion::Tls12));
    assert_eq!(
        old.tls_cipher.as_deref(),
        Some("ECDHE_RSA_AES_256_GCM_SHA384")
    );
    // helo= is the HELO; the word after `from` is the reverse name.
    let helo = hop(
        "from disco.sender.example ([192.0.2.96] helo=www.sender.example) by disco.sender.example with esmtpsa (TLS1.2:ECDHE_RSA_AES_128_GCM_SHA256:128) (Exim 4.92) (envelope-from <a@sender.example>) id 1jHtAB-00GGLg-Mf; Fri, 27 Mar 2020 17:52:59 +0000",
    );
    assert_eq!(from(&helo).helo.as_deref(), Some("www.sender.example"));
    assert_eq!(
        from(&helo).reverse_name.as_deref(),
        Some("disco.sender.example")
    );
    assert_eq!(helo.protocol, Some(Protocol::Esmtpsa));
    let local = hop(
        "from root (helo=candygram.example) by thunker.example with local-esmtps (tls_cipher TLS-1.0:RSA_AES_256_CBC_SHA:32) (Exim 4.50 #1 (Debian)) id 1FwHqR-0008Bw-OG; Fri, 30 Jun 2006 08:11:35 -0400",
    );
    assert_eq!(local.protocol, Some(Protocol::Esmtps));
}

#[test]
fn sendmail_gmail_microsoft_yahoo_tls() {
    let sendmail = hop(
        "from mail.sender.example (mail.sender.example [10.21.1.54]) by gw.sender.example (8.15.2/3.21/5.94) with ESMTPS id 62CBUfvxE2456770 (version=TLSv1.2 cipher=ECDHE-RSA-AES256-GCM-SHA384 bits=256 verify=OK); Thu, 12 Mar 2026 19:30:41 +0800",
    );
    assert_eq!(sendmail.tls_version, Some(TlsVersion::Tls12));
    assert_eq!(
        sendmail.tls_cipher.as_deref(),
        Some("ECDHE-RSA-AES256-GCM-SHA384")
    );
    let gmail = hop(
        "from mga07.sender.example (mga07.sender.example. [198.51.100.100]) by mx.google.com with ESMTPS id n9si146219pll.307.2017.09.27.16.56.22 for <list@example.org> (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128); Wed, 27 Sep 2017 16:56:23 -0700 (PDT)",
    );
    assert_eq!(gmail.tls_version, Some(TlsVersion::Tls12));
    assert_eq!(
        from(&gmail).reverse_name.as_deref(),
        Some("mga07.sender.example")
    );
    let gts = hop(
        "from mail-sor-f65.google.com (mail-sor-f65.google.com. [209.85.220.65]) by mx.google.com with SMTPS id z4-v6sor3890102lfh.21.2018.10.16.10.44.19 for <list@example.org> (Google Transport Security); Tue, 16 Oct 2018 10:44:20 -0700 (PDT)",
    );
    assert_eq!(gts.protocol, Some(Protocol::Smtps));
    assert_eq!((gts.tls, gts.tls_version), (Some(true), None));
    let microsoft = hop(
        "from mail.sender.example (198.51.100.25) by DB1PEPF000509E5.mail.protection.outlook.com (10.167.242.71) with Microsoft SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.8158.14 via Frontend Transport; Tue, 12 Nov 2024 11:14:07 +0000",
    );
    assert_eq!(
        microsoft.by.as_deref(),
        Some("db1pepf000509e5.mail.protection.outlook.com")
    );
    assert_eq!(from(&microsoft).ip, Some(ip("198.51.100.25")));
    assert_eq!(microsoft.protocol, Some(Protocol::Smtp));
    assert_eq!(microsoft.tls_version, Some(TlsVersion::Tls13));
    let microsoft_plain = hop(
        "from relay.sender.example (203.0.113.9) by SN1PEPF0002529D.mail.protection.outlook.com (10.167.242.4) with Microsoft SMTP Server id 15.20.8158.14 via Frontend Transport; Tue, 12 Nov 2024 11:30:21 +0000",
    );
    assert_eq!(microsoft_plain.tls, Some(false));
    let microsoft_tls = hop(
        "from mtkcas10.example (172.21.101.39) by mtkmbs07n2.example (172.21.101.141) with Microsoft SMTP Server (TLS) id 15.0.1497.2; Thu, 22 Oct 2020 20:37:53 +0800",
    );
    assert_eq!(
        (microsoft_tls.tls, microsoft_tls.tls_version),
        (Some(true), None)
    );
    let yahoo = hop(
        "from 198.51.100.25 (EHLO mail.sender.example) by 10.217.130.12 with SMTPs (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384); Tue, 12 Nov 2024 11:14:08 +0000",
    );
    assert_eq!(from(&yahoo).ip, Some(ip("198.51.100.25")));
    assert_eq!(from(&yahoo).helo.as_deref(), Some("mail.sender.example"));
    assert_eq!(yahoo.by.as_deref(), Some("10.217.130.12"));
    assert_eq!(yahoo.protocol, Some(Protocol::Smtps));
    assert_eq!(yahoo.tls_version, Some(TlsVersion::Tls13));
}

#[test]
fn lmtp_and_internal_hops() {
    let dovecot = hop(
        "from mail.seed.example by lfdr with LMTP id oGbVI6mksmnwOQAAu9opvQ (envelope-from <list-bounces@example.org>) for <seed@seed.example>; Thu, 12 Mar 2026 12:34:01 +0100",
    );
    assert_eq!(dovecot.by.as_deref(), Some("lfdr"));
    assert_eq!(dovecot.protocol, Some(Protocol::Lmtp));
    assert_eq!(dovecot.tls, Some(false));
    assert_eq!(from(&dovecot).helo.as_deref(), Some("mail.seed.example"));
    let gmail_internal = hop(
        "by 2002:a05:7010:4b0c:b0:3f1:a3e2:5b3c with SMTP id s12csp2468013mdf; Tue, 12 Nov 2024 04:02:13 -0800 (PST)",
    );
    assert_eq!(gmail_internal.from, None);
    assert_eq!(
        gmail_internal.by.as_deref(),
        Some("2002:a05:7010:4b0c:b0:3f1:a3e2:5b3c")
    );
    // Postfix's local pickup: the `from` inside the comment is no from clause.
    let pickup = hop(
        "by mail.sender.example (Postfix, from userid 1000) id 4AbC; Tue, 12 Nov 2024 04:02:13 +0000",
    );
    assert_eq!(pickup.from, None);
    assert_eq!(pickup.protocol, None);
    assert_eq!(pickup.tls, None);
}

#[test]
fn junk_and_empty_fields_never_fail() {
    for value in [
        "",
        " ",
        ";",
        "(((",
        "from",
        "by",
        "with",
        "from ()",
        "\u{0}\u{1}",
        "from [IPv6:::] by ;",
    ] {
        let h = hop(value);
        assert!(!h.trusted);
    }
    assert_eq!(hop("").from, None);
    let long = format!("from {} by x", "a".repeat(100_000));
    let h = hop(&long);
    assert!(
        h.from
            .as_ref()
            .and_then(|f| f.helo.as_ref())
            .is_none_or(|helo| helo.chars().count() <= MAX_VALUE_CHARS)
    );
}

#[test]
fn protocol_words() {
    for (word, protocol) in [
        ("esmtps", Protocol::Esmtps),
        ("ESMTPSA", Protocol::Esmtpsa),
        ("SMTPs", Protocol::Smtps),
        ("LMTPS", Protocol::Lmtps),
        ("local-esmtp", Protocol::Esmtp),
        ("ESMTP-TLS", Protocol::Esmtps),
        ("ESMTP/TLS/AES128-SHA", Protocol::Esmtps),
        ("SMTPSVC(6.0.3790.4675)", Protocol::Smtp),
        ("HTTPREST", Protocol::Http),
        ("mapi", Protocol::Mapi),
        ("UTF8SMTPS", Protocol::Utf8Smtps),
        ("NNFMP", Protocol::Other),
    ] {
        assert_eq!(Protocol::parse(word), protocol, "{word}");
    }
}

/// A path of Gmail hops: internal hop, receiving hop, sender's hops.
const GMAIL: &[&str] = &[
    "by 2002:a05:7010:4b0c:b0:3f1:a3e2:5b3c with SMTP id s12csp2468013mdf; Tue, 12 Nov 2024 04:02:14 -0800 (PST)",
    "from mail.sender.example (mail.sender.example. [2001:db8:25::1]) by mx.google.com with ESMTPS id d75a77b69052e-4630 for <seed@gmail.com> (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256); Tue, 12 Nov 2024 04:02:13 -0800 (PST)",
    "from submit.sender.example (submit.sender.example [198.51.100.10]) by mail.sender.example (Postfix) with ESMTPSA id 4XnC1k0abcz9qrs for <seed@gmail.com>; Tue, 12 Nov 2024 12:02:11 +0000 (UTC)",
    // Forged by the sender: claims Gmail took it from elsewhere. Below the sender's hop.
    "from forged.example ([203.0.113.66]) by mx.google.com with ESMTPS id x; Tue, 12 Nov 2024 12:02:10 +0000",
];

fn path_of(values: &[&str], receiver: &Receiver) -> Path {
    let hops: Vec<Hop> = values.iter().map(|v| parse_field(v)).collect();
    Path::from_hops(hops, values.len(), receiver)
}

#[test]
fn the_receiving_hop_is_the_first_from_outside() {
    let path = path_of(GMAIL, &Receiver::for_provider("gmail"));
    assert_eq!(path.receiving_hop, Some(1));
    let trusted: Vec<bool> = path.hops.iter().map(|h| h.trusted).collect();
    assert_eq!(trusted, [true, true, false, false]);
    let seen = path.seen.as_ref().expect("seen");
    assert_eq!(seen.ip, Some(ip("2001:db8:25::1")));
    assert_eq!(seen.family, Some(Family::Ipv6));
    assert_eq!(seen.helo.as_deref(), Some("mail.sender.example"));
    assert_eq!(seen.tls_version, Some(TlsVersion::Tls13));
    assert_eq!(path.last_hop_tls(), "tls1.3");
    // Submission is the oldest timestamp below the receiving hop, whoever wrote it (here the
    // forged 12:02:10 UTC): 12:02:10 → 12:02:13 → 12:02:14 UTC.
    assert_eq!(path.handoff(Leg::ReceivingMx), Some(3));
    assert_eq!(path.handoff(Leg::Mailbox), Some(1));
    assert_eq!(path.hops[0].delay_seconds, Some(1));
    assert_eq!(path.hops[1].delay_seconds, Some(2));
    assert_eq!(path.hops[2].delay_seconds, Some(1));
    assert_eq!(path.hops[3].delay_seconds, None);
}

#[test]
fn without_domains_the_top_hop_names_the_receiver() {
    let path = path_of(GMAIL, &Receiver::default());
    assert_eq!(path.receiver_domains, ["google.com"]);
    assert_eq!(path.receiving_hop, Some(1));
}

#[test]
fn a_receiver_that_is_not_on_the_path_trusts_nothing() {
    let path = path_of(GMAIL, &Receiver::new(["outlook.com"]));
    assert_eq!(path.receiving_hop, None);
    assert!(path.hops.iter().all(|h| !h.trusted));
    assert_eq!(path.seen, None);
    assert!(path.handoffs.is_empty());
    assert_eq!(path.last_hop_tls(), "unknown");
}

#[test]
fn a_client_that_names_itself_like_the_receiver_does_not_extend_trust() {
    // The sender HELOs as a Google host: the walk goes on past the receiving hop, meets the
    // sender's own hop, stops, and the lowest Google hop is the receiving hop.
    let path = path_of(
        &[
            "from mail-forged.google.com (mail.sender.example [198.51.100.25]) by mx.google.com with ESMTPS id 1; Tue, 12 Nov 2024 04:02:13 -0800",
            "from submit.sender.example ([198.51.100.10]) by mail.sender.example (Postfix) with ESMTPSA id 2; Tue, 12 Nov 2024 12:02:11 +0000",
            "from forged.example ([203.0.113.66]) by mx.google.com with ESMTPS id 3; Tue, 12 Nov 2024 12:02:10 +0000",
        ],
        &Receiver::for_provider("gmail"),
    );
    assert_eq!(path.receiving_hop, Some(0));
    assert_eq!(
        path.seen.as_ref().and_then(|s| s.ip),
        Some(ip("198.51.100.25"))
    );
}

#[test]
fn internal_hops_of_the_receiver_are_crossed() {
    // Fastmail: LMTP proxy, internal Postfix, milter hop, then the MX that took it from outside.
    let path = path_of(
        &[
            "from compute5.internal (compute5.nyi.internal [10.202.2.45]) by sloti42n16 (Cyrus 3.11.0) with LMTPA; Tue, 12 Nov 2024 06:14:09 -0500",
            "from mx6 ([10.202.2.205]) by compute5.internal (LMTPProxy); Tue, 12 Nov 2024 06:14:09 -0500",
            "from mx6.messagingengine.com (localhost [127.0.0.1]) by mailmx.nyi.internal (Postfix) with ESMTP id 1A2B3C4D5E6 for <seed@fastmail.com>; Tue, 12 Nov 2024 06:14:09 -0500 (EST)",
            "from mail.sender.example (mail.sender.example [198.51.100.25]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested) by mx6.messagingengine.com (Postfix) with ESMTPS for <seed@fastmail.com>; Tue, 12 Nov 2024 06:14:08 -0500 (EST)",
            "from submit.sender.example ([198.51.100.10]) by mail.sender.example (Postfix) with ESMTPSA id 2; Tue, 12 Nov 2024 11:14:06 +0000",
        ],
        &Receiver::for_provider("fastmail"),
    );
    assert_eq!(path.receiving_hop, Some(3));
    assert_eq!(path.handoff(Leg::ReceivingMx), Some(2));
    assert_eq!(path.handoff(Leg::Mailbox), Some(1));
}

#[test]
fn loopback_lab_addresses_with_a_public_helo_come_from_outside() {
    let path = path_of(
        &[
            "from mx.seed.test by mx.seed.test with LMTP id Abc (envelope-from <probe@sender.test>) for <seed1@seed.test>; Tue, 12 Nov 2024 11:14:09 +0000",
            "from mail.sender.test (mail.sender.test [127.0.0.2]) (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by mx.seed.test (Postfix) with ESMTPS id 1; Tue, 12 Nov 2024 11:14:09 +0000",
            "from localhost (localhost [127.0.0.1]) by mail.sender.test (Postfix) with ESMTPSA id 2; Tue, 12 Nov 2024 11:14:08 +0000",
        ],
        &Receiver::from_authserv_ids(["mx.seed.test"]),
    );
    assert_eq!(path.receiver_domains, ["seed.test"]);
    assert_eq!(path.receiving_hop, Some(1));
    let seen = path.seen.expect("seen");
    assert_eq!(seen.ip, Some(ip("127.0.0.2")));
    assert_eq!(seen.helo.as_deref(), Some("mail.sender.test"));
}

#[test]
fn receiver_domains() {
    let r = Receiver::from_authserv_ids(["mx.google.com", "", "spf.icloud.com", "example.com."]);
    assert_eq!(r.domains(), ["google.com", "icloud.com", "example.com"]);
    assert!(r.owns("MX.Google.COM."));
    assert!(r.owns("google.com"));
    assert!(!r.owns("evilgoogle.com"));
    assert!(!r.owns("google.com.evil.example"));
    assert!(Receiver::for_provider("nope").is_empty());
    let merged =
        Receiver::for_provider("outlook").with(&Receiver::new(["office365.com", "x.test"]));
    assert_eq!(merged.domains(), ["outlook.com", "office365.com", "x.test"]);
}

#[test]
fn internal_names_and_addresses() {
    for name in [
        "mx6",
        "localhost",
        "mailmx.nyi.internal",
        "a.local",
        "box.lan",
        "10.0.0.1",
        "[192.168.1.1]",
        "::1",
        "fe80::1",
        "fd00::1",
        "100.64.0.1",
    ] {
        assert!(is_internal_name(name), "{name}");
    }
    for name in [
        "mx.google.com",
        "198.51.100.1",
        "2001:db8::1",
        "internal.example.com",
    ] {
        assert!(!is_internal_name(name), "{name}");
    }
    assert!(is_global(ip("2002:a05:7010::1")));
    assert!(!is_global(ip("::ffff:10.1.2.3")));
}

#[test]
fn bounded_hops_and_counts() {
    let mut raw = String::new();
    for i in 0..10_000 {
        raw.push_str(&format!(
            "Received: from h{i}.example ([198.51.100.1]) by r{i}.example with ESMTP id {i}; Tue, 12 Nov 2024 11:14:08 +0000\n"
        ));
    }
    raw.push_str("Subject: x\n\nbody\n");
    let path = read(raw.as_bytes(), &Receiver::default()).expect("message");
    assert_eq!(path.hops_total, 10_000);
    assert_eq!(path.hops.len(), MAX_HOPS);
    // One field of a megabyte.
    let raw = format!(
        "Received: from {} by x.example; Tue, 12 Nov 2024 11:14:08 +0000\n\n",
        "a.".repeat(500_000)
    );
    let path = read(raw.as_bytes(), &Receiver::default()).expect("message");
    assert_eq!(path.hops.len(), 1);
}

#[test]
fn json_keys_are_always_there() {
    let path = path_of(GMAIL, &Receiver::for_provider("gmail"));
    let value = serde_json::to_value(&path).expect("json");
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "handoffs",
            "hops",
            "hops_total",
            "receiver_domains",
            "receiving_hop",
            "seen"
        ]
    );
    let hop = &value["hops"][1];
    for key in [
        "trusted",
        "by",
        "from",
        "protocol",
        "tls",
        "tls_version",
        "tls_cipher",
        "id",
        "for",
        "timestamp",
        "date",
        "delay_seconds",
    ] {
        assert!(hop.get(key).is_some(), "{key} missing in {hop}");
    }
    assert_eq!(hop["from"]["family"], "ipv6");
    assert_eq!(hop["protocol"], "ESMTPS");
    assert_eq!(hop["tls_version"], "TLSv1.3");
    assert_eq!(
        value["handoffs"][0],
        serde_json::json!({"hop": "receiving_mx", "seconds": 3})
    );
    assert_eq!(value["hops"][0]["from"], serde_json::Value::Null);
}

#[test]
fn labels_are_bounded() {
    for version in [
        TlsVersion::Ssl2,
        TlsVersion::Ssl3,
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ] {
        assert!(LAST_HOP_TLS_LABELS.contains(&version.label()));
    }
    assert_eq!(Leg::ALL.map(Leg::as_str), ["receiving_mx", "mailbox"]);
    assert_eq!(
        Handoff {
            hop: Leg::Mailbox,
            seconds: -3
        }
        .non_negative_seconds(),
        0
    );
}
