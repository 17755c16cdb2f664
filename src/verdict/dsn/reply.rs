//! SMTP replies as bounces quote them.
//!
//! A multi-line reply (RFC 5321 §4.2.1) repeats its code on every line, `-` after the code on
//! all lines but the last: `550-5.7.26 This mail` / `550-5.7.26 is unauthenticated` /
//! `550 5.7.26 gsmtp`. Bounces keep those codes in the middle of the text (Postfix joins the
//! lines with a space, Gmail folds them into `Diagnostic-Code`, Exim indents them). [`join`]
//! makes one reply of them: `550 5.7.26 This mail is unauthenticated gsmtp`.
//!
//! Enhanced status codes are RFC 3463 §2: `class.subject.detail`, class 2, 4 or 5, subject and
//! detail of one to three digits.

use crate::truncate::prefix;

/// The most reply text looked at: far more than any stored value keeps.
const MAX_REPLY_BYTES: usize = 8 * 1024;

/// One reply from the lines of a multi-line one: the code and enhanced code once, then the
/// text of every line, white space collapsed. Text that does not start with a reply code is
/// only collapsed.
pub(super) fn join(text: &str) -> String {
    let text = prefix(text, MAX_REPLY_BYTES);
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let Some((&first, rest)) = tokens.split_first() else {
        return String::new();
    };
    let Some((code, glued)) = split_code(first) else {
        return tokens.join(" ");
    };
    let mut rest = rest.iter().copied().peekable();
    let mut out: Vec<&str> = vec![code];
    let mut enhanced = None;
    if is_enhanced(glued) {
        enhanced = Some(glued);
    } else if glued.is_empty() {
        if let Some(&next) = rest.peek()
            && is_enhanced(next)
        {
            enhanced = Some(next);
            rest.next();
        }
    } else {
        out.push(glued);
    }
    out.extend(enhanced);

    let mut saw_continuation = first.len() > 3;
    while let Some(token) = rest.next() {
        if token == code {
            // `550 5.7.26` starting the last line, or `550` alone without an enhanced code.
            match enhanced {
                Some(enhanced) if rest.peek() == Some(&enhanced) => {
                    rest.next();
                    continue;
                }
                None if saw_continuation => continue,
                _ => {}
            }
        } else if let Some((marker, glued)) = split_code(token)
            && marker == code
            && token.len() > 3
        {
            // `550-5.7.26` or `550-` or `550-text` starting a continuation line.
            saw_continuation = true;
            match enhanced {
                Some(enhanced) if glued == enhanced => continue,
                Some(enhanced) if glued.is_empty() => {
                    if rest.peek() == Some(&enhanced) {
                        rest.next();
                    }
                    continue;
                }
                None if glued.is_empty() => continue,
                None => {
                    out.push(glued);
                    continue;
                }
                Some(_) => {}
            }
        }
        out.push(token);
    }
    out.join(" ")
}

/// `550`, `550-...`: the three-digit code and what is glued after the `-`.
fn split_code(token: &str) -> Option<(&str, &str)> {
    let bytes = token.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return None;
    }
    match bytes.get(3) {
        None => Some((&token[..3], "")),
        Some(b'-') => Some((&token[..3], &token[4..])),
        Some(_) => None,
    }
}

/// Whether `word` is an enhanced status code (RFC 3463 §2).
pub(super) fn is_enhanced(word: &str) -> bool {
    let mut parts = word.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits =
        |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail)
}

/// The enhanced status code a reply carries: after its reply code (`550 5.1.1 ...`,
/// `550-5.1.1 ...`), at its start (`5.1.1 ...`), or marked with `#` anywhere (qmail's
/// `(#5.1.1)`, Exchange's `#5.1.1`).
pub(super) fn enhanced_code(reply: &str) -> Option<String> {
    let reply = prefix(reply, MAX_REPLY_BYTES);
    let mut words = reply.split_whitespace();
    let first = words.next()?;
    if is_enhanced(first) {
        return Some(first.to_string());
    }
    if let Some((_, glued)) = split_code(first) {
        if is_enhanced(glued) {
            return Some(glued.to_string());
        }
        if glued.is_empty()
            && let Some(next) = words.next()
            && is_enhanced(next)
        {
            return Some(next.to_string());
        }
    }
    reply.split_whitespace().find_map(|word| {
        let (_, marked) = word.split_once('#')?;
        let code = marked.trim_end_matches(|ch: char| !ch.is_ascii_digit());
        is_enhanced(code).then(|| code.to_string())
    })
}
