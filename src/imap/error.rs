//! Why reading a mailbox failed ([`ImapError`], its fixed `reason()` the metric label) and how
//! the errors of async-imap and of the socket map onto it.

use std::time::Duration;

use crate::truncate;

/// Why reading a mailbox failed. `reason()` is the fixed metric label. Details are server
/// text, capped in length (see [`crate::truncate`]); they never carry the user name or password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
    /// No TCP connection, or the connection dropped.
    #[error("cannot connect to IMAP server {server}: {detail}")]
    Network { server: String, detail: String },
    /// The TLS handshake or certificate check failed.
    #[error("TLS with IMAP server {server} failed: {detail}")]
    Tls { server: String, detail: String },
    /// The server refused the login.
    #[error("IMAP server {server} rejected the login: {detail}")]
    Auth { server: String, detail: String },
    /// The server did not answer before the deadline.
    #[error("IMAP server {server} did not answer within {seconds} s")]
    Timeout { server: String, seconds: u64 },
    /// The server answered NO/BAD, something unparsable, or more than we accept.
    #[error("IMAP server {server}: {detail}")]
    Protocol { server: String, detail: String },
    /// The server throttles this account (Gmail's `[THROTTLED]`, exceeded bandwidth or command
    /// limits, too many connections): we back off.
    #[error("IMAP server {server} throttles this account: {detail}")]
    Throttled { server: String, detail: String },
}

impl ImapError {
    pub fn reason(&self) -> &'static str {
        match self {
            ImapError::Network { .. } => "network",
            ImapError::Tls { .. } => "tls",
            ImapError::Auth { .. } => "auth",
            ImapError::Timeout { .. } => "timeout",
            ImapError::Protocol { .. } => "protocol",
            ImapError::Throttled { .. } => "throttled",
        }
    }

    pub(crate) fn network(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Network {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn tls(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Tls {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn auth(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Auth {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(crate) fn protocol(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Protocol {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(super) fn throttled(server: &str, detail: impl AsRef<str>) -> Self {
        ImapError::Throttled {
            server: server.to_string(),
            detail: truncate::cap(detail.as_ref()),
        }
    }

    pub(super) fn timeout(server: &str, limit: Duration) -> Self {
        ImapError::Timeout {
            server: server.to_string(),
            seconds: limit.as_secs(),
        }
    }
}

/// An I/O error: what the guard refused and what async-imap could not parse (both reach us
/// as I/O errors of kind `InvalidData` / `Other`) are `protocol`; the rest is `network`.
pub(crate) fn classify_io(server: &str, context: &str, e: std::io::Error) -> ImapError {
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => {
            ImapError::protocol(server, format!("{context}: {e}"))
        }
        _ => ImapError::network(server, format!("{context}: {e}")),
    }
}

/// Maps an async-imap error to our kinds.
pub(crate) fn classify(server: &str, context: &str, e: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error as E;
    match e {
        E::Io(io) => classify_io(server, context, io),
        E::ConnectionLost => ImapError::network(server, format!("{context}: connection lost")),
        other => ImapError::protocol(server, format!("{context}: {other}")),
    }
}
