//! Property tests: the path reader never panics, whatever `Received:` fields it is given, and
//! what it returns keeps the trust rule (only a top run of hops is trusted) and its bounds.

use mailcanary::path::{MAX_HOPS, MAX_VALUE_CHARS, Path, Receiver, parse_field, read};
use proptest::prelude::*;

/// Pieces real and hostile `Received:` fields are made of, so that generated values reach the
/// dialect branches instead of stopping at the first byte.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("from ".to_string()),
        Just("by ".to_string()),
        Just("with ".to_string()),
        Just("via ".to_string()),
        Just("id ".to_string()),
        Just("for ".to_string()),
        Just("<a@b.example>".to_string()),
        Just("mx.google.com ".to_string()),
        Just("mail.sender.example ".to_string()),
        Just("localhost ".to_string()),
        Just("[IPv6:2001:db8::1]".to_string()),
        Just("[198.51.100.1]".to_string()),
        Just("2002:a05:7010::1 ".to_string()),
        Just("10.1.2.3 ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just(";".to_string()),
        Just("=".to_string()),
        Just("ESMTPS ".to_string()),
        Just("LMTP ".to_string()),
        Just("SMTPs ".to_string()),
        Just("Microsoft SMTP Server ".to_string()),
        Just("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))".to_string()),
        Just("(version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128)".to_string()),
        Just("(TLS1.3) tls TLS_AES_256_GCM_SHA384 ".to_string()),
        Just("(Google Transport Security)".to_string()),
        Just("(EHLO x.example)".to_string()),
        Just("helo=".to_string()),
        Just("unknown ".to_string()),
        Just("; Tue, 12 Nov 2024 11:14:08 +0000".to_string()),
        Just("; 31 Feb 99999 99:99:99 -9999".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..40).prop_map(|pieces| pieces.concat())
}

fn receiver() -> impl Strategy<Value = Receiver> {
    prop_oneof![
        Just(Receiver::default()),
        Just(Receiver::for_provider("gmail")),
        Just(Receiver::new(["sender.example"])),
        Just(Receiver::from_authserv_ids(["mx.google.com", ""])),
    ]
}

fn check(path: &Path) {
    serde_json::to_string(path).expect("renders as JSON");
    assert!(path.hops.len() <= MAX_HOPS);
    assert!(path.hops.len() <= path.hops_total);
    // Trusted hops are a top run ending at the receiving hop.
    match path.receiving_hop {
        Some(index) => {
            assert!(index < path.hops.len());
            for (at, hop) in path.hops.iter().enumerate() {
                assert_eq!(hop.trusted, at <= index, "hop {at}");
            }
            assert!(path.seen.is_some());
        }
        None => {
            assert!(path.hops.iter().all(|hop| !hop.trusted));
            assert!(path.seen.is_none());
            assert!(path.handoffs.is_empty());
        }
    }
    for hop in &path.hops {
        for text in [&hop.by, &hop.id, &hop.for_, &hop.tls_cipher]
            .into_iter()
            .flatten()
        {
            assert!(text.chars().count() <= MAX_VALUE_CHARS);
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        if let Some(from) = &hop.from {
            assert_eq!(from.family.is_some(), from.ip.is_some());
        }
        if hop.tls_version.is_some() {
            assert_eq!(hop.tls, Some(true));
        }
    }
    assert!(mailcanary::path::LAST_HOP_TLS_LABELS.contains(&path.last_hop_tls()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn one_field_never_panics(value in value()) {
        let hop = parse_field(&value);
        prop_assert!(!hop.trusted);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048), receiver in receiver()) {
        if let Ok(path) = read(&raw, &receiver) {
            check(&path);
        }
    }

    #[test]
    fn header_sets_keep_the_trust_rule(values in prop::collection::vec(value(), 0..12), receiver in receiver()) {
        let mut raw = String::new();
        for value in &values {
            raw.push_str("Received: ");
            raw.push_str(&value.replace(['\r', '\n'], " "));
            raw.push('\n');
        }
        raw.push_str("Subject: x\n\nbody\n");
        let path = read(raw.as_bytes(), &receiver).expect("a message");
        prop_assert_eq!(path.hops_total, values.len());
        check(&path);
    }

    #[test]
    fn lf_and_crlf_read_the_same(values in prop::collection::vec(value(), 0..8), receiver in receiver()) {
        let lf: String = values
            .iter()
            .map(|value| format!("Received: {}\n", value.replace(['\r', '\n'], " ")))
            .collect::<String>()
            + "Subject: x\n\nbody\n";
        let crlf = lf.replace('\n', "\r\n");
        let a = read(lf.as_bytes(), &receiver).map(|p| serde_json::to_string(&p).expect("json"));
        let b = read(crlf.as_bytes(), &receiver).map(|p| serde_json::to_string(&p).expect("json"));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn hops_written_below_never_change_what_the_receiver_saw(forged in prop::collection::vec(value(), 0..6)) {
        // Whatever a sender writes below its own hop, the receiving hop and what it saw stay.
        let top = "Received: from mail.sender.example (mail.sender.example [198.51.100.25]) by mx.google.com with ESMTPS id 1 (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256); Tue, 12 Nov 2024 04:02:13 -0800\nReceived: from submit.sender.example ([198.51.100.10]) by mail.sender.example (Postfix) with ESMTPSA id 2; Tue, 12 Nov 2024 12:02:11 +0000\n";
        let mut raw = top.to_string();
        for value in &forged {
            raw.push_str("Received: ");
            raw.push_str(&value.replace(['\r', '\n'], " "));
            raw.push('\n');
        }
        raw.push('\n');
        let path = read(raw.as_bytes(), &Receiver::for_provider("gmail")).expect("a message");
        prop_assert_eq!(path.receiving_hop, Some(0));
        prop_assert_eq!(path.last_hop_tls(), "tls1.3");
        let seen = path.seen.expect("seen");
        prop_assert_eq!(seen.ip, Some("198.51.100.25".parse().expect("ip")));
    }
}
