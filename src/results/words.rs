//! A result in words, worked out once for everyone who shows one: the status word, what the
//! placement column says, why a result is not OK ([`in_words`]: the diagnosed causes with their
//! fixes, then what the probe itself saw), the failures the seeds of a route agree on
//! ([`group_failures`]), and the readable text of `once` ([`render_text`]). The status page
//! renders these words as HTML; `once` prints them.

use std::cmp::Ordering;

use super::{ProbeResult, Results};
use crate::outcome::Placement;
use crate::path::Leg;
use crate::status::Status;
use crate::verdict::AuthResult;

/// The status as a word in capitals, as monitoring plugins print it.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
        Status::Unknown => "UNKNOWN",
    }
}

/// What the placement column says. A result without a placement is either a probe that was
/// never sent (it carries the error) or one still in flight in the current round.
pub fn placement_word(r: &ProbeResult) -> &'static str {
    match r.placement {
        Some(p) => p.as_str(),
        None if r.error.is_some() => "not sent",
        None if r.smtp.is_some() => "waiting",
        None => "sending",
    }
}

/// Whether a result is of a probe still in flight in the current round (no placement, no error).
pub fn in_flight(r: &ProbeResult) -> bool {
    r.placement.is_none() && r.error.is_none()
}

/// Compares names with their trailing number as a number, so `seed9` sorts before `seed10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let stem = s.trim_end_matches(|c: char| c.is_ascii_digit());
        (stem, s[stem.len()..].parse().ok())
    }
    let (sa, na) = split(a);
    let (sb, nb) = split(b);
    sa.cmp(sb).then(na.cmp(&nb)).then(a.cmp(b))
}

/// The spam score as shown (`spam 16.0/15`).
pub fn spam_score(r: &ProbeResult) -> Option<String> {
    let spam = r.spam.as_ref()?;
    let score = spam.score?;
    Some(match spam.threshold {
        Some(t) => format!("spam {score:.1}/{t:.0}"),
        None => format!("spam {score:.1}"),
    })
}

/// Why a result is not OK, in words (the status page's causes, the lines under a result of
/// `once`): the diagnosed causes first (with their fix), then what the
/// probe itself saw (placement, failing authentication, spam filter, errors).
/// With `fixes`, each diagnosed cause carries its fix; without, only its name (for lists that
/// repeat the same causes).
pub fn in_words(r: &ProbeResult, fixes: bool) -> Vec<String> {
    let mut out: Vec<String> = r
        .diagnosis
        .iter()
        .map(|d| {
            if fixes {
                format!("{}: {}", d.cause.as_str(), d.fix)
            } else {
                d.cause.as_str().to_string()
            }
        })
        .collect();
    let folder = r
        .folder
        .as_deref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    match r.placement {
        Some(Placement::Inbox) => {}
        Some(Placement::Spam) => out.push(format!("filed as spam{folder}")),
        Some(Placement::Other) => out.push(format!(
            "delivered outside the inbox and the spam folder{folder}"
        )),
        Some(Placement::Missing) => out.push("not found in the mailbox before the timeout".into()),
        Some(Placement::Unknown) => {
            out.push("the seed mailbox could not be read: placement unknown".into())
        }
        Some(Placement::Rejected) => out.push(
            match r.bounce.as_ref().and_then(|b| b.diagnostic_code.as_deref()) {
                Some(reply) => format!("refused by the receiving server: {reply}"),
                None => "refused by the receiving server (a bounce came back)".into(),
            },
        ),
        None if r.error.is_some() => match r.smtp.as_ref() {
            Some(s) => out.push(format!("not accepted for sending (SMTP {})", s.code)),
            None => out.push("not sent".into()),
        },
        None => out.push("still in flight in the current round".into()),
    }
    if let Some(v) = &r.verdict {
        for (name, result) in [("SPF", &v.spf), ("DKIM", &v.dkim), ("DMARC", &v.dmarc)] {
            if !result.is_pass() {
                out.push(format!("{name} {}", result.as_str()));
            }
        }
        // iprev counts only when the receiver reports it (see outcome::probe_status).
        if !v.iprev.is_pass() && v.iprev != AuthResult::None {
            out.push(format!("iprev {}", v.iprev.as_str()));
        }
    }
    if let Some(spam) = r.spam.as_ref().filter(|s| s.flagged) {
        let by = spam
            .source
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default();
        let mut s = format!("spam filter flagged it{by}");
        if let Some(score) = spam_score(r) {
            s.push_str(&format!(", {score}"));
        }
        if !spam.rules.is_empty() {
            let top: Vec<&str> = spam.rules.iter().take(6).map(String::as_str).collect();
            s.push_str(&format!(", rules {}", top.join(" ")));
        }
        out.push(s);
    }
    if r.late {
        // Late news: the earlier outcome is not erased, it is said.
        let was = r
            .expired_as
            .map(|s| format!(", recorded {} until then", s.as_str()))
            .unwrap_or_default();
        out.push(if r.placement == Some(Placement::Rejected) {
            format!("the bounce came after the timeout (late{was})")
        } else {
            format!("arrived after the timeout (late{was})")
        });
    }
    if let Some(e) = &r.error {
        match &r.error_reason {
            Some(reason) => out.push(format!("{reason}: {e}")),
            None => out.push(e.clone()),
        }
    }
    out
}

