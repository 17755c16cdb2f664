//! The lexical pieces shared by the structured header parsers: CFWS (comments and folding
//! white space, RFC 5322 §3.2.2), quoted strings (RFC 5322 §3.2.4) and keywords.
//!
//! Every method consumes input or stops; nothing recurses, so nesting depth and length are
//! bounded only by the input (a 1 MB run of `(` is one linear scan). Unterminated comments and
//! quoted strings run to the end of the value: the caller keeps what it parsed before them.

/// A position in one unfolded header value.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.text.len());
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The next byte, when it is there.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes `byte` when it is next.
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes one character, whatever it is (always makes progress before the end).
    pub(crate) fn bump(&mut self) {
        match self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
            Some(ch) => self.pos += ch.len_utf8(),
            None => self.pos = (self.pos + 1).min(self.text.len()),
        }
    }

    /// Skips white space and comments (RFC 5322 `CFWS`), appending each comment's text to
    /// `comments`, separated by a space. CR and LF count as white space: a value only keeps
    /// them when they were not a proper line end, and they separate nothing else.
    pub(crate) fn skip_cfws(&mut self, comments: &mut String) {
        loop {
            self.skip_ws();
            if self.peek() == Some(b'(') {
                self.comment(comments);
            } else {
                return;
            }
        }
    }

    /// Like [`Cursor::skip_cfws`], dropping the comments.
    pub(crate) fn skip_cfws_quiet(&mut self) {
        loop {
            self.skip_ws();
            if self.peek() == Some(b'(') {
                self.skip_comment();
            } else {
                return;
            }
        }
    }

    fn skip_ws(&mut self) {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && is_ws(bytes[self.pos]) {
            self.pos += 1;
        }
    }

    /// Reads a comment starting at `(` (RFC 5322 §3.2.2: nested comments, quoted pairs) and
    /// appends its text, without the outer parentheses and with white space collapsed, to
    /// `out` (after a space when `out` already holds text).
    fn comment(&mut self, out: &mut String) {
        let start = self.pos;
        let terminated = self.skip_comment();
        let end = self.pos;
        let inner_start = (start + 1).min(end);
        let inner_end = if terminated { end - 1 } else { end };
        let inner = self.text.get(inner_start..inner_end).unwrap_or("");
        let before = out.len();
        if !out.is_empty() {
            out.push(' ');
        }
        let text_start = out.len();
        let mut chars = inner.chars();
        while let Some(ch) = chars.next() {
            // A quoted pair stands for the character after the backslash.
            let ch = if ch == '\\' {
                chars.next().unwrap_or('\\')
            } else {
                ch
            };
            if ch.is_whitespace() {
                if out.len() > text_start && !out.ends_with(' ') {
                    out.push(' ');
                }
            } else {
                out.push(ch);
            }
        }
        out.truncate(out.trim_end().len().max(text_start));
        if out.len() == text_start {
            // An empty comment adds nothing, not even the separator.
            out.truncate(before);
        }
    }

    /// Skips a comment starting at `(`, counting nesting instead of recursing. Returns whether
    /// it was closed; an unterminated comment runs to the end of the value.
    fn skip_comment(&mut self) -> bool {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        while self.pos < bytes.len() {
            match bytes[self.pos] {
                // Quoted pair: the next byte is literal. A multi-byte character leaves `pos`
                // inside it, which is harmless: its continuation bytes match no delimiter.
                b'\\' => self.pos += 1,
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.pos += 1;
                        return true;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        self.pos = bytes.len();
        false
    }

    /// Reads a quoted string starting at `"` (RFC 5322 §3.2.4), quoted pairs resolved. An
    /// unterminated string runs to the end of the value.
    pub(crate) fn quoted_string(&mut self) -> String {
        let mut out = String::new();
        if !self.eat(b'"') {
            return out;
        }
        let mut chars = self.text.get(self.pos..).unwrap_or("").char_indices();
        while let Some((offset, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += offset + 1;
                    return out;
                }
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        out.push(next);
                    }
                }
                _ => out.push(ch),
            }
        }
        self.pos = self.text.len();
        out
    }

    /// Reads a keyword: letters, digits, `-` and `_` (RFC 8601 `Keyword` is an `ldh-str`;
    /// `_` is accepted because Yahoo writes `perm_fail`). Empty when none is next.
    pub(crate) fn keyword(&mut self) -> &'a str {
        self.take_while(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    }

    /// Reads a run of bytes for which `keep` holds.
    pub(crate) fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        while self.pos < bytes.len() && keep(bytes[self.pos]) {
            self.pos += 1;
        }
        // `keep` decides on single bytes: a run either takes every byte of a multi-byte
        // character (all are >= 0x80) or stops at its first one, so both ends are boundaries.
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// Reads a value: a quoted string, or a run up to white space, `;` or `(`. After a quoted
    /// local-part, `@domain` is read too (RFC 8601 `pvalue`: `"john doe"@example.com`).
    pub(crate) fn value(&mut self) -> String {
        if self.peek() == Some(b'"') {
            let mut out = self.quoted_string();
            if self.peek() == Some(b'@') {
                out.push_str(self.bare());
            }
            out
        } else {
            self.bare().to_string()
        }
    }

    /// Reads a run up to white space, `;` or `(`. Real receivers put `/`, `=`, `+` and `@` in
    /// unquoted values (`header.b=Ab+/c=`), which RFC 2045 tokens forbid; we take them.
    pub(crate) fn bare(&mut self) -> &'a str {
        self.take_while(|byte| !is_ws(byte) && byte != b';' && byte != b'(')
    }

    /// Skips to the next `;` outside comments and quoted strings (not consuming it): how a
    /// parser gets past a piece it cannot read and on to the next one.
    pub(crate) fn skip_to_semicolon(&mut self) {
        loop {
            self.skip_cfws_quiet();
            match self.peek() {
                None | Some(b';') => return,
                Some(b'"') => {
                    self.quoted_string();
                }
                Some(_) => self.bump(),
            }
        }
    }
}

/// Whether a byte separates tokens.
pub(crate) fn is_ws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Appends `ch`, turning any run of white space into one space and dropping leading space.
pub(crate) fn push_collapsed(out: &mut String, ch: char) {
    if ch.is_whitespace() {
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    } else {
        out.push(ch);
    }
}
