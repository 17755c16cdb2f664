//! Reads a seed mailbox over IMAP (async-imap): one connection per watched folder, kept across
//! rounds, reconnected on demand. It only ever *reads* (BODY.PEEK, so \Seen is untouched) and
//! cleans up single UIDs the caller has proven to be ours.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::Session;
use async_imap::types::NameAttribute;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{Cleanup, Seed, TlsMode};
use crate::probe::token;

/// Why reading a mailbox failed. `reason()` is the fixed metric label.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to IMAP server {server}: {detail}")]
    Network { server: String, detail: String },
    #[error("TLS with IMAP server {server} failed: {detail}")]
    Tls { server: String, detail: String },
    #[error("IMAP server {server} rejected the login for {user}: {detail}")]
    Auth {
        server: String,
        user: String,
        detail: String,
    },
    #[error("IMAP server {server} did not answer within {seconds} s")]
    Timeout { server: String, seconds: u64 },
    #[error("IMAP server {server}: {detail}")]
    Protocol { server: String, detail: String },
}

impl ImapError {
    pub fn reason(&self) -> &'static str {
        match self {
            ImapError::Network { .. } => "network",
            ImapError::Tls { .. } => "tls",
            ImapError::Auth { .. } => "auth",
            ImapError::Timeout { .. } => "timeout",
            ImapError::Protocol { .. } => "protocol",
        }
    }
}

/// A plain or TLS stream, so STARTTLS and implicit TLS share one session type.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type ImapSession = Session<ImapStream>;

/// Maps an async-imap error to our kinds: a dropped connection is `network`, a server that
/// answered NO/BAD or something unparsable is `protocol`.
fn classify(server: &str, context: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    match e {
        E::Io(_) | E::ConnectionLost => ImapError::Network {
            server: server.to_string(),
            detail: format!("{context}: {e}"),
        },
        other => ImapError::Protocol {
            server: server.to_string(),
            detail: format!("{context}: {other}"),
        },
    }
}

/// How long one IMAP command may take before the connection counts as broken.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A message of possibly ours, as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// One connection with one folder selected.
pub struct FolderConn {
    seed: Seed,
    server: String,
    pub folder: String,
    session: Option<ImapSession>,
    uid_validity: Option<u32>,
    /// The next UID not yet searched: new messages get higher UIDs (RFC 3501 §2.3.1.1).
    watermark: Option<u32>,
    seen: HashSet<u32>,
    pub commands: u64,
}

