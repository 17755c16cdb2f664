//! Opens an IMAP session: TCP, then implicit TLS (RFC 8314) or STARTTLS (RFC 3501 §6.2.1),
//! the greeting, and LOGIN — or, with `auth = "oauth2"`, AUTHENTICATE (RFC 3501 §6.2.2) with
//! OAUTHBEARER (RFC 7628) or XOAUTH2, whichever the pre-login CAPABILITY offers (OAUTHBEARER
//! first). Every byte from the server passes the [`guard`](super::guard) from the first one
//! on, so even a greeting cannot make us allocate what it announces.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use async_imap::Session;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ImapError;
use super::guard::{Budget, Guarded, Limits};
use crate::config::{Login, OAuth2, Secret, Seed, TlsMode};
use crate::oauth::sasl::{self, Mechanism};

/// A plain or TLS stream, so STARTTLS and implicit TLS share one session type.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The session type of every watched folder.
pub type ImapSession = Session<Guarded<ImapStream>>;

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

/// Where a connection's trusted roots come from, and which version of that file: a CA file
/// that changed (modification time or size) is read again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RootsKey {
    ca_file: Option<std::path::PathBuf>,
    version: Option<(std::time::SystemTime, u64)>,
}

/// One TLS client configuration per root source, shared by every connection: the roots are
/// read once instead of per connection (the system store is hundreds of certificates), and
/// the shared session cache lets a reconnect resume its TLS session.
fn tls_config(seed: &Seed, server: &str) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    static CONFIGS: OnceLock<Mutex<HashMap<RootsKey, Arc<rustls::ClientConfig>>>> = OnceLock::new();
    let key = RootsKey {
        ca_file: seed.ca_file.clone(),
        version: seed.ca_file.as_ref().and_then(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        }),
    };
    let configs = CONFIGS.get_or_init(Default::default);
    let cached = configs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    if let Some(config) = cached {
        return Ok(config);
    }
    let config = build_tls_config(seed, server)?;
    let mut configs = configs.lock().unwrap_or_else(|p| p.into_inner());
    // An older version of the same file is not needed any more.
    configs.retain(|k, _| k.ca_file != key.ca_file);
    configs.insert(key, config.clone());
    Ok(config)
}

fn build_tls_config(seed: &Seed, server: &str) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    let tls_err = |detail: String| ImapError::tls(server, detail);
    let mut roots = rustls::RootCertStore::empty();
    match &seed.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| tls_err(format!("cannot read CA file {}: {e}", path.display())))?;
            let mut added = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert
                    .map_err(|e| tls_err(format!("bad certificate in {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_err(format!("bad certificate in {}: {e}", path.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(tls_err(format!(
                    "no certificate in CA file {}",
                    path.display()
                )));
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
    .map_err(|e| tls_err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn tls_wrap(seed: &Seed, server: &str, tcp: TcpStream) -> Result<ImapStream, ImapError> {
    let config = tls_config(seed, server)?;
    let name = rustls::pki_types::ServerName::try_from(seed.host.clone())
        .map_err(|e| ImapError::tls(server, format!("invalid server name {:?}: {e}", seed.host)))?;
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
                ImapError::network(
                    server,
                    format!("connection closed during the TLS handshake: {e}"),
                )
            } else {
                ImapError::tls(server, e.to_string())
            }
        })?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// Connects, secures (implicit TLS or STARTTLS), reads the greeting and logs in. The caller
/// bounds the whole of it in time; `budget` is the connection's answer budget.
pub async fn login(seed: &Seed, budget: &Budget) -> Result<ImapSession, ImapError> {
    let server = format!("{}:{}", seed.host, seed.port);
    let tcp = TcpStream::connect((seed.host.as_str(), seed.port))
        .await
        .map_err(|e| ImapError::network(&server, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    budget.reset();
    let guarded = match seed.tls {
        TlsMode::Tls => Guarded::new(
            tls_wrap(seed, &server, tcp).await?,
            Limits::PROBE,
            budget.clone(),
        ),
        TlsMode::Starttls => {
            let mut client =
                async_imap::Client::new(Guarded::new(tcp, Limits::PROBE, budget.clone()));
            read_greeting(&mut client, &server).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| ImapError::tls(&server, format!("STARTTLS refused: {e}")))?;
            let (tcp, scanner, budget) = client.into_inner().into_parts();
            Guarded::wrap(tls_wrap(seed, &server, tcp).await?, scanner, budget)
        }
        TlsMode::None => Guarded::new(ImapStream::Plain(tcp), Limits::PROBE, budget.clone()),
    };
    let mut client = async_imap::Client::new(guarded);
    if seed.tls != TlsMode::Starttls {
        read_greeting(&mut client, &server).await?;
    }
    budget.reset();
    let password = match &seed.login {
        Login::Password(p) => p,
        Login::OAuth2(o) => return oauth_login(client, seed, o, &server, budget).await,
    };
    client
        .login(&seed.username, password.expose())
        .await
        .map_err(|(e, _)| match e {
            // The server's text may echo the user name: it is not kept.
            async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                ImapError::auth(&server, "the server refused the user name or password")
            }
            other => super::error::classify(&server, "login", other),
        })
}

