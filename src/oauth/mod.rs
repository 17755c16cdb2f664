//! OAuth2 access tokens for IMAP and SMTP logins (`auth = "oauth2"`).
//!
//! A mailbox's or route's token comes from its token endpoint by the refresh-token grant
//! (RFC 6749 §6: Gmail, Outlook.com, Microsoft 365 delegated) or the client-credentials grant
//! (§4.4: Microsoft 365 app-only). It is cached in memory (in the config's
//! [`TokenCache`](crate::config::TokenCache), which every clone shares, and which one account's
//! logins share in a running setup: [`caches`]) and refreshed at half its life (each round asks), so a token that
//! expires mid-run is replaced before anyone presents it. A refresh token the server rotates is written back to
//! its `refresh_token_file` at once ([`persist`]). [`device`] is `oauth login`'s RFC 8628 device
//! authorization grant, [`sasl`] the OAUTHBEARER / XOAUTH2 framing.
//!
//! Every failure is an `auth` failure for the mailbox or route (`reason()`), whatever went
//! wrong on the way to the token endpoint: without a token there is no login, and a mailbox
//! that cannot be logged into makes its probes `unknown`, never `missing`. Tokens never appear
//! in errors, logs, metrics or `Debug` output.

pub mod caches;
pub mod device;
pub mod endpoint;
pub mod persist;
pub mod sasl;

use std::time::{Duration, Instant, SystemTime};

use crate::config::oauth2::{AccessToken, TokenState};
use crate::config::{Grant, OAuth2, Secret, SecretSource};
use endpoint::{Answer, TokenResponse};

/// The lifetime assumed when a token response does not say (RFC 6749 §5.1 makes `expires_in`
/// optional; one hour is what Google and Microsoft give).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Why no access token could be had. Every variant is an `auth` failure (see the module doc).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// The endpoint answered with an OAuth2 error (RFC 6749 §5.2), e.g. `invalid_grant` for a
    /// revoked or expired refresh token.
    #[error("token endpoint {url} refused: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        url: String,
        error: String,
        description: Option<String>,
    },
    /// The endpoint could not be reached, or did not answer in time.
    #[error("token endpoint {url}: {detail}")]
    Network { url: String, detail: String },
    /// The endpoint answered something that is not an OAuth2 answer.
    #[error("token endpoint {url}: {detail}")]
    Protocol { url: String, detail: String },
    /// The refresh-token grant has no refresh token yet.
    #[error("no refresh token yet: run `mailcanary oauth login` for it")]
    NoRefreshToken,
}

impl OAuthError {
    /// Always `auth`: see the module doc.
    pub fn reason(&self) -> &'static str {
        "auth"
    }

    pub(crate) fn network(url: &str, detail: impl Into<String>) -> Self {
        OAuthError::Network {
            url: url.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn protocol(url: &str, detail: impl Into<String>) -> Self {
        OAuthError::Protocol {
            url: url.to_string(),
            detail: detail.into(),
        }
    }
}

/// A live access token for `oauth`: the cached one while it is fresh, else a new one from the
/// token endpoint (one request at a time per client; others wait for it).
pub async fn access_token(oauth: &OAuth2) -> Result<Secret, OAuthError> {
    let mut state = oauth.cache.state.lock().await;
    if let Some(access) = &state.access
        && Instant::now() < access.refresh_at
    {
        return Ok(access.token.clone());
    }
    let response = request_token(oauth, &state).await?;
    store(oauth, &mut state, response);
    match &state.access {
        Some(a) => Ok(a.token.clone()),
        None => Err(OAuthError::protocol(&oauth.token_url, "no access token")),
    }
}

/// Forgets the cached access token (the server refused it): the next login gets a new one.
pub async fn forget_access_token(oauth: &OAuth2) {
    oauth.cache.state.lock().await.access = None;
}

/// One token request by the configured grant.
async fn request_token(oauth: &OAuth2, state: &TokenState) -> Result<TokenResponse, OAuthError> {
    let refresh;
    let mut form: Vec<(&str, &str)> = Vec::new();
    match oauth.grant {
        Grant::RefreshToken => {
            refresh = state
                .refresh_token
                .as_ref()
                .ok_or(OAuthError::NoRefreshToken)?
                .clone();
            form.push(("grant_type", "refresh_token"));
            form.push(("refresh_token", refresh.expose()));
        }
        Grant::ClientCredentials => form.push(("grant_type", "client_credentials")),
    }
    form.push(("scope", &oauth.scope));
    client_auth(oauth, &mut form);
    let (status, body) = endpoint::post_form(&oauth.token_url, &form).await?;
    match endpoint::token_answer(&oauth.token_url, status, &body)? {
        Answer::Ok(t) => Ok(t),
        Answer::Error(e) => Err(OAuthError::Refused {
            url: oauth.token_url.clone(),
            error: e.error,
            description: e.description,
        }),
    }
}

/// Client authentication in the request body (RFC 6749 §2.3.1 `client_secret_post`, what
/// Google's and Microsoft's endpoints document); a public client sends its id alone.
pub(crate) fn client_auth<'a>(oauth: &'a OAuth2, form: &mut Vec<(&'a str, &'a str)>) {
    form.push(("client_id", &oauth.client_id));
    if let Some(secret) = &oauth.client_secret {
        form.push(("client_secret", secret.expose()));
    }
}

/// Caches a new access token (and a rotated refresh token, written back to its file).
fn store(oauth: &OAuth2, state: &mut TokenState, response: TokenResponse) {
    let lifetime = response
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME);
    let now = Instant::now();
    let expires_at = SystemTime::now() + lifetime;
    state.access = Some(AccessToken {
        token: response.access_token,
        refresh_at: now + lifetime.saturating_sub(margin(lifetime)),
        expires_at,
    });
    if let Ok(mut e) = oauth.cache.expiry.lock() {
        *e = Some(expires_at);
    }
    if let Some(new) = response.refresh_token
        && state.refresh_token.as_ref() != Some(&new)
    {
        save_rotated(oauth, &new);
        state.refresh_token = Some(new);
    }
}

/// How long before the expiry a token is replaced: half its life. Every round asks for the
/// token, so a healthy login's token always has more than half its life minus one round left
/// (about 25 minutes for Google's and Microsoft's hour); a refresh that starts failing leaves
/// that long to notice it (alert `MailcanaryOAuthRefreshFailing`) before logins fail.
pub fn margin(lifetime: Duration) -> Duration {
    lifetime / 2
}

/// Writes a rotated refresh token back where it came from, when that is a file. From an
/// environment variable it can only be kept in memory: the log says so once per rotation.
fn save_rotated(oauth: &OAuth2, token: &Secret) {
    match &oauth.refresh_token_source {
        Some(SecretSource::File(path)) => match persist::write_token_file(path, token.expose()) {
            Ok(()) => tracing::info!(
                file = %path.display(),
                "the token endpoint rotated the refresh token: written back"
            ),
            Err(e) => tracing::error!(
                file = %path.display(),
                error = %e,
                "the token endpoint rotated the refresh token and it cannot be written back: \
                 it is used until this process ends, then `mailcanary oauth login` is needed"
            ),
        },
        Some(SecretSource::Env(name)) => tracing::warn!(
            variable = %name,
            "the token endpoint rotated the refresh token; from an environment variable it is \
             kept in memory only (use refresh_token_file to keep it across restarts)"
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests;