impl FolderConn {
    pub fn new(seed: &Seed, folder: &str) -> Self {
        FolderConn {
            seed: seed.clone(),
            server: format!("{}:{}", seed.host, seed.port),
            folder: folder.to_string(),
            session: None,
            uid_validity: None,
            watermark: None,
            seen: HashSet::new(),
            commands: 0,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.session.is_some()
    }

    fn timeout_err(&self) -> ImapError {
        ImapError::Timeout {
            server: self.server.clone(),
            seconds: COMMAND_TIMEOUT.as_secs(),
        }
    }

    /// Drops the connection; the next call reconnects.
    pub fn reset(&mut self) {
        self.session = None;
    }

    async fn ensure(&mut self) -> Result<(), ImapError> {
        if self.session.is_some() {
            return Ok(());
        }
        let mut session = tokio::time::timeout(COMMAND_TIMEOUT, login(&self.seed))
            .await
            .map_err(|_| self.timeout_err())??;
        let mailbox = tokio::time::timeout(COMMAND_TIMEOUT, session.select(&self.folder))
            .await
            .map_err(|_| self.timeout_err())?
            .map_err(|e| {
                classify(
                    &self.server,
                    &format!("cannot select folder {:?}", self.folder),
                    e,
                )
            })?;
        self.commands += 4;
        if mailbox.uid_validity != self.uid_validity {
            // A new UIDVALIDITY means old UIDs mean nothing (RFC 3501 §2.3.1.1).
            self.uid_validity = mailbox.uid_validity;
            self.watermark = None;
            self.seen.clear();
        }
        self.session = Some(session);
        Ok(())
    }

    /// Looks for new messages carrying our token header and fetches each once (BODY.PEEK[]).
    /// The first check after (re)connecting searches everything since `since_days` ago.
    pub async fn check(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        noop: bool,
    ) -> Result<Vec<Fetched>, ImapError> {
        let result = self.check_inner(since, noop).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    async fn check_inner(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        noop: bool,
    ) -> Result<Vec<Fetched>, ImapError> {
        self.ensure().await?;
        let query = match self.watermark {
            Some(w) => format!("UID {w}:* HEADER {} \"v1.\"", token::HEADER),
            None => format!(
                "SINCE {} HEADER {} \"v1.\"",
                since.format("%d-%b-%Y"),
                token::HEADER
            ),
        };
        let timeout = self.timeout_err();
        let server = self.server.clone();
        let err = |e: async_imap::error::Error| classify(&server, "search", e);
        let session = self.session.as_mut().ok_or_else(|| timeout.clone())?;
        if noop {
            // NOOP lets the server announce what arrived since the last command (RFC 3501 §6.1.2).
            tokio::time::timeout(COMMAND_TIMEOUT, session.noop())
                .await
                .map_err(|_| timeout.clone())?
                .map_err(err)?;
            self.commands += 1;
        }
        let session = self.session.as_mut().ok_or_else(|| timeout.clone())?;
        let uids = tokio::time::timeout(COMMAND_TIMEOUT, session.uid_search(&query))
            .await
            .map_err(|_| timeout.clone())?
            .map_err(err)?;
        self.commands += 1;
        while self
            .session
            .as_mut()
            .map(|s| s.unsolicited_responses.try_recv().is_ok())
            .unwrap_or(false)
        {}
        let floor = self.watermark.unwrap_or(0);
        let mut new: Vec<u32> = uids
            .into_iter()
            .filter(|u| *u >= floor && !self.seen.contains(u))
            .collect();
        new.sort_unstable();
        if let Some(max) = new.last() {
            self.watermark = Some(max + 1);
        } else if self.watermark.is_none() {
            self.watermark = Some(1);
        }
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let set = new
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let session = self.session.as_mut().ok_or_else(|| timeout.clone())?;
        let fetched = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let stream = session.uid_fetch(&set, "(UID BODY.PEEK[])").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await
        .map_err(|_| timeout.clone())?
        .map_err(err)?;
        self.commands += 1;
        let mut out = Vec::new();
        for f in fetched {
            if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                self.seen.insert(uid);
                out.push(Fetched {
                    uid,
                    raw: body.to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Waits up to `max` for the server to announce a change (IDLE, RFC 2177), for the long tail
    /// of a missing message without polling a real provider.
    pub async fn idle(&mut self, max: Duration) -> Result<(), ImapError> {
        self.ensure().await?;
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let mut handle = session.idle();
        let server = self.server.clone();
        let proto = |e: async_imap::error::Error| classify(&server, "IDLE", e);
        handle.init().await.map_err(proto)?;
        let (wait, _stop) = handle.wait_with_timeout(max);
        wait.await.map_err(proto)?;
        let session = tokio::time::timeout(COMMAND_TIMEOUT, handle.done())
            .await
            .map_err(|_| self.timeout_err())?
            .map_err(proto)?;
        self.commands += 2;
        self.session = Some(session);
        Ok(())
    }

    /// Removes or moves one message that the caller has verified is ours.
    pub async fn cleanup(&mut self, uid: u32, how: &Cleanup) -> Result<(), ImapError> {
        if *how == Cleanup::Keep {
            return Ok(());
        }
        self.ensure().await?;
        let timeout = self.timeout_err();
        let server = self.server.clone();
        let session = self.session.as_mut().ok_or(timeout.clone())?;
        let caps = tokio::time::timeout(COMMAND_TIMEOUT, session.capabilities())
            .await
            .map_err(|_| timeout.clone())?
            .map_err(|e| ImapError::Protocol {
                server: server.clone(),
                detail: e.to_string(),
            })?;
        let uid_s = uid.to_string();
        let res: Result<(), async_imap::error::Error> =
            tokio::time::timeout(COMMAND_TIMEOUT, async {
                match how {
                    Cleanup::Move(folder) if caps.has_str("MOVE") => {
                        session.uid_mv(&uid_s, folder).await
                    }
                    Cleanup::Move(folder) => {
                        session.uid_copy(&uid_s, folder).await?;
                        delete_uid(session, &uid_s, caps.has_str("UIDPLUS")).await
                    }
                    _ => delete_uid(session, &uid_s, caps.has_str("UIDPLUS")).await,
                }
            })
            .await
            .map_err(|_| timeout.clone())?;
        self.commands += 3;
        res.map_err(|e| ImapError::Protocol {
            server,
            detail: format!("cleanup of UID {uid}: {e}"),
        })
    }

    /// Finds the spam folder: configured, else the one with SPECIAL-USE `\Junk` (RFC 6154),
    /// else the provider preset's, else a folder literally named Junk/Spam.
    pub async fn find_spam_folder(&mut self) -> Result<Option<String>, ImapError> {
        if let Some(f) = &self.seed.spam_folder {
            return Ok(Some(f.clone()));
        }
        self.ensure().await?;
        let timeout = self.timeout_err();
        let session = self.session.as_mut().ok_or(timeout.clone())?;
        let names = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let stream = session.list(Some(""), Some("*")).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await
        .map_err(|_| timeout)?
        .map_err(|e| classify(&self.server, "LIST", e))?;
        self.commands += 1;
        if let Some(n) = names
            .iter()
            .find(|n| n.attributes().contains(&NameAttribute::Junk))
        {
            return Ok(Some(n.name().to_string()));
        }
        if let Some(p) = &self.seed.preset_spam_folder {
            return Ok(Some(p.clone()));
        }
        Ok(names
            .iter()
            .map(|n| n.name().to_string())
            .find(|n| ["junk", "spam", "bulk"].contains(&n.to_ascii_lowercase().as_str())))
    }

    /// Logs out politely (used at shutdown).
    pub async fn logout(&mut self) {
        if let Some(mut s) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.logout()).await;
        }
    }
}

async fn delete_uid(
    session: &mut ImapSession,
    uid: &str,
    uidplus: bool,
) -> Result<(), async_imap::error::Error> {
    let stream = session.uid_store(uid, "+FLAGS.SILENT (\\Deleted)").await?;
    stream.try_collect::<Vec<_>>().await?;
    if uidplus {
        // UID EXPUNGE removes only this UID (RFC 4315 §2.1). A plain EXPUNGE would also remove
        // messages the user had marked \Deleted, so without UIDPLUS we leave it flagged.
        let stream = session.uid_expunge(uid).await?;
        stream.try_collect::<Vec<_>>().await?;
    }
    Ok(())
}

fn tls_config(seed: &Seed) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &seed.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("no certificate in CA file {}", path.display()));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn tls_wrap(seed: &Seed, server: &str, tcp: TcpStream) -> Result<ImapStream, ImapError> {
    let tls_err = |detail: String| ImapError::Tls {
        server: server.to_string(),
        detail,
    };
    let config = tls_config(seed).map_err(tls_err)?;
    let name = rustls::pki_types::ServerName::try_from(seed.host.clone())
        .map_err(|e| tls_err(format!("invalid server name {:?}: {e}", seed.host)))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            // A peer that hangs up during the handshake is a network problem, not a TLS one.
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
            ) {
                ImapError::Network {
                    server: server.to_string(),
                    detail: format!("connection closed during the TLS handshake: {e}"),
                }
            } else {
                tls_err(e.to_string())
            }
        })?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// Connects, secures (implicit TLS or STARTTLS) and logs in.
pub async fn login(seed: &Seed) -> Result<ImapSession, ImapError> {
    let server = format!("{}:{}", seed.host, seed.port);
    let net = |e: std::io::Error| ImapError::Network {
        server: server.clone(),
        detail: e.to_string(),
    };
    let tcp = TcpStream::connect((seed.host.as_str(), seed.port))
        .await
        .map_err(net)?;
    let _ = tcp.set_nodelay(true);
    let stream = match seed.tls {
        TlsMode::Tls => tls_wrap(seed, &server, tcp).await?,
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            read_greeting(&mut client, &server).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| ImapError::Tls {
                    server: server.clone(),
                    detail: format!("STARTTLS refused: {e}"),
                })?;
            tls_wrap(seed, &server, client.into_inner()).await?
        }
        TlsMode::None => ImapStream::Plain(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    if seed.tls != TlsMode::Starttls {
        read_greeting(&mut client, &server).await?;
    }
    client
        .login(&seed.username, seed.password.expose())
        .await
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => ImapError::Auth {
                server: server.clone(),
                user: seed.username.clone(),
                detail: e.to_string(),
            },
            other => classify(&server, "login", other),
        })
}

async fn read_greeting<T>(client: &mut async_imap::Client<T>, server: &str) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Network {
            server: server.to_string(),
            detail: "connection closed before the greeting".to_string(),
        }),
        Err(e) => Err(ImapError::Network {
            server: server.to_string(),
            detail: e.to_string(),
        }),
    }
}
