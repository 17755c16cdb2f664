//! Bounds what an IMAP server can make us hold in memory, whatever it sends.
//!
//! async-imap buffers a whole response before parsing it, and when a server announces a
//! literal (`{N}` CRLF, RFC 3501 §4.3; `~{N}` for literal8, RFC 3516) it allocates N bytes up
//! front: one line `* OK {536870912}` costs half a gigabyte before a single byte of it arrives.
//! [`Guarded`] sits under the parser and refuses, as an I/O error of kind `InvalidData`, a
//! literal over the limit, a line over the limit, or more bytes than a command may answer with.
//! The parser never sees the bytes it refuses, so it never allocates for them.
//!
//! The scanner also reads the start of every response line (never literal data) for Gmail's
//! throttling answers ([`crate::gmail::throttle_in`]): async-imap drops the text of a tagged
//! `OK`, and `OK Success [THROTTLED]` is how Gmail says "slow down" to a command that worked.
//! It notes a tagged `NO`/`BAD` too: async-imap's SEARCH reads one as "no messages" (its
//! parser stops at the tagged line without looking at it), which would turn a refused search
//! into a false *missing*.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::gmail::{self, Throttle};

/// How much of each response line is kept for [`gmail::throttle_in`]: the tag, the status and
/// the response code come first.
const LINE_TEXT: usize = 256;

/// What one connection may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest literal a server may announce.
    pub max_literal: u64,
    /// The longest line outside literals (a SEARCH answer of many UIDs is one line).
    pub max_line: u64,
    /// The most bytes the answer to one command may have (reset by [`Budget::reset`]).
    pub max_response: u64,
}

impl Limits {
    /// The probe's limits: it asks for at most 1 MiB of header per message and for small
    /// batches, so a real server never comes near them.
    pub const PROBE: Limits = Limits {
        max_literal: 2 * 1024 * 1024,
        max_line: 4 * 1024 * 1024,
        max_response: 24 * 1024 * 1024,
    };
}

/// Why the guard refused a server's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A literal larger than [`Limits::max_literal`] was announced.
    #[error("the server announced a literal of {announced} bytes (limit {limit})")]
    Literal { announced: u64, limit: u64 },
    /// A line longer than [`Limits::max_line`].
    #[error("the server sent a line longer than {limit} bytes")]
    Line { limit: u64 },
    /// An answer larger than [`Limits::max_response`].
    #[error("the server's answer to one command exceeded {limit} bytes")]
    Response { limit: u64 },
}

/// Where the scanner is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// In a line, outside any literal.
    Line,
    /// After `{`: reading the literal's length.
    Length { value: u64, digits: u8 },
    /// After `}`: a literal follows only if CRLF comes next.
    Close { value: u64, cr: bool },
    /// Inside a literal: this many bytes are data, never syntax.
    Literal { remaining: u64 },
}

