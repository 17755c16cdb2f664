//! The device authorization grant (RFC 8628), how `mailcanary oauth login` gets a seed's first
//! refresh token: ask the device authorization endpoint for a user code (§3.1, §3.2), show the
//! verification URL and the code to a person, then poll the token endpoint (§3.4) until they
//! approve, honouring `authorization_pending` (wait, ask again), `slow_down` (add 5 s to the
//! interval, §3.5), `expired_token` and `access_denied` (give up), and the code's own expiry.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::endpoint::{self, Answer, TokenResponse};
use super::{OAuthError, client_auth};
use crate::config::{OAuth2, Secret};

/// RFC 8628 §3.2: the polling interval when the server names none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What the device authorization endpoint answered (§3.2).
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// How long the codes are valid.
    pub expires_in: Duration,
    /// How long to wait between two token requests.
    pub interval: Duration,
}

#[derive(Deserialize)]
struct RawDevice {
    device_code: Option<String>,
    user_code: Option<String>,
    verification_uri: Option<String>,
    // Google's endpoint writes `verification_url` (its documentation, "OAuth 2.0 for TV and
    // Limited-Input Device Applications").
    verification_url: Option<String>,
    verification_uri_complete: Option<String>,
    expires_in: Option<serde_json::Value>,
    interval: Option<serde_json::Value>,
}

/// Why the device flow ended without a token.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// `access_denied`: the person declined.
    #[error("the authorization request was denied")]
    Denied,
    /// `expired_token`, or the code's lifetime passed: start again.
    #[error("the user code expired before it was approved; run the login again")]
    Expired,
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

/// How the polling backs off; the RFC's 5 s, except in tests.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Added to the interval on every `slow_down` (RFC 8628 §3.5: 5 seconds).
    pub slow_down_step: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            slow_down_step: Duration::from_secs(5),
        }
    }
}

/// Starts the flow: the device and user codes for `oauth`'s client and scope.
pub async fn authorize(oauth: &OAuth2) -> Result<DeviceAuthorization, OAuthError> {
    let url = oauth.device_authorization_url.as_deref().ok_or_else(|| {
        OAuthError::protocol(
            &oauth.token_url,
            "no device_authorization_url (set it in [oauth2])",
        )
    })?;
    let mut form = vec![("scope", oauth.scope.as_str())];
    client_auth(oauth, &mut form);
    let (status, body) = endpoint::post_form(url, &form).await?;
    if status != 200 {
        let e = endpoint::error_answer(url, status, &body)?;
        return Err(OAuthError::Refused {
            url: url.to_string(),
            error: e.error,
            description: e.description,
        });
    }
    device_answer(url, &body)
}

/// Reads a device authorization response (RFC 8628 §3.2).
pub fn device_answer(url: &str, body: &[u8]) -> Result<DeviceAuthorization, OAuthError> {
    let raw: RawDevice = serde_json::from_slice(body).map_err(|e| {
        OAuthError::protocol(url, format!("not a device authorization response: {e}"))
    })?;
    let missing = |field: &str| OAuthError::protocol(url, format!("answer without {field}"));
    Ok(DeviceAuthorization {
        device_code: Secret::new(raw.device_code.ok_or_else(|| missing("device_code"))?),
        user_code: raw.user_code.ok_or_else(|| missing("user_code"))?,
        verification_uri: raw
            .verification_uri
            .or(raw.verification_url)
            .ok_or_else(|| missing("verification_uri"))?,
        verification_uri_complete: raw.verification_uri_complete,
        expires_in: raw
            .expires_in
            .as_ref()
            .and_then(endpoint::seconds)
            .map(Duration::from_secs)
            .ok_or_else(|| missing("expires_in"))?,
        interval: raw
            .interval
            .as_ref()
            .and_then(endpoint::seconds)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_INTERVAL),
    })
}

/// Polls the token endpoint until the person approved (the token response), declined, or the
/// code expired.
pub async fn poll(
    oauth: &OAuth2,
    device: &DeviceAuthorization,
    pacing: Pacing,
) -> Result<TokenResponse, DeviceError> {
    let deadline = Instant::now() + device.expires_in;
    let mut interval = device.interval;
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err(DeviceError::Expired);
        }
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device.device_code.expose()),
        ];
        client_auth(oauth, &mut form);
        let (status, body) = endpoint::post_form(&oauth.token_url, &form).await?;
        match endpoint::token_answer(&oauth.token_url, status, &body)? {
            Answer::Ok(token) => return Ok(token),
            Answer::Error(e) => match e.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += pacing.slow_down_step,
                "expired_token" => return Err(DeviceError::Expired),
                "access_denied" => return Err(DeviceError::Denied),
                _ => {
                    return Err(DeviceError::OAuth(OAuthError::Refused {
                        url: oauth.token_url.clone(),
                        error: e.error,
                        description: e.description,
                    }));
                }
            },
        }
    }
}
