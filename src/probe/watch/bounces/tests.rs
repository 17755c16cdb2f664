use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::outcome::Placement;
use crate::probe::watch::context::Board;
use crate::state::probes::{ProbeKind, ProbeState};

const INSTANCE: &str = "site-a";
const P1: &str = "0123456789abcdef0123456789abcdef";
const P2: &str = "fedcba9876543210fedcba9876543210";

fn config() -> Arc<Config> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let text = format!(
        "[probe]\ntoken_key_file = \"token.key\"\ninstance = \"{INSTANCE}\"\n\
         [routes.main]\nhost = \"127.0.0.1\"\nport = 9\nfrom = \"p@sender.test\"\ntls = \"none\"\n\
         envelope_from = \"bounces@sender.test\"\nbounces = \"lab\"\n\
         [routes.quiet]\nhost = \"127.0.0.1\"\nport = 9\nfrom = \"p@sender.test\"\ntls = \"none\"\n\
         [seeds.s1]\naddress = \"s1@example.com\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n\
         [bounce_mailboxes.lab]\naddress = \"bounces@sender.test\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n"
    );
    match crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml")) {
        Ok(c) => Arc::new(c),
        Err(e) => panic!("{e}"),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: WatchCtx,
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(ProbeStore::open(&dir.path().join("s.sqlite"), INSTANCE).expect("store"));
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let config = config();
    metrics.preset(&config);
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    Fixture {
        _dir: dir,
        ctx: WatchCtx {
            store,
            metrics,
            config,
            board: Board::default(),
            events,
            started: 1000.0,
            seen_ips: None,
        },
        events: received,
    }
}

impl Fixture {
    fn key(&self) -> &Secret {
        &self.ctx.config.probe.token_key
    }

    /// A probe of `route` → s1, sent at `created`, with Message-ID `<mc.ID@sender.test>`.
    fn sent(&self, id: &str, route: &str, created: f64) -> ProbeRecord {
        let store = &self.ctx.store;
        store
            .insert_sending(
                1,
                id,
                route,
                "s1",
                &message_id(id),
                created,
                ProbeKind::Scheduled,
            )
            .expect("insert");
        let accepted = crate::outcome::SendOutcome {
            code: 250,
            queue_id: None,
            duration_seconds: 0.1,
            session: crate::outcome::SmtpSession::Fresh,
        };
        store.mark_sent(id, &accepted, created).expect("sent");
        self.get(id)
    }

    fn get(&self, id: &str) -> ProbeRecord {
        self.ctx.store.get(id).expect("get").expect("stored")
    }

    fn token(&self, id: &str) -> String {
        Token::new(id, INSTANCE, "main", "s1", 1_700_000_000).encode(self.key())
    }

    fn envid(&self, id: &str) -> String {
        token::envelope_id(self.key(), INSTANCE, id)
    }