/// The pure scanner: feed it what the server sent, in any chunking.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    scan: Scan,
    line: u64,
    /// The start of the current line outside literals.
    text: Vec<u8>,
    /// The strongest throttling answer seen since [`Scanner::take_throttle`].
    throttle: Option<Throttle>,
    /// The last tagged `NO`/`BAD` line since [`Scanner::take_failure`].
    failure: Option<String>,
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Scanner {
            limits,
            scan: Scan::Line,
            line: 0,
            text: Vec::new(),
            throttle: None,
            failure: None,
        }
    }

    /// The last tagged `NO`/`BAD` answer seen since the last call.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// The strongest throttling answer seen since the last call.
    pub fn take_throttle(&mut self) -> Option<Throttle> {
        self.throttle.take()
    }

    /// Keeps the start of the line; at its end, reads it for a throttling answer.
    fn note_text(&mut self, b: u8) {
        if b == b'\n' {
            let line = self.text.strip_suffix(b"\r").unwrap_or(&self.text);
            if let Some(t) = gmail::throttle_in(line) {
                self.throttle = self.throttle.max(Some(t));
            }
            if tagged_failure(line) {
                self.failure = Some(String::from_utf8_lossy(line).into_owned());
            }
            self.text.clear();
        } else if self.text.len() < LINE_TEXT {
            self.text.push(b);
        }
    }

    /// Checks the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refused> {
        while !bytes.is_empty() {
            if let Scan::Literal { remaining } = self.scan {
                // Literal data is skipped in bulk: its content is never syntax.
                let n = remaining.min(bytes.len() as u64);
                bytes = &bytes[n as usize..];
                self.scan = match remaining - n {
                    0 => Scan::Line,
                    left => Scan::Literal { remaining: left },
                };
                continue;
            }
            let b = bytes[0];
            bytes = &bytes[1..];
            self.step(b)?;
        }
        Ok(())
    }

    fn step(&mut self, b: u8) -> Result<(), Refused> {
        self.note_text(b);
        self.line += 1;
        if b == b'\n' {
            self.line = 0;
        } else if self.line > self.limits.max_line {
            return Err(Refused::Line {
                limit: self.limits.max_line,
            });
        }
        self.scan = match (self.scan, b) {
            (Scan::Length { value, digits }, b'0'..=b'9') if digits < 19 => Scan::Length {
                value: value * 10 + u64::from(b - b'0'),
                digits: digits + 1,
            },
            // `{N+}` is the client's non-synchronising form (RFC 7888); tolerate it.
            (Scan::Length { value, digits }, b'}' | b'+') if digits > 0 => {
                if b == b'+' {
                    Scan::Length {
                        value,
                        digits: u8::MAX,
                    }
                } else {
                    Scan::Close { value, cr: false }
                }
            }
            (Scan::Close { value, cr: false }, b'\r') => Scan::Close { value, cr: true },
            (Scan::Close { value, .. }, b'\n') => {
                if value > self.limits.max_literal {
                    return Err(Refused::Literal {
                        announced: value,
                        limit: self.limits.max_literal,
                    });
                }
                if value == 0 {
                    Scan::Line
                } else {
                    Scan::Literal { remaining: value }
                }
            }
            (_, b'{') => Scan::Length {
                value: 0,
                digits: 0,
            },
            _ => Scan::Line,
        };
        Ok(())
    }
}

/// Whether a response line is a tagged `NO` or `BAD` (RFC 3501 §7.1): a command that failed.
/// Untagged ones (`* NO …`) are warnings, continuations (`+`) are not answers.
fn tagged_failure(line: &[u8]) -> bool {
    let mut words = line.split(|b| *b == b' ');
    let tag = words.next().unwrap_or_default();
    let status = words.next().unwrap_or_default();
    !tag.is_empty()
        && tag != b"*"
        && tag != b"+"
        && (status.eq_ignore_ascii_case(b"NO") || status.eq_ignore_ascii_case(b"BAD"))
}

/// Counts the bytes of the answer to the current command; the connection owner resets it
/// before each command. It also carries the throttling answers the scanner saw, for the
/// connection owner to take after the command.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    bytes: Arc<AtomicU64>,
    /// 0 none, 1 [`Throttle::Slowed`], 2 [`Throttle::Refused`] (the strongest wins).
    throttle: Arc<AtomicU8>,
    /// The last tagged `NO`/`BAD` line.
    failure: Arc<std::sync::Mutex<Option<String>>>,
}

impl Budget {
    /// A fresh budget for the next command: no bytes counted, no failure noted (a refusal
    /// belongs to the command it answered). Throttling stays until taken.
    pub fn reset(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        let _ = self.take_failure();
    }

    fn add(&self, n: u64) -> u64 {
        self.bytes.fetch_add(n, Ordering::Relaxed) + n
    }

    fn note_throttle(&self, t: Throttle) {
        let level = match t {
            Throttle::Slowed => 1,
            Throttle::Refused => 2,
        };
        self.throttle.fetch_max(level, Ordering::Relaxed);
    }

