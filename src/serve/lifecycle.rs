//! The lifecycle endpoint `POST /-/reload`: off unless `run --web.enable-lifecycle`, as
//! Prometheus keeps its own behind `--web.enable-lifecycle`; SIGHUP always reloads.
//!
//! When enabled, only a request made on purpose is served, never one a web page makes a
//! browser send (the endpoint has no other protection when basic auth is off):
//!
//! - a `Host` that is not the listen address (an IP literal with the listen port; `localhost`
//!   when listening on loopback or on every address) nor on `--web.allowed-host` is refused:
//!   that is what DNS rebinding looks like (a page of `evil.example` whose name now resolves to
//!   127.0.0.1 sends `Host: evil.example:9925`);
//! - an `Origin` header (browsers send one with every POST, RFC 6454 §7.3, fetch standard)
//!   whose host is not allowed in the same way, or `null`, is refused;
//! - `Sec-Fetch-Site` other than `same-origin` or `none` (Fetch Metadata: `cross-site`,
//!   `same-site`) is refused;
//! - the content types an HTML form or a `no-cors` fetch can send without a CORS preflight
//!   (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`) are refused:
//!   the endpoint reads no body, so `curl -X POST` and scripts send none.
//!
//! A refused request gets 403 with a fixed text; the reason goes to the log.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

/// The lifecycle settings of `run`.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// `--web.enable-lifecycle`.
    pub enabled: bool,
    /// `probe.listen`.
    pub listen: SocketAddr,
    /// `--web.allowed-host`: host names (optionally `name:port`) a request may name besides
    /// the listen address, e.g. a Kubernetes Service name or a reverse proxy's name.
    pub allowed_hosts: Vec<String>,
}

/// Why a lifecycle request was refused (the log's `reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no Host header")]
    NoHost,
    #[error("Host {0:?} is neither the listen address nor an allowed host (DNS rebinding?)")]
    Host(String),
    #[error("Origin {0:?} is not the listen address nor an allowed host (cross-site request)")]
    Origin(String),
    #[error("Sec-Fetch-Site {0:?} (cross-site request)")]
    FetchSite(String),
    #[error(
        "Content-Type {0:?} is what an HTML form or a no-cors fetch sends (cross-site request)"
    )]
    ContentType(String),
}

impl Refusal {
    /// A fixed label for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoHost => "no_host",
            Refusal::Host(_) => "host",
            Refusal::Origin(_) => "origin",
            Refusal::FetchSite(_) => "sec_fetch_site",
            Refusal::ContentType(_) => "content_type",
        }
    }
}

impl Lifecycle {
    /// Whether `headers` may ask for a lifecycle action (see the module doc).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let text = |name: &header::HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        if let Some(site) = text(&SEC_FETCH_SITE) {
            let site = site.trim().to_ascii_lowercase();
            if site != "same-origin" && site != "none" {
                return Err(Refusal::FetchSite(site));
            }
        }
        if let Some(origin) = text(&header::ORIGIN) {
            let authority = origin
                .trim()
                .strip_prefix("http://")
                .or_else(|| origin.trim().strip_prefix("https://"));
            match authority {
                Some(a) if !a.contains('/') && self.host_allowed(a) => {}
                _ => return Err(Refusal::Origin(origin)),
            }
        }
        if let Some(kind) = text(&header::CONTENT_TYPE) {
            let essence = kind
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if matches!(
                essence.as_str(),
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            ) {
                return Err(Refusal::ContentType(kind));
            }
        }
        let Some(host) = text(&header::HOST) else {
            return Err(Refusal::NoHost);
        };
        if !self.host_allowed(host.trim()) {
            return Err(Refusal::Host(host));
        }
        Ok(())
    }

    /// Whether an authority (`host[:port]`, IPv6 in brackets) names this server.
    fn host_allowed(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let listen_ip = self.listen.ip();
        let on_listen_port = port == Some(self.listen.port());
        if let Ok(ip) = host.parse::<IpAddr>() {
            // An IP literal cannot be rebound; it must still be this listener's.
            return on_listen_port && (listen_ip.is_unspecified() || ip == listen_ip);
        }
        if host == "localhost"
            && on_listen_port
            && (listen_ip.is_loopback() || listen_ip.is_unspecified())
        {
            return true;
        }
        self.allowed_hosts.iter().any(|allowed| {
            let Some((name, allowed_port)) = split_authority(allowed) else {
                return false;
            };
            name.trim_end_matches('.').eq_ignore_ascii_case(&host)
                && (allowed_port.is_none() || allowed_port == port)
        })
    }
}

const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// `host[:port]` → (host, port); IPv6 literals in brackets lose them. `None` when malformed.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['@', '/', ' ']) {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((ip, port));
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address is not a valid Host.
        Some((h, _)) if h.contains(':') => None,
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests;
