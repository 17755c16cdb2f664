//! Every metric mailcanary exports, one module per family, each registering and describing its
//! own series beside the methods that set them (and log): [`probe_series`] (the rounds),
//! [`path_series`] (the path of found probes: handoff delays, TLS of the hop into the
//! receiver), [`requirement_series`] (the providers' sender requirements per route),
//! [`standing_series`] (where each pair stands, confirmation probes, skipped turns),
//! [`audit_series`] (the DNS audit), [`runtime_series`] (OAuth2 token expiries, config
//! reloads) and [`report_series`] (what the report mailboxes brought in). Labels are only
//! config names (`route`, `seed`) and fixed enums; never addresses, subjects, ids or error
//! text. Probes run on their own schedule: a scrape only reads what the last rounds recorded.
//! The families take plain values and the shared outcome types; nothing here imports the
//! pipelines that call it.
//!
//! The series follow the config: [`Metrics::preset`] creates every series of the configured
//! routes and seeds at 0 and removes those of routes and seeds a reload took away; from then
//! on a probe of a removed route or seed (still watched until it expires) is logged, not
//! exported, so no removed series comes back.

pub mod audit_series;
#[cfg(test)]
mod budget_tests;
pub mod path_series;
pub mod probe_series;
pub mod report_series;
pub mod requirement_series;
pub mod runtime_series;
pub mod standing_series;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::config::Config;
use audit_series::AuditMetrics;
use path_series::PathMetrics;
pub use probe_series::{IMAP_REASONS, ProbeMetrics, REJECTION_CLASSES, SEND_REASONS};
pub use report_series::{REPORT_ERROR_REASONS, ReportMetrics};
use requirement_series::RequirementMetrics;
use runtime_series::RuntimeMetrics;
pub use standing_series::{CONFIRMATION_SKIPS, StandingMetrics};

/// Every series, by family, in one registry.
pub struct Metrics {
    pub registry: Registry,
    pub build_info: IntGaugeVec,
    /// The probe rounds ([`probe_series`]).
    pub probe: ProbeMetrics,
    /// The path of found probes ([`path_series`]).
    pub path: PathMetrics,
    /// The providers' sender requirements per route ([`requirement_series`]).
    pub requirements: RequirementMetrics,
    /// Where each pair stands, confirmation probes, skipped turns ([`standing_series`]).
    pub standing: StandingMetrics,
    /// The DNS audit ([`audit_series`]).
    pub audit: AuditMetrics,
    /// OAuth2 token expiries and config reloads ([`runtime_series`]).
    pub runtime: RuntimeMetrics,
    /// What the report mailboxes brought in (DMARC aggregate and TLS reports).
    pub reports: ReportMetrics,
    /// The routes, seeds and pairs of the config in force; `None` until [`Metrics::preset`]
    /// (then every series is recorded).
    configured: RwLock<Option<Configured>>,
}

/// The names a series may carry: those of the config in force.
#[derive(Debug, Default)]
pub(crate) struct Configured {
    routes: BTreeSet<String>,
    /// Seeds, bounce and report mailboxes (all are `seed` in `mailcanary_imap_errors_total`).
    mailboxes: BTreeSet<String>,
    pairs: BTreeSet<(String, String)>,
}

impl Configured {
    fn of(config: &Config) -> Configured {
        Configured {
            routes: config.routes.iter().map(|r| r.name.clone()).collect(),
            mailboxes: config
                .seeds
                .iter()
                .chain(&config.bounce_mailboxes)
                .chain(config.report_mailboxes.iter().map(|m| &m.mailbox))
                .map(|s| s.name.clone())
                .collect(),
            pairs: config
                .pairs()
                .into_iter()
                .map(|(r, s)| (r.name.clone(), s.name.clone()))
                .collect(),
        }
    }

    /// Whether a series with these `route` / `seed` label values belongs to the config.
    fn keeps(&self, route: Option<&str>, seed: Option<&str>) -> bool {
        match (route, seed) {
            (Some(r), Some(s)) => self.pairs.contains(&(r.to_string(), s.to_string())),
            (Some(r), None) => self.routes.contains(r),
            (None, Some(s)) => self.mailboxes.contains(s),
            (None, None) => true,
        }
    }
}

/// Removes the series of `vec` whose `route` / `seed` labels the config no longer has.
pub(crate) fn retire<T: MetricVecBuilder>(vec: &MetricVec<T>, configured: &Configured) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            // A mailbox is a `seed` in the older series, a `mailbox` in the newer ones.
            let mailbox = labels.get("seed").or_else(|| labels.get("mailbox"));
            let (route, seed) = (labels.get("route").copied(), mailbox.copied());
            if !configured.keeps(route, seed) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

pub(crate) fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

pub(crate) fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

pub(crate) fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

pub(crate) fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

impl Metrics {
    /// Builds the registry. Metric definitions are static, so a failure here is a programming
    /// error caught by the tests, not a runtime condition.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let m = Metrics {
            build_info: int_gauge(
                &r,
                "mailcanary_build_info",
                "Always 1; the version label says which build runs.",
                &["version"],
            ),
            probe: ProbeMetrics::new(&r),
            path: PathMetrics::new(&r),
            requirements: RequirementMetrics::new(&r),
            standing: StandingMetrics::new(&r),
            audit: AuditMetrics::new(&r),
            runtime: RuntimeMetrics::new(&r),
            reports: ReportMetrics::new(&r),
            registry: r,
            configured: RwLock::new(None),
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        if let Ok(pc) =
            std::panic::catch_unwind(prometheus::process_collector::ProcessCollector::for_self)
        {
            let _ = m.registry.register(Box::new(pc));
        }
        m
    }

    /// Creates every known series at 0, so dashboards and `rate()` see them from the start, and
    /// removes the series of routes, seeds and pairs that `config` no longer has (a reload).
    pub fn preset(&self, config: &Config) {
        let configured = Configured::of(config);
        self.probe.retire(&configured);
        self.path.retire(&configured);
        self.requirements.retire(&configured);
        self.standing.retire(&configured);
        self.audit.retire(&configured);
        self.runtime.retire(&configured);
        *self.configured.write().unwrap_or_else(|e| e.into_inner()) = Some(configured);
        self.probe.preset(config);
        self.path.preset(config);
        self.standing.preset(config);
        for mailbox in &config.report_mailboxes {
            self.reports.preset(mailbox);
        }
        self.runtime.preset(config);
    }

    /// Whether series with these labels are exported: they belong to the config in force (a
    /// probe of a route or seed a reload removed is still watched, and only logged).
    pub(crate) fn exported(&self, route: Option<&str>, seed: Option<&str>) -> bool {
        match &*self.configured.read().unwrap_or_else(|e| e.into_inner()) {
            Some(c) => c.keeps(route, seed),
            None => true,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

pub(crate) fn int_gauge_plain(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

pub(crate) fn gauge_plain(r: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}