    fn note_failure(&self, line: String) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
    }

    /// The last tagged `NO`/`BAD` answer since the last call.
    pub fn take_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The strongest throttling answer since the last call.
    pub fn take_throttle(&self) -> Option<Throttle> {
        match self.throttle.swap(0, Ordering::Relaxed) {
            0 => None,
            1 => Some(Throttle::Slowed),
            _ => Some(Throttle::Refused),
        }
    }
}

/// A stream whose incoming bytes pass the [`Scanner`] and the [`Budget`] before anyone parses
/// them.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    scanner: Scanner,
    budget: Budget,
    refused: Option<Refused>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limits: Limits, budget: Budget) -> Self {
        Guarded {
            inner,
            scanner: Scanner::new(limits),
            budget,
            refused: None,
        }
    }

    /// The inner stream (to upgrade it with STARTTLS); the scanner's state carries over in
    /// [`Guarded::wrap`] of the caller.
    pub fn into_parts(self) -> (S, Scanner, Budget) {
        (self.inner, self.scanner, self.budget)
    }

    /// Wraps a new inner stream (after STARTTLS) keeping the scanner and budget.
    pub fn wrap(inner: S, scanner: Scanner, budget: Budget) -> Self {
        Guarded {
            inner,
            scanner,
            budget,
            refused: None,
        }
    }
}

