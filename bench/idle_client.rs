//! A bare IMAP IDLE client (RFC 2177), the baseline for `bench/detection-lag`.
//!
//! It logs in once, selects one folder and stays in IDLE. Every time the server announces new
//! messages (`* n EXISTS`) it notes the time, leaves IDLE, fetches the headers of the announced
//! messages (sequence numbers up to `n` only, so a message is never credited to a notification
//! that came before it) and goes back to IDLE. One JSON object per line on standard output:
//!
//! ```text
//! {"event":"ready","at":1795843410.51}
//! {"event":"exists","n":7,"at":1795843410.98,"via":"idle"}
//! {"event":"message","seq":7,"uid":31,"message_id":"<...>","exists_at":...,"fetched_at":...}
//! ```
//!
//! `via` is `idle` for a notification that ended an IDLE wait and `unsolicited` for one that
//! arrived while we were busy with a FETCH (timed when we read it). It stops after `--seconds`,
//! or on SIGTERM/SIGINT, and then prints `{"event":"stop","commands":N,...}`.
//!
//! ```text
//! cargo run --release --example idle_client -- --user seed23 \
//!     --password-file /var/lib/mailcanary-lab/secrets/imap-password \
//!     --ca-file /var/lib/mailcanary-lab/ca/ca.pem
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use clap::Parser;
use futures::TryStreamExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Parser)]
#[command(about = "Bare IMAP IDLE client: logs when the server announces new messages")]
struct Args {
    /// IMAP server address (implicit TLS).
    #[arg(long, default_value = "127.0.0.3")]
    host: String,
    #[arg(long, default_value_t = 993)]
    port: u16,
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(long)]
    ca_file: PathBuf,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password_file: PathBuf,
    #[arg(long, default_value = "INBOX")]
    folder: String,
    /// Stop after this many seconds (default: run until SIGTERM/SIGINT).
    #[arg(long)]
    seconds: Option<u64>,
}

type Session = async_imap::Session<TlsStream<TcpStream>>;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Prints one JSON line and flushes it, so a reader sees each event as it happens.
fn emit(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

async fn connect(args: &Args) -> Result<Session> {
    let pem = std::fs::read(&args.ca_file)
        .with_context(|| format!("reading {}", args.ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect((args.host.as_str(), args.port)).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from(args.host.clone())?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let mut client = async_imap::Client::new(tls);
    if client.read_response().await?.is_none() {
        bail!("connection closed before the greeting");
    }
    let password = std::fs::read_to_string(&args.password_file)
        .with_context(|| format!("reading {}", args.password_file.display()))?;
    client
        .login(&args.user, password.trim())
        .await
        .map_err(|(e, _)| e)
        .context("login")
}

/// Sequence-number bookkeeping: which messages have been announced and which fetched.
struct Watch {
    /// Messages fetched so far are 1..=fetched (sequence numbers).
    fetched: u32,
    commands: u64,
    notifications: u64,
    messages: u64,
}

impl Watch {
    /// `* n EXPUNGE` shifts the sequence numbers above n down by one (RFC 3501 §7.4.1).
    fn expunged(&mut self, seq: u32) {
        if seq <= self.fetched {
            self.fetched -= 1;
        }
    }

    /// Fetches the messages announced by `* n EXISTS` at `at` that we have not fetched yet.
    async fn announced(&mut self, session: &mut Session, n: u32, at: f64, via: &str) -> Result<()> {
        self.notifications += 1;
        emit(serde_json::json!({"event": "exists", "n": n, "at": at, "via": via}));
        if n <= self.fetched {
            return Ok(());
        }
        let set = format!("{}:{}", self.fetched + 1, n);
        let fetched: Vec<_> = session
            .fetch(&set, "(UID BODY.PEEK[HEADER])")
            .await?
            .try_collect()
            .await?;
        self.commands += 1;
        let fetched_at = now();
        for f in &fetched {
            let header = String::from_utf8_lossy(f.header().unwrap_or_default());
            let message_id = header
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .map(|l| l["message-id:".len()..].trim().to_string());
            self.messages += 1;
            emit(serde_json::json!({
                "event": "message", "seq": f.message, "uid": f.uid, "message_id": message_id,
                "exists_at": at, "fetched_at": fetched_at,
            }));
        }
        self.fetched = n;
        Ok(())
    }

    /// Handles what the server said while we were not in IDLE (during FETCH or DONE).
    async fn drain(&mut self, session: &mut Session) -> Result<()> {
        let mut pending = Vec::new();
        while let Ok(u) = session.unsolicited_responses.try_recv() {
            pending.push(u);
        }
        for u in pending {
            match u {
                UnsolicitedResponse::Exists(n) => {
                    self.announced(session, n, now(), "unsolicited").await?
                }
                UnsolicitedResponse::Expunge(seq) => self.expunged(seq),
                _ => {}
            }
        }
        Ok(())
    }
}

async fn watch(args: &Args, stop_at: Option<tokio::time::Instant>) -> Result<()> {
    let mut session = connect(args).await?;
    let mailbox = session.select(&args.folder).await?;
    let mut w = Watch {
        fetched: mailbox.exists,
        commands: 2,
        notifications: 0,
        messages: 0,
    };
    emit(serde_json::json!({"event": "ready", "at": now(), "exists": mailbox.exists}));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        w.drain(&mut session).await?;
        let mut idle = session.idle();
        idle.init().await?;
        // Stay well under the 30-minute inactivity limit (RFC 2177 §3).
        let mut max = Duration::from_secs(25 * 60);
        if let Some(at) = stop_at {
            max = max.min(at.saturating_duration_since(tokio::time::Instant::now()));
        }
        let (wait, interrupt) = idle.wait_with_timeout(max);
        let result = tokio::select! {
            r = wait => Some(r?),
            _ = term.recv() => None,
            _ = tokio::signal::ctrl_c() => None,
        };
        let at = now();
        drop(interrupt);
        session = idle.done().await?;
        w.commands += 2; // IDLE and DONE
        match result {
            Some(IdleResponse::NewData(data)) => match data.parsed() {
                Response::MailboxData(MailboxDatum::Exists(n)) => {
                    let n = *n;
                    w.announced(&mut session, n, at, "idle").await?
                }
                Response::Expunge(seq) => w.expunged(*seq),
                _ => {}
            },
            Some(IdleResponse::Timeout) | Some(IdleResponse::ManualInterrupt) => {}
            None => break,
        }
        if stop_at.is_some_and(|s| tokio::time::Instant::now() >= s) {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
    emit(serde_json::json!({
        "event": "stop", "at": now(), "commands": w.commands + 1,
        "notifications": w.notifications, "messages": w.messages,
    }));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stop_at = args
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    watch(&args, stop_at).await
}
