//! The config file as written (TOML). Every table rejects unknown keys; meaning and defaults are
//! applied by `validate`, which turns this into a [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub probe: RawProbe,
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoute>,
    #[serde(default)]
    pub seeds: BTreeMap<String, RawSeed>,
    #[serde(default)]
    pub dns_audit: RawDnsAudit,
    #[serde(default)]
    pub bounce_mailboxes: BTreeMap<String, RawBounceMailbox>,
    #[serde(default)]
    pub report_mailboxes: BTreeMap<String, RawReportMailbox>,
    /// The old name of `report_mailboxes`, still read (with a deprecation warning).
    #[serde(default)]
    pub reports: BTreeMap<String, RawReportMailbox>,
}

/// A mailbox that receives the domain's DMARC aggregate reports (`rua=`) and SMTP TLS reports
/// (`TLSRPT rua=`), read on a schedule.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReportMailbox {
    pub provider: Option<String>,
    /// The report address (what `rua=mailto:` names).
    pub address: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `password` (default) or `oauth2`.
    pub auth: Option<String>,
    pub oauth2: Option<RawOAuth2>,
    /// The folder reports arrive in (default INBOX).
    pub folder: Option<String>,
    /// The domains we own: reports about any other domain are ignored.
    pub domains: Option<Vec<String>>,
    /// `keep` (default), `delete` or `move:<folder>`: what happens to a report once stored.
    pub after: Option<String>,
    /// Cron expression: when the mailbox is read (default every 15 minutes).
    pub schedule: Option<String>,
    /// Reporters that get their own metric label (matched in the report's org name or its
    /// e-mail domain, and authenticated); every other reporter is `other`.
    pub reporters: Option<Vec<String>>,
    /// Whose `Authentication-Results` to believe when a report mail's authentication is read
    /// (default: the provider preset's; `[]` = the top-most header).
    pub authserv_ids: Option<Vec<String>>,
}

/// A mailbox that receives a route's bounces (its envelope sender's), read like a seed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBounceMailbox {
    pub provider: Option<String>,
    /// The bounce address (the routes' envelope sender, or where its mail is delivered).
    pub address: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `password` (default) or `oauth2`.
    pub auth: Option<String>,
    pub oauth2: Option<RawOAuth2>,
    /// The folder bounces arrive in (default INBOX).
    pub folder: Option<String>,
    pub poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Cron expression (5 fields, or 6 with seconds first).
    pub schedule: Option<String>,
    /// Random delay before each round, a humantime duration ("30s").
    pub jitter: Option<String>,
    /// When an absent message counts as missing ("10m").
    pub timeout: Option<String>,
    /// How long a missing message is still watched for ("2h").
    pub late_window: Option<String>,
    /// A probe not found this long after its acceptance is overdue: its pair gets a
    /// confirmation probe then ("2m"; "0s" turns this off).
    pub confirm_after: Option<String>,
    /// `delete`, `keep` or `move:<folder>`.
    pub cleanup: Option<String>,
    /// HTTP listen address for /metrics, /api/results and the status page.
    pub listen: Option<String>,
    /// SQLite state file.
    pub state: Option<PathBuf>,
    /// How long results are kept ("30d").
    pub retention: Option<String>,
    /// Probe-token HMAC key.
    pub token_key_env: Option<String>,
    pub token_key_file: Option<PathBuf>,
    /// How many route × seed probes run at once.
    pub concurrency: Option<u32>,
    /// This instance's name, bound into its probe tokens and state (default: the host name).
    pub instance: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `password` (default) or `oauth2`.
    pub auth: Option<String>,
    pub oauth2: Option<RawOAuth2>,
    pub from: Option<String>,
    pub envelope_from: Option<String>,
    pub helo: Option<String>,
    pub timeout: Option<String>,
    /// How many probes of a round may follow one another over one SMTP session (the first
    /// opens it: TCP, TLS, AUTH); `1`: a fresh session per probe.
    pub probes_per_session: Option<i64>,
    /// The addresses this route's mail leaves from (for the DNS audit).
    #[serde(default)]
    pub sending_ips: Vec<String>,
    /// The private key the sending server signs with (PEM), so the DNS audit can compare it
    /// with the published key. Not needed when mailcanary signs itself (`[dkim]`).
    pub dkim_key_file: Option<PathBuf>,
    /// DNSBL zones for this route's audit, instead of `dns_audit.dnsbl_zones`.
    pub dnsbl_zones: Option<Vec<String>>,
    /// The DKIM selector the sending server signs with (for the DNS audit).
    pub dkim_selector: Option<String>,
    pub dkim: Option<RawDkim>,
    /// The `[bounce_mailboxes.NAME]` that receives this route's bounces.
    pub bounces: Option<String>,
    /// The Gmail tab this route's probes should land in (`primary`, …); another tab is a
    /// warning.
    pub expect_tab: Option<String>,
    /// The route sends bulk mail: the providers' bulk-sender requirements (RFC 8058 one-click
    /// unsubscribe) count for it.
    pub bulk: Option<bool>,
    /// `outbound` (default: our server's mail to the world) or `inbound` (the world's mail,
    /// submitted through a provider's server, to our own mailbox).
    pub direction: Option<String>,
    #[serde(default)]
    pub message: RawMessage,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDkim {
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub list_unsubscribe: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeed {
    pub provider: Option<String>,
    /// The mailbox address probes are sent to.
    pub address: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `password` (default) or `oauth2`.
    pub auth: Option<String>,
    pub oauth2: Option<RawOAuth2>,
    pub authserv_ids: Option<Vec<String>>,
    pub inbox_folder: Option<String>,
    pub spam_folder: Option<String>,
    /// Shortest pause between checks while a message is expected ("50ms").
    pub poll_interval: Option<String>,
    /// Confirmation probes this seed may be sent per hour (0 turns them off).
    pub confirmations_per_hour: Option<i64>,
    /// Routes that send to this seed (default: all).
    pub routes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnsAudit {
    pub schedule: Option<String>,
    pub nameserver: Option<String>,
    pub dnsbl_zones: Option<Vec<String>>,
}

/// `[….oauth2]`: the OAuth2 client of a seed, bounce mailbox or route (`auth = "oauth2"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    /// `gmail` or `outlook`: token endpoint and scope defaults (a seed's own provider by default).
    pub provider: Option<String>,
    /// `refresh_token` (default) or `client_credentials`.
    pub grant: Option<String>,
    pub token_url: Option<String>,
    pub device_authorization_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub refresh_token_env: Option<String>,
    pub refresh_token_file: Option<PathBuf>,
    pub scope: Option<String>,
}
