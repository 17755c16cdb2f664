//! The requirement family: whether each route meets each provider's sender requirements, as
//! scored live from its newest found probe (`results::scorecard`, the table in
//! `data/sender-requirements.toml`). Labels are bounded: the route (config), the provider (the
//! table's ids) and the requirement (a fixed set, `requirements::RequirementId`).
//!
//! A requirement that is met is 1, unmet 0; one that is unknown this time or that a probe
//! cannot observe (complaint rate, volume) has no series, so an alert on `== 0` fires only on
//! what a probe showed unmet.

use prometheus::{IntGaugeVec, Registry};

use super::{Configured, Metrics, int_gauge, retire};

/// The requirement family's series.
pub struct RequirementMetrics {
    pub met: IntGaugeVec,
}

impl RequirementMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        RequirementMetrics {
            met: int_gauge(
                r,
                "mailcanary_requirement_met",
                "1 when the route's newest found probe meets this sender requirement of this provider, 0 when it shows it unmet; no series while unknown or not observable by a probe.",
                &["route", "provider", "requirement"],
            ),
        }
    }

    /// Removes the series of routes the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.met, c);
    }
}

impl Metrics {
    /// Sets one requirement of a route at a provider: `Some(true)` met (1), `Some(false)`
    /// unmet (0, logged), `None` unknown or not observable (no series).
    pub fn set_requirement(
        &self,
        route: &str,
        provider: &str,
        requirement: &str,
        met: Option<bool>,
    ) {
        if !self.exported(Some(route), None) {
            return;
        }
        match met {
            Some(met) => {
                if !met {
                    tracing::debug!(route, provider, requirement, "sender requirement unmet");
                }
                self.requirements
                    .met
                    .with_label_values(&[route, provider, requirement])
                    .set(i64::from(met));
            }
            None => {
                let _ = self
                    .requirements
                    .met
                    .remove_label_values(&[route, provider, requirement]);
            }
        }
    }
}
