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
//! With `auth = "oauth2"` the route authenticates with an OAuth2 access token: OAUTHBEARER
//! (RFC 7628) when the EHLO offers it, else XOAUTH2. lettre speaks only XOAUTH2, so the AUTH
//! exchange (RFC 4954 §4, initial response on the AUTH line) is written here for both.

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU8, Ordering};

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
use crate::outcome::SendOutcome;
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
        })
    }

    /// Sends one message; never retries (a retry would be a second probe).
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
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                Ok(SendOutcome {
                    code: code_of(&response.code().to_string()).unwrap_or(250),
                    queue_id: queue_id(&text.join(" ")),
                    duration_seconds: started.elapsed().as_secs_f64(),
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

    /// Gets the OAuth2 access token (if the route uses one), then runs the transaction.
    async fn authorized_send(
        &self,
        from: Address,
        to: Address,
        message: &ProbeMessage,
    ) -> Result<Response, SendError> {
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
            Ok(response) => Ok(response),
            Err(Step::Smtp(e)) => Err(self.classify(e)),
            Err(Step::NoOAuthMechanism) => Err(SendError::Auth {
                server: self.server.clone(),
                detail: "the server offers neither OAUTHBEARER nor XOAUTH2".to_string(),
            }),
        }
    }

    /// Connect, secure, authenticate, MAIL / RCPT / DATA, QUIT: one SMTP transaction.
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
        let mut mail_params = Vec::new();
        let mut rcpt_params = Vec::new();
        if !message.bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime)
        {
            mail_params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if dsn {
            mail_params.extend(dsn_mail_parameters(&message.envelope_id));
            rcpt_params.extend(dsn_rcpt_parameters(&to));
        }
        conn.command(Mail::new(Some(from), mail_params)).await?;
        conn.command(Rcpt::new(to, rcpt_params)).await?;
        conn.command(Data).await?;
        let response = conn.message(&message.bytes).await?;
        // The message is accepted; a failed QUIT changes nothing about that.
        let _ = conn.quit().await;
        Ok(response)
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
mod tests {
    use super::*;

    #[test]
    fn xtext_escapes_plus_equals_and_controls() {
        assert_eq!(xtext("seed1@seed.test"), "seed1@seed.test");
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    }

    #[test]
    fn dsn_is_read_from_the_ehlo_keywords() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
        let reply = |lines: &[&str]| {
            Response::new(
                Code::new(
                    Severity::PositiveCompletion,
                    Category::MailSystem,
                    Detail::Zero,
                ),
                lines.iter().map(|l| l.to_string()).collect(),
            )
        };
        assert!(ehlo_offers(
            &reply(&["mail.sender.test", "PIPELINING", "DSN", "SMTPUTF8"]),
            "DSN"
        ));
        assert!(!ehlo_offers(
            &reply(&["mail.sender.test", "PIPELINING", "8BITMIME"]),
            "DSN"
        ));
        // The greeting line names the host, not an extension.
        assert!(!ehlo_offers(&reply(&["DSN"]), "DSN"));
        assert_eq!(
            ehlo_auth_mechanisms(&reply(&[
                "mail.sender.test",
                "PIPELINING",
                "AUTH OAUTHBEARER XOAUTH2",
                "AUTH=PLAIN",
                "AUTHX FOO",
            ])),
            vec!["OAUTHBEARER", "XOAUTH2", "PLAIN"]
        );
        assert!(ehlo_auth_mechanisms(&reply(&["AUTH PLAIN"])).is_empty());
    }

    #[test]
    fn auth_lines_carry_the_base64_initial_response() {
        let line = AuthLine::initial(
            SaslMechanism::XOAuth2,
            &Secret::new("user=u\x01auth=Bearer t\x01\x01"),
        );
        assert_eq!(
            line.to_string(),
            "AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n"
        );
        assert_eq!(
            AuthLine::ack(SaslMechanism::OAuthBearer).to_string(),
            "AQ==\r\n"
        );
        assert_eq!(AuthLine::ack(SaslMechanism::XOAuth2).to_string(), "\r\n");
    }

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id("2.0.0 Ok: queued as DE304D8448").as_deref(),
            Some("DE304D8448")
        );
        assert_eq!(
            queue_id("OK id=1rF2aB-000Abc-3x").as_deref(),
            Some("1rF2aB-000Abc-3x")
        );
        assert_eq!(queue_id("2.0.0 OK  1700000000 x"), None);
    }
}
