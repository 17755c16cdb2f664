//! What the hostile servers share: a CRLF line reader over any stream (SMTP RFC 5321 §2.3.8 and
//! IMAP RFC 3501 §2.2 are both line protocols), a record of what the client sent, and the
//! accept loop on an ephemeral loopback port.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::tls::Stream;

/// A client line longer than this is kept only in part (the length is still measured in full).
const KEEP_LINE: usize = 300;
/// A line is cut here, so a client that never ends its line cannot exhaust the test's memory.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// What the client sent: every line (shortened) and the longest line's length.
#[derive(Default)]
pub struct Record {
    lines: Mutex<Vec<String>>,
    longest: AtomicUsize,
    connections: AtomicUsize,
}

impl Record {
    pub fn note_line(&self, line: &[u8]) {
        self.longest.fetch_max(line.len(), Ordering::Relaxed);
        let mut shown = String::from_utf8_lossy(&line[..line.len().min(KEEP_LINE)]).into_owned();
        if line.len() > KEEP_LINE {
            shown.push_str(&format!("… ({} bytes)", line.len()));
        }
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(shown);
    }

    pub fn note_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The longest line received, in bytes without its CRLF.
    pub fn longest_line(&self) -> usize {
        self.longest.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether some received line contains `needle` (ASCII case-insensitive).
    pub fn saw(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_uppercase();
        self.lines()
            .iter()
            .any(|l| l.to_ascii_uppercase().contains(&needle))
    }

    /// Waits until some received line contains `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.saw(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The received lines, for failure messages.
    pub fn transcript(&self) -> String {
        let lines = self.lines();
        let skip = lines.len().saturating_sub(40);
        let mut out = format!(
            "{} connection(s), {} line(s), longest {} bytes; last lines:\n",
            self.connections(),
            lines.len(),
            self.longest_line()
        );
        for l in &lines[skip..] {
            out.push_str("  C: ");
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// One client connection, read line by line.
pub struct Conn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    record: Arc<Record>,
}

impl Conn {
    pub fn new(stream: Box<dyn Stream>, record: Arc<Record>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            record,
        }
    }

    /// The next line without its line end, recorded; `None` when the client closed.
    pub fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.record.note_line(&line);
                return Ok(Some(line));
            }
            if self.buf.len() >= MAX_LINE {
                let line = std::mem::take(&mut self.buf);
                self.record.note_line(&line);
                return Ok(Some(line));
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Exactly `n` bytes (a literal the client sends after a continuation).
    pub fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut chunk = [0u8; 16 * 1024];
        while self.buf.len() < n {
            let got = self.stream.read(&mut chunk)?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..got]);
        }
        Ok(self.buf.drain(..n).collect())
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data)?;
        self.stream.flush()
    }

    /// Reads and discards until the client goes away: a server that has stopped talking.
    pub fn hold(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        while matches!(self.stream.read(&mut chunk), Ok(n) if n > 0) {}
    }
}

/// Listens on 127.0.0.1 (never anything else) at an ephemeral port and serves every connection
/// on its own thread. The listener lives as long as the test binary; connections end when the
/// client goes away.
pub fn serve<F>(handle: F) -> u16
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    let handle = Arc::new(handle);
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let handle = handle.clone();
            thread::spawn(move || handle(tcp));
        }
    });
    port
}

/// A loopback port nobody listens on right now (for mailcanary's own HTTP listener).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
