//! Gmail's IMAP extensions, as the probe uses them: what to send and how to read the answers.
//! Pure code over IMAP text; the connection ([`crate::imap`]) sends and receives.
//!
//! Source: Google, "IMAP Extensions" (developers.google.com/gmail/imap/imap-extensions) — a
//! server that lists `X-GM-EXT-1` in its CAPABILITY answer accepts the `X-GM-RAW` search
//! attribute, whose argument is a Gmail web search (`rfc822msgid:`, `category:`, …):
//!
//! ```text
//! a005 UID SEARCH X-GM-RAW "has:attachment in:unread"
//! * SEARCH 123 12344 5992
//! a005 OK SEARCH (Success)
//! ```
//!
//! Why mailcanary uses it at Gmail:
//! - **finding probes**: Gmail's SEARCH on a custom header is unreliable (its index does not
//!   cover arbitrary header fields), while `rfc822msgid:` is an indexed Gmail search;
//! - **tabs**: which inbox tab (Primary, Promotions, Social, Updates, Forums) a message was
//!   filed under is visible only through `category:` searches — the categories are not IMAP
//!   folders and not in `X-GM-LABELS`;
//! - **never `[Gmail]/All Mail`**: every message but spam and trash is in it, so a probe found
//!   there says nothing about where it landed, and reading it costs bandwidth Gmail rations.
//!
//! Gmail throttles heavy clients: a tagged `OK … [THROTTLED]` (the command worked, slowly), or
//! `NO`/`BYE` answers naming exceeded command or bandwidth limits (`[OVERQUOTA]`,
//! "Account exceeded command or bandwidth limits", "Too many simultaneous connections").
//! [`throttle_in`] reads those from one response line.

use serde::{Deserialize, Serialize};

/// The capability that announces the extensions.
pub const CAPABILITY: &str = "X-GM-EXT-1";

/// Gmail's inbox tabs ("categories"), in the order the tab search tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tab {
    Primary,
    Promotions,
    Social,
    Updates,
    Forums,
}

impl Tab {
    /// Every tab. Primary first: it is where most probes should be, so a round that finds it
    /// there costs one search.
    pub const ALL: [Tab; 5] = [
        Tab::Primary,
        Tab::Promotions,
        Tab::Social,
        Tab::Updates,
        Tab::Forums,
    ];

    /// The stable name (JSON, metric label, config value) — also Gmail's `category:` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Primary => "primary",
            Tab::Promotions => "promotions",
            Tab::Social => "social",
            Tab::Updates => "updates",
            Tab::Forums => "forums",
        }
    }

    pub fn parse(s: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// `primary, promotions, social, updates, forums` (for error messages and docs).
    pub fn names() -> String {
        Tab::ALL.map(Tab::as_str).join(", ")
    }
}

impl std::fmt::Display for Tab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a CAPABILITY answer announces the Gmail extensions (capability names are
/// case-insensitive, RFC 3501 §7.2.1).
pub fn announced<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> bool {
    capabilities
        .into_iter()
        .any(|c| c.eq_ignore_ascii_case(CAPABILITY))
}

/// An IMAP quoted string (RFC 3501 §4.3) holding `text`, or `None` when it cannot be one
/// (CR, LF or NUL, or anything outside 7-bit) — a search is then not sent at all.
fn quoted(text: &str) -> Option<String> {
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// The search key (for `UID SEARCH`) of the messages with any of these Message-IDs:
/// `X-GM-RAW "rfc822msgid:<a> OR rfc822msgid:<b>"`. Gmail's `rfc822msgid:` takes the id
/// without its angle brackets. `None` when there is no id, or one that cannot be searched
/// for safely (a space or quote would change the Gmail search; ours never have one).
pub fn message_id_search(message_ids: &[&str]) -> Option<String> {
    let mut terms = Vec::with_capacity(message_ids.len());
    for id in message_ids {
        let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
        if bare.is_empty()
            || !bare
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"\\(){}".contains(&b))
        {
            return None;
        }
        terms.push(format!("rfc822msgid:{bare}"));
    }
    if terms.is_empty() {
        return None;
    }
    Some(format!("X-GM-RAW {}", quoted(&terms.join(" OR "))?))
}

/// The search key that matches `uid` only if Gmail filed it under `tab`:
/// `UID 4711 X-GM-RAW "category:promotions"`.
pub fn tab_search(uid: u32, tab: Tab) -> String {
    format!("UID {uid} X-GM-RAW \"category:{}\"", tab.as_str())
}

/// The tab of `uid` from the answer to its [`tab_search`] for `tab`: `Some(tab)` when the
/// answer names the UID. The answer of a server without inbox categories names nothing for
/// every tab, and the message then has no tab.
pub fn tab_from_answer(uid: u32, tab: Tab, answer: &[u32]) -> Option<Tab> {
    answer.contains(&uid).then_some(tab)
}

/// Whether a mailbox is Gmail's All Mail: by its SPECIAL-USE attribute `\All` (RFC 6154),
/// or, when the server lists none, by its name in either of Gmail's spellings.
pub fn is_all_mail(name: &str, attributes: &[&str]) -> bool {
    attributes.iter().any(|a| a.eq_ignore_ascii_case("\\All"))
        || ["[Gmail]/All Mail", "[Google Mail]/All Mail"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

/// What a throttling answer asks of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Throttle {
    /// `OK … [THROTTLED]`: the command worked, but Gmail is slowing this account down.
    Slowed,
    /// A `NO` or `BYE` for exceeded command/bandwidth limits or too many connections: the
    /// command failed; nothing will work until the client backs off.
    Refused,
}

/// Reads one server response line (without CRLF) for a throttling answer. Only the response's
/// own text counts, never literal data (the caller skips literals), so a message that quotes
/// these words cannot slow us down.
pub fn throttle_in(line: &[u8]) -> Option<Throttle> {
    let text = String::from_utf8_lossy(line).to_ascii_lowercase();
    let mut words = text.split_ascii_whitespace();
    let _tag = words.next()?;
    let status = words.next()?;
    let refusal = text.contains("[overquota]")
        || text.contains("bandwidth limit")
        || text.contains("exceeded command or bandwidth")
        || text.contains("too many simultaneous connections");
    match status {
        "no" | "bye" | "bad" if refusal => Some(Throttle::Refused),
        _ if text.contains("[throttled]") => Some(Throttle::Slowed),
        _ => None,
    }
}

/// How long to leave an account alone after its `n`-th throttling answer in a row (1-based):
/// 30 s, doubling, at most 15 minutes. Google documents no figure; this keeps a throttled
/// seed to a few commands an hour until it recovers.
pub fn backoff(n: u32) -> std::time::Duration {
    let secs = 30u64.saturating_mul(1u64 << n.saturating_sub(1).min(10));
    std::time::Duration::from_secs(secs.min(15 * 60))
}

#[cfg(test)]
mod tests;
