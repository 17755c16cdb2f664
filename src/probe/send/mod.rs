//! Sends a probe through the route's real SMTP server (lettre, RFC 5321) and records what it
//! answered. The route's `timeout` bounds the whole exchange — connect, TLS, every reply, DATA
//! — since lettre's own timeout covers only the connect: a server that never speaks, drips
//! bytes or stalls after DATA ends in `timeout`, never in a round that does not end.
//!
//! Where the server offers DSN (RFC 3461), the probe asks for failure and delay notices with
//! the headers only (`RET=HDRS`, `NOTIFY=FAILURE,DELAY`) and names itself in a signed
//! `ENVID=mc1.<probe id>.<mac>` ([`crate::probe::token::envelope_id`]), so a bounce proves
//! itself ours even when the bouncer returns no headers, and nobody without the token key can
//! write one we would believe.
//!
//! Several probes of a round follow one another over one SMTP session (`probes_per_session`,
//! 20 by default), as a mail server's own client does: the first opens it and proves the
//! connection, STARTTLS and AUTH; the next ones send MAIL / RCPT / DATA on it while they come
//! within [`SESSION_IDLE`] of each other. A session idle longer is closed with QUIT, so every
//! round (and every confirmation after a pause) starts on a fresh one. A kept session the
//! server closed meanwhile costs nothing: if MAIL is not accepted on it, nothing was sent, and
//! the probe opens a fresh session (still one probe, never a retry of an accepted message).
//!
//! With `auth = "oauth2"` the route authenticates with an OAuth2 access token: OAUTHBEARER
//! (RFC 7628) when the EHLO offers it, else XOAUTH2. lettre speaks only XOAUTH2, so the AUTH
//! exchange (RFC 4954 §4, initial response on the AUTH line) is written here for both.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials as SmtpCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, RcptParameter,
};
use lettre::transport::smtp::response::Response;

use base64::Engine;

use crate::config::{Login, OAuth2, Route, Secret, TlsMode};
use crate::oauth::sasl::{self, Mechanism as SaslMechanism};
use crate::outcome::{SendOutcome, SmtpSession};
use crate::probe::compose::ProbeMessage;
use crate::truncate;

/// Why a send failed. `reason()` is the fixed label used in metrics.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("TLS setup for {host} failed: {reason}")]
    TlsSetup { host: String, reason: String },
    #[error("invalid envelope: {0}")]
    Envelope(String),
    #[error("SMTP server {server} rejected the credentials: {detail}")]
    Auth { server: String, detail: String },
    #[error("TLS with {server} failed: {detail}")]
    Tls { server: String, detail: String },
    #[error("SMTP server {server} timed out: {detail}")]
    Timeout { server: String, detail: String },
    #[error("SMTP server {server} answered with a temporary failure: {detail}")]
    Transient {
        server: String,
        code: Option<u16>,
        detail: String,
    },
    #[error("SMTP server {server} rejected the message: {detail}")]
    Permanent {
        server: String,
        code: Option<u16>,
        detail: String,
    },
    #[error("cannot talk to SMTP server {server}: {detail}")]
    Network { server: String, detail: String },
}

impl SendError {
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::CaFile { .. } | SendError::TlsSetup { .. } | SendError::Envelope(_) => {
                "config"
            }
            SendError::Auth { .. } => "auth",
            SendError::Tls { .. } => "tls",
            SendError::Timeout { .. } => "timeout",
            SendError::Transient { .. } => "smtp_transient",
            SendError::Permanent { .. } => "smtp_permanent",
            SendError::Network { .. } => "network",
        }
    }

    /// The SMTP reply code, when the server gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Transient { code, .. } | SendError::Permanent { code, .. } => *code,
            _ => None,
        }
    }
}

/// How a route's SMTP server is reached.
#[derive(Clone)]
enum Security {
    None,
    /// TLS from the first byte (RFC 8314).
    Implicit(TlsParameters),
    /// STARTTLS, required (RFC 3207).
    StartTls(TlsParameters),
}

/// Whether the server offers DSN, learnt from its EHLO on the first send.
const DSN_UNKNOWN: u8 = 0;
const DSN_YES: u8 = 1;
const DSN_NO: u8 = 2;

/// A kept session is used for the next probe only if that comes this soon after the last
/// message on it; else it is closed. Probes of a large round follow one another within
/// milliseconds, rounds and confirmations are seconds apart: each starts on a fresh session.
pub const SESSION_IDLE: Duration = Duration::from_secs(2);

