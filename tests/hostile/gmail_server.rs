//! A stand-in for Gmail: an IMAP server that announces `X-GM-EXT-1` and answers exactly as
//! Google's "IMAP Extensions" document shows (developers.google.com/gmail/imap/imap-extensions:
//! the CAPABILITY and LIST transcripts, `X-GM-RAW` searches answered with `* SEARCH …` and
//! `OK SEARCH completed (Success)`), plus an SMTP front that files what it receives the way
//! Gmail's MX would: in INBOX under one tab (a `category:`), or in `[Gmail]/Spam`.
//!
//! It exists because the lab's Dovecot cannot speak X-GM-EXT-1, and the real Gmail cannot be
//! reached from a test. It is not a misbehaving server but lives with them because it is built
//! the same way (our own loopback server, one thread per connection, a record of every line
//! the client sent). What it does beyond the document, on purpose:
//! - `HEADER` searches find nothing: Gmail does not index arbitrary header fields reliably, so
//!   a client that finds probes that way at Gmail would be wrong; this proves mailcanary does
//!   not;
//! - selecting `[Gmail]/All Mail` is allowed and recorded, so a test can assert it never
//!   happens;
//! - the SMTP front writes Gmail's `Authentication-Results: mx.google.com; …` header with
//!   passing results it did not compute (nothing here verifies SPF or DKIM); the tests that
//!   use it are about finding, tabs and politeness, not verdicts;
//! - throttling modes answer like a throttled Gmail account: `OK Success [THROTTLED]`, or
//!   `NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)`.
//! - [`Timing`] makes it slow like Gmail: delivery seconds after SMTP acceptance, and a search
//!   index that trails the mailbox (a message is in its folder before `X-GM-RAW` finds it).

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::tls::{self, Stream};
use crate::wire::{self, Conn, Record};

/// Where the SMTP front files a message.
#[derive(Clone, Copy, Debug)]
pub enum Filing {
    /// INBOX, under this tab (`primary`, `promotions`, `social`, `updates`, `forums`).
    Inbox(&'static str),
    /// `[Gmail]/Spam`.
    Spam,
}

/// How the IMAP side answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As documented.
    Normal,
    /// Every tagged OK after the login ends in ` [THROTTLED]`: the account is slowed down.
    Throttled,
    /// Every SEARCH is refused for exceeded limits: nothing can be read.
    OverQuota,
}

const INBOX: &str = "INBOX";
const SPAM: &str = "[Gmail]/Spam";
const ALL_MAIL: &str = "[Gmail]/All Mail";

struct Message {
    uid: u32,
    folder: &'static str,
    /// The `category:` it matches (INBOX only).
    category: Option<&'static str>,
    message_id: String,
    raw: Vec<u8>,
    /// When an `X-GM-RAW` search starts finding it.
    searchable_at: Instant,
}

struct Store {
    messages: Vec<Message>,
    next_uid: u32,
    first_index_lag: Duration,
}

pub struct GmailServer {
    pub imap_port: u16,
    pub smtp_port: u16,
    /// What the IMAP client sent.
    pub imap: Arc<Record>,
}

/// Starts both sides on loopback: IMAP with implicit TLS (the test CA), SMTP in plain text.
pub fn start(filing: Filing, mode: Mode) -> GmailServer {
    start_with(filing, mode, Timing::default())
}

/// How slowly the stand-in's Gmail makes mail visible.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    /// From SMTP acceptance to the message being in its folder (Gmail takes seconds).
    pub delivery: Duration,
    /// How much later than the others the *first* message filed becomes searchable with
    /// `X-GM-RAW` (Gmail's search index trails its mailboxes): it is in the folder, with its
    /// UID, but a search does not find it yet.
    pub first_index_lag: Duration,
}

