//! Why a receiver refused a message, from its enhanced status code (RFC 3463, RFC 7372) and
//! the reply texts the big providers document.
//!
//! The rules, first match wins:
//!
//! 1. **PTR**: `x.7.25` (RFC 7372 §3.3, reverse DNS), or the reply talks about a PTR record or
//!    reverse DNS (Gmail's `421-4.7.23`/`550-5.7.25`, Postfix's `cannot find your hostname`).
//!    This goes first because Gmail uses 4.7.23, RFC 7372's SPF code, for PTR.
//! 2. **Codes that say it all**: `x.7.20`–`x.7.24` (RFC 7372: DKIM, SPF), `x.7.26`
//!    (RFC 7372 multiple authentication checks; Gmail's unauthenticated), `x.7.27` (Gmail: SPF),
//!    `5.7.509` (Microsoft: DMARC), `5.7.515` (Microsoft: authentication level) are auth;
//!    `5.7.606`–`5.7.649` (Microsoft: banned sending IP) blocklist; `4.7.28` (Gmail) and
//!    `4.7.500`–`4.7.699` (Microsoft) rate limit; `5.1.1`, `5.1.10`, `5.2.1` recipient;
//!    `x.2.2` mailbox full. A code beats the wording: Gmail's 4.7.28 text names the DKIM domain
//!    it rate-limits.
//! 3. **Wording**, in this order: auth (`unauthenticated`, `SPF`, `DKIM`, `DMARC`, failed
//!    authentication checks), blocklist (Spamhaus, `blocklist`, `blacklist`, `block list`,
//!    `blocked using`, `banned sending IP`, `x.7.1` with `listed`), rate limit (`rate limit`,
//!    Yahoo's `TSS04`, `temporarily deferred`, `too many`), recipient (`user unknown`,
//!    `does not exist`, ...), mailbox full (`mailbox full`, `over quota`, ...).
//! 4. **Generic codes**: `4.7.0` rate limit (Yahoo and Gmail defer with it); any other `x.7.x`
//!    policy.
//! 5. Anything else: other.
//!
//! For auth, `failed_method` is the one method the text names (`SPF check`, `DKIM`), or DMARC
//! when it names a `DMARC policy`; else the method the code stands for (`x.7.20`–`22` DKIM,
//! `x.7.23`, `x.7.24`, `x.7.27` SPF, `5.7.509` DMARC); else `None`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::reply;
use crate::truncate::prefix;
use crate::verdict::Method;

/// The most reply text looked at.
const MAX_CLASSIFY_BYTES: usize = 16 * 1024;

/// Why a receiver refused (or deferred) a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionClass {
    /// SPF, DKIM or DMARC did not pass, or the message is unauthenticated.
    Auth,
    /// The sending IP has no PTR record, or its forward lookup does not match.
    Ptr,
    /// The sending IP (or domain) is on a blocklist.
    Blocklist,
    /// Refused by the receiver's policy (content, reputation, relaying...).
    Policy,
    /// Deferred or refused for volume: rate limits, too many messages or connections.
    RateLimit,
    /// The recipient address does not exist, or is disabled.
    Recipient,
    /// The recipient's mailbox is full.
    MailboxFull,
    /// Anything else (timeouts, network, unknown replies).
    Other,
}

impl RejectionClass {
    /// The snake-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionClass::Auth => "auth",
            RejectionClass::Ptr => "ptr",
            RejectionClass::Blocklist => "blocklist",
            RejectionClass::Policy => "policy",
            RejectionClass::RateLimit => "rate_limit",
            RejectionClass::Recipient => "recipient",
            RejectionClass::MailboxFull => "mailbox_full",
            RejectionClass::Other => "other",
        }
    }
}

/// The cause of a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// What kind of refusal.
    pub class: RejectionClass,
    /// For [`RejectionClass::Auth`], the method that failed, when the reply or code says
    /// which: `spf`, `dkim` or `dmarc` in JSON.
    #[serde(
        serialize_with = "serialize_method",
        deserialize_with = "deserialize_method"
    )]
    pub failed_method: Option<Method>,
}

fn serialize_method<S: Serializer>(
    method: &Option<Method>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    method.map(Method::as_str).serialize(serializer)
}

fn deserialize_method<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Method>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    Method::ALL
        .into_iter()
        .find(|method| method.as_str() == name)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown method {name:?}")))
}

/// Classifies a refusal from its enhanced status code (`Status`, as written; `None` when
/// unknown) and the reply text (`Diagnostic-Code`). The reply's own enhanced code is used
/// too, so a generic `Status: 5.0.0` (Exim) does not hide `550 5.7.606`.
pub fn classify(status: Option<&str>, reply: &str) -> Rejection {
    let reply = prefix(reply, MAX_CLASSIFY_BYTES);
    let text = reply.to_ascii_lowercase();
    let mut codes: Vec<Code> = Vec::with_capacity(2);
    codes.extend(status.and_then(Code::parse));
    codes.extend(reply::enhanced_code(reply).as_deref().and_then(Code::parse));

    let class = if codes
        .iter()
        .any(|code| code.subject == 7 && code.detail == 25)
        || ptr_words(&text)
    {
        RejectionClass::Ptr
    } else if let Some(class) = codes.iter().find_map(|code| code.class_of()) {
        class
    } else if auth_words(&text) {
        RejectionClass::Auth
    } else if blocklist_words(&text, &codes) {
        RejectionClass::Blocklist
    } else if rate_limit_words(&text) {
        RejectionClass::RateLimit
    } else if recipient_words(&text) {
        RejectionClass::Recipient
    } else if mailbox_full_words(&text) {
        RejectionClass::MailboxFull
    } else if codes.iter().any(|code| code.is(4, 7, 0)) {
        RejectionClass::RateLimit
    } else if codes.iter().any(|code| code.subject == 7) {
        RejectionClass::Policy
    } else {
        RejectionClass::Other
    };
    let failed_method = match class {
        RejectionClass::Auth => {
            named_method(&text).or_else(|| codes.iter().find_map(|code| code.method()))
        }
        _ => None,
    };
    Rejection {
        class,
        failed_method,
    }
}

