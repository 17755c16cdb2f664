//! The score of one route × provider: each requirement of the table met, unmet (one cause and
//! its fix), not observable, or unknown this time.

use std::net::IpAddr;

use serde::Serialize;

use super::header_checks::{HeaderCheck, Unsubscribe};
use super::{AppliesTo, Level, Requirement, RequirementId, Table, TableError};
use crate::diagnosis::{Cause, Context};

/// What is known of a DMARC record (RFC 7489 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmarcRecord {
    /// Published and valid (any policy, `p=none` included).
    Published,
    /// No record at `_dmarc.<domain>`.
    Missing,
    /// A record that does not parse.
    Invalid,
    /// Not looked up, or the DNS did not answer.
    #[default]
    Unknown,
}

/// Plain observations of one route at one provider. Results are RFC 8601 keywords as the
/// receiver wrote them (case-insensitive); `None` everywhere means "not observed".
#[derive(Debug, Clone, Copy, Default)]
pub struct Observations<'a> {
    /// The receiver's SPF result.
    pub spf: Option<&'a str>,
    /// The receiver's DKIM result (`pass` when any signature passed).
    pub dkim: Option<&'a str>,
    /// The receiver's DMARC result.
    pub dmarc: Option<&'a str>,
    /// The From domain's DMARC record (from the DNS audit).
    pub dmarc_record: DmarcRecord,
    /// The address the receiver saw.
    pub seen_ip: Option<IpAddr>,
    /// Whether it has a PTR record.
    pub ptr: Option<bool>,
    /// Whether the PTR name resolves back to it.
    pub fcrdns: Option<bool>,
    /// Whether the hop into the receiver was encrypted.
    pub last_hop_tls: Option<bool>,
    /// The RFC 5322 check of the probe's header section.
    pub headers: Option<&'a HeaderCheck>,
    /// The RFC 8058 check of the probe's header section.
    pub unsubscribe: Option<&'a Unsubscribe>,
    /// The From domain (named in fixes).
    pub from_domain: Option<&'a str>,
    /// Whether the route sends bulk mail (its bulk requirements count).
    pub bulk: bool,
}

/// How one requirement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreStatus {
    /// The observations show it met.
    Met,
    /// The observations show it not met.
    Unmet,
    /// A probe cannot observe it.
    NotObservable,
    /// Observable, but nothing was observed this time.
    Unknown,
}

impl ScoreStatus {
    /// The snake_case word.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreStatus::Met => "met",
            ScoreStatus::Unmet => "unmet",
            ScoreStatus::NotObservable => "not_observable",
            ScoreStatus::Unknown => "unknown",
        }
    }
}

/// One requirement, scored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Score {
    /// The provider's id.
    pub provider: String,
    /// Which requirement.
    pub requirement: RequirementId,
    /// All senders or bulk senders.
    pub applies_to: AppliesTo,
    /// Required or recommended.
    pub level: Level,
    /// How it stands.
    pub status: ScoreStatus,
    /// What was observed, in one line (or why nothing could be).
    pub detail: String,
    /// For `unmet`: the cause.
    pub cause: Option<Cause>,
    /// For `unmet`: the fix sentence.
    pub fix: Option<String>,
    /// The page that states the requirement.
    pub source: String,
}

/// Scores one provider's requirements against the embedded table.
pub fn score(provider: &str, observations: &Observations<'_>) -> Result<Vec<Score>, TableError> {
    Table::embedded().map(|table| score_with(table, provider, observations))
}

/// Scores one provider's requirements of `table`: every requirement for all senders, and for
/// bulk routes the bulk ones, in table order. An unknown provider has no requirements.
pub fn score_with(table: &Table, provider: &str, observations: &Observations<'_>) -> Vec<Score> {
    table
        .requirements_of(provider)
        .filter(|requirement| observations.bulk || requirement.applies_to == AppliesTo::All)
        .map(|requirement| one(requirement, observations))
        .collect()
}

/// What one requirement's observation says: status, detail, cause and the problem words.
struct Judgement {
    status: ScoreStatus,
    detail: String,
    cause: Option<Cause>,
    problem: Option<String>,
}

fn met(detail: impl Into<String>) -> Judgement {
    Judgement {
        status: ScoreStatus::Met,
        detail: detail.into(),
        cause: None,
        problem: None,
    }
}

fn unmet(detail: impl Into<String>, cause: Cause) -> Judgement {
    Judgement {
        status: ScoreStatus::Unmet,
        detail: detail.into(),
        cause: Some(cause),
        problem: None,
    }
}

fn unknown(detail: impl Into<String>) -> Judgement {
    Judgement {
        status: ScoreStatus::Unknown,
        detail: detail.into(),
        cause: None,
        problem: None,
    }
}

fn one(requirement: &Requirement, obs: &Observations<'_>) -> Score {
    let judgement = if !requirement.observable || !requirement.id.is_observable() {
        Judgement {
            status: ScoreStatus::NotObservable,
            detail: requirement
                .why_not_observable
                .clone()
                .unwrap_or_else(|| "a probe cannot observe this".to_string()),
            cause: None,
            problem: None,
        }
    } else {
        judge(requirement.id, obs)
    };
    let fix = judgement.cause.map(|cause| {
        cause.fix(&Context {
            domain: obs.from_domain,
            ip: obs.seen_ip,
            problem: judgement.problem.as_deref(),
            ..Context::default()
        })
    });
    Score {
        provider: requirement.provider.clone(),
        requirement: requirement.id,
        applies_to: requirement.applies_to,
        level: requirement.level,
        status: judgement.status,
        detail: judgement.detail,
        cause: judgement.cause,
        fix,
        source: requirement.source.clone(),
    }
}

