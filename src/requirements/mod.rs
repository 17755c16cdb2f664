//! The big providers' sender requirements, as data, and the score of one route × provider
//! against them.
//!
//! Since 2024 Gmail, Yahoo and (from May 2025) Microsoft publish what they require of the mail
//! sent to their users, for all senders and for bulk senders, and refuse what falls short
//! (Gmail: RFC 7372 and its own 5.7.2x codes; Microsoft: `550 5.7.515`). The requirements are a
//! versioned table in the repository, `data/sender-requirements.toml` (embedded with
//! `include_str!`): per provider, each requirement with its text, the page that states it, and
//! the dates it was published and enforced. This module reads it ([`Table::embedded`]) and
//! scores plain observations against it ([`score`]):
//!
//! - `spf_or_dkim`, `spf_and_dkim`: the receiver's SPF and DKIM results (RFC 8601);
//! - `dmarc_published`: a DMARC record exists (RFC 7489 §6.1; `p=none` is enough);
//! - `dmarc_aligned`: the receiver's DMARC result passes (an aligned SPF or DKIM pass, §3.1);
//! - `ptr_fcrdns`: the address the receiver saw has a PTR record whose name resolves back to it;
//! - `tls`: the hop into the receiver was encrypted (its `Received:` field, [`crate::path`]);
//! - `rfc5322`: the header section's one From, one Date, one valid Message-ID
//!   ([`check_headers`], RFC 5322 §3.6);
//! - `one_click_unsubscribe`: RFC 8058 ([`check_unsubscribe`]): `List-Unsubscribe` with an https
//!   URI, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, both in the `h=` of a DKIM
//!   signature (read with mail-auth's signature parser), and DKIM passing;
//! - `complaint_rate`, `sending_volume`, `unsubscribe_honored`, `list_hygiene`: not observable
//!   by a probe, listed as such with the reason the table gives.
//!
//! Each requirement is `met`, `unmet` (with the one cause from [`crate::diagnosis`] and its
//! fix), `not_observable`, or `unknown` (observable, but this time nothing was observed: no
//! DNS audit yet, no receiving hop). Requirements for bulk senders count only for routes marked
//! bulk. This module is pure and imports only the libraries [`crate::diagnosis`] and
//! [`crate::verdict`] (header splitting).

mod header_checks;
mod score;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use header_checks::{
    HeaderCheck, HeaderProblem, Unsubscribe, check_headers, check_unsubscribe,
};
pub use score::{DmarcRecord, Observations, Score, ScoreStatus, score, score_with};

/// The table as written in the repository.
pub const TABLE_TOML: &str = include_str!("../../data/sender-requirements.toml");

/// The versioned requirement table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Raised whenever an entry changes.
    pub version: u32,
    /// The day the sources were last read (YYYY-MM-DD).
    pub checked: String,
    /// The providers.
    #[serde(rename = "provider")]
    pub providers: Vec<Provider>,
    /// Every requirement of every provider.
    #[serde(rename = "requirement")]
    pub requirements: Vec<Requirement>,
}

/// A mailbox provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// `gmail`, `yahoo`, `microsoft` (the `provider` metric label).
    pub id: String,
    /// The name people know.
    pub name: String,
    /// Which mailboxes the rules cover.
    pub scope: String,
    /// What makes a bulk sender there.
    pub bulk_threshold: String,
}

/// One requirement of one provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The provider's `id`.
    pub provider: String,
    /// What is required (a fixed set: the `requirement` metric label).
    pub id: RequirementId,
    /// All senders, or bulk senders only.
    pub applies_to: AppliesTo,
    /// Required, or only recommended.
    pub level: Level,
    /// `false` for what a probe cannot observe.
    #[serde(default = "yes")]
    pub observable: bool,
    /// Why it cannot be observed (only with `observable = false`).
    #[serde(default)]
    pub why_not_observable: Option<String>,
    /// The requirement in the provider's words (abridged).
    pub text: String,
    /// The page that states it.
    pub source: String,
    /// When the provider published it (YYYY-MM-DD).
    pub published: String,
    /// When the provider began to enforce it, if it says.
    #[serde(default)]
    pub enforced: Option<String>,
}

