//! The built-in status page: the latest result per route × seed as a grid, what is failing now
//! with its causes, and the last failed deliveries. Server-rendered HTML, no JavaScript, readable
//! on a phone (the route column stays put while a wide grid scrolls sideways).
//!
//! Every cell carries `data-route`, `data-seed` and `data-placement` attributes so tests (and
//! scrapers that insist on HTML) can find it without depending on the layout.

use std::collections::BTreeSet;

use crate::report_mailbox::summary::ReportsView;
use crate::results::scorecard::RouteRequirements;
use crate::results::words::{
    group_failures, in_flight, in_words, natural_cmp, path_words, placement_word, spam_score,
    status_word,
};
use crate::results::{ProbeResult, Results};
use crate::serve::html::{esc, utc};
use crate::status::Status;
use crate::verdict::AuthResult;

fn class(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warn",
        Status::Critical => "crit",
        Status::Unknown => "unknown",
    }
}

fn auth_line(name: &str, r: Option<&AuthResult>) -> String {
    match r {
        Some(r) if r.is_pass() => format!("<span class=\"auth pass\">✓ {name}</span>"),
        Some(r) => format!(
            "<span class=\"auth fail\">✗ {name} {}</span>",
            esc(r.as_str())
        ),
        None => format!("<span class=\"auth none\">– {name}</span>"),
    }
}

fn seconds(d: f64) -> String {
    if d < 10.0 {
        format!("{d:.1} s")
    } else if d < 120.0 {
        format!("{d:.0} s")
    } else {
        format!("{:.1} min", d / 60.0)
    }
}

fn cell(r: &ProbeResult) -> String {
    let placement = placement_word(r);
    let v = r.verdict.as_ref();
    let pair_state = r.pair_state.map_or("", |p| p.as_str());
    let mut s = format!(
        "<td class=\"{}\" data-route=\"{}\" data-seed=\"{}\" data-placement=\"{}\" data-pair-state=\"{}\">\
<div class=\"placement\">{}</div><div class=\"auths\">{}{}{}</div>",
        if in_flight(r) {
            "pending"
        } else {
            class(r.status)
        },
        esc(&r.route),
        esc(&r.seed),
        esc(placement),
        pair_state,
        esc(placement),
        auth_line("spf", v.map(|v| &v.spf)),
        auth_line("dkim", v.map(|v| &v.dkim)),
        auth_line("dmarc", v.map(|v| &v.dmarc)),
    );
    let mut facts = Vec::new();
    if let Some(tab) = r.tab {
        // Gmail's inbox tab: "inbox" alone hides that Promotions is where nobody looks.
        facts.push(format!("tab {tab}"));
    }
    if let Some(d) = r.delivery_seconds {
        facts.push(seconds(d));
    }
    if let Some(score) = spam_score(r) {
        facts.push(score);
    }
    if !facts.is_empty() {
        let spans: Vec<String> = facts
            .iter()
            .map(|f| format!("<span>{}</span>", esc(f)))
            .collect();
        s.push_str(&format!("<div class=\"facts\">{}</div>", spans.concat()));
    }
    if let Some(p) = r
        .pair_state
        .filter(|p| *p != crate::standing::PairState::Ok)
    {
        // Suspect: a confirmation probe is on its way; confirmed: the alerts fire.
        s.push_str(&format!("<div class=\"pair\">{p}</div>"));
    }
    if let Some(path) = path_words(r) {
        // The receiver's view of the path: written by hosts along the way, so escaped.
        s.push_str(&format!("<div class=\"path\">{}</div>", esc(&path)));
    }
    for d in &r.diagnosis {
        // Let long cause names break at their underscores on narrow screens.
        s.push_str(&format!(
            "<div class=\"cause\">{}</div>",
            esc(d.cause.as_str()).replace('_', "_<wbr>")
        ));
    }
    s.push_str("</td>");
    s
}

fn ago(now: f64, t: Option<f64>) -> String {
    match t {
        Some(t) => {
            let s = (now - t).max(0.0) as u64;
            if s < 120 {
                format!("{s} s ago")
            } else if s < 7200 {
                format!("{} min ago", s / 60)
            } else if s < 172_800 {
                format!("{} h ago", s / 3600)
            } else {
                format!("{} days ago", s / 86_400)
            }
        }
        None => "–".to_string(),
    }
}

