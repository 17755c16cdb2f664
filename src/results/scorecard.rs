//! The providers' sender requirements ([`crate::requirements`], `data/sender-requirements.toml`)
//! scored live: each route × provider of the table from the route's latest found probe — the
//! receiver's SPF, DKIM and DMARC results (RFC 8601), the audit of the address the receiving
//! MX saw (PTR and FCrDNS, `probe::seen_address`), the TLS of the hop into it (its `Received:`
//! field), the header section's RFC 5322 form and RFC 8058 one-click unsubscribe (for routes
//! marked `bulk = true`). What a probe cannot observe (complaint rate, volume, unsubscribes
//! honoured, list hygiene) is listed as `not_observable`, never guessed; what it could observe
//! but did not this time is `unknown`.
//!
//! `/api/requirements`, the status page's table, `once` and `mailcanary_requirement_met` read
//! this one view. DMARC's published record is read off the receiver's DMARC result (`pass` or
//! `fail` means a record was evaluated, `permerror` an invalid one); `none` is not reported
//! apart from "no result", so it stays `unknown` here and the DNS audit's `dmarc` check says
//! more.

use serde::Serialize;

use crate::config::{Config, Route};
use crate::diagnosis::Cause;
use crate::dns_audit::{Check, CheckStatus, RouteAudit};
use crate::outcome::Judgement;
use crate::requirements::{self, DmarcRecord, Observations, Score, ScoreStatus};
use crate::state::probes::ProbeRecord;
use crate::verdict::AuthResult;

/// The `/api/requirements` document: the table's version and the day its sources were read,
/// and every route's scores.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    /// `version` of `data/sender-requirements.toml`.
    pub table_version: Option<u32>,
    /// The day the table's sources were last read (YYYY-MM-DD).
    pub table_checked: Option<String>,
    pub routes: Vec<RouteRequirements>,
}

/// The scorecard of every route of `config` from `records` (the latest result of each pair).
pub fn scorecard(records: &[ProbeRecord], config: &Config) -> Scorecard {
    let table = requirements::Table::embedded().ok();
    Scorecard {
        table_version: table.map(|t| t.version),
        table_checked: table.map(|t| t.checked.clone()),
        routes: score_routes(records, config),
    }
}

/// One route's scores, per provider.
#[derive(Debug, Clone, Serialize)]
pub struct RouteRequirements {
    pub route: String,
    /// Whether the route is marked `bulk = true` (the bulk-sender requirements count).
    pub bulk: bool,
    /// When the probe scored was sent (Unix seconds); `null` when no probe of the route was
    /// found yet (then every observable requirement is `unknown`).
    pub probe_sent_at: Option<f64>,
    /// The seed whose probe was scored.
    pub seed: Option<String>,
    pub providers: Vec<ProviderScores>,
}

/// One provider's requirements for one route.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderScores {
    /// The table's id (`gmail`, `yahoo`, `microsoft`): the `provider` metric label.
    pub provider: String,
    pub name: String,
    pub scores: Vec<Score>,
}

impl RouteRequirements {
    /// The scores that are `unmet`, with their provider.
    pub fn unmet(&self) -> impl Iterator<Item = (&ProviderScores, &Score)> {
        self.providers.iter().flat_map(|p| {
            p.scores
                .iter()
                .filter(|s| s.status == ScoreStatus::Unmet)
                .map(move |s| (p, s))
        })
    }
}

/// One line per route × unmet requirement (the providers that require it named together), with
/// its cause and fix: what `once` prints under the results.
pub fn unmet_lines(routes: &[RouteRequirements]) -> Vec<String> {
    let mut lines: Vec<(String, Vec<&str>)> = Vec::new();
    for route in routes {
        for (provider, score) in route.unmet() {
            let cause = score.cause.map_or("unmet", |c| c.as_str());
            let fix = score.fix.as_deref().unwrap_or(&score.detail);
            let line = format!(
                "{}: {} unmet at {{}} ({}): {cause}: {fix}",
                route.route,
                score.requirement.as_str(),
                score.detail
            );
            match lines.iter_mut().find(|(l, _)| *l == line) {
                Some((_, providers)) => providers.push(&provider.name),
                None => lines.push((line, vec![&provider.name])),
            }
        }
    }
    lines
        .into_iter()
        .map(|(line, providers)| line.replacen("{}", &providers.join(", "), 1))
        .collect()
}

/// What `mailcanary_requirement_met` says of a score: met, unmet, or no series.
pub fn met(score: &Score) -> Option<bool> {
    match score.status {
        ScoreStatus::Met => Some(true),
        ScoreStatus::Unmet => Some(false),
        ScoreStatus::Unknown | ScoreStatus::NotObservable => None,
    }
}

/// Exports the scores of every route in `scored` (`mailcanary_requirement_met`).
pub fn export(scored: &[RouteRequirements], metrics: &crate::metrics::Metrics) {
    for route in scored {
        for provider in &route.providers {
            for score in &provider.scores {
                metrics.set_requirement(
                    &route.route,
                    &provider.provider,
                    score.requirement.as_str(),
                    met(score),
                );
            }
        }
    }
}