/// Whether a result keyword is `pass`; `None` when not reported.
fn passes(result: Option<&str>) -> Option<bool> {
    result.map(|r| r.trim().eq_ignore_ascii_case("pass"))
}

fn word(result: Option<&str>) -> &str {
    result.map_or("not reported", str::trim)
}

/// The cause of an SPF result that is not `pass`.
fn spf_cause(result: Option<&str>) -> Cause {
    match result.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        Some("none") => Cause::SpfMissing,
        Some("permerror") => Cause::SpfPermerror,
        _ => Cause::SpfIpNotAuthorized,
    }
}

/// The cause of a DKIM result that is not `pass`.
fn dkim_cause(result: Option<&str>) -> Cause {
    match result.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        Some("none") | None => Cause::DkimUnsigned,
        _ => Cause::DkimKeyMismatch,
    }
}

fn judge(id: RequirementId, obs: &Observations<'_>) -> Judgement {
    let spf = passes(obs.spf);
    let dkim = passes(obs.dkim);
    let results = format!("SPF {}, DKIM {}", word(obs.spf), word(obs.dkim));
    match id {
        RequirementId::SpfOrDkim => match (spf, dkim) {
            (Some(true), _) | (_, Some(true)) => met(results),
            (None, None) => unknown("the receiver reported neither SPF nor DKIM"),
            _ => unmet(results, Cause::RejectedUnauthenticated),
        },
        RequirementId::SpfAndDkim => match (spf, dkim) {
            (Some(true), Some(true)) => met(results),
            (Some(false), _) => unmet(results, spf_cause(obs.spf)),
            (_, Some(false)) => unmet(results, dkim_cause(obs.dkim)),
            // DKIM unreported beside a DMARC result is unsigned mail (see diagnosis).
            (Some(true), None) if obs.dmarc.is_some() => unmet(results, Cause::DkimUnsigned),
            _ => unknown(results),
        },
        RequirementId::DmarcPublished => match obs.dmarc_record {
            DmarcRecord::Published => met("a DMARC record is published"),
            DmarcRecord::Missing => unmet("no DMARC record", Cause::DmarcMissing),
            DmarcRecord::Invalid => unmet("the DMARC record does not parse", Cause::DmarcInvalid),
            DmarcRecord::Unknown => unknown("the DMARC record was not looked up"),
        },
        RequirementId::DmarcAligned => {
            let dmarc = obs.dmarc.map(|r| r.trim().to_ascii_lowercase());
            match dmarc.as_deref() {
                Some("pass") => met("DMARC pass"),
                Some("none") => unmet("DMARC none: no record to align with", Cause::DmarcMissing),
                Some(other) => unmet(format!("DMARC {other}"), Cause::DmarcNotAligned),
                None if obs.dmarc_record == DmarcRecord::Missing => {
                    unmet("no DMARC record", Cause::DmarcMissing)
                }
                None => unknown("the receiver reported no DMARC result"),
            }
        }
        RequirementId::PtrFcrdns => {
            let address = obs
                .seen_ip
                .map_or_else(|| "the sending IP".to_string(), crate::diagnosis::address);
            match (obs.ptr, obs.fcrdns) {
                (Some(false), _) => {
                    unmet(format!("{address} has no PTR record"), Cause::PtrMissing)
                }
                (_, Some(false)) => unmet(
                    format!("the PTR name of {address} does not resolve back to it"),
                    Cause::FcrdnsMismatch,
                ),
                (Some(true), Some(true)) => met(format!(
                    "{address} has a PTR record that resolves back to it"
                )),
                _ => unknown(format!("reverse DNS of {address} not checked")),
            }
        }
        RequirementId::Tls => match obs.last_hop_tls {
            Some(true) => met("the hop into the receiver used TLS"),
            Some(false) => unmet(
                "the hop into the receiver was not encrypted",
                Cause::TlsMissing,
            ),
            None => unknown("the receiving hop does not say whether TLS was used"),
        },
        RequirementId::Rfc5322 => match obs.headers {
            Some(check) if check.is_well_formed() => {
                met("one From, one Date, one valid Message-ID; no field repeated")
            }
            Some(check) => {
                let problem = check.describe();
                Judgement {
                    problem: Some(problem.clone()),
                    ..unmet(problem, Cause::HeaderMalformed)
                }
            }
            None => unknown("the header section was not checked"),
        },
        RequirementId::OneClickUnsubscribe => match obs.unsubscribe {
            None => unknown("the header section was not checked"),
            Some(check) if !check.is_complete() => {
                let problem = check.problems.join("; ");
                Judgement {
                    problem: Some(problem.clone()),
                    ..unmet(problem, Cause::OneClickUnsubscribeMissing)
                }
            }
            Some(_) if dkim == Some(false) => {
                let problem = "the DKIM signature covering them does not pass".to_string();
                Judgement {
                    problem: Some(problem.clone()),
                    ..unmet(problem, Cause::OneClickUnsubscribeMissing)
                }
            }
            Some(check) => met(format!(
                "List-Unsubscribe with {}, List-Unsubscribe-Post one-click, signed by {}",
                check.https_uri.as_deref().unwrap_or("an https URI"),
                check.signed_by.join(", ")
            )),
        },
        RequirementId::ComplaintRate
        | RequirementId::SendingVolume
        | RequirementId::UnsubscribeHonored
        | RequirementId::ListHygiene => unknown("a probe cannot observe this"),
    }
}
