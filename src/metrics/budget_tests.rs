//! The series budget (issue #23): what one route × seed pair costs, per metric family, once
//! each pair had a realistic outcome, and what a scrape of a 1,000-seed instance weighs.

use std::collections::BTreeMap;
use std::io::Write;

use super::Metrics;
use super::tests::config;
use crate::gmail::Tab;
use crate::outcome::{Bounce, Judgement, Placement, SendOutcome};
use crate::standing::PairState;
use crate::verdict::{AuthResult, SpamVerdict, Verdict};

/// Series one route × seed pair may cost once it had an outcome, every family together.
const PAIR_BUDGET: usize = 25;
/// A pair's outcome counters stay once created, so a pair that has had every kind of outcome
/// costs more than one that had one: at most the budget plus one more counter for each kind
/// (received in another folder, missing, unknown, rejected, late).
const PAIR_LIFETIME_BUDGET: usize = PAIR_BUDGET + 5;

/// The outcomes a round brings, as the prober records them through [`Metrics`].
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// In the inbox, SPF, DKIM and DMARC passing (a Gmail seed: under a tab).
    Inbox,
    /// In the spam folder, DMARC failing, diagnosed (content and alignment), confirming.
    Spam,
    /// Refused by the receiver: a bounce came back, diagnosed, confirmed.
    Rejected,
    /// Not found before the timeout.
    Missing,
    /// The mailbox could not be read.
    Unknown,
    /// The route's SMTP server did not take it.
    NotSent,
}

const OUTCOMES: [Outcome; 6] = [
    Outcome::Inbox,
    Outcome::Spam,
    Outcome::Rejected,
    Outcome::Missing,
    Outcome::Unknown,
    Outcome::NotSent,
];

fn judgement(pass: bool, score: f64) -> Judgement {
    let result = |p| {
        if p {
            AuthResult::Pass
        } else {
            AuthResult::Fail
        }
    };
    Judgement {
        verdict: Verdict {
            spf: AuthResult::Pass,
            dkim: result(pass),
            dmarc: result(pass),
            arc: AuthResult::None,
            iprev: AuthResult::Pass,
            authserv_id: Some("mx.seed.test".into()),
        },
        spam: SpamVerdict {
            flagged: !pass,
            score: Some(score),
            threshold: Some(6.0),
            ..SpamVerdict::default()
        },
        dkim_reason: None,
        spam_reasons: Vec::new(),
        client_ip: None,
        tab: None,
        error: None,
        // A found probe's path costs its pair the TLS version of the hop into the receiver.
        path: Some(received_path()),
        seen_ip: None,
        headers: None,
        unsubscribe: None,
    }
}

/// A two-hop path as the lab's seed receives a probe: submission, then the MX over TLS 1.3.
fn received_path() -> crate::path::Path {
    let raw = b"Received: from mail.sender.test (mail.sender.test [127.0.0.2])\r\n\tby mx.seed.test (Postfix) with ESMTPS id 4A\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\tfor <seed1@seed.test>; Tue, 08 Dec 2026 01:00:01 +0000\r\nReceived: from [127.0.0.1] (localhost [127.0.0.1])\r\n\tby mail.sender.test (Postfix) with ESMTPSA id 3B\r\n\tfor <seed1@seed.test>; Tue, 08 Dec 2026 01:00:00 +0000\r\nSubject: probe\r\n\r\nbody\r\n";
    let receiver = crate::path::Receiver::from_authserv_ids(["mx.seed.test"]);
    crate::path::read(raw, &receiver).expect("a parsable path")
}

fn sent(m: &Metrics, route: &str, seed: &str) {
    let outcome = SendOutcome {
        code: 250,
        queue_id: Some("4BC1D2".into()),
        duration_seconds: 0.08,
        session: crate::outcome::SmtpSession::Fresh,
    };
    m.probe_sent(route, seed, &outcome);
}

/// Records `outcome` for the pair as a round does: the send, the outcome, the diagnosis and
/// tab of the result, where the pair stands, a confirmation probe for a bad outcome.
fn feed(m: &Metrics, route: &str, seed: &str, outcome: Outcome) {
    let causes = crate::diagnosis::all_causes();
    let bad = |m: &Metrics, current: &[&str], state| {
        m.set_diagnosis(route, seed, &causes, current);
        m.set_last_tab(route, seed, None);
        m.set_pair_state(route, seed, state);
        m.confirmation_sent(route, seed);
    };
    match outcome {
        Outcome::Inbox => {
            sent(m, route, seed);
            let j = judgement(true, -0.3);
            m.probe_found(route, seed, "INBOX", Placement::Inbox, &j, Some(1.7), false);
            m.set_diagnosis(route, seed, &causes, &[]);
            m.set_last_tab(route, seed, Some(Tab::Primary));
            m.set_pair_state(route, seed, PairState::Ok);
        }
        Outcome::Spam => {
            sent(m, route, seed);
            let j = judgement(false, 16.1);
            m.probe_found(route, seed, "Junk", Placement::Spam, &j, Some(2.4), false);
            bad(
                m,
                &["content_spam", "dmarc_not_aligned"],
                PairState::Suspect,
            );
        }
        Outcome::Rejected => {
            sent(m, route, seed);
            let bounce = Bounce {
                status: Some("5.7.1".into()),
                action: Some("failed".into()),
                remote_mta: Some("mx.seed.test".into()),
                diagnostic_code: Some("550 5.7.1 listed at a blocklist".into()),
                class: "blocklist".into(),
                method: None,
            };
            m.probe_rejected(route, seed, &bounce, false, true);
            bad(m, &["blocklisted", "smtp_rejected"], PairState::Confirmed);
        }
        Outcome::Missing | Outcome::Unknown => {
            sent(m, route, seed);
            let placement = match outcome {
                Outcome::Missing => Placement::Missing,
                _ => Placement::Unknown,
            };
            m.probe_expired(route, seed, placement, true);
            bad(m, &["not_delivered"], PairState::Suspect);
        }
        Outcome::NotSent => {
            m.send_failed(route, seed, "smtp_transient", &"451 4.3.0 try again later");
            bad(m, &[], PairState::Suspect);
        }
    }
}