fn refused_error(r: &Refused) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, r.clone())
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(r) = &this.refused {
            return Poll::Ready(Err(refused_error(r)));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let new = &buf.filled()[before..];
            let total = this.budget.add(new.len() as u64);
            let max = this.scanner.limits.max_response;
            let verdict = if total > max {
                Err(Refused::Response { limit: max })
            } else {
                this.scanner.feed(new)
            };
            if let Some(t) = this.scanner.take_throttle() {
                this.budget.note_throttle(t);
            }
            if let Some(line) = this.scanner.take_failure() {
                this.budget.note_failure(line);
            }
            if let Err(r) = verdict {
                // Hide the refused bytes from the parser: it must never allocate for them.
                buf.set_filled(before);
                let e = refused_error(&r);
                this.refused = Some(r);
                return Poll::Ready(Err(e));
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        max_literal: 100,
        max_line: 64,
        max_response: 1000,
    };

    fn feed_all(chunks: &[&[u8]]) -> Result<(), Refused> {
        let mut s = Scanner::new(SMALL);
        for c in chunks {
            s.feed(c)?;
        }
        Ok(())
    }

    #[test]
    fn small_literals_pass_in_any_chunking() {
        let msg: &[u8] = b"* 1 FETCH (UID 7 BODY[HEADER] {5}\r\nab}{c)\r\n";
        assert_eq!(feed_all(&[msg]), Ok(()));
        for cut in 0..msg.len() {
            assert_eq!(
                feed_all(&[&msg[..cut], &msg[cut..]]),
                Ok(()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_huge_literal_is_refused_on_its_announcement() {
        assert_eq!(
            feed_all(&[b"* OK {536870912}\r\n"]),
            Err(Refused::Literal {
                announced: 536_870_912,
                limit: 100
            })
        );
        // Split across reads, and as literal8.
        assert!(feed_all(&[b"* OK ~{5368", b"70912}\r", b"\n"]).is_err());
    }

    #[test]
    fn braces_that_are_not_literals_are_text() {
        assert_eq!(feed_all(&[b"* OK {99999999999} not a literal\r\n"]), Ok(()));
        assert_eq!(feed_all(&[b"* OK {} {abc}\r\n"]), Ok(()));
    }

    #[test]
    fn literal_content_is_never_syntax() {
        // The literal's content announces a huge literal: it is data, not syntax.
        let mut msg = b"* 1 FETCH (BODY[] {20}\r\n".to_vec();
        msg.extend_from_slice(b"{999999999}\r\nxxxxxxx");
        msg.extend_from_slice(b")\r\n");
        assert_eq!(feed_all(&[&msg]), Ok(()));
    }

    #[test]
    fn long_lines_are_refused_but_long_literals_are_not_lines() {
        assert_eq!(feed_all(&[&[b'x'; 65]]), Err(Refused::Line { limit: 64 }));
        let mut msg = b"* 1 FETCH (BODY[] {90}\r\n".to_vec();
        msg.extend_from_slice(&[b'x'; 90]);
        msg.extend_from_slice(b")\r\n");
        assert_eq!(feed_all(&[&msg]), Ok(()));
    }

    #[tokio::test]
    async fn the_stream_hides_refused_bytes_and_keeps_refusing() {
        use tokio::io::AsyncReadExt;
        let data: &[u8] = b"* OK hello\r\n* OK {536870912}\r\n";
        let budget = Budget::default();
        let mut g = Guarded::new(data, SMALL, budget.clone());
        let mut buf = Vec::new();
        let err = g.read_to_end(&mut buf).await.expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(buf.len() < 40);
        assert!(g.read_to_end(&mut buf).await.is_err());
    }

    #[test]
    fn throttling_answers_are_noted_but_literal_data_is_not() {
        let mut s = Scanner::new(Limits::PROBE);
        s.feed(b"* SEARCH 1\r\na5 OK Succ").expect("fine");
        assert_eq!(s.take_throttle(), None);
        s.feed(b"ess [THROTTLED]\r\n").expect("fine");
        assert_eq!(s.take_throttle(), Some(Throttle::Slowed));
        assert_eq!(s.take_throttle(), None);
        // A message that quotes Gmail's answer inside a literal is data, not an answer.
        let quoted = b"a6 NO [OVERQUOTA] Account exceeded command or bandwidth limits.\r\n";
        let mut msg =
            format!("* 1 FETCH (UID 1 BODY[HEADER] {{{}}}\r\n", quoted.len()).into_bytes();
        msg.extend_from_slice(quoted);
        msg.extend_from_slice(b")\r\na6 OK FETCH done\r\n");
        s.feed(&msg).expect("fine");
        assert_eq!(s.take_throttle(), None);
        s.feed(quoted).expect("fine");
        assert_eq!(s.take_throttle(), Some(Throttle::Refused));
    }

    #[test]
    fn tagged_failures_are_noted_untagged_warnings_are_not() {
        let mut s = Scanner::new(Limits::PROBE);
        s.feed(b"* NO [ALERT] disk almost full\r\n+ idling\r\na4 OK done\r\n")
            .expect("fine");
        assert_eq!(s.take_failure(), None);
        s.feed(b"* SEARCH\r\na5 NO [CANNOT] search failed\r\n")
            .expect("fine");
        assert_eq!(
            s.take_failure().as_deref(),
            Some("a5 NO [CANNOT] search failed")
        );
        s.feed(b"a6 bad Could not parse command\r\n").expect("fine");
        assert!(s.take_failure().is_some());
    }

    #[tokio::test]
    async fn the_stream_hands_throttling_to_the_budget() {
        use tokio::io::AsyncReadExt;
        let data: &[u8] = b"* SEARCH\r\na1 OK Success [THROTTLED]\r\n";
        let budget = Budget::default();
        let mut g = Guarded::new(data, SMALL, budget.clone());
        let mut buf = Vec::new();
        g.read_to_end(&mut buf).await.expect("read");
        assert_eq!(budget.take_throttle(), Some(Throttle::Slowed));
        assert_eq!(budget.take_throttle(), None);
    }

    #[tokio::test]
    async fn the_budget_bounds_one_answer_and_resets() {
        use tokio::io::AsyncReadExt;
        let line = b"* OK 0123456789012345678901234567890123456789\r\n".repeat(30);
        let budget = Budget::default();
        let mut g = Guarded::new(line.as_slice(), SMALL, budget.clone());
        let mut buf = Vec::new();
        let err = g.read_to_end(&mut buf).await.expect_err("over budget");
        assert!(err.to_string().contains("exceeded 1000 bytes"), "{err}");
        budget.reset();
    }
}
