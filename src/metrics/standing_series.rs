//! The standing family: where each route × seed pair stands ([`crate::standing`]: ok, suspect,
//! confirmed, recovered — what the alerts fire on), the confirmation probes sent and those not
//! sent (one in flight, or the seed's hourly budget spent), and the scheduled turns a pair
//! skipped because its previous probe was still in flight.

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::{Configured, Metrics, counter, int_gauge, retire};
use crate::config::Config;
use crate::standing::PairState;

/// The `reason` of `mailcanary_confirmations_skipped_total`.
pub const CONFIRMATION_SKIPS: [&str; 2] = ["in_flight", "budget"];

/// The pairs' standing series.
pub struct StandingMetrics {
    pub pair_state: IntGaugeVec,
    pub confirmation_probes: IntCounterVec,
    pub confirmations_skipped: IntCounterVec,
    pub probes_skipped: IntCounterVec,
}

impl StandingMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        StandingMetrics {
            pair_state: int_gauge(
                r,
                "mailcanary_pair_state",
                "1 for where this route and seed stand (ok; suspect: one bad outcome, a confirmation probe is on its way; confirmed: two in a row; recovered: good again after confirmed), 0 for the others.",
                &["route", "seed", "state"],
            ),
            confirmation_probes: counter(
                r,
                "mailcanary_confirmation_probes_total",
                "Probes sent outside the schedule to confirm a bad or overdue outcome of this route and seed.",
                &["route", "seed"],
            ),
            confirmations_skipped: counter(
                r,
                "mailcanary_confirmations_skipped_total",
                "Confirmation probes not sent: one in flight already, or the seed's hourly budget spent.",
                &["seed", "reason"],
            ),
            probes_skipped: counter(
                r,
                "mailcanary_probes_skipped_total",
                "Scheduled turns of this route and seed skipped because its previous probe was still in flight.",
                &["route", "seed"],
            ),
        }
    }

    /// Creates the counters of the configured seeds at 0; a pair's counters appear when first
    /// counted (the series budget: [`super::probe_series`]). The state gauge is set from the
    /// stored standings: a restart must not show a confirmed pair as ok for a moment.
    pub(super) fn preset(&self, config: &Config) {
        for seed in &config.seeds {
            for reason in CONFIRMATION_SKIPS {
                self.confirmations_skipped
                    .with_label_values(&[&seed.name, reason]);
            }
        }
    }

    /// Removes the series of routes and seeds the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.pair_state, c);
        retire(&self.confirmation_probes, c);
        retire(&self.confirmations_skipped, c);
        retire(&self.probes_skipped, c);
    }
}

impl Metrics {
    /// Sets where a pair stands (one-hot over the states); the prober logs the change.
    pub fn set_pair_state(&self, route: &str, seed: &str, state: PairState) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for s in PairState::ALL {
            self.standing
                .pair_state
                .with_label_values(&[route, seed, s.as_str()])
                .set(i64::from(s == state));
        }
    }

    /// Counts a confirmation probe sent (the prober logs it).
    pub fn confirmation_sent(&self, route: &str, seed: &str) {
        if self.exported(Some(route), Some(seed)) {
            self.standing
                .confirmation_probes
                .with_label_values(&[route, seed])
                .inc();
        }
    }

    /// Counts (and logs) a confirmation probe not sent, for one of [`CONFIRMATION_SKIPS`].
    pub fn confirmation_skipped(&self, seed: &str, reason: &'static str) {
        tracing::debug!(seed, reason, "confirmation probe not sent");
        if self.exported(None, Some(seed)) {
            self.standing
                .confirmations_skipped
                .with_label_values(&[seed, reason])
                .inc();
        }
    }

    /// Counts (and logs) a scheduled turn skipped because the pair's previous probe is still
    /// in flight.
    pub fn probe_skipped(&self, route: &str, seed: &str) {
        tracing::info!(
            route,
            seed,
            "previous probe still in flight; skipping this pair's turn"
        );
        if self.exported(Some(route), Some(seed)) {
            self.standing
                .probes_skipped
                .with_label_values(&[route, seed])
                .inc();
        }
    }
}