/// The path of a found probe in a few words (the status page's path line): the address the
/// receiving MX saw with its family and the HELO it recorded, the TLS of the hop into it, and
/// the handoff delays. `None` before the probe is found. Raw text from the message: escape it
/// before it goes into HTML.
pub fn path_words(r: &ProbeResult) -> Option<String> {
    let path = r.path.as_ref()?;
    let Some(seen) = &path.seen else {
        return Some(format!(
            "{} hop{}, none the receiver's own",
            path.hops_total,
            if path.hops_total == 1 { "" } else { "s" }
        ));
    };
    let mut parts = Vec::new();
    parts.push(match (seen.ip, seen.family) {
        (Some(ip), Some(family)) => format!("MX saw {ip} ({})", family.name()),
        _ => "MX saw no address".to_string(),
    });
    if let Some(helo) = &seen.helo {
        parts.push(format!("HELO {helo}"));
    }
    parts.push(match (seen.tls, seen.tls_version) {
        (_, Some(version)) => version.as_str().to_string(),
        (Some(true), None) => "TLS (version not stated)".to_string(),
        (Some(false), None) => "no TLS".to_string(),
        (None, None) => "TLS not stated".to_string(),
    });
    for leg in Leg::ALL {
        if let Some(seconds) = path.handoff(leg) {
            let name = match leg {
                Leg::ReceivingMx => "to MX",
                Leg::Mailbox => "to mailbox",
            };
            parts.push(format!("{name} {seconds} s"));
        }
    }
    Some(parts.join(", "))
}

/// Failing results of one route that the seeds agree on: same status, placement and causes.
#[derive(Debug)]
pub struct FailureGroup<'a> {
    /// The first result of the group (its route, status and placement are the group's).
    pub first: &'a ProbeResult,
    /// The seeds that report it, in order.
    pub seeds: Vec<&'a str>,
    /// The causes, with their fixes ([`in_words`] with fixes).
    pub causes: Vec<String>,
    /// When the latest of the group's probes was sent.
    pub sent_at: Option<f64>,
}

/// What is wrong right now: the failing results (not ok, not in flight), worst first, then by
/// route and seed, with the seeds that report the same failure of a route as one entry: the
/// cause is the route's, not each seed's.
pub fn group_failures(results: &[ProbeResult]) -> Vec<FailureGroup<'_>> {
    let mut failing: Vec<&ProbeResult> = results
        .iter()
        .filter(|r| r.status != Status::Ok && !in_flight(r))
        .collect();
    failing.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then(natural_cmp(&a.route, &b.route))
            .then(natural_cmp(&a.seed, &b.seed))
    });
    let mut groups: Vec<FailureGroup> = Vec::new();
    for r in failing {
        let c = in_words(r, true);
        let same = groups.iter_mut().find(|g| {
            g.first.route == r.route
                && g.first.status == r.status
                && placement_word(g.first) == placement_word(r)
                && g.causes == c
        });
        match same {
            Some(g) => {
                g.seeds.push(&r.seed);
                g.sent_at = match (g.sent_at, r.sent_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            None => groups.push(FailureGroup {
                first: r,
                seeds: vec![&r.seed],
                causes: c,
                sent_at: r.sent_at,
            }),
        }
    }
    groups
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

/// The readable results of `once`.
pub fn render_text(results: &Results) -> String {
    let mut out = String::new();
    for r in &results.results {
        let placement = placement_word(r);
        out.push_str(&format!(
            "{:<8} {:<12} → {:<10} {:<8}",
            status_word(r.status),
            format!("{}/{}", r.route, r.seed),
            placement,
            r.folder.as_deref().unwrap_or("")
        ));
        if let Some(tab) = r.tab {
            out.push_str(&format!(" tab={tab}"));
        }
        if let Some(v) = &r.verdict {
            out.push_str(&format!(
                " spf={} {} dkim={} {} dmarc={} {}",
                v.spf.as_str(),
                mark(v.spf.is_pass()),
                v.dkim.as_str(),
                mark(v.dkim.is_pass()),
                v.dmarc.as_str(),
                mark(v.dmarc.is_pass())
            ));
        }
        if let Some(s) = r.spam.as_ref().and_then(|s| s.score) {
            out.push_str(&format!(" spam={s:.2}"));
        }
        if let Some(d) = r.delivery_seconds {
            out.push_str(&format!(" in {d:.2}s"));
        }
        if r.late {
            out.push_str(" (late)");
        }
        if r.kind == crate::state::probes::ProbeKind::Confirmation {
            out.push_str(" [confirmation]");
        }
        if let Some(p) = r
            .pair_state
            .filter(|p| *p != crate::standing::PairState::Ok)
        {
            out.push_str(&format!(" pair={p}"));
        }
        out.push('\n');
        for why in in_words(r, true) {
            out.push_str(&format!("         {why}\n"));
        }
    }
    out.push_str(&format!("status: {}\n", status_word(results.status)));
    out
}
