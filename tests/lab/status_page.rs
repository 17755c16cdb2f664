//! The status page of a real `mailcanary run` probing the loopback mail lab (every route of
//! `config/lab.toml` × seed9, seed10): `/` shows a cell for every route × seed with its placement and SPF/DKIM/DMARC, lists
//! what is failing now with its causes and the last failed deliveries, uses no JavaScript, and
//! renders in headless Chromium at phone size (412×915) and desktop size (1280×900).
//! Screenshots and the HTML are kept in `test-artifacts/` (gitignored) for people to look at.
//!
//! Needs the lab (`sudo lab/mailstack up`) and Chromium (`apt-get install chromium`).
//! Takes about 5 s once the seeds are free (the live monitoring test holds them for ~30 s).

use crate::common;
use crate::common::live;
use crate::common::support;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use live::{MAX_WAIT, ROUTES, SEEDS, wait_for};
use support::{find_tool, http};

const CHROMIUM_HINT: &str = "Chromium not found on PATH (chromium, chromium-browser or \
     google-chrome): install it with `apt-get install -y chromium`";

/// The failure each fault route must be listed with under "Failing now".
const EXPECTED_CAUSES: &[(&str, &str)] = &[
    ("spam", "filed as spam"),
    ("spf-fail", "SPF fail"),
    ("dkim-fail", "DKIM fail"),
    ("dmarc-fail", "DMARC fail"),
    ("rejected", "refused by the receiving server: 550 5.7.25"),
];

/// The placement a lab route must have; `None` for routes this test does not know (shown,
/// whatever their placement).
fn expected_placement(route: &str) -> Option<&'static str> {
    match route {
        "spam" => Some("spam"),
        "rejected" => Some("rejected"),
        r if ROUTES.contains(&r) => Some("inbox"),
        _ => None,
    }
}

/// The text of the element that starts at `open` (up to its closing `close`).
fn section<'a>(html: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = html.find(open)?;
    let end = html[start..].find(close)?;
    Some(&html[start..start + end])
}

/// Problems with the grid: a cell per route × seed with the expected, settled placement and the
/// three authentication methods.
fn grid_problems(html: &str, routes: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for route in routes {
        for seed in SEEDS {
            let open = format!("data-route=\"{route}\" data-seed=\"{seed}\" data-placement=\"");
            let Some(cell) = section(html, &open, "</td>") else {
                problems.push(format!("no grid cell for {route}/{seed}"));
                continue;
            };
            let shown = cell[open.len()..].split('"').next().unwrap_or_default();
            let want = expected_placement(route).unwrap_or(shown);
            if !cell.contains(&format!("{open}{want}\"")) {
                problems.push(format!("{route}/{seed}: expected {want}: {cell}"));
            }
            if !cell.contains(&format!("class=\"placement\">{want}<")) {
                problems.push(format!("{route}/{seed}: placement not shown: {cell}"));
            }
            for method in ["spf", "dkim", "dmarc"] {
                if !cell.contains(&format!(" {method}")) {
                    problems.push(format!("{route}/{seed}: no {method} result: {cell}"));
                }
            }
        }
    }
    problems
}