/// Series of the text exposition per (route, seed) pair, per family (histogram series under
/// their family's name).
fn series_per_pair(text: &str) -> PairSeries {
    let mut pairs = PairSeries::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let labels = rest.split_once('}').map_or("", |(l, _)| l);
        let label = |key: &str| {
            labels.split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k == key).then(|| v.trim_matches('"').to_string())
            })
        };
        let (Some(route), Some(seed)) = (label("route"), label("seed")) else {
            continue;
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        *pairs
            .entry((route, seed))
            .or_default()
            .entry(family.to_string())
            .or_default() += 1;
    }
    pairs
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

/// An instance of `seeds` seeds × routes good and spam, every pair fed one outcome (in
/// turn over [`OUTCOMES`]).
fn instance(seeds: usize) -> Metrics {
    let seeds = names("seed", seeds);
    let seed_refs: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let m = Metrics::new();
    m.preset(&config(&["good", "spam"], &seed_refs));
    for (i, seed) in seeds.iter().enumerate() {
        for (j, route) in ["good", "spam"].into_iter().enumerate() {
            feed(&m, route, seed, OUTCOMES[(2 * i + j) % OUTCOMES.len()]);
        }
    }
    m
}

type PairSeries = BTreeMap<(String, String), BTreeMap<String, usize>>;

fn over_budget(pairs: &PairSeries, budget: usize) -> Vec<String> {
    pairs
        .iter()
        .filter_map(|((route, seed), families)| {
            let total: usize = families.values().sum();
            (total > budget).then(|| format!("{route} × {seed}: {total} series {families:?}"))
        })
        .collect()
}

#[test]
fn every_pair_stays_within_the_series_budget() {
    let m = instance(60);
    let pairs = series_per_pair(&m.render());
    assert_eq!(pairs.len(), 120, "every pair exports series");
    let over = over_budget(&pairs, PAIR_BUDGET);
    assert!(
        over.is_empty(),
        "{} of {} pairs cost more than {PAIR_BUDGET} series:\n{}",
        over.len(),
        pairs.len(),
        over.join("\n")
    );
}

#[test]
fn a_pair_through_every_outcome_stays_within_its_lifetime_budget() {
    let m = Metrics::new();
    m.preset(&config(&["good"], &["s1"]));
    for outcome in OUTCOMES.into_iter().chain([Outcome::Inbox]) {
        feed(&m, "good", "s1", outcome);
    }
    let pairs = series_per_pair(&m.render());
    let over = over_budget(&pairs, PAIR_LIFETIME_BUDGET);
    assert!(over.is_empty(), "{}", over.join("\n"));
    // Back in the inbox: the placement, verdict and state gauges are what they were after
    // the first outcome, the diagnosis of the bad ones is gone.
    let families = &pairs[&("good".to_string(), "s1".to_string())];
    assert_eq!(families.get("mailcanary_diagnosis"), None, "{families:?}");
    assert_eq!(families["mailcanary_last_placement"], 8);
}

#[test]
fn the_budget_check_counts_what_a_pair_costs() {
    let text = "# HELP x\nmailcanary_a{route=\"r\",seed=\"s\"} 1\n\
                mailcanary_h_bucket{route=\"r\",seed=\"s\",le=\"1\"} 0\n\
                mailcanary_h_sum{route=\"r\",seed=\"s\"} 0\n\
                mailcanary_b{route=\"r\"} 1\nmailcanary_c 1\n";
    let pairs = series_per_pair(text);
    let families = &pairs[&("r".to_string(), "s".to_string())];
    assert_eq!(families["mailcanary_a"], 1);
    assert_eq!(families["mailcanary_h"], 2);
    assert_eq!(pairs.len(), 1);
}

/// The scrape of 1,000 seeds × 2 routes after one round: its size, plain and gzipped, and
/// the series per family (`cargo test --release --lib scrape_at_1000_seeds -- --ignored
/// --nocapture` prints the figures of docs/benchmarks.md).
#[test]
#[ignore = "a measurement: prints figures (run with --release --ignored --nocapture)"]
fn scrape_at_1000_seeds() {
    let seeds = names("seed", 1000);
    let seed_refs: Vec<&str> = seeds.iter().map(String::as_str).collect();
    let fresh = Metrics::new();
    fresh.preset(&config(&["good", "spam"], &seed_refs));
    let before_first_round = fresh.render();
    println!(
        "before the first round: {} series, {} bytes",
        before_first_round
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        before_first_round.len()
    );
    let m = instance(1000);
    let start = std::time::Instant::now();
    let text = m.render();
    let render = start.elapsed();
    let start = std::time::Instant::now();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let gzipped = gz.finish().unwrap_or_else(|e| panic!("{e}"));
    let compress = start.elapsed();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    for pair in series_per_pair(&text).values() {
        for (family, n) in pair {
            *families.entry(family.clone()).or_default() += n;
        }
    }
    println!(
        "{series} series, {} bytes ({} gzipped), render {render:?}, gzip {compress:?}",
        text.len(),
        gzipped.len()
    );
    for (family, n) in &families {
        println!(
            "{family}: {n} per-pair series ({:.2} per pair)",
            *n as f64 / 2000.0
        );
    }
    assert!(text.len() < 20_000_000, "{} bytes", text.len());
}
