//! Field values as they are stored: typed values without their type (RFC 3464 §2.1.2,
//! `address-type ;`, `mta-name-type ;`, `diagnostic-type ;`), comments removed where the
//! field is a keyword (RFC 5322 §3.2.2), white space collapsed, and every string cut to
//! [`MAX_VALUE_BYTES`].

use super::MAX_VALUE_BYTES;
use super::reply;
use crate::truncate::{self, prefix};
use crate::verdict::lexer::push_collapsed;

/// Cuts `text` to at most [`MAX_VALUE_BYTES`] bytes, on a character boundary, ending in `…`
/// when anything was cut.
pub(super) fn cap(text: String) -> String {
    truncate::cut(text, MAX_VALUE_BYTES)
}

/// White space collapsed and trimmed, cut to size; `None` when nothing is left.
pub(super) fn clean(value: &str) -> Option<String> {
    // Nothing past a few times the stored size can survive the cut: bound the work.
    let value = prefix(value, MAX_VALUE_BYTES * 4);
    let mut out = String::with_capacity(value.len().min(MAX_VALUE_BYTES));
    for ch in value.chars() {
        push_collapsed(&mut out, ch);
    }
    let out = out.trim_end().to_string();
    (!out.is_empty()).then(|| cap(out))
}

/// A typed value without its type: `rfc822; a@b` is `a@b`, `dns; mx.example` is
/// `mx.example`. A value whose first `;` follows a space is not typed, and is kept whole.
pub(super) fn untyped(value: &str) -> &str {
    let trimmed = value.trim_start();
    match trimmed.split_once(';') {
        Some((kind, rest))
            if !kind.trim_end().is_empty() && !kind.trim_end().contains(char::is_whitespace) =>
        {
            rest
        }
        _ => trimmed,
    }
}

/// An address field (`Final-Recipient`, `Original-Recipient`): untyped, without `<>`.
pub(super) fn address(value: &str) -> Option<String> {
    let value = untyped(value).trim();
    let value = value
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(value);
    clean(value)
}

/// A host field (`Reporting-MTA`, `Remote-MTA`): untyped, comments and the final dot of a
/// fully qualified name removed (Gmail writes `dns; mx.example. (192.0.2.1, the server for
/// the domain example.)`).
pub(super) fn host(value: &str) -> Option<String> {
    let value = without_comments(prefix(value, MAX_VALUE_BYTES * 4));
    clean(untyped(&value).trim().trim_end_matches('.'))
}

/// `Diagnostic-Code`: untyped, and an SMTP reply's lines joined into one.
pub(super) fn diagnostic(value: &str) -> Option<String> {
    let text = reply::join(untyped(value));
    clean(&text)
}

/// `Status`: the first word once comments are removed, when it is an enhanced status code
/// (RFC 3463 §2: `class.subject.detail`); `None` otherwise.
pub(super) fn status(value: &str) -> Option<String> {
    let value = without_comments(prefix(value, MAX_VALUE_BYTES));
    let word = value.split_whitespace().next()?;
    reply::is_enhanced(word).then(|| word.to_string())
}

/// A Message-ID with its `<>`: the first `<...>` in the value, or the value wrapped in `<>`.
pub(super) fn message_id(value: &str) -> Option<String> {
    let value = prefix(value, MAX_VALUE_BYTES * 4);
    if let Some(open) = value.find('<')
        && let Some(close) = value[open..].find('>')
    {
        let id = &value[open..open + close + 1];
        if id.len() > 2 && !id.contains(char::is_whitespace) {
            return Some(cap(id.to_string()));
        }
    }
    let word = value.split_whitespace().next()?;
    let word = word.trim_start_matches('<').trim_end_matches('>');
    (!word.is_empty()).then(|| cap(format!("<{word}>")))
}

/// `value` with every comment (`(...)`, nested, RFC 5322 §3.2.2) removed. Never recurses;
/// an unterminated comment runs to the end.
pub(super) fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for ch in value.chars() {
        if depth > 0 {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        } else if ch == '(' {
            depth = 1;
        } else {
            out.push(ch);
        }
    }
    out
}