/// Problems with the failure lists: each fault route × seed under "Failing now" with its cause,
/// the good route not there, the spam route in the history of failed deliveries.
fn failure_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(failing) = section(html, "<ul class=\"failing\">", "</section>") else {
        return vec!["no \"Failing now\" list".into()];
    };
    // Entries are per route, naming the seeds that see the same failure.
    for (route, cause) in EXPECTED_CAUSES {
        let open = format!("data-route=\"{route}\" data-seeds=\"");
        let entries: Vec<&str> = failing
            .split("<li class=")
            .filter(|e| e.contains(&open))
            .collect();
        for seed in SEEDS {
            let entry = entries.iter().find(|e| {
                e.split("data-seeds=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .is_some_and(|seeds| seeds.split(' ').any(|s| s == seed))
            });
            match entry {
                None => problems.push(format!("{route}/{seed} not listed under Failing now")),
                Some(entry) if !entry.contains(cause) => problems.push(format!(
                    "{route}/{seed} listed without the cause {cause:?}: {entry}"
                )),
                Some(_) => {}
            }
        }
    }
    if failing.contains("data-route=\"good\"") {
        problems.push(format!("the good route is listed as failing: {failing}"));
    }
    match section(html, "<ul class=\"history\">", "</section>") {
        None => problems.push("no list of failed deliveries".into()),
        Some(history) => {
            for seed in SEEDS {
                let listed = history.split("<li>").any(|entry| {
                    entry.contains(&format!("<b>spam/{seed}</b> spam"))
                        && entry.contains("filed as spam")
                });
                if !listed {
                    problems.push(format!(
                        "spam/{seed} not in the failed deliveries with its cause: {history}"
                    ));
                }
            }
        }
    }
    problems
}

/// Screenshots `url` at `width`×`height` into `png` with headless Chromium (a fresh profile,
/// at most 60 s), and checks the file is a non-trivial PNG.
fn screenshot(chromium: &Path, url: &str, width: u32, height: u32, png: &Path) {
    let profile = tempfile::tempdir().expect("temporary profile directory");
    let log = profile.path().join("chromium.log");
    let log_file = std::fs::File::create(&log).expect("create chromium log");
    let _ = std::fs::remove_file(png);
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone log handle"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll chromium") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium took more than 60 s for {url}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = std::fs::read(png).unwrap_or_default();
    assert!(
        status.success() && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "no screenshot of {url} at {width}x{height} ({status}, {} bytes in {}):\n{}",
        bytes.len(),
        png.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn status_page_shows_grid_and_failures_and_renders_on_phone_and_desktop() {
    let started = Instant::now();
    common::require_lab();
    let chromium = find_tool(&["chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("{CHROMIUM_HINT}"));
    let _seeds = live::lock_seeds();
    let locked = Instant::now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mailcanary = live::start_mailcanary(dir.path());
    live::settled_results(&mailcanary);

    // A page where every cell is settled (a round may be in flight when it is fetched).
    let html = wait_for(
        "a status page with every route × seed settled",
        MAX_WAIT,
        || {
            let (code, html) =
                http(&mailcanary.addr, "GET", "/", None).map_err(|e| e.to_string())?;
            if code != 200 {
                return Err(format!("HTTP {code}: {html}"));
            }
            if html.contains("data-placement=\"sending\"")
                || html.contains("data-placement=\"waiting\"")
            {
                return Err("a probe is in flight".into());
            }
            Ok(html)
        },
        || mailcanary.log(),
    );
    let artifacts = live::artifacts();
    std::fs::write(artifacts.join("status-page.html"), &html).expect("keep the page");

    let mut problems = Vec::new();
    if html.to_lowercase().contains("<script") {
        problems.push("the page contains a <script>".to_string());
    }
    if !html.contains("name=\"viewport\" content=\"width=device-width") {
        problems.push("no viewport meta tag: unreadable on a phone".to_string());
    }
    problems.extend(grid_problems(&html, &live::routes()));
    problems.extend(failure_problems(&html));
    assert!(
        problems.is_empty(),
        "{} problems with the status page (kept in test-artifacts/status-page.html):\n{}",
        problems.len(),
        problems.join("\n")
    );

    let url = format!("http://{}/", mailcanary.addr);
    let shots = Instant::now();
    for (name, width, height) in [("phone", 412, 915), ("desktop", 1280, 900)] {
        let png = artifacts.join(format!("status-page-{name}.png"));
        screenshot(&chromium, &url, width, height, &png);
        println!("{name} screenshot: {}", png.display());
    }
    println!(
        "waited {:.1} s for the seed lock, {:.1} s for the screenshots; {:.1} s in all",
        (locked - started).as_secs_f64(),
        shots.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