fn yes() -> bool {
    true
}

/// The kinds of requirement (the bounded `requirement` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequirementId {
    /// SPF or DKIM passes.
    SpfOrDkim,
    /// SPF and DKIM both pass.
    SpfAndDkim,
    /// A DMARC record is published (`p=none` counts).
    DmarcPublished,
    /// DMARC passes: SPF or DKIM passes for a domain aligned with the From domain.
    DmarcAligned,
    /// The sending address has a PTR record whose name resolves back to it.
    PtrFcrdns,
    /// The hop into the receiver uses TLS.
    Tls,
    /// The header section is RFC 5322 well-formed.
    Rfc5322,
    /// RFC 8058 one-click unsubscribe, DKIM-signed.
    OneClickUnsubscribe,
    /// The rate of user spam complaints (not observable).
    ComplaintRate,
    /// The volume that makes a bulk sender (not observable).
    SendingVolume,
    /// Unsubscribes honoured in time (not observable).
    UnsubscribeHonored,
    /// Invalid addresses removed (not observable).
    ListHygiene,
}

impl RequirementId {
    /// Every id.
    pub const ALL: [RequirementId; 12] = [
        RequirementId::SpfOrDkim,
        RequirementId::SpfAndDkim,
        RequirementId::DmarcPublished,
        RequirementId::DmarcAligned,
        RequirementId::PtrFcrdns,
        RequirementId::Tls,
        RequirementId::Rfc5322,
        RequirementId::OneClickUnsubscribe,
        RequirementId::ComplaintRate,
        RequirementId::SendingVolume,
        RequirementId::UnsubscribeHonored,
        RequirementId::ListHygiene,
    ];

    /// The snake_case name (the serde name and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            RequirementId::SpfOrDkim => "spf_or_dkim",
            RequirementId::SpfAndDkim => "spf_and_dkim",
            RequirementId::DmarcPublished => "dmarc_published",
            RequirementId::DmarcAligned => "dmarc_aligned",
            RequirementId::PtrFcrdns => "ptr_fcrdns",
            RequirementId::Tls => "tls",
            RequirementId::Rfc5322 => "rfc5322",
            RequirementId::OneClickUnsubscribe => "one_click_unsubscribe",
            RequirementId::ComplaintRate => "complaint_rate",
            RequirementId::SendingVolume => "sending_volume",
            RequirementId::UnsubscribeHonored => "unsubscribe_honored",
            RequirementId::ListHygiene => "list_hygiene",
        }
    }

    /// Whether a probe can observe it at all (the table's `observable` must agree).
    pub fn is_observable(self) -> bool {
        !matches!(
            self,
            RequirementId::ComplaintRate
                | RequirementId::SendingVolume
                | RequirementId::UnsubscribeHonored
                | RequirementId::ListHygiene
        )
    }
}

/// Who a requirement applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    /// Every sender.
    All,
    /// Bulk senders only (routes marked `bulk = true`).
    Bulk,
}

/// How strongly the provider asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Mail that falls short is filtered or refused.
    Required,
    /// Advice.
    Recommended,
}

/// Why the table could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The TOML does not parse or has the wrong shape.
    #[error("data/sender-requirements.toml: {0}")]
    Parse(String),
}

impl TableError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TableError::Parse(_) => "parse",
        }
    }
}

impl Table {
    /// Parses a requirement table.
    pub fn parse(text: &str) -> Result<Table, TableError> {
        toml::from_str(text).map_err(|err| TableError::Parse(err.to_string()))
    }

    /// The table embedded in the binary, parsed once.
    pub fn embedded() -> Result<&'static Table, TableError> {
        static TABLE: OnceLock<Result<Table, TableError>> = OnceLock::new();
        TABLE
            .get_or_init(|| Table::parse(TABLE_TOML))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A provider by id.
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers
            .iter()
            .find(|provider| provider.id.eq_ignore_ascii_case(id))
    }

    /// The requirements of one provider, in table order.
    pub fn requirements_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a Requirement> {
        self.requirements
            .iter()
            .filter(move |requirement| requirement.provider.eq_ignore_ascii_case(provider))
    }
}