/// How long the QUIT of a session we no longer need may take.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One route's SMTP client, built once and reused for every probe.
pub struct Sender {
    server: String,
    host: String,
    port: u16,
    /// The deadline of one whole send.
    deadline: Duration,
    security: Security,
    hello: ClientId,
    auth: Option<SmtpAuth>,
    dsn: AtomicU8,
    /// Probes that may follow one another over one session (1: none follows).
    per_session: u32,
    /// Sessions kept for the next probe, after their last accepted message.
    kept: Arc<Mutex<Vec<Kept>>>,
}

/// An SMTP session after an accepted message, ready for the next MAIL (RFC 5321 §4.1.4).
struct Kept {
    conn: AsyncSmtpConnection,
    /// Messages accepted on it so far.
    messages: u32,
    since: Instant,
}

/// How a route logs in.
enum SmtpAuth {
    Password(SmtpCredentials),
    /// The user the token is for, and the client that gets the token (before each send).
    OAuth2 {
        username: String,
        oauth: Box<OAuth2>,
    },
}

impl Sender {
    pub fn new(route: &Route) -> Result<Self, SendError> {
        let server = format!("{}:{}", route.host, route.port);
        let security = match route.tls {
            TlsMode::None => Security::None,
            mode => {
                let mut params = TlsParameters::builder(route.host.clone());
                if let Some(ca) = &route.ca_file {
                    let pem = std::fs::read(ca).map_err(|e| SendError::CaFile {
                        path: ca.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| SendError::CaFile {
                        path: ca.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| SendError::TlsSetup {
                    host: route.host.clone(),
                    reason: e.to_string(),
                })?;
                if mode == TlsMode::Tls {
                    Security::Implicit(params)
                } else {
                    Security::StartTls(params)
                }
            }
        };
        let hello = match &route.helo {
            Some(helo) => ClientId::Domain(helo.clone()),
            None => ClientId::default(),
        };
        let auth = route.auth.as_ref().map(|auth| match &auth.login {
            Login::Password(p) => SmtpAuth::Password(SmtpCredentials::new(
                auth.username.clone(),
                p.expose().to_string(),
            )),
            Login::OAuth2(o) => SmtpAuth::OAuth2 {
                username: auth.username.clone(),
                oauth: o.clone(),
            },
        });
        Ok(Sender {
            server,
            host: route.host.clone(),
            port: route.port,
            deadline: route.timeout,
            security,
            hello,
            auth,
            dsn: AtomicU8::new(DSN_UNKNOWN),
            per_session: route.probes_per_session.max(1),
            kept: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Sends one message; never retries once the server may have taken it (a retry would be a
    /// second probe). Only a kept session that did not accept MAIL gives way to a fresh one.
    pub async fn send(&self, message: &ProbeMessage) -> Result<SendOutcome, SendError> {
        let from: Address = message
            .envelope_from
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Envelope(e.to_string()))?;
        let to: Address = message
            .recipient
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Envelope(e.to_string()))?;
        let started = Instant::now();
        let sent = tokio::time::timeout(self.deadline, self.authorized_send(from, to, message))
            .await
            .map_err(|_| SendError::Timeout {
                server: self.server.clone(),
                detail: format!(
                    "no complete answer within the route timeout of {} s",
                    self.deadline.as_secs_f64()
                ),
            })?;
        match sent {
            Ok((response, session)) => {
                let text: Vec<&str> = response.message().collect();
                Ok(SendOutcome {
                    code: code_of(&response.code().to_string()).unwrap_or(250),
                    queue_id: queue_id(&text.join(" ")),
                    duration_seconds: started.elapsed().as_secs_f64(),
                    session,
                })
            }
            Err(e) => {
                if let (SendError::Auth { .. }, Some(SmtpAuth::OAuth2 { oauth, .. })) =
                    (&e, &self.auth)
                {
                    // A refused token is not offered again: the next send gets a new one.
                    crate::oauth::forget_access_token(oauth).await;
                }
                Err(e)
            }
        }
    }

    /// Sends on a kept session if there is one that MAIL is accepted on; else gets the OAuth2
    /// access token (if the route uses one) and runs the transaction on a fresh session.
    async fn authorized_send(
        &self,
        from: Address,
        to: Address,
        message: &ProbeMessage,
    ) -> Result<(Response, SmtpSession), SendError> {
        while let Some(kept) = self.take_kept() {
            match self.on_kept(kept, &from, &to, message).await {
                Followed::Sent(response) => return Ok((response, SmtpSession::Reused)),
                Followed::Refused(e) => return Err(self.classify(e)),
                // Nothing was sent on it: the next kept session, or a fresh one.
                Followed::Unusable => continue,
            }
        }
        let token = match &self.auth {
            Some(SmtpAuth::OAuth2 { oauth, .. }) => Some(
                crate::oauth::access_token(oauth)
                    .await
                    .map_err(|e| SendError::Auth {
                        server: self.server.clone(),
                        detail: truncate::cap(&format!("no OAuth2 access token: {e}")),
                    })?,
            ),
            _ => None,
        };
        match self.transaction(from, to, message, token.as_ref()).await {
            Ok(response) => Ok((response, SmtpSession::Fresh)),
            Err(Step::Smtp(e)) => Err(self.classify(e)),
            Err(Step::NoOAuthMechanism) => Err(SendError::Auth {
                server: self.server.clone(),
                detail: "the server offers neither OAUTHBEARER nor XOAUTH2".to_string(),
            }),
        }
    }

    /// Connect, secure, authenticate, MAIL / RCPT / DATA on a fresh session, which is then kept
    /// for the next probe ([`Self::keep`]) or closed.
    async fn transaction(
        &self,
        from: Address,
        to: Address,
        message: &ProbeMessage,
        token: Option<&Secret>,
    ) -> Result<Response, Step> {
        let implicit = match &self.security {
            Security::Implicit(params) => Some(params.clone()),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.deadline),
            &self.hello,
            implicit,
            None,
        )
        .await?;
        if let Security::StartTls(params) = &self.security {
            conn.starttls(params.clone(), &self.hello).await?;
        }
        match (&self.auth, token) {
            (Some(SmtpAuth::Password(credentials)), _) => {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await?;
            }
            (Some(SmtpAuth::OAuth2 { username, .. }), Some(token)) => {
                self.oauth_auth(&mut conn, username, token).await?;
            }
            _ => {}
        }
        let dsn = self.offers_dsn(&mut conn).await?;
        conn.command(self.mail(&conn, from, message, dsn)).await?;
        let response = self.rest(&mut conn, to, message, dsn).await?;
        // The message is accepted: the session is kept for the next probe, or closed.
        self.keep(conn, 1);
        Ok(response)
    }

    /// The MAIL command: 8BITMIME for a non-ASCII message where offered, the DSN parameters.
    fn mail(
        &self,
        conn: &AsyncSmtpConnection,
        from: Address,
        message: &ProbeMessage,
        dsn: bool,
    ) -> Mail {
        let mut params = Vec::new();
        if !message.bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime)
        {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if dsn {
            params.extend(dsn_mail_parameters(&message.envelope_id));
        }
        Mail::new(Some(from), params)
    }

    /// RCPT and DATA, after the server accepted MAIL: the message's final reply.
    async fn rest(
        &self,
        conn: &mut AsyncSmtpConnection,
        to: Address,
        message: &ProbeMessage,
        dsn: bool,
    ) -> Result<Response, lettre::transport::smtp::Error> {
        let rcpt_params = if dsn {
            dsn_rcpt_parameters(&to)
        } else {
            Vec::new()
        };
        conn.command(Rcpt::new(to, rcpt_params)).await?;
        conn.command(Data).await?;
        conn.message(&message.bytes).await
    }

    /// The probe on a kept session. MAIL not accepted (the server closed the session while it
    /// waited, or answers differently now): nothing was sent, and the session is dropped.
    /// After MAIL, the server's answer is this probe's.
    async fn on_kept(
        &self,
        mut kept: Kept,
        from: &Address,
        to: &Address,
        message: &ProbeMessage,
    ) -> Followed {
        let dsn = self.dsn.load(Ordering::Relaxed) == DSN_YES;
        let mail = self.mail(&kept.conn, from.clone(), message, dsn);
        if let Err(e) = kept.conn.command(mail).await {
            tracing::debug!(server = %self.server, error = %e, "kept SMTP session unusable; opening a fresh one");
            close(kept.conn);
            return Followed::Unusable;
        }
        match self.rest(&mut kept.conn, to.clone(), message, dsn).await {
            Ok(response) => {
                self.keep(kept.conn, kept.messages + 1);
                Followed::Sent(response)
            }
            Err(e) => {
                close(kept.conn);
                Followed::Refused(e)
            }
        }
    }

    /// A kept session for the next probe: the most recently used one that is still young
    /// enough ([`SESSION_IDLE`]). Older ones are closed.
    fn take_kept(&self) -> Option<Kept> {
        close_kept(&self.kept, |k| k.idle_too_long() || k.conn.has_broken());
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// After an accepted message: keeps the session for the next probe while it may carry
    /// more, else closes it. A kept session nobody takes is closed once it has been idle for
    /// [`SESSION_IDLE`].
    fn keep(&self, conn: AsyncSmtpConnection, messages: u32) {
        if messages >= self.per_session {
            close(conn);
            return;
        }
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Kept {
                conn,
                messages,
                since: Instant::now(),
            });
        let kept = Arc::downgrade(&self.kept);
        tokio::spawn(async move {
            tokio::time::sleep(SESSION_IDLE).await;
            if let Some(kept) = kept.upgrade() {
                close_kept(&kept, Kept::idle_too_long);
            }
        });
    }

    /// AUTH with an OAuth2 bearer token (RFC 4954 §4 with RFC 7628 / XOAUTH2): the mechanism
    /// from the EHLO's AUTH line, the initial response on the AUTH line; an error challenge
    /// (334) is acknowledged so that the server ends the exchange with its failure reply.
    async fn oauth_auth(
        &self,
        conn: &mut AsyncSmtpConnection,
        username: &str,
        token: &Secret,
    ) -> Result<(), Step> {
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let offered = ehlo_auth_mechanisms(&ehlo);
        let mechanism =
            sasl::choose(offered.iter().map(String::as_str)).ok_or(Step::NoOAuthMechanism)?;
        let initial = sasl::initial_response(mechanism, username, &self.host, self.port, token);
        let reply = conn.command(AuthLine::initial(mechanism, &initial)).await?;
        if reply.code().to_string().starts_with("334") {
            conn.command(AuthLine::ack(mechanism)).await?;
        }
        Ok(())
    }

    /// Whether the server offers DSN. lettre's EHLO parser keeps only the extensions it uses,
    /// so the first send asks again and reads the keyword itself; the answer is remembered.
    async fn offers_dsn(
        &self,
        conn: &mut AsyncSmtpConnection,
    ) -> Result<bool, lettre::transport::smtp::Error> {
        match self.dsn.load(Ordering::Relaxed) {
            DSN_YES => return Ok(true),
            DSN_NO => return Ok(false),
            _ => {}
        }
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let offered = ehlo_offers(&ehlo, "DSN");
        self.dsn
            .store(if offered { DSN_YES } else { DSN_NO }, Ordering::Relaxed);
        Ok(offered)
    }

    fn classify(&self, e: lettre::transport::smtp::Error) -> SendError {
        let server = self.server.clone();
        let detail = truncate::cap(&error_chain(&e));
        let code = e.status().and_then(|c| code_of(&c.to_string()));
        // Map lettre's own classification (is_tls, is_timeout, ...) rather than matching strings.
        if e.is_tls() {
            SendError::Tls { server, detail }
        } else if e.is_timeout() {
            SendError::Timeout { server, detail }
        } else if matches!(code, Some(530 | 534 | 535 | 538 | 454))
            && detail.to_lowercase().contains("auth")
        {
            SendError::Auth { server, detail }
        } else if e.is_transient() {
            SendError::Transient {
                server,
                code,
                detail,
            }
        } else if e.is_permanent() {
            if matches!(code, Some(535 | 534 | 530)) {
                SendError::Auth { server, detail }
            } else {
                SendError::Permanent {
                    server,
                    code,
                    detail,
                }
            }
        } else {
            SendError::Network { server, detail }
        }
    }
}

impl Drop for Sender {
    /// A reload replaces the route's sender: its kept sessions end with QUIT too.
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        close_kept(&self.kept, |_| true);
    }
}

/// A probe on a kept session.
enum Followed {
    /// Accepted: the final reply.
    Sent(Response),
    /// The server took MAIL and then refused the probe (or the session failed after MAIL).
    Refused(lettre::transport::smtp::Error),
    /// MAIL was not accepted: nothing was sent on it.
    Unusable,
}

impl Kept {
    /// Idle longer than [`SESSION_IDLE`]: not for the next probe.
    fn idle_too_long(&self) -> bool {
        self.since.elapsed() >= SESSION_IDLE
    }
}

/// Closes the kept sessions `which` picks, each with [`close`].
fn close_kept(kept: &Mutex<Vec<Kept>>, which: impl Fn(&Kept) -> bool) {
    let gone: Vec<Kept> = kept
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extract_if(.., |k| which(k))
        .collect();
    for k in gone {
        close(k.conn);
    }
}

/// Ends a session we no longer need with QUIT, in the background, bounded.
fn close(mut conn: AsyncSmtpConnection) {
    tokio::spawn(async move {
        if tokio::time::timeout(QUIT_TIMEOUT, conn.quit())
            .await
            .is_err()
        {
            conn.abort().await;
        }
    });
}

/// Why a transaction stopped: what the SMTP server said, or no OAuth2 mechanism offered.
enum Step {
    Smtp(lettre::transport::smtp::Error),
    NoOAuthMechanism,
}

impl From<lettre::transport::smtp::Error> for Step {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Step::Smtp(e)
    }
}

/// An AUTH command line with its initial response, or the answer to a challenge; base64
/// (RFC 4954 §4). Its `Display` is what goes on the wire: it is never logged.
struct AuthLine(String);

impl AuthLine {
    fn initial(mechanism: SaslMechanism, response: &Secret) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD.encode(response.expose());
        AuthLine(format!("AUTH {} {b64}\r\n", mechanism.name()))
    }

    fn ack(mechanism: SaslMechanism) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD.encode(mechanism.error_ack());
        AuthLine(format!("{b64}\r\n"))
    }
}

