//! Splits the header section of a raw message into fields, top-most first.
//!
//! Deliberately small and strict about line ends, tolerant about everything else:
//! - a line ends at LF, with an optional CR before it (RFC 5322 §2.1 says CRLF; stored
//!   messages and IMAP clients often use LF alone);
//! - a lone CR is *not* a line end: it stays inside the value. Treating it as one would let a
//!   sender smuggle `Subject: x\rAuthentication-Results: ...` past the receiver (whose MTA saw
//!   one Subject field) and into our verdict;
//! - a line starting with SP or HTAB continues the field above (RFC 5322 §2.2.3 folding);
//! - the header section ends at the first empty line (RFC 5322 §2.1);
//! - field names are printable US-ASCII without `:` (RFC 5322 §2.2); white space before the
//!   colon is accepted (RFC 5322 §4.5, obsolete syntax);
//! - bytes that are not UTF-8 are replaced (U+FFFD) in values, never rejected.
//!
//! Lines in the middle of the header section that are not fields are skipped, with any
//! continuation lines after them. A first line that is not a field means the input has no
//! header section at all.

use std::io::BufRead;

use super::InspectError;

/// One header field: its name, and the raw bytes of its value (folds included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a str,
    raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// Whether the field has this name (case-insensitive, RFC 5322 §1.2.2).
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The unfolded value (RFC 5322 §2.2.3: the CRLF before each fold is removed, the white
    /// space kept), with invalid UTF-8 replaced.
    pub(crate) fn value(&self) -> String {
        // Within a field's span every LF is a fold (a line end not followed by white space
        // ends the field), so unfolding is dropping each LF and the CR just before it.
        let mut out = Vec::with_capacity(self.raw.len());
        let mut rest = self.raw;
        while let Some(lf) = find_lf(rest) {
            let line = &rest[..lf];
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
            rest = &rest[lf + 1..];
        }
        out.extend_from_slice(rest);
        match String::from_utf8(out) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        }
    }
}

/// The longest first line quoted back in an error.
const QUOTED_LINE_CHARS: usize = 60;

/// Splits the header section of `raw` into fields, top-most first.
pub(crate) fn split(raw: &[u8]) -> Result<Vec<Field<'_>>, InspectError> {
    if raw.is_empty() {
        return Err(InspectError::Empty);
    }
    let mut pos = 0;
    // A UTF-8 byte order mark, written by some editors, is not part of the message.
    if raw.starts_with(b"\xEF\xBB\xBF") {
        pos = 3;
    }
    // An mbox file starts with a `From ` separator line, which is not a header field.
    if raw[pos..].starts_with(b"From ") {
        pos = next_line(raw, pos).1;
    }

    let mut fields: Vec<Field<'_>> = Vec::with_capacity(64);
    // The field that a continuation line extends, as (index in `fields`, value start).
    let mut open: Option<(usize, usize)> = None;
    let mut first = true;
    while pos < raw.len() {
        let (line_end, next) = next_line(raw, pos);
        let line = &raw[pos..line_end];
        if line.is_empty() {
            if first {
                return Err(no_headers(line));
            }
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            match open {
                Some((index, start)) => fields[index].raw = &raw[start..line_end],
                None if first => return Err(no_headers(line)),
                None => {}
            }
        } else if let Some((name, value_start)) = field_name(line) {
            let start = pos + value_start;
            open = Some((fields.len(), start));
            fields.push(Field {
                name,
                raw: &raw[start..line_end],
            });
        } else if first {
            return Err(no_headers(line));
        } else {
            open = None;
        }
        first = false;
        pos = next;
    }
    if fields.is_empty() {
        // Only reachable when the input was a BOM or an mbox separator line and nothing else.
        return Err(no_headers(&raw[pos.min(raw.len())..]));
    }
    Ok(fields)
}