/// As [`start`], with Gmail's delays.
pub fn start_with(filing: Filing, mode: Mode, timing: Timing) -> GmailServer {
    let delay = timing.delivery;
    let store = Arc::new(Mutex::new(Store {
        messages: Vec::new(),
        next_uid: 1,
        first_index_lag: timing.first_index_lag,
    }));
    let imap = Arc::new(Record::default());
    let (rec, st) = (imap.clone(), store.clone());
    let imap_port = wire::serve(move |tcp: TcpStream| {
        rec.note_connection();
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn::new(tls::accept(tcp), rec.clone());
        let _ = imap_session(&mut conn, &st, mode);
    });
    let smtp_record = Arc::new(Record::default());
    let smtp_port = wire::serve(move |tcp: TcpStream| {
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn::new(Box::new(tcp) as Box<dyn Stream>, smtp_record.clone());
        let _ = smtp_session(&mut conn, &store, filing, delay);
    });
    GmailServer {
        imap_port,
        smtp_port,
        imap,
    }
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts one message per transaction (RFC 5321) and files it.
fn smtp_session(
    conn: &mut Conn,
    store: &Arc<Mutex<Store>>,
    filing: Filing,
    delay: Duration,
) -> std::io::Result<()> {
    conn.send(b"220 mx.google.com ESMTP stand-in\r\n")?;
    while let Some(line) = conn.line()? {
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        match upper.split_whitespace().next().unwrap_or("") {
            "EHLO" => conn.send(b"250-mx.google.com\r\n250 8BITMIME\r\n")?,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => conn.send(b"250 2.1.0 OK\r\n")?,
            "DATA" => {
                conn.send(b"354 Go ahead\r\n")?;
                let mut body = Vec::new();
                while let Some(l) = conn.line()? {
                    if l == b"." {
                        break;
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                    let l = l.strip_prefix(b".").unwrap_or(&l);
                    body.extend_from_slice(l);
                    body.extend_from_slice(b"\r\n");
                }
                let store = store.clone();
                thread::spawn(move || {
                    thread::sleep(delay);
                    file(&store, filing, body);
                });
                conn.send(b"250 2.0.0 OK stand-in\r\n")?;
            }
            "QUIT" => {
                conn.send(b"221 2.0.0 closing connection\r\n")?;
                return Ok(());
            }
            _ => conn.send(b"502 5.5.1 Unrecognized command\r\n")?,
        }
    }
    Ok(())
}

fn file(store: &Mutex<Store>, filing: Filing, body: Vec<u8>) {
    let mut raw = b"Authentication-Results: mx.google.com;\r\n       \
        dkim=pass header.i=@hostile.test header.s=s1 header.b=AbCdEf;\r\n       \
        spf=pass (google.com: domain of probe@hostile.test designates 127.0.0.1 as permitted \
        sender) smtp.mailfrom=probe@hostile.test;\r\n       \
        dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=hostile.test\r\n"
        .to_vec();
    raw.extend_from_slice(&body);
    let message_id = header_value(&raw, "message-id")
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .unwrap_or_default();
    let (folder, category) = match filing {
        Filing::Inbox(tab) => (INBOX, Some(tab)),
        Filing::Spam => (SPAM, None),
    };
    let mut s = lock(store);
    let uid = s.next_uid;
    s.next_uid += 1;
    let lag = if s.messages.is_empty() {
        s.first_index_lag
    } else {
        Duration::ZERO
    };
    s.messages.push(Message {
        uid,
        folder,
        category,
        message_id,
        raw,
        searchable_at: Instant::now() + lag,
    });
}

/// The header section (up to and including the blank line).
fn header_section(raw: &[u8]) -> &[u8] {
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &raw[..i + 4],
        None => raw,
    }
}

/// The header fields named (lower case), unfolded lines kept as written, then a blank line —
/// what `BODY[HEADER.FIELDS (…)]` returns (RFC 3501 §6.4.5).
fn header_fields(raw: &[u8], names: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(header_section(raw)).into_owned();
    let mut out = String::new();
    let mut keep = false;
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if keep {
                out.push_str(line);
                out.push_str("\r\n");
            }
            continue;
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        keep = !line.is_empty() && names.contains(&name);
        if keep {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let fields = header_fields(raw, &[name.to_string()]);
    let text = String::from_utf8_lossy(&fields).into_owned();
    let (_, value) = text.split_once(':')?;
    Some(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Splits an IMAP command line into words, quoted strings unquoted (RFC 3501 §4.3).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut w = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => w.extend(chars.next()),
                    '"' => break,
                    c => w.push(c),
                }
            }
            out.push(w);
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(w);
        }
    }
    out
}

