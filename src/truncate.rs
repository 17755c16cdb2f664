//! Cutting text to its bound, in one place: server text we keep (error details, SMTP replies)
//! is capped before it is stored, logged or shown ([`cap`]: a server that answers with
//! megabytes of garbage gets its first 512 bytes quoted, never a 40 MB error in the state
//! database, the log and every page view); values read from a bounce are cut to their stored
//! size ([`cut`]); work on attacker-sized input is bounded to a prefix ([`prefix`]); a record
//! quoted in a sentence is shortened to a few characters ([`shorten`]). Every cut is on a
//! character boundary and `…` marks it, but for a header value read into a stored field
//! ([`field`]: collapsed and cut to a number of characters, as a value, not a quote). Imports
//! nothing: the libraries use it too.

/// The most bytes of server text kept per error.
pub const MAX_BYTES: usize = 512;

/// `text`, cut to at most [`MAX_BYTES`] bytes on a character boundary, with control
/// characters (but tab) replaced so that one error stays one log line; `…` marks a cut.
pub fn cap(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_BYTES + 3));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_BYTES {
            out.push('…');
            return out;
        }
        out.push(if c.is_control() && c != '\t' { ' ' } else { c });
    }
    out
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` in at most `max` bytes, `…` included when anything was cut.
pub fn cut(mut text: String, max: usize) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= max {
        return text;
    }
    let end = prefix(&text, max.saturating_sub(ELLIPSIS.len())).len();
    text.truncate(end);
    text.push_str(ELLIPSIS);
    text
}

/// The first `chars` characters of `text`, then `…` when there was more.
pub fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A header value as a stored field: control characters dropped, white space collapsed to
/// single spaces and trimmed, cut to at most `max_chars` characters (unmarked); `None` when
/// nothing is left.
pub fn field(value: &str, max_chars: usize) -> Option<String> {
    let mut out = String::new();
    let mut chars = 0;
    for ch in value.chars() {
        if chars >= max_chars {
            break;
        }
        if ch.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
                chars += 1;
            }
        } else if !ch.is_control() {
            out.push(ch);
            chars += 1;
        }
    }
    let out = out.trim_end().to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_collapsed_cleaned_and_cut_to_characters() {
        assert_eq!(field("  a \t\r\n b\u{7}c  ", 10).as_deref(), Some("a bc"));
        assert_eq!(field("\u{1}\t ", 10), None);
        assert_eq!(field("ééééé", 3).as_deref(), Some("ééé"));
        // The cut counts the collapsed spaces, and never leaves one at the end.
        assert_eq!(field("ab   cd", 3).as_deref(), Some("ab"));
    }

    #[test]
    fn short_text_is_kept_and_long_text_cut_on_a_char_boundary() {
        assert_eq!(cap("550 5.7.1 no"), "550 5.7.1 no");
        let long = "é".repeat(10_000);
        let c = cap(&long);
        assert!(c.len() <= MAX_BYTES + '…'.len_utf8());
        assert!(c.ends_with('…'));
        assert!(cap(&"x".repeat(5_000_000)).len() < 600);
    }

    #[test]
    fn prefix_cut_and_shorten_stay_on_character_boundaries() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("héllo", 3), "hé");
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(cut("abc".to_string(), 3), "abc");
        let c = cut("é".repeat(600), 512);
        assert!(c.len() <= 512 && c.ends_with('…'), "{}", c.len());
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten(&"é".repeat(61), 60), "é".repeat(60) + "…");
    }

    #[test]
    fn control_characters_do_not_split_log_lines() {
        assert_eq!(cap("a\r\nb\0c"), "a  b c");
    }
}
