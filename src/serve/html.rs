//! What every page of ours needs: HTML escaping (every value shown may come from a config, a
//! server reply or a report anyone could send) and the one time format pages show.

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

/// A Unix time as the pages show it: `2026-12-07 22:01:26 UTC`.
pub fn utc(t: f64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
