//! Text from outside — reports, bounces, header fields, DNS records, token endpoints, server
//! replies — shown on a terminal. Whoever wrote it may have put control characters in it: ESC
//! starts the sequences that move the cursor, recolour, clear the screen, retitle the window
//! or write the clipboard (ECMA-48 CSI and OSC, xterm's OSC 0 and 52), BEL ends an OSC, C1
//! characters (U+0080–U+009F) are 8-bit forms of the same, CR and BS overwrite what was printed,
//! and the Unicode bidirectional controls (Unicode TR 9) reorder it. Every text output of the
//! command line and every log line goes through this module: such characters are written as
//! escapes (`\u{1b}`, `\r`), never as themselves.
//!
//! One helper, three uses: [`escape`] for a value put into a line, [`escape_lines`] for a
//! whole text whose line breaks are ours, [`EscapingWriter`] for the log.

use std::io::{self, Write};

/// Whether `c` must not reach a terminal as itself: a C0 or C1 control, DEL, or a bidirectional
/// formatting character (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    out.extend(c.escape_default());
}

/// `text` with every control character (line breaks included) and bidirectional control
/// escaped: for one value shown inside a line, so that it cannot start a line of its own.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with every control character but line feed and tab escaped: for a whole rendered
/// text (a report, an audit) printed at once. Its values should be [`escape`]d where it is
/// built; this is the guard at the edge for whatever was not.
pub fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) && c != '\n' && c != '\t' {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A log line with [`escape_lines`] applied, except, when `keep_colours` is set, the colour and
/// style sequences the log formatter writes itself (`ESC [` digits and `;` `m`, ECMA-48 SGR).
/// A value in the line could hold an SGR sequence too: it can recolour that line, nothing more.
pub fn escape_log_line(text: &str, keep_colours: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if keep_colours && c == '\x1b' {
            let sgr = rest[1..]
                .strip_prefix('[')
                .map(|after| after.find(|d: char| !d.is_ascii_digit() && d != ';'))
                .and_then(|end| end.filter(|&e| rest[2 + e..].starts_with('m')));
            if let Some(end) = sgr {
                let len = 2 + end + 1;
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if is_unsafe(c) && c != '\n' && c != '\t' {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The log's writer: each event (tracing-subscriber formats an event, then writes it in one
/// `write_all`) is escaped by [`escape_log_line`] before it reaches `inner`. The formatter
/// escapes the message itself, but writes `%value` fields as they are (tracing-subscriber
/// 0.3.23): a reporter's org name or a server's reply must not reach journald or `docker logs`
/// with a terminal sequence in it.
pub struct EscapingWriter<W: Write> {
    inner: W,
    keep_colours: bool,
}

impl<W: Write> EscapingWriter<W> {
    /// `keep_colours`: the formatter writes colours (a terminal), which are let through.
    pub fn new(inner: W, keep_colours: bool) -> Self {
        EscapingWriter {
            inner,
            keep_colours,
        }
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(escape_log_line(&text, self.keep_colours).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hostile report, bounce or DNS record may hold: CSI clear screen, OSC 0 window
    /// title ended by BEL, OSC 52 clipboard write ended by ST, a C1 CSI, CR, backspace,
    /// right-to-left override.
    const HOSTILE: &str =
        "a\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x1b\\\u{9b}31m\rb\x08\u{202e}c";

    fn no_raw_controls(text: &str) {
        for c in text.chars() {
            assert!(
                !is_unsafe(c) || c == '\n' || c == '\t',
                "{c:?} reached the output: {text:?}"
            );
        }
    }

    #[test]
    fn every_control_and_bidi_character_is_escaped() {
        let out = escape(HOSTILE);
        assert_eq!(
            out,
            "a\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{1b}]52;c;ZWNobyBoaQ==\\u{1b}\\\\u{9b}31m\\rb\\u{8}\\u{202e}c"
        );
        no_raw_controls(&out);
        assert!(!out.contains('\n'));
        assert_eq!(escape("line\nforged"), "line\\nforged");
        // Printable text, accents and emoji included, is left alone.
        assert_eq!(escape("Açaí — ✓ 日本 tab\u{a0}"), "Açaí — ✓ 日本 tab\u{a0}");
    }

    #[test]
    fn whole_texts_keep_their_line_breaks_and_tabs() {
        let out = escape_lines(&format!("first\t{HOSTILE}\nsecond\r\n"));
        no_raw_controls(&out);
        assert_eq!(out.lines().count(), 2);
        assert!(out.starts_with("first\ta\\u{1b}[2J"));
        assert!(out.ends_with("\nsecond\\r\n"));
    }

    #[test]
    fn log_lines_keep_only_colour_sequences_when_colouring() {
        let line = format!("\x1b[2m2026\x1b[0m \x1b[32m INFO\x1b[0m org_name={HOSTILE}\n");
        let plain = escape_log_line(&line, false);
        no_raw_controls(&plain);
        let coloured = escape_log_line(&line, true);
        assert!(coloured.starts_with("\x1b[2m2026\x1b[0m \x1b[32m INFO\x1b[0m org_name=a"));
        // The clear-screen, title, clipboard, C1 and bidi controls are escaped even then.
        let after = &coloured[coloured.find("org_name=").expect("field")..];
        assert!(
            after.starts_with("org_name=a\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"),
            "{after}"
        );
        for c in after.chars() {
            assert!(
                c != '\u{7}' && c != '\u{9b}' && c != '\r' && c != '\u{202e}',
                "{after:?}"
            );
        }
        // A lone ESC at the end, or a broken sequence, is escaped.
        assert_eq!(escape_log_line("x\x1b", true), "x\\u{1b}");
        assert_eq!(escape_log_line("x\x1b[12", true), "x\\u{1b}[12");
    }

    #[test]
    fn the_writer_escapes_each_event() {
        let mut out = Vec::new();
        let mut w = EscapingWriter::new(&mut out, false);
        w.write_all(format!("WARN report stored org_name={HOSTILE}\n").as_bytes())
            .expect("write");
        w.write_all(b"\xff invalid utf-8\n").expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        no_raw_controls(&text);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\u{fffd} invalid utf-8"));
    }
}
