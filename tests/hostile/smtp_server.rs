//! Tiny SMTP servers (RFC 5321): one well-behaved sink, and the ways a submission server can
//! stall a client that trusts it. Plain TCP only: the routes use `tls = "none"` (allowed without
//! a username), and the stalled-TLS route needs no certificate — nobody answers its ClientHello.

use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::tls::Stream;
use crate::wire::{self, Conn, Record};

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Accepts everything and answers properly (RFC 5321 §4.3.2), so the send succeeds.
    Sink,
    /// A sink that takes this long to accept the message after the final dot.
    SlowAccept(Duration),
    /// Accepts the TCP connection and never says a word: no greeting (RFC 5321 §4.3.1).
    Silent,
    /// Sends the greeting one byte per second, forever; the line never ends.
    DripGreeting,
    /// Greets and answers EHLO, MAIL and RCPT, then never answers DATA.
    StallAfterData,
}

pub struct SmtpServer {
    pub port: u16,
    pub record: Arc<Record>,
}

pub fn start(mode: Mode) -> SmtpServer {
    let record = Arc::new(Record::default());
    let rec = record.clone();
    let port = wire::serve(move |tcp: TcpStream| {
        rec.note_connection();
        let _ = tcp.set_nodelay(true);
        let mut conn = Conn::new(Box::new(tcp) as Box<dyn Stream>, rec.clone());
        let _ = session(mode, &mut conn);
    });
    SmtpServer { port, record }
}

fn session(mode: Mode, conn: &mut Conn) -> std::io::Result<()> {
    match mode {
        Mode::Silent => {
            conn.hold();
            return Ok(());
        }
        Mode::DripGreeting => {
            for b in b"220 hostile.test ESMTP "
                .iter()
                .chain(std::iter::repeat(&b'x'))
            {
                conn.send(&[*b])?;
                thread::sleep(Duration::from_secs(1));
            }
            return Ok(());
        }
        Mode::Sink | Mode::SlowAccept(_) | Mode::StallAfterData => {}
    }
    conn.send(b"220 hostile.test ESMTP\r\n")?;
    while let Some(line) = conn.line()? {
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("");
        match verb {
            "EHLO" => conn.send(b"250-hostile.test\r\n250 8BITMIME\r\n")?,
            "HELO" => conn.send(b"250 hostile.test\r\n")?,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => conn.send(b"250 2.0.0 Ok\r\n")?,
            "DATA" if matches!(mode, Mode::StallAfterData) => {
                conn.hold();
                return Ok(());
            }
            "DATA" => {
                conn.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                // RFC 5321 §4.1.1.4: the data ends with a line holding a single dot.
                while let Some(l) = conn.line()? {
                    if l == b"." {
                        break;
                    }
                }
                if let Mode::SlowAccept(delay) = mode {
                    thread::sleep(delay);
                }
                conn.send(b"250 2.0.0 Ok: queued as HOSTILE1\r\n")?;
            }
            "QUIT" => {
                conn.send(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => conn.send(b"502 5.5.2 Command not recognized\r\n")?,
        }
    }
    Ok(())
}
