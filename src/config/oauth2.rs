//! OAuth2 settings of a seed, bounce mailbox or route (`auth = "oauth2"`): which grant of
//! RFC 6749 gets the access token (§6 refresh token, §4.4 client credentials), where the token
//! endpoint is, the client and the scope, and the token cache every clone of the config shares.
//! The logic that fills the cache (token requests, refresh ahead of expiry, write-back of a
//! rotated refresh token) is in [`crate::oauth`]; this is data only.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use super::secret::{Secret, SecretSource};

/// How the access token is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A user's refresh token (Gmail, Outlook.com, Microsoft 365 delegated), first obtained
    /// with `mailcanary oauth login` (RFC 8628 device authorization grant).
    RefreshToken,
    /// The client's own credentials (Microsoft 365 app-only access to a mailbox).
    ClientCredentials,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::RefreshToken => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// One OAuth2 client configuration and its token cache. Two are equal when their settings
/// are (the cache is not compared).
#[derive(Debug, Clone)]
pub struct OAuth2 {
    pub grant: Grant,
    pub token_url: String,
    /// The RFC 8628 device authorization endpoint, for `oauth login`.
    pub device_authorization_url: Option<String>,
    pub client_id: String,
    /// Absent for public clients (Google's and Microsoft's "desktop" apps may have none).
    pub client_secret: Option<Secret>,
    /// Space-separated scopes (RFC 6749 §3.3).
    pub scope: String,
    /// Where the refresh token is read from; a `File` is also where a rotated refresh token is
    /// written back (atomically, mode 0600). `None` for the client-credentials grant.
    pub refresh_token_source: Option<SecretSource>,
    /// Shared by every clone of the config: one token per mailbox or route, refreshed once.
    pub cache: TokenCache,
}

impl PartialEq for OAuth2 {
    fn eq(&self, other: &Self) -> bool {
        self.grant == other.grant
            && self.token_url == other.token_url
            && self.device_authorization_url == other.device_authorization_url
            && self.client_id == other.client_id
            && self.client_secret == other.client_secret
            && self.scope == other.scope
            && self.refresh_token_source == other.refresh_token_source
    }
}

/// The cached tokens of one [`OAuth2`] client. Clones share the same cache.
#[derive(Clone, Default)]
pub struct TokenCache {
    /// Held across a token request, so that concurrent users wait for one refresh.
    pub state: Arc<tokio::sync::Mutex<TokenState>>,
    /// When the cached access token expires (wall clock), for the expiry metric: readable
    /// without waiting for a refresh in flight.
    pub expiry: Arc<Mutex<Option<SystemTime>>>,
}

/// What the cache holds.
#[derive(Default)]
pub struct TokenState {
    pub access: Option<AccessToken>,
    /// The refresh token in use (read at start-up, replaced when the server rotates it).
    pub refresh_token: Option<Secret>,
}

/// An access token and when to stop using it.
pub struct AccessToken {
    pub token: Secret,
    /// Refresh from this moment on (ahead of the expiry).
    pub refresh_at: Instant,
    pub expires_at: SystemTime,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens; only whether one is cached and until when.
        let expiry = self.expiry.lock().map(|e| *e).unwrap_or(None);
        f.debug_struct("TokenCache")
            .field("expiry", &expiry)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The expiry of the access token in use, if any (wall clock).
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expiry.lock().map(|e| *e).unwrap_or(None)
    }
}

/// How a connection authenticates: a password, or an OAuth2 access token.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    Password(Secret),
    OAuth2(Box<OAuth2>),
}

impl Login {
    pub fn oauth2(&self) -> Option<&OAuth2> {
        match self {
            Login::OAuth2(o) => Some(o),
            Login::Password(_) => None,
        }
    }
}

/// Token endpoints and scopes of the providers whose presets speak OAuth2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthPreset {
    pub token_url: &'static str,
    pub device_authorization_url: &'static str,
    pub scope: &'static str,
}

/// Google: one scope covers IMAP and SMTP (https://developers.google.com/gmail/imap/xoauth2-protocol).
pub const GOOGLE: OAuthPreset = OAuthPreset {
    token_url: "https://oauth2.googleapis.com/token",
    device_authorization_url: "https://oauth2.googleapis.com/device/code",
    scope: "https://mail.google.com/",
};

/// Microsoft identity platform, delegated access for Outlook.com and Microsoft 365 ("common"
/// tenant: replace it with your tenant id for a work account, and for app-only access use
/// `https://outlook.office365.com/.default` with the client-credentials grant).
pub const MICROSOFT: OAuthPreset = OAuthPreset {
    token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    device_authorization_url: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
    scope: "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access",
};