/// AUTHENTICATE with an OAuth2 access token. A token the server refuses is forgotten, so the
/// next attempt asks the token endpoint for a new one.
async fn oauth_login(
    mut client: async_imap::Client<Guarded<ImapStream>>,
    seed: &Seed,
    oauth: &OAuth2,
    server: &str,
    budget: &Budget,
) -> Result<ImapSession, ImapError> {
    let token = crate::oauth::access_token(oauth)
        .await
        .map_err(|e| ImapError::auth(server, format!("no OAuth2 access token: {e}")))?;
    let offered = auth_mechanisms(&mut client, server).await?;
    let mechanism = sasl::choose(offered.iter().map(String::as_str)).ok_or_else(|| {
        ImapError::auth(server, "the server offers neither OAUTHBEARER nor XOAUTH2")
    })?;
    let response = sasl::initial_response(mechanism, &seed.username, &seed.host, seed.port, &token);
    budget.reset();
    match client
        .authenticate(mechanism.name(), SaslExchange::new(mechanism, response))
        .await
    {
        Ok(session) => Ok(session),
        Err((async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_), _)) => {
            crate::oauth::forget_access_token(oauth).await;
            Err(ImapError::auth(
                server,
                format!(
                    "the server refused the OAuth2 access token ({})",
                    mechanism.name()
                ),
            ))
        }
        Err((other, _)) => Err(super::error::classify(server, "AUTHENTICATE", other)),
    }
}

/// The SASL mechanisms the server offers before login (`AUTH=` capabilities, RFC 3501 §6.1.1).
async fn auth_mechanisms(
    client: &mut async_imap::Client<Guarded<ImapStream>>,
    server: &str,
) -> Result<Vec<String>, ImapError> {
    use async_imap::imap_proto::{Capability, Response};
    use async_imap::types::UnsolicitedResponse;
    // The untagged CAPABILITY answer reaches us through async-imap's channel of unsolicited
    // answers (the only way a pre-login client hands them out); a handful fit.
    let (tx, rx) = async_channel::bounded(16);
    client
        .run_command_and_check_ok("CAPABILITY", Some(tx))
        .await
        .map_err(|e| super::error::classify(server, "CAPABILITY", e))?;
    let mut mechanisms = Vec::new();
    while let Ok(answer) = rx.try_recv() {
        if let UnsolicitedResponse::Other(data) = answer
            && let Response::Capabilities(caps) = data.parsed()
        {
            for c in caps {
                if let Capability::Auth(m) = c {
                    mechanisms.push(m.to_string());
                }
            }
        }
    }
    Ok(mechanisms)
}

/// One SASL exchange: the initial response to the first (empty) challenge, then the
/// mechanism's acknowledgement of an error challenge, after which the server says NO.
struct SaslExchange {
    first: Option<Secret>,
    mechanism: Mechanism,
}

impl SaslExchange {
    fn new(mechanism: Mechanism, first: Secret) -> Self {
        SaslExchange {
            first: Some(first),
            mechanism,
        }
    }
}

impl async_imap::Authenticator for SaslExchange {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        match self.first.take() {
            Some(r) => r.expose().as_bytes().to_vec(),
            None => self.mechanism.error_ack().to_vec(),
        }
    }
}

async fn read_greeting<T>(client: &mut async_imap::Client<T>, server: &str) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::network(
            server,
            "connection closed before the greeting",
        )),
        Err(e) => Err(super::error::classify_io(server, "greeting", e)),
    }
}