/// A UID set (`1:3,7,9:*`, RFC 3501 §9) as a predicate; `*` is the largest UID in use.
fn in_set(set: &str, uid: u32, max: u32) -> bool {
    let num = |s: &str| {
        if s == "*" {
            Some(max)
        } else {
            s.parse::<u32>().ok()
        }
    };
    set.split(',').any(|part| match part.split_once(':') {
        Some((a, b)) => match (num(a), num(b)) {
            (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&uid),
            _ => false,
        },
        None => num(part) == Some(uid),
    })
}

/// Evaluates a Gmail search as this stand-in knows it: terms joined by ` OR `, each
/// `rfc822msgid:<id>` or `category:<tab>`. `None`: a term it does not know.
fn gmail_raw(query: &str, m: &Message) -> Option<bool> {
    let mut any = false;
    for term in query.split(" OR ") {
        let hit = match term.trim().split_once(':') {
            Some(("rfc822msgid", id)) => m.message_id == id,
            Some(("category", tab)) => m.category == Some(tab),
            _ => return None,
        };
        any |= hit;
    }
    Some(any)
}

fn imap_session(conn: &mut Conn, store: &Mutex<Store>, mode: Mode) -> std::io::Result<()> {
    conn.send(b"* OK Gimap ready for requests from 127.0.0.1 xgm-stand-in\r\n")?;
    let mut selected: Option<String> = None;
    // Messages in the selected folder as last told to the client: growth is announced with
    // `* n EXISTS` (RFC 3501 §7.3.1) at the next NOOP or IDLE, as Gmail does.
    let mut told = 0usize;
    let mut logged_in = false;
    while let Some(line) = conn.line()? {
        let text = String::from_utf8_lossy(&line).into_owned();
        let w = words(&text);
        let tag = w.first().cloned().unwrap_or_else(|| "*".into());
        let mut verb = w.get(1).map(|v| v.to_ascii_uppercase()).unwrap_or_default();
        let mut args = w.get(2..).unwrap_or_default().to_vec();
        if verb == "UID" && !args.is_empty() {
            verb = format!("UID {}", args.remove(0).to_ascii_uppercase());
        }
        let throttled = if logged_in && mode == Mode::Throttled {
            " [THROTTLED]"
        } else {
            ""
        };
        let ok = |what: &str| format!("{tag} OK {what}{throttled}\r\n").into_bytes();
        match verb.as_str() {
            "CAPABILITY" => {
                conn.send(
                    b"* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN \
                      X-GM-EXT-1 UIDPLUS MOVE SPECIAL-USE\r\n",
                )?;
                conn.send(&ok("Success"))?;
            }
            "LOGIN" => {
                logged_in = true;
                conn.send(
                    format!("{tag} OK stand-in@gmail.test authenticated (Success)\r\n").as_bytes(),
                )?;
            }
            "ID" => {
                conn.send(b"* ID (\"name\" \"GImap\" \"vendor\" \"Google, Inc.\")\r\n")?;
                conn.send(&ok("Success"))?;
            }
            "LIST" | "XLIST" => {
                // The document's LIST transcript.
                conn.send(
                    b"* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n\
                      * LIST (\\Noselect \\HasChildren) \"/\" \"[Gmail]\"\r\n\
                      * LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n\
                      * LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n\
                      * LIST (\\HasNoChildren \\Important) \"/\" \"[Gmail]/Important\"\r\n\
                      * LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n\
                      * LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n\
                      * LIST (\\HasNoChildren \\Flagged) \"/\" \"[Gmail]/Starred\"\r\n\
                      * LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"\r\n",
                )?;
                conn.send(&ok("Success"))?;
            }
            "SELECT" | "EXAMINE" => {
                let name = args.first().cloned().unwrap_or_default();
                let folder = [INBOX, SPAM, ALL_MAIL]
                    .into_iter()
                    .find(|f| f.eq_ignore_ascii_case(&name));
                let Some(folder) = folder else {
                    conn.send(
                        format!("{tag} NO [NONEXISTENT] Unknown Mailbox: {name} (Failure)\r\n")
                            .as_bytes(),
                    )?;
                    continue;
                };
                let (exists, next) = {
                    let s = lock(store);
                    let n = s
                        .messages
                        .iter()
                        .filter(|m| m.folder == folder || folder == ALL_MAIL)
                        .count();
                    (n, s.next_uid)
                };
                selected = Some(folder.to_string());
                told = exists;
                conn.send(
                    format!(
                        "* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n\
                         * OK [UIDVALIDITY 3] UIDs valid.\r\n* {exists} EXISTS\r\n* 0 RECENT\r\n\
                         * OK [UIDNEXT {next}] Predicted next UID.\r\n"
                    )
                    .as_bytes(),
                )?;
                conn.send(&ok(&format!("[READ-WRITE] {folder} selected. (Success)")))?;
            }
            "UID SEARCH" | "SEARCH" => {
                if mode == Mode::OverQuota {
                    conn.send(
                        format!("{tag} NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)\r\n")
                            .as_bytes(),
                    )?;
                    continue;
                }
                match search(store, selected.as_deref(), &args) {
                    Some(uids) => {
                        let list: Vec<String> = uids.iter().map(u32::to_string).collect();
                        let sep = if list.is_empty() { "" } else { " " };
                        conn.send(format!("* SEARCH{sep}{}\r\n", list.join(" ")).as_bytes())?;
                        conn.send(&ok("SEARCH completed (Success)"))?;
                    }
                    None => {
                        conn.send(format!("{tag} BAD Could not parse command\r\n").as_bytes())?
                    }
                }
            }
            "UID FETCH" | "FETCH" => {
                fetch(conn, store, selected.as_deref(), &text, &args)?;
                conn.send(&ok("Success"))?;
            }
            "IDLE" => {
                conn.send(b"+ idling\r\n")?;
                if conn.line()?.is_none() {
                    return Ok(());
                }
                announce(conn, store, selected.as_deref(), &mut told)?;
                conn.send(&ok("IDLE terminated (Success)"))?;
            }
            "NOOP" => {
                announce(conn, store, selected.as_deref(), &mut told)?;
                conn.send(&ok("Success"))?;
            }
            "LOGOUT" => {
                conn.send(b"* BYE LOGOUT Requested\r\n")?;
                conn.send(&ok("73 good day (Success)"))?;
                return Ok(());
            }
            _ => conn.send(&ok("Success"))?,
        }
    }
    Ok(())
}

