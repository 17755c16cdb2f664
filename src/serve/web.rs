//! What stands between a client and the handlers of [`crate::serve::http`]: the options of
//! `run` for the HTTP side (`--web.config.file`, `--web.enable-lifecycle`,
//! `--web.allowed-host`), basic auth ([`crate::serve::basic_auth`]) on every endpoint, and the
//! security headers of every response, 401 and 404 included:
//!
//! - `Content-Security-Policy: default-src 'none'` plus the status page's one inline style
//!   block by its hash (CSP Level 3 hash source): the page loads nothing and runs no script;
//!   `frame-ancestors 'none'` (no framing, so no clickjacking), `base-uri` and `form-action`
//!   `'none'`;
//! - `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (for browsers without
//!   `frame-ancestors`) and `Referrer-Policy: no-referrer`.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::serve::basic_auth::{self, BasicAuth};
use crate::serve::http::{self, AppState};
use crate::serve::web_config::WebConfig;

/// The HTTP options of `run`.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// `--web.config.file`, validated: TLS and basic auth.
    pub config: Option<WebConfig>,
    /// `--web.enable-lifecycle`: serve `POST /-/reload`.
    pub enable_lifecycle: bool,
    /// `--web.allowed-host`: names a lifecycle request's `Host` may have besides the listen
    /// address.
    pub allowed_hosts: Vec<String>,
}

impl Web {
    /// The rustls config when the web config asks for TLS; its files are read again here (they
    /// may have changed since the config was validated), so this can fail: then `run` stops
    /// rather than serve plain HTTP.
    pub fn tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        let Some(settings) = self.config.as_ref().and_then(|c| c.tls.as_ref()) else {
            return Ok(None);
        };
        crate::serve::tls::server_config(settings)
            .map(Some)
            .map_err(|problems| {
                problems
                    .iter()
                    .map(|p| format!("tls_server_config.{}: {}", p.key, p.problem))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }
}

/// The endpoints behind basic auth (when users are configured) and the security headers.
pub fn app(state: Arc<AppState>, auth: Option<Arc<BasicAuth>>) -> Router {
    let router = http::router(state);
    let router = match auth {
        Some(auth) => router.layer(middleware::from_fn_with_state(auth, basic_auth::require)),
        None => router,
    };
    router.layer(middleware::from_fn(security_headers))
}

/// The `Content-Security-Policy` of every response.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(crate::serve::status_page::STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests;
