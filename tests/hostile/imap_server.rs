//! Tiny IMAP servers (RFC 3501) that answer well up to one point and then misbehave on purpose:
//! no greeting, an IDLE (RFC 2177) that never ends, a literal (RFC 3501 §4.3) far too large,
//! megabytes of garbage, a SEARCH with 100,000 UIDs, a FETCH cut off mid-literal, a refused
//! LOGIN, a refused SEARCH. Each serves one mailbox with UIDVALIDITY 42 whose SEARCH always
//! names the same messages, as a real server would.

use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::tls::{self, Stream};
use crate::wire::{self, Conn, Record};

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Behaves: logs in, selects, finds nothing, idles properly.
    Empty,
    /// Accepts the TCP connection and closes it at once (a port with a dead server behind it).
    HangUp,
    /// Accepts the TCP connection and never sends a greeting (RFC 3501 §7.1.1).
    NoGreeting,
    /// Answers everything with nothing found, until IDLE: accepts it (`+ idling`), then sends
    /// only `* OK still here` every 500 ms, forever, and never answers DONE or anything else.
    IdleStall,
    /// SEARCH finds UID 1; its FETCH announces a literal of this many bytes and streams it.
    HugeLiteral(u64),
    /// Answers SELECT with 5 MB of garbage that is no IMAP syntax at all.
    Garbage,
    /// SEARCH answers with UIDs 1 to 100,000; FETCH finds nothing.
    ManyUids,
    /// SEARCH finds UID 1; its FETCH sends part of the literal and closes the connection.
    CloseMidFetch,
    /// Refuses LOGIN with `NO [AUTHENTICATIONFAILED]` (RFC 5530).
    RejectLogin,
    /// Offers only `AUTH=XOAUTH2` (as Gmail did before OAUTHBEARER) and takes only the bearer
    /// token [`GOOD_TOKEN`]; another token gets Google's error challenge, then NO. Otherwise
    /// as `Empty`.
    XOAuth2Only,
    /// Refuses every SEARCH with a tagged `NO [CANNOT]` (RFC 5530) and no `* SEARCH` line: a
    /// client that reads that as "nothing found" would call the probe missing.
    RefuseSearch,
}

/// The access token the `XOAuth2Only` server accepts.
pub const GOOD_TOKEN: &str = "hostile-access-token-good";

pub struct ImapServer {
    pub port: u16,
    pub record: Arc<Record>,
}

/// Starts a server; `tls`: implicit TLS (the seeds use `tls = "tls"`) or plain TCP.
pub fn start(mode: Mode, tls: bool) -> ImapServer {
    let record = Arc::new(Record::default());
    let rec = record.clone();
    let port = wire::serve(move |tcp: TcpStream| {
        rec.note_connection();
        if matches!(mode, Mode::HangUp) {
            return;
        }
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = if tls { tls::accept(tcp) } else { Box::new(tcp) };
        let mut conn = Conn::new(stream, rec.clone());
        let _ = session(mode, &mut conn);
    });
    ImapServer { port, record }
}

const UIDS: u32 = 100_000;