/// Sends `* n EXISTS` when the selected folder holds more messages than the client was told.
fn announce(
    conn: &mut Conn,
    store: &Mutex<Store>,
    folder: Option<&str>,
    told: &mut usize,
) -> std::io::Result<()> {
    let n = lock(store)
        .messages
        .iter()
        .filter(|m| Some(m.folder) == folder)
        .count();
    if n != *told {
        *told = n;
        conn.send(format!("* {n} EXISTS\r\n").as_bytes())?;
    }
    Ok(())
}

/// The UIDs of the selected folder matching every criterion; `None` for one it does not know.
fn search(store: &Mutex<Store>, folder: Option<&str>, args: &[String]) -> Option<Vec<u32>> {
    let s = lock(store);
    let max = s.next_uid.saturating_sub(1);
    let mut hits: Vec<&Message> = s
        .messages
        .iter()
        .filter(|m| Some(m.folder) == folder || folder == Some(ALL_MAIL))
        .collect();
    let mut i = 0;
    while i < args.len() {
        let key = args[i].to_ascii_uppercase();
        match key.as_str() {
            "UID" => {
                let set = args.get(i + 1)?.clone();
                hits.retain(|m| in_set(&set, m.uid, max));
                i += 2;
            }
            // Every message here is recent.
            "SINCE" => i += 2,
            "X-GM-RAW" => {
                let query = args.get(i + 1)?;
                let mut kept = Vec::new();
                for m in hits {
                    if gmail_raw(query, m)? && Instant::now() >= m.searchable_at {
                        kept.push(m);
                    }
                }
                hits = kept;
                i += 2;
            }
            // Not indexed reliably at Gmail: finds nothing here (module doc).
            "HEADER" => {
                hits.clear();
                i += 3;
            }
            _ => return None,
        }
    }
    Some(hits.iter().map(|m| m.uid).collect())
}

