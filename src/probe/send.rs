//! Sends a probe through the route's real SMTP server (lettre, RFC 5321) and records what it
//! answered. The route's `timeout` bounds the whole exchange — connect, TLS, every reply, DATA
//! — since lettre's own timeout covers only the connect: a server that never speaks, drips
//! bytes or stalls after DATA ends in `timeout`, never in a round that does not end.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials as SmtpCredentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncTransport, Tokio1Executor};

use crate::config::{Route, TlsMode};
use crate::probe::compose::ProbeMessage;
use crate::probe::server_text;

/// What the SMTP server said when it accepted the message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SendOutcome {
    pub code: u16,
    /// The server's queue id, when its reply names one ("queued as 4BC1D2").
    pub queue_id: Option<String>,
    pub duration_seconds: f64,
}

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

/// One route's SMTP client, built once and reused for every probe.
pub struct Sender {
    server: String,
    /// The deadline of one whole send.
    deadline: Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Sender {
    pub fn new(route: &Route) -> Result<Self, SendError> {
        let server = format!("{}:{}", route.host, route.port);
        let tls = match route.tls {
            TlsMode::None => Tls::None,
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
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(route.host.clone())
                .port(route.port)
                .tls(tls)
                .timeout(Some(route.timeout));
        if let Some(helo) = &route.helo {
            builder = builder.hello_name(ClientId::Domain(helo.clone()));
        }
        if let Some(auth) = &route.auth {
            builder = builder.credentials(SmtpCredentials::new(
                auth.username.clone(),
                auth.password.expose().to_string(),
            ));
        }
        Ok(Sender {
            server,
            deadline: route.timeout,
            transport: builder.build(),
        })
    }

    /// Sends one message; never retries (a retry would be a second probe).
    pub async fn send(&self, message: &ProbeMessage) -> Result<SendOutcome, SendError> {
        let from = message
            .envelope_from
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Envelope(e.to_string()))?;
        let to = message
            .recipient
            .parse()
            .map_err(|e: lettre::address::AddressError| SendError::Envelope(e.to_string()))?;
        let envelope =
            Envelope::new(Some(from), vec![to]).map_err(|e| SendError::Envelope(e.to_string()))?;
        let started = Instant::now();
        let sent = tokio::time::timeout(
            self.deadline,
            self.transport.send_raw(&envelope, &message.bytes),
        )
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
            Err(e) => Err(self.classify(e)),
        }
    }

    fn classify(&self, e: lettre::transport::smtp::Error) -> SendError {
        let server = self.server.clone();
        let detail = server_text::cap(&error_chain(&e));
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