    fn claim(&self, raw: &[u8]) -> Claim {
        let dsn = match crate::verdict::dsn::read(raw) {
            Ok(Some(d)) => d,
            other => panic!("not a bounce: {other:?}"),
        };
        let here = |r: &ProbeRecord| r.route == "main";
        match claim(&dsn, self.key(), INSTANCE, &self.ctx.store, here) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn forged(&self, reason: &str) -> u64 {
        self.ctx
            .metrics
            .probe
            .forged_bounces
            .with_label_values(&["lab", reason])
            .get()
    }

    fn counter(&self, vec: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
        vec.with_label_values(labels).get()
    }

    fn last_placement(&self, placement: &str) -> i64 {
        self.ctx
            .metrics
            .probe
            .last_placement
            .with_label_values(&["main", "s1", placement])
            .get()
    }
}

fn message_id(id: &str) -> String {
    format!("<mc.{id}@sender.test>")
}

/// What a bounce carries that could name a probe.
#[derive(Default)]
struct Refs {
    token: Option<String>,
    envid: Option<String>,
    message_id: Option<String>,
    /// `delayed` for a delay notice; else `failed`.
    delayed: bool,
}

/// A Postfix-style RFC 3464 bounce (headers returned, `RET=HDRS`) of Gmail's 550 5.7.25.
fn bounce(refs: &Refs) -> Vec<u8> {
    let envid = refs
        .envid
        .as_deref()
        .map(|e| format!("Original-Envelope-Id: {e}\r\n"))
        .unwrap_or_default();
    let (action, status, reply) = if refs.delayed {
        (
            "delayed",
            "4.7.0",
            "421 4.7.0 [TSS04] Messages temporarily deferred",
        )
    } else {
        (
            "failed",
            "5.7.25",
            "550 5.7.25 The IP address sending this message does not have a PTR record setup",
        )
    };
    let mut returned = String::new();
    if let Some(mid) = &refs.message_id {
        returned.push_str(&format!("Message-ID: {mid}\r\n"));
    }
    if let Some(t) = &refs.token {
        returned.push_str(&format!("X-Mailcanary-Probe: {t}\r\n"));
    }
    format!(
        "From: MAILER-DAEMON@mail.sender.test (Mail Delivery System)\r\n\
         To: bounces@sender.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-Id: <bounce-1@mail.sender.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
         \r\n\
         --b\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not be delivered.\r\n\
         \r\n\
         --b\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mail.sender.test\r\n\
         {envid}\
         \r\n\
         Final-Recipient: rfc822; s1@example.com\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Remote-MTA: dns; mx.example.com\r\n\
         Diagnostic-Code: smtp; {reply}\r\n\
         \r\n\
         --b\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {returned}\
         Subject: probe\r\n\
         \r\n\
         --b--\r\n"
    )
    .into_bytes()
}

fn unproven(claim: &Claim) -> Option<(&str, Unproven)> {
    match claim {
        Claim::Unproven { record, why } => Some((record.probe_id.as_str(), *why)),
        _ => None,
    }
}

fn proven(claim: &Claim) -> Option<(&str, Proof)> {
    match claim {
        Claim::Proven { record, by } => Some((record.probe_id.as_str(), *by)),
        _ => None,
    }
}

#[test]
fn bounces_are_told_from_ordinary_mail_by_their_headers() {
    assert!(looks_like_bounce(
        b"From: Mail Delivery System <MAILER-DAEMON@sender.test>\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n"
    ));
    assert!(looks_like_bounce(
        b"From: postmaster@example.net\r\nSubject: hi\r\n\r\n"
    ));
    assert!(looks_like_bounce(
        b"From: someone@example.net\r\nSubject: Delivery Status Notification (Failure)\r\n\r\n"
    ));
    assert!(!looks_like_bounce(
        b"From: friend@example.org\r\nSubject: lunch?\r\nContent-Type: text/plain\r\n\r\n"
    ));
    assert!(!looks_like_bounce(b""));
}

#[test]
fn a_verifying_token_or_signed_envelope_id_proves_a_bounce() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    // What Postfix returns with RET=HDRS: both, and the Message-ID.
    let both = bounce(&Refs {
        token: Some(f.token(P1)),
        envid: Some(f.envid(P1)),
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert_eq!(proven(&f.claim(&both)), Some((P1, Proof::Token)));
    // A bouncer that returns nothing of the message: the envelope id alone proves it.
    let envid_only = bounce(&Refs {
        envid: Some(f.envid(P1)),
        ..Refs::default()
    });
    assert_eq!(proven(&f.claim(&envid_only)), Some((P1, Proof::EnvelopeId)));
    // One that does not speak DSN but returns the headers: the token alone.
    let token_only = bounce(&Refs {
        token: Some(f.token(P1)),
        ..Refs::default()
    });
    assert_eq!(proven(&f.claim(&token_only)), Some((P1, Proof::Token)));
    // A probe in flight across the upgrade: the bare envelope id of the release before, but
    // its token verifies.
    let upgraded = bounce(&Refs {
        token: Some(f.token(P1)),
        envid: Some(P1.to_string()),
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert_eq!(proven(&f.claim(&upgraded)), Some((P1, Proof::Token)));
    // A token of a release before instances (v1) still proves it.
    let v1 = Token {
        probe_id: P1.to_string(),
        instance: None,
        route: "main".to_string(),
        seed: "s1".to_string(),
        sent_at: 1,
    }
    .encode(f.key());
    let old = bounce(&Refs {
        token: Some(v1),
        ..Refs::default()
    });
    assert_eq!(proven(&f.claim(&old)), Some((P1, Proof::Token)));
}

#[test]
fn what_strangers_know_names_a_probe_but_proves_nothing() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    let public = token::public_id(f.key(), P1);
    // Everything served without authentication: the public id, and the Message-ID it makes.
    let from_the_api = bounce(&Refs {
        token: Some(format!(
            "v2.{public}.{INSTANCE}.main.s1.1700000000.{}",
            "00".repeat(16)
        )),
        envid: Some(public.clone()),
        message_id: Some(format!("<mc.{public}@sender.test>")),
        ..Refs::default()
    });
    assert_eq!(
        f.claim(&from_the_api),
        Claim::NotOurs,
        "names no probe at all"
    );
    // What a relay or a mail log shows: the Message-ID.
    let message_id_only = bounce(&Refs {
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert_eq!(
        unproven(&f.claim(&message_id_only)),
        Some((P1, Unproven::MessageId))
    );
    // The probe id itself, as the envelope id of the release before.
    let bare_envid = bounce(&Refs {
        envid: Some(P1.to_string()),
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert_eq!(
        unproven(&f.claim(&bare_envid)),
        Some((P1, Unproven::EnvelopeId))
    );
    // Our envelope id form with a made-up MAC, or one signed for another instance.
    for envid in [
        format!("mc1.{P1}.{}", "ab".repeat(16)),
        token::envelope_id(f.key(), "site-b", P1),
    ] {
        let bad = bounce(&Refs {
            envid: Some(envid),
            ..Refs::default()
        });
        assert_eq!(unproven(&f.claim(&bad)), Some((P1, Unproven::EnvelopeId)));
    }
    // A token that does not verify, with everything else right: the token is what counts.
    let wire = f.token(P1);
    let forged_token = bounce(&Refs {
        token: Some(format!("{}{}", &wire[..wire.len() - 32], "00".repeat(16))),
        envid: Some(P1.to_string()),
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert_eq!(
        unproven(&f.claim(&forged_token)),
        Some((P1, Unproven::Token))
    );
    // A token made with another key is forged too.
    let other_key =
        Token::new(P1, INSTANCE, "main", "s1", 1).encode(&Secret::new("another-key-of-16-chars"));
    let other = bounce(&Refs {
        token: Some(other_key),
        ..Refs::default()
    });
    assert_eq!(unproven(&f.claim(&other)), Some((P1, Unproven::Token)));
}

#[test]
fn proofs_that_disagree_prove_nothing() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    f.sent(P2, "main", 200.0);
    let crossed = bounce(&Refs {
        token: Some(f.token(P1)),
        envid: Some(f.envid(P2)),
        ..Refs::default()
    });
    assert_eq!(unproven(&f.claim(&crossed)), Some((P1, Unproven::Mismatch)));
}

#[test]
fn bounces_of_other_probes_are_not_ours() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    f.sent(P2, "quiet", 100.0);
    // Another instance's valid token: its bounce, whatever else it carries.
    let foreign = Token::new(P1, "site-b", "main", "s1", 1).encode(f.key());
    let theirs = bounce(&Refs {
        token: Some(foreign),
        envid: Some(f.envid(P1)),
        ..Refs::default()
    });
    assert_eq!(f.claim(&theirs), Claim::Foreign);
    // A valid token of ours for a probe this state does not have (pruned, another file).
    let unknown = "11111111111111111111111111111111";
    let gone = bounce(&Refs {
        token: Some(f.token(unknown)),
        envid: Some(f.envid(unknown)),
        message_id: Some(message_id(unknown)),
        ..Refs::default()
    });
    assert_eq!(f.claim(&gone), Claim::NotOurs);
    // A valid token whose route and seed are not the probe's.
    let moved = Token::new(P1, INSTANCE, "quiet", "s1", 1).encode(f.key());
    let elsewhere = bounce(&Refs {
        token: Some(moved),
        ..Refs::default()
    });
    assert_eq!(f.claim(&elsewhere), Claim::NotOurs);
    // A probe of a route that does not bounce into this mailbox, proven or not.
    for refs in [
        Refs {
            envid: Some(f.envid(P2)),
            ..Refs::default()
        },
        Refs {
            message_id: Some(message_id(P2)),
            ..Refs::default()
        },
    ] {
        assert_eq!(f.claim(&bounce(&refs)), Claim::NotOurs);
    }
    // Someone else's bounce entirely.
    let stranger = bounce(&Refs {
        envid: Some("QQ12345".to_string()),
        message_id: Some("<x@elsewhere.example>".to_string()),
        ..Refs::default()
    });
    assert_eq!(f.claim(&stranger), Claim::NotOurs);
}

#[test]
fn every_unproven_reason_is_a_metric_label() {
    for why in [
        Unproven::Token,
        Unproven::EnvelopeId,
        Unproven::MessageId,
        Unproven::Mismatch,
    ] {
        assert!(
            crate::metrics::probe_series::FORGED_BOUNCE_REASONS.contains(&why.as_str()),
            "{why:?}"
        );
    }
}

#[test]
fn a_forged_bounce_changes_no_probe_and_is_left_alone() {
    let mut f = fixture();
    f.sent(P1, "main", 100.0);
    f.sent(P2, "main", 200.0);
    f.ctx
        .store
        .expire(P2, Placement::Missing, None, None)
        .expect("expire");
    for id in [P1, P2] {
        let before = f.get(id);
        let forged = bounce(&Refs {
            envid: Some(id.to_string()),
            message_id: Some(message_id(id)),
            ..Refs::default()
        });
        let ours = record_bounce(&f.ctx, "lab", &forged).expect("record");
        assert!(!ours, "a forged bounce is never cleaned up");
        assert_eq!(f.get(id), before, "a forged bounce changed the probe");
        let message_only = bounce(&Refs {
            message_id: Some(message_id(id)),
            ..Refs::default()
        });
        assert!(!record_bounce(&f.ctx, "lab", &message_only).expect("record"));
        assert_eq!(f.get(id), before);
    }
    assert_eq!(f.forged("envelope_id"), 2);
    assert_eq!(f.forged("message_id"), 2);
    assert_eq!(f.forged("token"), 0);
    let m = &f.ctx.metrics.probe;
    assert_eq!(f.counter(&m.bounces, &["main"]), 0);
    assert_eq!(f.counter(&m.probes_rejected, &["main", "s1", "ptr"]), 0);
    assert!(f.events.try_recv().is_err(), "no outcome reported");
    // Someone else's bounce is not counted at all.
    let stranger = bounce(&Refs {
        message_id: Some("<x@elsewhere.example>".to_string()),
        ..Refs::default()
    });
    assert!(!record_bounce(&f.ctx, "lab", &stranger).expect("record"));
    assert_eq!(f.forged("message_id"), 2);
}

#[test]
fn a_proven_bounce_rejects_its_probe_in_flight() {
    let mut f = fixture();
    f.sent(P1, "main", 100.0);
    let real = bounce(&Refs {
        token: Some(f.token(P1)),
        envid: Some(f.envid(P1)),
        message_id: Some(message_id(P1)),
        ..Refs::default()
    });
    assert!(record_bounce(&f.ctx, "lab", &real).expect("record"));
    let r = f.get(P1);
    assert_eq!(r.state, ProbeState::Rejected);
    assert!(!r.late);
    assert_eq!(r.expired_as, None);
    assert_eq!(
        r.bounce.as_ref().and_then(|b| b.status.as_deref()),
        Some("5.7.25")
    );
    let m = &f.ctx.metrics.probe;
    assert_eq!(f.counter(&m.probes_rejected, &["main", "s1", "ptr"]), 1);
    assert_eq!(f.counter(&m.probes_late, &["main", "s1"]), 0);
    assert_eq!(f.last_placement("rejected"), 1);
    match f.events.try_recv() {
        Ok(Event::Outcome { record, last }) => {
            assert!(last);
            assert_eq!(record.state, ProbeState::Rejected);
        }
        other => panic!("expected the outcome, got {other:?}"),
    }
    // The same bounce again (a second copy): ours, cleaned up, nothing counted twice.
    assert!(record_bounce(&f.ctx, "lab", &real).expect("again"));
    assert_eq!(f.counter(&m.probes_rejected, &["main", "s1", "ptr"]), 1);
}

#[test]
fn a_delay_notice_defers_a_probe_in_flight_only() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    f.sent(P2, "main", 50.0);
    f.ctx
        .store
        .expire(P2, Placement::Missing, None, None)
        .expect("expire");
    for id in [P1, P2] {
        let notice = bounce(&Refs {
            envid: Some(f.envid(id)),
            delayed: true,
            ..Refs::default()
        });
        assert!(record_bounce(&f.ctx, "lab", &notice).expect("record"));
    }
    assert_eq!(f.get(P1).state, ProbeState::Deferred);
    assert_eq!(
        f.get(P2).state,
        ProbeState::Missing,
        "a late delay is no news"
    );
}

#[test]
fn a_late_bounce_is_news_that_keeps_the_earlier_outcome() {
    let mut f = fixture();
    f.sent(P1, "main", 100.0);
    f.ctx
        .store
        .expire(P1, Placement::Missing, None, None)
        .expect("expire");
    f.ctx
        .metrics
        .set_last_placement("main", "s1", Placement::Missing);
    let real = bounce(&Refs {
        envid: Some(f.envid(P1)),
        ..Refs::default()
    });
    assert!(record_bounce(&f.ctx, "lab", &real).expect("record"));
    let r = f.get(P1);
    assert_eq!(r.state, ProbeState::Rejected);
    assert!(r.late);
    assert_eq!(r.expired_as, Some(ProbeState::Missing));
    let m = &f.ctx.metrics.probe;
    assert_eq!(f.counter(&m.probes_rejected, &["main", "s1", "ptr"]), 1);
    assert_eq!(f.counter(&m.probes_late, &["main", "s1"]), 1);
    // Still the pair's latest result: its last placement is now the truth.
    assert_eq!(f.last_placement("rejected"), 1);
    assert_eq!(f.last_placement("missing"), 0);
    match f.events.try_recv() {
        Ok(Event::Outcome { record, .. }) => {
            assert!(record.late);
            assert_eq!(record.expired_as, Some(ProbeState::Missing));
        }
        other => panic!("expected the outcome, got {other:?}"),
    }
    // It is shown as such.
    let results = crate::results::build(&[r], &f.ctx.config);
    let shown = &results.results[0];
    assert_eq!(shown.probe_id, token::public_id(f.key(), P1));
    assert!(shown.late);
    assert_eq!(shown.expired_as, Some(ProbeState::Missing));
    let words = crate::results::words::in_words(shown, false);
    assert!(
        words
            .iter()
            .any(|w| w.contains("after the timeout") && w.contains("missing")),
        "{words:?}"
    );
}

#[test]
fn a_late_bounce_of_an_older_probe_moves_no_gauge() {
    let f = fixture();
    f.sent(P1, "main", 100.0);
    f.ctx
        .store
        .expire(
            P1,
            Placement::Unknown,
            Some("mailbox unreadable"),
            Some("network"),
        )
        .expect("expire");
    // A newer probe of the pair landed in the inbox since.
    f.sent(P2, "main", 200.0);
    let j = crate::probe::judge::judge(b"Subject: x\r\n\r\n", &[], &Default::default());
    f.ctx
        .store
        .resolve(P2, Placement::Inbox, "INBOX", &j, Some(1.0))
        .expect("resolve");
    f.ctx
        .metrics
        .set_last_placement("main", "s1", Placement::Inbox);
    let real = bounce(&Refs {
        token: Some(f.token(P1)),
        ..Refs::default()
    });
    assert!(record_bounce(&f.ctx, "lab", &real).expect("record"));
    let r = f.get(P1);
    assert_eq!((r.state, r.late), (ProbeState::Rejected, true));
    assert_eq!(r.expired_as, Some(ProbeState::Unknown));
    let m = &f.ctx.metrics.probe;
    assert_eq!(f.counter(&m.probes_rejected, &["main", "s1", "ptr"]), 1);
    assert_eq!(f.last_placement("inbox"), 1, "the newer probe still stands");
    assert_eq!(f.last_placement("rejected"), 0);
    assert_eq!(
        f.ctx
            .store
            .latest_per_pair()
            .expect("latest")
            .iter()
            .map(|r| r.probe_id.as_str())
            .collect::<Vec<_>>(),
        [P2]
    );
}
