//! The built-in status page: the latest result per route × seed as a grid, and the last failures
//! with their causes. Server-rendered HTML, no JavaScript, readable on a phone.

use std::collections::BTreeSet;

use crate::judge::Status;
use crate::report::{ProbeResult, Report};

/// Escapes text for HTML (every value shown may come from a config or a server reply).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn class(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warn",
        Status::Critical => "crit",
        Status::Unknown => "unknown",
    }
}

fn auth_cell(name: &str, r: Option<&crate::verdict::AuthResult>) -> String {
    match r {
        Some(r) => format!(
            "<span class=\"auth {}\">{name}={}</span>",
            if r.is_pass() { "pass" } else { "fail" },
            esc(r.as_str())
        ),
        None => format!("<span class=\"auth none\">{name}=–</span>"),
    }
}

fn cell(r: &ProbeResult) -> String {
    let placement = r.placement.map(|p| p.as_str()).unwrap_or("not sent");
    let v = r.verdict.as_ref();
    let mut s = format!(
        "<td class=\"{}\"><div class=\"placement\">{}</div><div>{} {} {}</div>",
        class(r.status),
        esc(placement),
        auth_cell("spf", v.map(|v| &v.spf)),
        auth_cell("dkim", v.map(|v| &v.dkim)),
        auth_cell("dmarc", v.map(|v| &v.dmarc)),
    );
    let mut facts = Vec::new();
    if let Some(d) = r.delivery_seconds {
        facts.push(format!("{d:.1} s"));
    }
    if let Some(score) = r.spam.as_ref().and_then(|s| s.score) {
        facts.push(format!("spam {score:.1}"));
    }
    if !facts.is_empty() {
        s.push_str(&format!(
            "<div class=\"facts\">{}</div>",
            esc(&facts.join(" · "))
        ));
    }
    for d in &r.diagnosis {
        s.push_str(&format!("<div class=\"cause\">{}</div>", esc(&d.cause)));
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
            } else {
                format!("{} h ago", s / 3600)
            }
        }
        None => "–".to_string(),
    }
}

/// Renders the page.
pub fn render(latest: &Report, failures: &Report, now: f64) -> String {
    let routes: BTreeSet<&str> = latest.results.iter().map(|r| r.route.as_str()).collect();
    let seeds: BTreeSet<&str> = latest.results.iter().map(|r| r.seed.as_str()).collect();
    let mut html = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"60\"><title>mailcanary</title><style>\
body{font-family:system-ui,sans-serif;margin:1rem;color:#222}\
h1{font-size:1.3rem;margin:0 0 .5rem}\
.overall{display:inline-block;padding:.2rem .6rem;border-radius:.3rem;font-weight:bold}\
.wrap{overflow-x:auto}table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #ccc;padding:.4rem;vertical-align:top;font-size:.9rem}\
th{background:#f4f4f4;text-align:left}\
.ok{background:#e6f4ea}.warn{background:#fff4d6}.crit{background:#fde2e1}.unknown{background:#eee}\
.placement{font-weight:bold;text-transform:uppercase;font-size:.8rem}\
.auth{display:inline-block;margin-right:.3rem;font-family:monospace;font-size:.8rem}\
.auth.pass{color:#137333}.auth.fail{color:#b3261e;font-weight:bold}\
.facts{color:#555;font-size:.8rem}.cause{color:#b3261e;font-size:.8rem}\
ul{padding-left:1.2rem}li{margin:.3rem 0;font-size:.9rem}\
</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>mailcanary</h1><p>Overall: <span class=\"overall {}\">{}</span></p>",
        class(latest.status),
        crate::report::status_word(latest.status)
    ));
    if latest.results.is_empty() {
        html.push_str("<p>No probe has run yet.</p>");
    } else {
        html.push_str("<div class=\"wrap\"><table><thead><tr><th>route \\ seed</th>");
        for s in &seeds {
            html.push_str(&format!("<th>{}</th>", esc(s)));
        }
        html.push_str("</tr></thead><tbody>");
        for r in &routes {
            html.push_str(&format!("<tr><th>{}</th>", esc(r)));
            for s in &seeds {
                match latest
                    .results
                    .iter()
                    .find(|x| x.route == *r && x.seed == *s)
                {
                    Some(res) => html.push_str(&cell(res)),
                    None => html.push_str("<td>–</td>"),
                }
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("<h2>Last failures</h2>");
    if failures.results.is_empty() {
        html.push_str("<p>None.</p>");
    } else {
        html.push_str("<ul>");
        for f in &failures.results {
            let what = f.placement.map(|p| p.as_str()).unwrap_or("not sent");
            let mut why: Vec<String> = f
                .diagnosis
                .iter()
                .map(|d| format!("{}: {}", d.cause, d.fix))
                .collect();
            if let Some(e) = &f.error {
                why.push(e.clone());
            }
            html.push_str(&format!(
                "<li><b>{}/{}</b> {} ({}){}</li>",
                esc(&f.route),
                esc(&f.seed),
                esc(what),
                esc(&ago(now, f.sent_at)),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", esc(&why.join("; ")))
                }
            ));
        }
        html.push_str("</ul>");
    }
    html.push_str("<p class=\"facts\">Probes run on their schedule; this page shows recorded results. JSON: <a href=\"/api/results\">/api/results</a> · <a href=\"/metrics\">/metrics</a></p></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_shown() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn empty_page_renders() {
        let r = Report {
            status: Status::Unknown,
            results: vec![],
        };
        let html = render(&r, &r, 0.0);
        assert!(html.contains("No probe has run yet."));
    }
}
