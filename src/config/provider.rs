//! Provider presets for seed mailboxes: IMAP endpoint, spam folder and the receiver's authserv-id,
//! and for Google and Microsoft their OAuth2 token endpoints and scopes.

use super::oauth2::{GOOGLE, MICROSOFT, OAuthPreset};

/// Defaults a `provider = "..."` seed starts from; every field can be overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub host: Option<&'static str>,
    pub port: u16,
    /// The spam folder when the server does not advertise SPECIAL-USE `\Junk` (RFC 6154).
    pub spam_folder: Option<&'static str>,
    /// The authserv-ids the provider writes in Authentication-Results. Empty: trust the top-most
    /// header (Microsoft writes none; Yahoo's varies per cluster). iCloud writes one header per
    /// method, each with its own id, and a BIMI one on top: all of the method ids are trusted,
    /// or the top-most (BIMI) header alone would leave DKIM and DMARC unreported.
    pub authserv_ids: &'static [&'static str],
    /// Shortest pause between mailbox checks while a message is expected: polite to big providers.
    pub poll_interval_ms: u64,
    /// Confirmation probes a seed may be sent per hour: a big provider is never sent a burst
    /// (each confirmation is one more message to an account that also counts as a recipient of
    /// ours), our own server may take more.
    pub confirmations_per_hour: u32,
    /// The provider's OAuth2 token endpoints and scope (`auth = "oauth2"`).
    pub oauth: Option<&'static OAuthPreset>,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "generic",
        host: None,
        port: 993,
        spam_folder: None,
        authserv_ids: &[],
        poll_interval_ms: 250,
        confirmations_per_hour: 30,
        oauth: None,
    },
    Preset {
        name: "gmail",
        host: Some("imap.gmail.com"),
        port: 993,
        spam_folder: Some("[Gmail]/Spam"),
        authserv_ids: &["mx.google.com"],
        poll_interval_ms: 2000,
        confirmations_per_hour: 6,
        oauth: Some(&GOOGLE),
    },
    Preset {
        name: "outlook",
        host: Some("outlook.office365.com"),
        port: 993,
        spam_folder: Some("Junk"),
        authserv_ids: &[],
        poll_interval_ms: 2000,
        confirmations_per_hour: 6,
        oauth: Some(&MICROSOFT),
    },
    Preset {
        name: "yahoo",
        host: Some("imap.mail.yahoo.com"),
        port: 993,
        spam_folder: Some("Bulk"),
        authserv_ids: &[],
        poll_interval_ms: 2000,
        confirmations_per_hour: 6,
        oauth: None,
    },
    Preset {
        name: "icloud",
        host: Some("imap.mail.me.com"),
        port: 993,
        spam_folder: Some("Junk"),
        authserv_ids: &[
            "spf.icloud.com",
            "dkim-verifier.icloud.com",
            "dmarc.icloud.com",
            "arc.icloud.com",
        ],
        poll_interval_ms: 2000,
        confirmations_per_hour: 6,
        oauth: None,
    },
    Preset {
        name: "fastmail",
        host: Some("imap.fastmail.com"),
        port: 993,
        spam_folder: Some("Spam"),
        authserv_ids: &[],
        poll_interval_ms: 1000,
        confirmations_per_hour: 6,
        oauth: None,
    },
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The OAuth2 defaults of a provider named in an `[oauth2]` table (`gmail`, `outlook`).
pub fn oauth_preset(name: &str) -> Option<&'static OAuthPreset> {
    preset(name).and_then(|p| p.oauth)
}

/// The providers that carry OAuth2 defaults, for messages.
pub fn oauth_names() -> String {
    PRESETS
        .iter()
        .filter(|p| p.oauth.is_some())
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