fn session(mode: Mode, conn: &mut Conn) -> std::io::Result<()> {
    if matches!(mode, Mode::NoGreeting) {
        conn.hold();
        return Ok(());
    }
    conn.send(b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] hostile test server ready\r\n")?;
    while let Some(line) = command(conn)? {
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut words = text.split_whitespace();
        let tag = words.next().unwrap_or("*").to_string();
        let mut verb = words.next().unwrap_or("").to_ascii_uppercase();
        if verb == "UID" {
            verb = format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase());
        }
        let ok = |what: &str| format!("{tag} OK {what} completed\r\n").into_bytes();
        match verb.as_str() {
            "CAPABILITY" if matches!(mode, Mode::XOAuth2Only) => {
                conn.send(b"* CAPABILITY IMAP4rev1 IDLE UIDPLUS AUTH=XOAUTH2\r\n")?;
                conn.send(&ok("CAPABILITY"))?;
            }
            "CAPABILITY" => {
                conn.send(b"* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n")?;
                conn.send(&ok("CAPABILITY"))?;
            }
            "AUTHENTICATE" if matches!(mode, Mode::XOAuth2Only) => {
                if !words
                    .next()
                    .is_some_and(|m| m.eq_ignore_ascii_case("XOAUTH2"))
                {
                    conn.send(format!("{tag} NO Unsupported mechanism\r\n").as_bytes())?;
                    continue;
                }
                conn.send(b"+ \r\n")?;
                let Some(response) = conn.line()? else {
                    return Ok(());
                };
                let decoded = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    String::from_utf8_lossy(&response).trim(),
                )
                .unwrap_or_default();
                let wanted = format!("auth=Bearer {GOOD_TOKEN}\x01\x01");
                if String::from_utf8_lossy(&decoded).ends_with(&wanted) {
                    conn.send(format!("{tag} OK Authenticated\r\n").as_bytes())?;
                } else {
                    // Google's error challenge (its XOAUTH2 documentation): the client must
                    // answer with an empty response before the server says NO.
                    conn.send(b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n")?;
                    if conn.line()?.is_none() {
                        return Ok(());
                    }
                    conn.send(
                        format!(
                            "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"
                        )
                        .as_bytes(),
                    )?;
                }
            }
            "LOGIN" | "AUTHENTICATE" if matches!(mode, Mode::RejectLogin) => {
                conn.send(
                    format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
                        .as_bytes(),
                )?;
            }
            "SELECT" | "EXAMINE" if matches!(mode, Mode::Garbage) => {
                garbage(conn)?;
                conn.hold();
                return Ok(());
            }
            "SELECT" | "EXAMINE" => {
                conn.send(
                    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
                      * 1 EXISTS\r\n* 0 RECENT\r\n\
                      * OK [UIDVALIDITY 42] UIDs valid\r\n* OK [UIDNEXT 2] Predicted next UID\r\n",
                )?;
                conn.send(format!("{tag} OK [READ-WRITE] SELECT completed\r\n").as_bytes())?;
            }
            "UID SEARCH" | "SEARCH" if matches!(mode, Mode::RefuseSearch) => {
                conn.send(format!("{tag} NO [CANNOT] Search failed\r\n").as_bytes())?;
            }
            "UID SEARCH" | "SEARCH" => {
                match mode {
                    Mode::ManyUids => {
                        let mut reply = String::from("* SEARCH");
                        for uid in 1..=UIDS {
                            reply.push_str(&format!(" {uid}"));
                        }
                        reply.push_str("\r\n");
                        conn.send(reply.as_bytes())?;
                    }
                    Mode::HugeLiteral(_) | Mode::CloseMidFetch => conn.send(b"* SEARCH 1\r\n")?,
                    _ => conn.send(b"* SEARCH\r\n")?,
                }
                conn.send(&ok("SEARCH"))?;
            }
            "UID FETCH" | "FETCH" => match mode {
                Mode::HugeLiteral(size) => {
                    huge_literal(conn, size)?;
                    conn.send(b")\r\n")?;
                    conn.send(&ok("FETCH"))?;
                }
                Mode::CloseMidFetch => {
                    conn.send(b"* 1 FETCH (UID 1 BODY[] {4096}\r\n")?;
                    conn.send(&message_start())?;
                    // Gone mid-literal, without a BYE: the client cannot know what it missed.
                    return Ok(());
                }
                _ => conn.send(&ok("FETCH"))?,
            },
            "IDLE" => {
                conn.send(b"+ idling\r\n")?;
                if matches!(mode, Mode::IdleStall) {
                    // RFC 2177 §3: servers may send untagged responses while idling; this one
                    // sends nothing else, ever, and never reads the client's DONE.
                    loop {
                        thread::sleep(Duration::from_millis(500));
                        conn.send(b"* OK still here\r\n")?;
                    }
                }
                if command(conn)?.is_none() {
                    return Ok(());
                }
                conn.send(&ok("IDLE"))?;
            }
            "LIST" | "LSUB" => {
                conn.send(b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n")?;
                conn.send(b"* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n")?;
                conn.send(&ok("LIST"))?;
            }
            "LOGOUT" => {
                conn.send(b"* BYE logging out\r\n")?;
                conn.send(&ok("LOGOUT"))?;
                return Ok(());
            }
            "" => conn.send(b"* BAD empty command\r\n")?,
            _ => conn.send(&ok(&verb))?,
        }
    }
    Ok(())
}

/// One client command; a literal the client announces (`{n}`, RFC 3501 §4.3) gets its
/// continuation and is read into the line.
fn command(conn: &mut Conn) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut line) = conn.line()? else {
        return Ok(None);
    };
    while let Some(n) = literal_size(&line) {
        conn.send(b"+ go ahead\r\n")?;
        let data = conn.bytes(n)?;
        line.extend_from_slice(&data);
        match conn.line()? {
            Some(rest) => line.extend_from_slice(&rest),
            None => return Ok(None),
        }
    }
    Ok(Some(line))
}

fn literal_size(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|b| *b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

/// The start of a plausible message carrying a probe header (whose token is not ours).
fn message_start() -> Vec<u8> {
    b"Return-Path: <probe@hostile.test>\r\n\
      X-Mailcanary-Probe: v1.not-a-real-token\r\n\
      From: probe <probe@hostile.test>\r\n\
      Subject: Your weekly account summary\r\n"
        .to_vec()
}

/// `* 1 FETCH (UID 1 BODY[] {size}` and then as much of the literal as the client takes.
fn huge_literal(conn: &mut Conn, size: u64) -> std::io::Result<()> {
    conn.send(format!("* 1 FETCH (UID 1 BODY[] {{{size}}}\r\n").as_bytes())?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(chunk.len() as u64) as usize;
        conn.send(&chunk[..n])?;
        sent += n as u64;
    }
    Ok(())
}

/// 5 MB of bytes that are no IMAP response: no tag, no `*`, brackets and quotes that never
/// close, and no CRLF anywhere.
fn garbage(conn: &mut Conn) -> std::io::Result<()> {
    let pattern = b"\x01garbage ((( [[[ {{{ \"unterminated \\ \xff\xfe ";
    let block: Vec<u8> = pattern.iter().copied().cycle().take(64 * 1024).collect();
    for _ in 0..80 {
        conn.send(&block)?;
    }
    Ok(())
}