/// Where the line starting at `pos` ends (before any CR LF) and where the next one starts.
pub(crate) fn next_line(raw: &[u8], pos: usize) -> (usize, usize) {
    match find_lf(&raw[pos..]) {
        Some(offset) => {
            let lf = pos + offset;
            let end = if lf > pos && raw[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (end, lf + 1)
        }
        None => (raw.len(), raw.len()),
    }
}

/// The offset of the first LF in `bytes`. This is the splitter's hot loop: `BufRead` on a
/// byte slice finds the delimiter with the platform's `memchr`, many bytes at a time, where a
/// plain `position` loop looks at one byte per step.
fn find_lf(bytes: &[u8]) -> Option<usize> {
    let mut rest = bytes;
    match rest.skip_until(b'\n') {
        Ok(skipped) if skipped > 0 && bytes[skipped - 1] == b'\n' => Some(skipped - 1),
        Ok(_) => None,
        // Reading from a slice cannot fail; should it ever, the plain loop gives the answer.
        Err(_) => bytes.iter().position(|&byte| byte == b'\n'),
    }
}

/// The field name of a line and where its value starts, when the line is a field.
fn field_name(line: &[u8]) -> Option<(&str, usize)> {
    let colon = line.iter().position(|&byte| byte == b':')?;
    let mut name = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    if name.is_empty() || !name.iter().all(|&byte| (33..=126).contains(&byte)) {
        return None;
    }
    // Printable ASCII is valid UTF-8, so this never fails.
    let name = std::str::from_utf8(name).ok()?;
    Some((name, colon + 1))
}

fn no_headers(line: &[u8]) -> InspectError {
    let text = String::from_utf8_lossy(line);
    let mut quoted: String = text.chars().take(QUOTED_LINE_CHARS).collect();
    if text.chars().nth(QUOTED_LINE_CHARS).is_some() {
        quoted.push('…');
    }
    InspectError::NoHeaders {
        first_line: format!("{quoted:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_values(raw: &[u8]) -> Vec<(String, String)> {
        split(raw)
            .expect("headers")
            .iter()
            .map(|field| (field.name.to_string(), field.value()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splits_lf_and_crlf_the_same() {
        let lf = b"A: 1\nB: two\n  folded\n\nbody: no\n";
        let crlf = b"A: 1\r\nB: two\r\n  folded\r\n\r\nbody: no\r\n";
        let expected = pairs(&[("A", " 1"), ("B", " two  folded")]);
        assert_eq!(names_values(lf), expected);
        assert_eq!(names_values(crlf), expected);
    }

    #[test]
    fn header_section_without_body_or_final_newline() {
        assert_eq!(names_values(b"A: 1"), pairs(&[("A", " 1")]));
        assert_eq!(names_values(b"A: 1\r\n"), pairs(&[("A", " 1")]));
    }

    #[test]
    fn lone_cr_is_not_a_line_end() {
        let raw = b"Subject: hi\rAuthentication-Results: evil; spf=pass\r\nX: y\r\n";
        let got = names_values(raw);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "Subject");
        assert_eq!(got[0].1, " hi\rAuthentication-Results: evil; spf=pass");
    }

    #[test]
    fn tab_folding_and_multiple_folds() {
        let raw = b"A: x;\n\tb=1;\n \t c=2\n";
        assert_eq!(names_values(raw), pairs(&[("A", " x;\tb=1; \t c=2")]));
    }

    #[test]
    fn space_before_colon_is_accepted() {
        assert_eq!(names_values(b"A-B : v\n"), pairs(&[("A-B", " v")]));
    }

    #[test]
    fn mbox_separator_and_bom_are_skipped() {
        let raw = b"From someone@example.com Mon Jan  1 00:00:00 2024\nA: 1\n";
        assert_eq!(names_values(raw), pairs(&[("A", " 1")]));
        assert_eq!(names_values(b"\xEF\xBB\xBFA: 1\n"), pairs(&[("A", " 1")]));
    }

    #[test]
    fn junk_lines_in_the_middle_are_skipped_with_their_continuations() {
        let raw = b"A: 1\nnot a field\n continued junk\nB: 2\n";
        assert_eq!(names_values(raw), pairs(&[("A", " 1"), ("B", " 2")]));
    }

    #[test]
    fn non_utf8_is_replaced() {
        let got = names_values(b"A: caf\xE9\n");
        assert_eq!(got[0].1, " caf\u{FFFD}");
    }

    #[test]
    fn errors_name_the_cause() {
        assert_eq!(split(b"").map(|_| ()), Err(InspectError::Empty));
        for (raw, line) in [
            (&b"\nA: 1\n"[..], "\"\""),
            (b"hello world\nA: 1\n", "\"hello world\""),
            (b" leading space\n", "\" leading space\""),
            (b"\x89PNG\r\n\x1a\n", "\"\u{FFFD}PNG\""),
            (b"From x\n", "\"\""),
        ] {
            match split(raw) {
                Err(InspectError::NoHeaders { first_line }) => assert_eq!(first_line, line),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn long_first_line_is_cut() {
        let raw = vec![b'x'; 10_000];
        match split(&raw) {
            Err(InspectError::NoHeaders { first_line }) => {
                assert!(first_line.chars().count() < 70, "{first_line}");
                assert!(first_line.contains('…'));
            }
            other => panic!("{other:?}"),
        }
    }
}
