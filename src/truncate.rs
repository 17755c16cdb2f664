//! Server text we keep (error details, SMTP replies) is capped before it is stored, logged or
//! shown: a server that answers with megabytes of garbage gets its first 512 bytes quoted,
//! never a 40 MB error in the state database, the log and every page view.

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn control_characters_do_not_split_log_lines() {
        assert_eq!(cap("a\r\nb\0c"), "a  b c");
    }
}
