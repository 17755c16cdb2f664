//! The path family: what the `Received:` hops of found probes say ([`crate::path`]) — the
//! handoff delays per route (submission → receiving MX, receiving MX → mailbox; a bounded
//! `hop` label, [`Leg`]) and the TLS version of the hop into the receiver of each route × seed
//! pair's latest found probe (one series per pair: the current version only).
//!
//! The delays come from the hosts' own timestamps (whole seconds, RFC 5322 §3.3): a negative
//! one (clocks that disagree) counts as 0. Per route, not per pair: the path into one receiver
//! is the route's business, and issue #23 keeps the series per pair few.

use prometheus::{HistogramVec, IntGaugeVec, Registry};

use super::{Configured, Metrics, histogram, int_gauge, retire};
use crate::config::Config;
use crate::path::{LAST_HOP_TLS_LABELS, Leg, Path};

/// Handoff buckets, seconds (the timestamps are whole seconds): 1 s … 1 h.
const HANDOFF_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The path family's series.
pub struct PathMetrics {
    pub handoff: HistogramVec,
    pub last_hop_tls: IntGaugeVec,
}

impl PathMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        PathMetrics {
            handoff: histogram(
                r,
                "mailcanary_handoff_duration_seconds",
                "Delay of one leg of a found probe's path, from the Received: timestamps the hosts wrote (hop: receiving_mx = submission to the receiving MX, mailbox = receiving MX to the mailbox); per route.",
                &["route", "hop"],
                &HANDOFF_BUCKETS,
            ),
            last_hop_tls: int_gauge(
                r,
                "mailcanary_last_hop_tls",
                "1 for the TLS version of the hop into the receiver of the latest found probe of this route and seed (tls1.3, tls1.2, ..., tls_unstated, none, unknown); one series per pair.",
                &["route", "seed", "version"],
            ),
        }
    }

    /// Creates the handoff histograms of the configured routes.
    pub(super) fn preset(&self, config: &Config) {
        for route in &config.routes {
            for leg in Leg::ALL {
                self.handoff.with_label_values(&[&route.name, leg.as_str()]);
            }
        }
    }

    /// Removes the series of routes and seeds the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.handoff, c);
        retire(&self.last_hop_tls, c);
    }
}

impl Metrics {
    /// Records the handoff delays of a found probe's path (and logs them).
    pub fn path_observed(&self, route: &str, seed: &str, path: &Path) {
        tracing::debug!(
            route,
            seed,
            receiving_mx_seconds = path.handoff(Leg::ReceivingMx).unwrap_or(-1),
            mailbox_seconds = path.handoff(Leg::Mailbox).unwrap_or(-1),
            last_hop_tls = path.last_hop_tls(),
            "probe path"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for handoff in &path.handoffs {
            self.path
                .handoff
                .with_label_values(&[route, handoff.hop.as_str()])
                .observe(handoff.non_negative_seconds() as f64);
        }
    }

    /// Replaces the TLS version of the hop into the receiver of a pair's latest found probe:
    /// the series of `version` (one of [`LAST_HOP_TLS_LABELS`]) is 1, the others are removed.
    pub fn set_last_hop_tls(&self, route: &str, seed: &str, version: &str) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for label in LAST_HOP_TLS_LABELS {
            if label == version {
                self.path
                    .last_hop_tls
                    .with_label_values(&[route, seed, label])
                    .set(1);
            } else {
                let _ = self
                    .path
                    .last_hop_tls
                    .remove_label_values(&[route, seed, label]);
            }
        }
    }
}