impl std::fmt::Display for AuthLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SASL mechanisms of an EHLO reply's AUTH line (RFC 4954 §3; `AUTH=` is the old form).
fn ehlo_auth_mechanisms(ehlo: &Response) -> Vec<String> {
    ehlo.message()
        .skip(1)
        .filter_map(|line| {
            let (keyword, rest) = line.split_at(line.find([' ', '=']).unwrap_or(line.len()));
            keyword.eq_ignore_ascii_case("AUTH").then(|| {
                rest.trim_start_matches('=')
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
        })
        .flatten()
        .collect()
}

/// Whether an EHLO reply lists `keyword` (RFC 5321 §4.1.1.1: one extension per line, its
/// keyword first).
fn ehlo_offers(ehlo: &Response, keyword: &str) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
    })
}

/// `RET=HDRS ENVID=<envelope id>` (RFC 3461 §4.3, §4.4): bounces return only the headers, and
/// carry the signed envelope id as Original-Envelope-Id. It is hex digits and dots, valid
/// xtext as it is.
fn dsn_mail_parameters(envelope_id: &str) -> Vec<MailParameter> {
    vec![
        MailParameter::Other {
            keyword: "RET".to_string(),
            value: Some("HDRS".to_string()),
        },
        MailParameter::Other {
            keyword: "ENVID".to_string(),
            value: Some(envelope_id.to_string()),
        },
    ]
}

/// `NOTIFY=FAILURE,DELAY ORCPT=rfc822;<seed>` (RFC 3461 §4.1, §4.2): a notice when the probe
/// fails or is delayed, never when it is delivered.
fn dsn_rcpt_parameters(to: &Address) -> Vec<RcptParameter> {
    vec![
        RcptParameter::Other {
            keyword: "NOTIFY".to_string(),
            value: Some("FAILURE,DELAY".to_string()),
        },
        RcptParameter::Other {
            keyword: "ORCPT".to_string(),
            value: Some(format!("rfc822;{}", xtext(to.as_ref()))),
        },
    ]
}

/// xtext (RFC 3461 §4): `+`, `=`, controls and non-ASCII as `+HH`.
fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn code_of(text: &str) -> Option<u16> {
    text.get(..3)?.parse().ok()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Finds a queue id in a reply like "2.0.0 Ok: queued as 4BC1D2D8448" (Postfix),
/// "OK id=1abc-00" (Exim) or "Ok 0100018c..." (SES).
pub fn queue_id(reply: &str) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    for marker in ["queued as ", "id=", "queued as"] {
        if let Some(i) = lower.find(marker) {
            let rest = &reply[i + marker.len()..];
            let id: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
                .collect();
            if !id.is_empty() {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