/// Scores every route of `config` from `records` (the latest result of each pair): each route
/// by its newest found probe. Empty when the embedded table cannot be read (logged; its tests
/// make that a build-time failure in practice).
pub fn score_routes(records: &[ProbeRecord], config: &Config) -> Vec<RouteRequirements> {
    if let Err(e) = requirements::Table::embedded() {
        tracing::error!(error = %e, reason = e.reason(), "no sender requirement table");
        return Vec::new();
    }
    // An inbound route sends as a provider to our own mailbox: the providers' sender
    // requirements are not about it.
    config
        .outbound_routes()
        .map(|route| {
            let probe = newest_found(records, &route.name);
            let obs = observations(route, probe.and_then(|r| r.judgement.as_ref()));
            scored_route(route, probe, &obs)
        })
        .collect()
}

/// One route scored at every provider of the embedded table from `obs`.
fn scored_route(
    route: &Route,
    probe: Option<&ProbeRecord>,
    obs: &Observations<'_>,
) -> RouteRequirements {
    let providers = requirements::Table::embedded()
        .map(|table| {
            table
                .providers
                .iter()
                .map(|provider| ProviderScores {
                    provider: provider.id.clone(),
                    name: provider.name.clone(),
                    scores: requirements::score_with(table, &provider.id, obs),
                })
                .collect()
        })
        .unwrap_or_default();
    RouteRequirements {
        route: route.name.clone(),
        bulk: route.bulk,
        probe_sent_at: probe.and_then(|r| r.sent_at),
        seed: probe.map(|r| r.seed.clone()),
        providers,
    }
}

/// Scores a route from its DNS audit alone (`check-dns`, which sends no probe): the DMARC
/// record (`dmarc_published`) and the PTR and FCrDNS of its first configured sending IP
/// (`ptr_fcrdns`); everything a probe would tell is `unknown` here.
pub fn score_audit(audit: &RouteAudit, route: &Route) -> RouteRequirements {
    let ip = route.sending_ips.first().copied();
    let check = |which: Check| -> Option<bool> {
        let subject = ip?.to_string();
        let result = audit
            .checks
            .iter()
            .find(|c| c.check == which && c.subject == subject)?;
        match result.status {
            CheckStatus::Ok | CheckStatus::Warn => Some(true),
            CheckStatus::Fail => Some(false),
            CheckStatus::Error => None,
        }
    };
    let dmarc = audit.checks.iter().find(|c| c.check == Check::Dmarc);
    let dmarc_record = match dmarc.map(|c| (c.status, c.cause)) {
        Some((_, Some(Cause::DmarcMissing))) => DmarcRecord::Missing,
        Some((_, Some(Cause::DmarcInvalid))) => DmarcRecord::Invalid,
        Some((CheckStatus::Error, _)) | None => DmarcRecord::Unknown,
        Some(_) => DmarcRecord::Published,
    };
    let obs = Observations {
        dmarc_record,
        seen_ip: ip,
        ptr: check(Check::Ptr),
        fcrdns: check(Check::Fcrdns),
        from_domain: Some(route.from_domain()),
        bulk: route.bulk,
        ..Observations::default()
    };
    scored_route(route, None, &obs)
}

/// The newest record of `route` that was found and judged.
fn newest_found<'a>(records: &'a [ProbeRecord], route: &str) -> Option<&'a ProbeRecord> {
    records
        .iter()
        .filter(|r| r.route == route && r.judgement.is_some())
        .max_by(|a, b| a.created_at.total_cmp(&b.created_at))
}

/// An RFC 8601 result as the scorer reads it; `None` when the receiver reported none.
fn reported(result: &AuthResult) -> Option<&str> {
    (*result != AuthResult::None).then(|| result.as_str())
}

/// What one check of the seen address's audit says: `Some(true)` ok or warn, `Some(false)`
/// fail, `None` not run or not finished.
fn check_passed(j: &Judgement, which: Check) -> Option<bool> {
    let check = j
        .seen_ip
        .as_ref()?
        .checks
        .iter()
        .find(|c| c.check == which)?;
    match check.status {
        CheckStatus::Ok | CheckStatus::Warn => Some(true),
        CheckStatus::Fail => Some(false),
        CheckStatus::Error => None,
    }
}

/// The observations of a route from its probe's judgement (none: nothing observed).
fn observations<'a>(route: &'a Route, j: Option<&'a Judgement>) -> Observations<'a> {
    let Some(j) = j else {
        return Observations {
            from_domain: Some(route.from_domain()),
            bulk: route.bulk,
            ..Observations::default()
        };
    };
    let v = &j.verdict;
    let dmarc_record = match v.dmarc {
        AuthResult::Pass | AuthResult::Fail => DmarcRecord::Published,
        AuthResult::PermError => DmarcRecord::Invalid,
        _ => DmarcRecord::Unknown,
    };
    Observations {
        spf: reported(&v.spf),
        dkim: reported(&v.dkim),
        dmarc: reported(&v.dmarc),
        dmarc_record,
        seen_ip: j.seen_ip.as_ref().map(|s| s.ip),
        ptr: check_passed(j, Check::Ptr),
        fcrdns: check_passed(j, Check::Fcrdns),
        last_hop_tls: j.path.as_ref().and_then(|p| p.seen.as_ref()?.tls),
        headers: j.headers.as_ref(),
        unsubscribe: j.unsubscribe.as_ref(),
        from_domain: Some(route.from_domain()),
        bulk: route.bulk,
    }
}

#[cfg(test)]
mod tests;