/// Phone first: one column, the grid scrolls sideways under a fixed route column when there are
/// many seeds. From 64rem on, what is failing sits beside the grid.
pub(crate) const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:.8rem;color:#1f1f1f;background:#fff;line-height:1.35}\
main{max-width:80rem;margin:0 auto}\
h1{font-size:1.35rem;margin:0 .5rem 0 0;display:inline-block;vertical-align:middle}\
h2{font-size:1.05rem;margin:1.1rem 0 .4rem}\
.badge{display:inline-block;padding:.15rem .55rem;border-radius:1rem;font-weight:600;font-size:.85rem;vertical-align:middle}\
.summary{margin:.4rem 0 .2rem;font-size:.9rem;color:#444}\
.wrap{overflow-x:auto;margin:.4rem 0}\
table{border-collapse:collapse}\
th,td{border:1px solid #d0d0d0;padding:.4rem .5rem;vertical-align:top;font-size:.85rem;text-align:left}\
th{background:#f3f3f3}tbody th{white-space:nowrap;position:sticky;left:0}\
td{min-width:7.5rem}\
.ok{background:#e6f4ea}.warn{background:#fff3d1}.crit{background:#fddcda}.unknown,.pending{background:#ececec}\
.placement{font-weight:700;text-transform:uppercase;letter-spacing:.03em;font-size:.8rem;margin-bottom:.15rem}\
.auths{display:flex;flex-direction:column}\
.auth{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;white-space:nowrap}\
.auth.pass{color:#137333}.auth.fail{color:#b3261e;font-weight:700}.auth.none{color:#666}\
.facts{display:flex;flex-wrap:wrap;column-gap:.6rem;color:#444;font-size:.78rem;margin-top:.15rem}\
.facts span{white-space:nowrap}\
.path{color:#555;font-size:.72rem;overflow-wrap:anywhere}\
.cause{color:#b3261e;font-size:.78rem;overflow-wrap:anywhere}\
ul.failing,ul.history{list-style:none;padding:0;margin:0}\
ul.failing>li{border-left:.3rem solid #999;padding:.35rem .5rem;margin:.35rem 0;font-size:.88rem}\
ul.failing>li.crit{border-color:#b3261e;background:#fdeceb}ul.failing>li.warn{border-color:#e0a800;background:#fff8e1}\
ul.failing>li.unknown{border-color:#888;background:#f4f4f4}\
ul.causes{margin:.2rem 0 0;padding-left:1.1rem}ul.causes li{margin:.1rem 0;overflow-wrap:anywhere}\
ul.history li{padding:.3rem 0;border-bottom:1px solid #eee;font-size:.85rem;overflow-wrap:anywhere}\
.when{color:#666;white-space:nowrap}\
footer{margin-top:1.2rem;color:#666;font-size:.8rem}a{color:#0b57d0}\
@media (min-width:64rem){main{display:grid;grid-template-columns:auto minmax(0,1fr);column-gap:2.5rem}\
header,footer,.history-section{grid-column:1/-1}}";

/// The distinct values of one field of the results, in natural order.
fn distinct<'a>(
    results: &'a [ProbeResult],
    field: impl Fn(&'a ProbeResult) -> &'a str,
) -> Vec<&'a str> {
    let mut names: Vec<&str> = results
        .iter()
        .map(field)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    names
}

/// Renders the page; `reports` is the report mailboxes' view, when any is configured;
/// `requirements` the routes' sender requirements per provider.
pub fn render(
    latest: &Results,
    failures: &Results,
    reports: Option<&ReportsView>,
    requirements: &[RouteRequirements],
    now: f64,
) -> String {
    let status = status_word(latest.status);
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"60\"><title>mailcanary: {status}</title><style>{STYLE}</style>\
</head><body><main>"
    );
    html.push_str(&header(latest, now));
    html.push_str(&grid(&latest.results));
    html.push_str(&failing_now(&latest.results, now));
    html.push_str(&history(&failures.results, now));
    html.push_str(&crate::serve::requirement_section::render(requirements));
    if let Some(view) = reports {
        html.push_str(&crate::serve::report_section::render(view, now));
    }
    html.push_str(&format!(
        "<footer><p>Probes run on their own schedule; this page only shows recorded results \
(rendered {}, reloads every minute). <a href=\"/api/results\">/api/results</a> · \
<a href=\"/api/requirements\">/api/requirements</a> · \
<a href=\"/metrics\">/metrics</a></p></footer></main></body></html>\n",
        esc(&utc(now))
    ));
    html
}

/// The title, the overall status badge, and one summary line: how many probes, how many in each
/// status, how many in flight, when the latest was sent.
fn header(latest: &Results, now: f64) -> String {
    let mut summary = vec![format!("{} probes", latest.results.len())];
    for (s, word) in [
        (Status::Ok, "ok"),
        (Status::Warning, "warning"),
        (Status::Critical, "critical"),
        (Status::Unknown, "unknown"),
    ] {
        let n = latest
            .results
            .iter()
            .filter(|r| !in_flight(r) && r.status == s)
            .count();
        if n > 0 {
            summary.push(format!("{n} {word}"));
        }
    }
    let pending = latest.results.iter().filter(|r| in_flight(r)).count();
    if pending > 0 {
        summary.push(format!("{pending} in flight"));
    }
    let newest = latest
        .results
        .iter()
        .filter_map(|r| r.sent_at)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    if newest.is_some() {
        summary.push(format!("latest probe sent {}", ago(now, newest)));
    }
    format!(
        "<header><h1>mailcanary</h1><span class=\"badge {}\">{}</span>\
<p class=\"summary\">{}</p></header>",
        class(latest.status),
        status_word(latest.status),
        esc(&summary.join(" · "))
    )
}

/// The latest result per route (rows) and seed (columns); a pair without a result is shown
/// as such, not left out.
fn grid(results: &[ProbeResult]) -> String {
    if results.is_empty() {
        return "<p>No probe has run yet.</p>".to_string();
    }
    let routes = distinct(results, |r| &r.route);
    let seeds = distinct(results, |r| &r.seed);
    let mut html = String::from(
        "<section><h2>Latest result per route and seed</h2><div class=\"wrap\"><table>\
<thead><tr><th>route \\ seed</th>",
    );
    for s in &seeds {
        html.push_str(&format!("<th>{}</th>", esc(s)));
    }
    html.push_str("</tr></thead><tbody>");
    for r in &routes {
        html.push_str(&format!("<tr><th>{}</th>", esc(r)));
        for s in &seeds {
            match results.iter().find(|x| x.route == *r && x.seed == *s) {
                Some(res) => html.push_str(&cell(res)),
                None => html.push_str("<td class=\"unknown\">–</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div></section>");
    html
}

/// The "Failing now" section: one entry per [`FailureGroup`], each with its causes.
fn failing_now(results: &[ProbeResult], now: f64) -> String {
    let groups = group_failures(results);
    let mut html = String::from("<section><h2>Failing now</h2>");
    if groups.is_empty() {
        if !results.is_empty() {
            html.push_str("<p>Every probe passed.</p>");
        } else {
            html.push_str("<p>Nothing yet.</p>");
        }
    } else {
        html.push_str("<ul class=\"failing\">");
        for g in groups {
            let r = g.first;
            html.push_str(&format!(
                "<li class=\"{}\" data-route=\"{}\" data-seeds=\"{}\"><b>{}</b> → {} · {} · {} <span class=\"when\">({})</span><ul class=\"causes\">",
                class(r.status),
                esc(&r.route),
                esc(&g.seeds.join(" ")),
                esc(&r.route),
                esc(&g.seeds.join(", ")),
                status_word(r.status),
                esc(placement_word(r)),
                esc(&ago(now, g.sent_at)),
            ));
            for c in &g.causes {
                html.push_str(&format!("<li>{}</li>", esc(c)));
            }
            html.push_str("</ul></li>");
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    html
}

/// The "Last failed deliveries" section: one line per recorded failure, causes without fixes.
fn history(failures: &[ProbeResult], now: f64) -> String {
    let mut html =
        String::from("<section class=\"history-section\"><h2>Last failed deliveries</h2>");
    if failures.is_empty() {
        html.push_str("<p>None recorded.</p>");
    } else {
        html.push_str("<ul class=\"history\">");
        for f in failures {
            let why = in_words(f, false);
            html.push_str(&format!(
                "<li><span class=\"when\">{}</span> <b>{}/{}</b> {}{}</li>",
                esc(&ago(now, f.sent_at)),
                esc(&f.route),
                esc(&f.seed),
                esc(placement_word(f)),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", esc(&why.join("; ")))
                }
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Placement;
    use crate::verdict::Verdict;

    fn result(
        route: &str,
        seed: &str,
        placement: Option<Placement>,
        status: Status,
    ) -> ProbeResult {
        ProbeResult {
            route: route.into(),
            seed: seed.into(),
            probe_id: "p".into(),
            state: match placement {
                Some(Placement::Missing) => crate::state::probes::ProbeState::Missing,
                Some(Placement::Unknown) => crate::state::probes::ProbeState::Unknown,
                Some(_) => crate::state::probes::ProbeState::Resolved,
                None => crate::state::probes::ProbeState::Sent,
            },
            placement,
            folder: placement.map(|p| {
                if p == Placement::Spam {
                    "Junk"
                } else {
                    "INBOX"
                }
                .into()
            }),
            tab: None,
            verdict: placement.map(|_| Verdict {
                spf: AuthResult::Pass,
                dkim: AuthResult::Pass,
                dmarc: AuthResult::Pass,
                ..Verdict::default()
            }),
            spam: None,
            smtp: None,
            delivery_seconds: Some(0.2),
            late: false,
            expired_as: None,
            status,
            diagnosis: vec![],
            error: None,
            error_reason: None,
            sent_at: Some(100.0),
            bounce: None,
            kind: crate::state::probes::ProbeKind::Scheduled,
            pair_state: None,
            path: None,
            seen_ip: None,
            direction: crate::config::Direction::Outbound,
        }
    }

    #[test]
    fn a_pair_that_is_not_ok_says_where_it_stands() {
        let mut r = result("good", "seed1", Some(Placement::Spam), Status::Warning);
        r.pair_state = Some(crate::standing::PairState::Confirmed);
        let html = cell(&r);
        assert!(html.contains("data-pair-state=\"confirmed\""), "{html}");
        assert!(
            html.contains("<div class=\"pair\">confirmed</div>"),
            "{html}"
        );
        r.pair_state = Some(crate::standing::PairState::Ok);
        assert!(!cell(&r).contains("class=\"pair\""));
    }

    #[test]
    fn a_gmail_tab_is_shown_in_its_cell() {
        let mut r = result("good", "gmail", Some(Placement::Inbox), Status::Warning);
        assert!(!cell(&r).contains("tab "));
        r.tab = Some(crate::gmail::Tab::Promotions);
        assert!(
            cell(&r).contains("<span>tab promotions</span>"),
            "{}",
            cell(&r)
        );
    }

    #[test]
    fn the_path_is_shown_in_its_cell_escaped() {
        let mut r = result("good", "seed1", Some(Placement::Inbox), Status::Ok);
        assert!(!cell(&r).contains("class=\"path\""));
        let raw = "Received: from <script>x (mail.example.org [2001:db8::25])\r\n\
            \tby mx.seed.test with ESMTPS (using TLSv1.3 with cipher X) id 1;\r\n\
            \tTue, 8 Dec 2026 01:00:05 +0000\r\n\
            Received: from a by mail.example.org with ESMTPSA id 2; Tue, 8 Dec 2026 01:00:01 +0000\r\n\
            \r\n";
        let receiver = crate::path::Receiver::new(["seed.test"]);
        r.path = crate::path::read(raw.as_bytes(), &receiver).ok();
        let html = cell(&r);
        assert!(
            html.contains("<div class=\"path\">MX saw 2001:db8::25 (IPv6)"),
            "{html}"
        );
        assert!(html.contains("TLSv1.3, to MX 4 s"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn escapes_everything_shown() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn empty_page_renders() {
        let r = Results {
            status: Status::Unknown,
            results: vec![],
        };
        let html = render(&r, &r, None, &[], 0.0);
        assert!(html.contains("No probe has run yet."));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn seeds_sort_by_their_number() {
        let mut seeds = vec!["seed10", "seed9", "gmail", "seed1"];
        seeds.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(seeds, ["gmail", "seed1", "seed9", "seed10"]);
    }

    #[test]
    fn grid_cells_carry_route_seed_and_placement() {
        let latest = Results {
            status: Status::Warning,
            results: vec![
                result("good", "seed10", Some(Placement::Inbox), Status::Ok),
                result("good", "seed9", Some(Placement::Inbox), Status::Ok),
                result("spam", "seed9", Some(Placement::Spam), Status::Warning),
            ],
        };
        let html = render(&latest, &latest, None, &[], 110.0);
        assert!(html.contains("data-route=\"good\" data-seed=\"seed9\" data-placement=\"inbox\""));
        assert!(html.find("<th>seed9</th>") < html.find("<th>seed10</th>"));
        // The missing spam/seed10 cell is shown as such, not left out.
        assert!(html.contains("<td class=\"unknown\">–</td>"));
        assert!(html.contains("filed as spam (Junk)"));
    }

    #[test]
    fn seeds_with_the_same_failure_are_one_entry() {
        let mut a = result("spf-fail", "seed9", Some(Placement::Inbox), Status::Warning);
        if let Some(v) = a.verdict.as_mut() {
            v.spf = AuthResult::Fail;
        }
        let mut b = a.clone();
        b.seed = "seed10".into();
        let mut c = a.clone();
        c.seed = "seed11".into();
        c.placement = Some(Placement::Spam);
        let latest = Results {
            status: Status::Warning,
            results: vec![b, a, c],
        };
        let html = render(&latest, &latest, None, &[], 110.0);
        assert!(html.contains("data-route=\"spf-fail\" data-seeds=\"seed9 seed10\""));
        assert!(html.contains("data-route=\"spf-fail\" data-seeds=\"seed11\""));
    }

    #[test]
    fn in_flight_probes_are_not_reported_as_not_sent() {
        let mut r = result("good", "seed9", None, Status::Unknown);
        r.verdict = None;
        assert_eq!(placement_word(&r), "sending");
        r.error = Some("554 rejected".into());
        assert_eq!(placement_word(&r), "not sent");
        let latest = Results {
            status: Status::Unknown,
            results: vec![result("good", "seed9", None, Status::Unknown)],
        };
        let html = render(&latest, &latest, None, &[], 100.0);
        assert!(html.contains("1 in flight"));
        assert!(!html.contains("<ul class=\"failing\">"));
    }
}