/// An enhanced status code, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code {
    class: u16,
    subject: u16,
    detail: u16,
}

impl Code {
    fn parse(text: &str) -> Option<Code> {
        if !reply::is_enhanced(text) {
            return None;
        }
        let mut parts = text.split('.').map(|part| part.parse::<u16>().ok());
        Some(Code {
            class: parts.next()??,
            subject: parts.next()??,
            detail: parts.next()??,
        })
    }

    fn is(self, class: u16, subject: u16, detail: u16) -> bool {
        self == Code {
            class,
            subject,
            detail,
        }
    }

    /// The classes a code decides alone (rule 2 of the module documentation).
    fn class_of(self) -> Option<RejectionClass> {
        let Code {
            class,
            subject,
            detail,
        } = self;
        match (class, subject, detail) {
            (_, 7, 20..=24 | 26 | 27) | (5, 7, 509 | 515) => Some(RejectionClass::Auth),
            (5, 7, 606..=649) => Some(RejectionClass::Blocklist),
            (4, 7, 28 | 500..=699) => Some(RejectionClass::RateLimit),
            (5, 1, 1 | 10) | (5, 2, 1) => Some(RejectionClass::Recipient),
            (_, 2, 2) => Some(RejectionClass::MailboxFull),
            _ => None,
        }
    }

    /// The method an auth code stands for (RFC 7372 §3.1, §3.2; Gmail; Microsoft).
    fn method(self) -> Option<Method> {
        match (self.class, self.subject, self.detail) {
            (_, 7, 20..=22) => Some(Method::Dkim),
            (_, 7, 23 | 24 | 27) => Some(Method::Spf),
            (5, 7, 509) => Some(Method::Dmarc),
            _ => None,
        }
    }
}

fn any_of(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|phrase| text.contains(phrase))
}

/// Whether `word` occurs in `text` with no letter or digit either side.
fn has_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let start = from + at;
        let end = start + word.len();
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(end).copied();
        if !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        {
            return true;
        }
        from = end;
    }
    false
}

fn ptr_words(text: &str) -> bool {
    any_of(
        text,
        &[
            "ptr record",
            "reverse dns",
            "reverse-dns",
            "cannot find your hostname",
            "cannot find your reverse hostname",
        ],
    ) || has_word(text, "rdns")
}

fn auth_words(text: &str) -> bool {
    any_of(
        text,
        &[
            "unauthenticated",
            "authentication check",
            "authentication information",
            "authentication level",
            "authentication requirement",
        ],
    ) || ["spf", "dkim", "dmarc"]
        .into_iter()
        .any(|word| has_word(text, word))
}

fn blocklist_words(text: &str, codes: &[Code]) -> bool {
    any_of(
        text,
        &[
            "spamhaus",
            "spamcop",
            "barracudacentral",
            "blocklist",
            "block list",
            "blacklist",
            "black list",
            "blocked using",
            "banned sending ip",
            "dnsbl",
        ],
    ) || has_word(text, "rbl")
        || (codes
            .iter()
            .any(|code| code.subject == 7 && code.detail == 1)
            && has_word(text, "listed"))
}

fn rate_limit_words(text: &str) -> bool {
    any_of(
        text,
        &[
            "rate limit",
            "ratelimit",
            "rate-limit",
            "tss04",
            "temporarily deferred",
            "too many",
            "unusual rate",
            "too fast",
            "too quickly",
            "throttl",
        ],
    )
}

fn recipient_words(text: &str) -> bool {
    any_of(
        text,
        &[
            "user unknown",
            "unknown user",
            "unknown recipient",
            "does not exist",
            "doesn't exist",
            "no such user",
            "no such mailbox",
            "no mailbox here",
            "recipient not found",
            "recipnotfound",
            "recipientnotfound",
            "invalid recipient",
            "mailbox not found",
            "account disabled",
            "mailbox disabled",
        ],
    )
}

fn mailbox_full_words(text: &str) -> bool {
    any_of(
        text,
        &[
            "mailbox full",
            "mailbox is full",
            "over quota",
            "quota exceeded",
            "exceeded storage",
            "out of storage",
            "insufficient storage",
        ],
    )
}

/// The one method the text names; DMARC when it names a DMARC policy.
fn named_method(text: &str) -> Option<Method> {
    let named: Vec<Method> = [
        (Method::Spf, "spf"),
        (Method::Dkim, "dkim"),
        (Method::Dmarc, "dmarc"),
    ]
    .into_iter()
    .filter(|(_, word)| has_word(text, word))
    .map(|(method, _)| method)
    .collect();
    match named.as_slice() {
        [one] => Some(*one),
        _ if text.contains("dmarc policy") => Some(Method::Dmarc),
        _ => None,
    }
}