/// Answers a FETCH of `UID`, `RFC822.SIZE`, `BODY.PEEK[HEADER.FIELDS (…)]<…>`,
/// `BODY.PEEK[HEADER]<…>` or `BODY.PEEK[]<…>`, the way Gmail (and Dovecot) write them.
fn fetch(
    conn: &mut Conn,
    store: &Mutex<Store>,
    folder: Option<&str>,
    line: &str,
    args: &[String],
) -> std::io::Result<()> {
    let set = args.first().cloned().unwrap_or_default();
    let upper = line.to_ascii_uppercase();
    let fields: Option<Vec<String>> = upper.split_once("HEADER.FIELDS (").map(|(_, rest)| {
        rest.split(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect()
    });
    let s = lock(store);
    let max = s.next_uid.saturating_sub(1);
    for (seq, m) in s
        .messages
        .iter()
        .filter(|m| Some(m.folder) == folder)
        .enumerate()
    {
        if !in_set(&set, m.uid, max) {
            continue;
        }
        let (item, data) = match &fields {
            Some(names) => (
                format!(
                    "BODY[HEADER.FIELDS ({})]<0>",
                    names.join(" ").to_ascii_uppercase()
                ),
                header_fields(&m.raw, names),
            ),
            None if upper.contains("BODY.PEEK[HEADER]") => (
                "BODY[HEADER]<0>".to_string(),
                header_section(&m.raw).to_vec(),
            ),
            None => ("BODY[]<0>".to_string(), m.raw.clone()),
        };
        let mut out = format!(
            "* {} FETCH (UID {} RFC822.SIZE {} {item} {{{}}}\r\n",
            seq + 1,
            m.uid,
            m.raw.len(),
            data.len()
        )
        .into_bytes();
        out.extend_from_slice(&data);
        out.extend_from_slice(b")\r\n");
        conn.send(&out)?;
    }
    Ok(())
}

#[test]
fn the_stand_in_reads_gmail_searches_as_documented() {
    let m = Message {
        uid: 3,
        folder: INBOX,
        category: Some("promotions"),
        message_id: "a@x.test".into(),
        raw: Vec::new(),
        searchable_at: Instant::now(),
    };
    assert_eq!(gmail_raw("rfc822msgid:a@x.test", &m), Some(true));
    assert_eq!(
        gmail_raw("rfc822msgid:b@x.test OR rfc822msgid:a@x.test", &m),
        Some(true)
    );
    assert_eq!(gmail_raw("category:primary", &m), Some(false));
    assert_eq!(gmail_raw("category:promotions", &m), Some(true));
    assert_eq!(gmail_raw("has:attachment", &m), None);
    assert_eq!(
        words(r#"a5 UID SEARCH UID 3:* X-GM-RAW "rfc822msgid:a@x.test""#),
        [
            "a5",
            "UID",
            "SEARCH",
            "UID",
            "3:*",
            "X-GM-RAW",
            "rfc822msgid:a@x.test"
        ]
    );
    assert!(in_set("1:3,7", 7, 9) && in_set("5:*", 9, 9) && !in_set("1:3", 4, 9));
}
