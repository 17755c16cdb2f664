//! Every metric mailcanary exports, in one place. Labels are only config names (`route`, `seed`)
//! and fixed enums; never addresses, subjects, ids or error text. Probes run on their own
//! schedule: a scrape only reads what the last rounds recorded.
//!
//! The series follow the config: [`Metrics::preset`] creates every series of the configured
//! routes and seeds at 0 and removes those of routes and seeds a reload took away; from then
//! on a probe of a removed route or seed (still watched until it expires) is logged, not
//! exported, so no removed series comes back.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::config::Config;
use crate::dns_audit::{AuditReport, Check};
use crate::gmail::Tab;
use crate::probe::imap::ImapError;
use crate::probe::outcome::{Bounce, Judgement, Placement};
use crate::probe::send::SendOutcome;
use crate::verdict::Method;

pub const SEND_REASONS: [&str; 8] = [
    "smtp_transient",
    "smtp_permanent",
    "tls",
    "auth",
    "network",
    "timeout",
    "config",
    "dkim_sign",
];
/// The `class` of `mailcanary_probes_rejected_total`: what kind of refusal a bounce names.
pub const REJECTION_CLASSES: [&str; 7] = [
    "auth",
    "ptr",
    "blocklist",
    "policy",
    "rate_limit",
    "recipient",
    "other",
];
pub const IMAP_REASONS: [&str; 6] = ["network", "tls", "auth", "timeout", "protocol", "throttled"];
/// Delivery buckets: 0.1 s … 30 min.
const DELIVERY_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1500.0,
    1800.0,
];
const SMTP_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Metrics {
    pub registry: Registry,
    pub probes_sent: IntCounterVec,
    pub send_failures: IntCounterVec,
    pub probes_received: IntCounterVec,
    pub probes_missing: IntCounterVec,
    pub probes_late: IntCounterVec,
    pub probes_unknown: IntCounterVec,
    pub probes_rejected: IntCounterVec,
    pub bounces: IntCounterVec,
    pub auth_results: IntCounterVec,
    pub delivery_duration: HistogramVec,
    pub smtp_send_duration: HistogramVec,
    pub last_placement: IntGaugeVec,
    pub last_auth_pass: IntGaugeVec,
    pub spam_score: GaugeVec,
    pub last_success: GaugeVec,
    pub last_round: Gauge,
    pub round_interval: Gauge,
    pub imap_errors: IntCounterVec,
    pub forged_probes: IntCounterVec,
    pub foreign_probes: IntCounterVec,
    pub config_reload_successful: IntGauge,
    pub config_reload_success_timestamp: Gauge,
    pub build_info: IntGaugeVec,
    pub diagnosis: IntGaugeVec,
    pub last_tab: IntGaugeVec,
    pub dns_check_ok: IntGaugeVec,
    pub dnsbl_listed: IntGaugeVec,
    pub dkim_key_bits: IntGaugeVec,
    pub spf_dns_lookups: IntGaugeVec,
    /// What the report mailboxes brought in (DMARC aggregate and TLS reports).
    pub reports: ReportMetrics,
    pub oauth_token_expiry: GaugeVec,
    pub oauth_route_token_expiry: GaugeVec,
    /// The routes, seeds and pairs of the config in force; `None` until [`Metrics::preset`]
    /// (then every series is recorded).
    configured: RwLock<Option<Configured>>,
}

/// The names a series may carry: those of the config in force.
#[derive(Debug, Default)]
struct Configured {
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
fn retire<T: MetricVecBuilder>(vec: &MetricVec<T>, configured: &Configured) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            let (route, seed) = (labels.get("route").copied(), labels.get("seed").copied());
            if !configured.keeps(route, seed) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn histogram(
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
            probes_sent: counter(
                &r,
                "mailcanary_probes_sent_total",
                "Probe messages accepted by the route's SMTP server.",
                &["route", "seed"],
            ),
            send_failures: counter(
                &r,
                "mailcanary_send_failures_total",
                "Probe messages the route's SMTP server did not accept, by fixed reason.",
                &["route", "reason"],
            ),
            probes_received: counter(
                &r,
                "mailcanary_probes_received_total",
                "Probe messages found in the seed mailbox, by placement (inbox, spam, other).",
                &["route", "seed", "placement"],
            ),
            probes_missing: counter(
                &r,
                "mailcanary_probes_missing_total",
                "Probes not found before the timeout while the mailbox was readable.",
                &["route", "seed"],
            ),
            probes_late: counter(
                &r,
                "mailcanary_probes_late_total",
                "Probes found after the timeout but within the late window.",
                &["route", "seed"],
            ),
            probes_rejected: counter(
                &r,
                "mailcanary_probes_rejected_total",
                "Probes the receiving server refused: a bounce (DSN) for them came back, by kind of refusal.",
                &["route", "seed", "class"],
            ),
            bounces: counter(
                &r,
                "mailcanary_bounces_total",
                "Bounces and delay notices of our probes read from the route's bounce mailbox.",
                &["route"],
            ),
            probes_unknown: counter(
                &r,
                "mailcanary_probes_unknown_total",
                "Probes whose mailbox could not be read before the timeout (placement unknown, not missing).",
                &["route", "seed"],
            ),
            auth_results: counter(
                &r,
                "mailcanary_auth_results_total",
                "Receiver verdicts of found probes, per method and result.",
                &["route", "seed", "method", "result"],
            ),
            delivery_duration: histogram(
                &r,
                "mailcanary_delivery_duration_seconds",
                "Time from SMTP acceptance to the probe being seen in the seed mailbox.",
                &["route", "seed"],
                &DELIVERY_BUCKETS,
            ),
            smtp_send_duration: histogram(
                &r,
                "mailcanary_smtp_send_duration_seconds",
                "Time the SMTP transaction took, connect to final reply.",
                &["route"],
                &SMTP_BUCKETS,
            ),
            last_placement: int_gauge(
                &r,
                "mailcanary_last_placement",
                "1 for the placement of the latest probe of this route and seed, 0 for the others.",
                &["route", "seed", "placement"],
            ),
            last_auth_pass: int_gauge(
                &r,
                "mailcanary_last_auth_pass",
                "1 if the latest found probe passed this method at the receiver, else 0.",
                &["route", "seed", "method"],
            ),
            spam_score: gauge(
                &r,
                "mailcanary_spam_score",
                "The receiver's spam score of the latest found probe (NaN when the receiver writes none).",
                &["route", "seed"],
            ),
            last_success: gauge(
                &r,
                "mailcanary_last_success_timestamp_seconds",
                "When a probe last landed in the inbox with SPF, DKIM and DMARC passing (Unix time).",
                &["route", "seed"],
            ),
            last_round: gauge_plain(
                &r,
                "mailcanary_last_round_timestamp_seconds",
                "When the last probe round finished (Unix time).",
            ),
            round_interval: gauge_plain(
                &r,
                "mailcanary_round_interval_seconds",
                "The configured interval between probe rounds.",
            ),
            imap_errors: counter(
                &r,
                "mailcanary_imap_errors_total",
                "Errors reading a seed mailbox, by fixed reason.",
                &["seed", "reason"],
            ),
            forged_probes: counter(
                &r,
                "mailcanary_forged_probes_total",
                "Messages carrying a probe token that does not verify or was already used; never touched.",
                &["seed"],
            ),
            foreign_probes: counter(
                &r,
                "mailcanary_foreign_probes_total",
                "Valid probe messages of another instance sharing the seed mailbox and token key; never judged or touched.",
                &["seed"],
            ),
            config_reload_successful: int_gauge_plain(
                &r,
                "mailcanary_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            ),
            config_reload_success_timestamp: gauge_plain(
                &r,
                "mailcanary_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            ),
            build_info: int_gauge(
                &r,
                "mailcanary_build_info",
                "Always 1; the version label says which build runs.",
                &["version"],
            ),
            diagnosis: int_gauge(
                &r,
                "mailcanary_diagnosis",
                "1 when the latest probe of this route and seed has this diagnosed cause.",
                &["route", "seed", "cause"],
            ),
            last_tab: int_gauge(
                &r,
                "mailcanary_last_tab",
                "1 for the Gmail inbox tab the latest probe of this route and seed was filed under; no series when it has none.",
                &["route", "seed", "tab"],
            ),
            dns_check_ok: int_gauge(
                &r,
                "mailcanary_dns_check_ok",
                "1 when the DNS audit check passed for the route, 0 when it failed.",
                &["route", "check"],
            ),
            dnsbl_listed: int_gauge(
                &r,
                "mailcanary_dnsbl_listed",
                "1 when a sending IP of the route is listed in this DNS blocklist zone.",
                &["route", "zone"],
            ),
            dkim_key_bits: int_gauge(
                &r,
                "mailcanary_dkim_key_bits",
                "Size of the route's published DKIM key in bits.",
                &["route"],
            ),
            spf_dns_lookups: int_gauge(
                &r,
                "mailcanary_spf_dns_lookups",
                "DNS lookups the route's SPF record needs (RFC 7208 limit: 10).",
                &["route"],
            ),
            reports: ReportMetrics::new(&r),
            oauth_token_expiry: gauge(
                &r,
                "mailcanary_oauth_token_expiry_timestamp_seconds",
                "When the OAuth2 access token of a seed (or bounce mailbox) login expires (Unix time; 0 until one was had). Refreshed ahead of expiry every round: in the past means the refresh fails.",
                &["seed"],
            ),
            oauth_route_token_expiry: gauge(
                &r,
                "mailcanary_oauth_route_token_expiry_timestamp_seconds",
                "When the OAuth2 access token of a route's SMTP login expires (Unix time; 0 until one was had).",
                &["route"],
            ),
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
        self.retire_all(&configured);
        *self.configured.write().unwrap_or_else(|e| e.into_inner()) = Some(configured);
        self.round_interval.set(config.probe.interval.as_secs_f64());
        for (route, seed) in config.pairs() {
            let (r, s) = (route.name.as_str(), seed.name.as_str());
            self.probes_sent.with_label_values(&[r, s]);
            self.probes_missing.with_label_values(&[r, s]);
            self.probes_late.with_label_values(&[r, s]);
            self.probes_unknown.with_label_values(&[r, s]);
            for class in REJECTION_CLASSES {
                self.probes_rejected.with_label_values(&[r, s, class]);
            }
            for p in ["inbox", "spam", "other"] {
                self.probes_received.with_label_values(&[r, s, p]);
            }
            for method in ["spf", "dkim", "dmarc"] {
                for result in ["pass", "fail"] {
                    self.auth_results.with_label_values(&[r, s, method, result]);
                }
            }
            self.delivery_duration.with_label_values(&[r, s]);
        }
        for route in &config.routes {
            for reason in SEND_REASONS {
                self.send_failures.with_label_values(&[&route.name, reason]);
            }
            self.smtp_send_duration.with_label_values(&[&route.name]);
            self.bounces.with_label_values(&[&route.name]);
        }
        for seed in &config.seeds {
            for reason in IMAP_REASONS {
                self.imap_errors.with_label_values(&[&seed.name, reason]);
            }
            self.forged_probes.with_label_values(&[&seed.name]);
            self.foreign_probes.with_label_values(&[&seed.name]);
        }
        for mailbox in &config.bounce_mailboxes {
            for reason in IMAP_REASONS {
                self.imap_errors.with_label_values(&[&mailbox.name, reason]);
            }
        }
        for mailbox in &config.report_mailboxes {
            for reason in IMAP_REASONS {
                self.imap_errors
                    .with_label_values(&[&mailbox.mailbox.name, reason]);
            }
            self.reports.preset(mailbox);
        }
        for (kind, name, _) in config.oauth_logins() {
            self.oauth_gauge(kind, name).set(0.0);
        }
    }

    /// The expiry gauge of an OAuth2 login: `route` for routes, else `seed` (bounce mailboxes
    /// share the seed label, as in `mailcanary_imap_errors_total`).
    fn oauth_gauge(&self, kind: &str, name: &str) -> prometheus::Gauge {
        if kind == "route" {
            self.oauth_route_token_expiry.with_label_values(&[name])
        } else {
            self.oauth_token_expiry.with_label_values(&[name])
        }
    }

    /// Records when an OAuth2 login's access token expires (logged at debug level).
    pub fn oauth_token(&self, kind: &str, name: &str, expiry: Option<std::time::SystemTime>) {
        let Some(expiry) = expiry else {
            return;
        };
        let seconds = expiry
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        tracing::debug!(kind, name, expires = seconds, "OAuth2 access token");
        self.oauth_gauge(kind, name).set(seconds);
    }

    /// Records a failed OAuth2 token refresh (and logs it): for a seed or bounce mailbox an
    /// `auth` error of its mailbox; a route's shows as its failed send.
    pub fn oauth_refresh_failed(&self, kind: &str, name: &str, error: &crate::oauth::OAuthError) {
        tracing::warn!(kind, name, reason = error.reason(), error = %error, "OAuth2 token refresh failed");
        if kind != "route" {
            self.imap_errors
                .with_label_values(&[name, error.reason()])
                .inc();
        }
    }

    fn retire_all(&self, c: &Configured) {
        retire(&self.probes_sent, c);
        retire(&self.send_failures, c);
        retire(&self.probes_received, c);
        retire(&self.probes_missing, c);
        retire(&self.probes_late, c);
        retire(&self.probes_unknown, c);
        retire(&self.probes_rejected, c);
        retire(&self.bounces, c);
        retire(&self.auth_results, c);
        retire(&self.delivery_duration, c);
        retire(&self.smtp_send_duration, c);
        retire(&self.last_placement, c);
        retire(&self.last_auth_pass, c);
        retire(&self.spam_score, c);
        retire(&self.last_success, c);
        retire(&self.imap_errors, c);
        retire(&self.forged_probes, c);
        retire(&self.foreign_probes, c);
        retire(&self.diagnosis, c);
        retire(&self.dns_check_ok, c);
        retire(&self.dnsbl_listed, c);
        retire(&self.dkim_key_bits, c);
        retire(&self.spf_dns_lookups, c);
        retire(&self.oauth_token_expiry, c);
        retire(&self.oauth_route_token_expiry, c);
    }

    /// Whether series with these labels are exported: they belong to the config in force (a
    /// probe of a route or seed a reload removed is still watched, and only logged).
    fn exported(&self, route: Option<&str>, seed: Option<&str>) -> bool {
        match &*self.configured.read().unwrap_or_else(|e| e.into_inner()) {
            Some(c) => c.keeps(route, seed),
            None => true,
        }
    }

    /// Records the outcome of a config reload as Prometheus records its own: success sets the
    /// timestamp; a refused file leaves the running config and the timestamp as they were.
    pub fn config_loaded(&self, ok: bool, at: f64) {
        self.config_reload_successful.set(i64::from(ok));
        if ok {
            self.config_reload_success_timestamp.set(at);
        }
    }

    pub fn set_last_placement(&self, route: &str, seed: &str, placement: Placement) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for p in Placement::ALL {
            self.last_placement
                .with_label_values(&[route, seed, p.as_str()])
                .set(i64::from(p == placement));
        }
    }

    /// Records a found probe (and logs it).
    #[allow(clippy::too_many_arguments)]
    pub fn probe_found(
        &self,
        route: &str,
        seed: &str,
        folder: &str,
        placement: Placement,
        j: &Judgement,
        delivery: Option<f64>,
        late: bool,
    ) {
        tracing::info!(
            route,
            seed,
            placement = placement.as_str(),
            folder,
            spf = j.verdict.spf.as_str(),
            dkim = j.verdict.dkim.as_str(),
            dmarc = j.verdict.dmarc.as_str(),
            delivery_seconds = delivery.unwrap_or(f64::NAN),
            late,
            "probe found"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.probes_received
            .with_label_values(&[route, seed, placement.as_str()])
            .inc();
        if late {
            self.probes_late.with_label_values(&[route, seed]).inc();
        }
        if let Some(d) = delivery {
            self.delivery_duration
                .with_label_values(&[route, seed])
                .observe(d);
        }
        let v = &j.verdict;
        for method in Method::ALL {
            let result = v.get(method);
            let method = method.as_str();
            self.auth_results
                .with_label_values(&[route, seed, method, result.label()])
                .inc();
        }
        for method in [Method::Spf, Method::Dkim, Method::Dmarc] {
            let (result, method) = (v.get(method), method.as_str());
            self.last_auth_pass
                .with_label_values(&[route, seed, method])
                .set(i64::from(result.is_pass()));
        }
        self.spam_score
            .with_label_values(&[route, seed])
            .set(j.spam.score.unwrap_or(f64::NAN));
        self.set_last_placement(route, seed, placement);
        if placement == Placement::Inbox && v.spf.is_pass() && v.dkim.is_pass() && v.dmarc.is_pass()
        {
            self.last_success
                .with_label_values(&[route, seed])
                .set(crate::probe::store::now());
        }
    }

    /// Records a probe the SMTP server accepted (and logs it).
    pub fn probe_sent(&self, route: &str, seed: &str, outcome: &SendOutcome) {
        tracing::info!(
            route,
            seed,
            code = outcome.code,
            queue_id = outcome.queue_id.as_deref().unwrap_or("-"),
            "probe sent"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.probes_sent.with_label_values(&[route, seed]).inc();
        self.smtp_send_duration
            .with_label_values(&[route])
            .observe(outcome.duration_seconds);
    }

    /// Records a probe that could not be sent (and logs why): the pair's last placement is
    /// `missing`, since no probe can arrive.
    pub fn send_failed(
        &self,
        route: &str,
        seed: &str,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        tracing::warn!(route, seed, reason, error = %error, "probe not sent");
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.send_failures.with_label_values(&[route, reason]).inc();
        self.set_last_placement(route, seed, Placement::Missing);
    }

    /// Records a probe that could not even be composed (a config problem; logged).
    pub fn compose_failed(
        &self,
        route: &str,
        seed: &str,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        tracing::error!(route, seed, reason, error = %error, "cannot compose probe");
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.send_failures.with_label_values(&[route, reason]).inc();
    }

    /// Records an IMAP error of a seed mailbox (and logs it).
    pub fn imap_error(&self, seed: &str, error: &ImapError) {
        tracing::warn!(seed, reason = error.reason(), error = %error, "IMAP error");
        if !self.exported(None, Some(seed)) {
            return;
        }
        self.imap_errors
            .with_label_values(&[seed, error.reason()])
            .inc();
    }

    /// Records a message that carries a probe header but is not a probe of ours (logged).
    pub fn forged_probe(&self, seed: &str, folder: &str, why: &str) {
        tracing::warn!(
            seed,
            folder,
            why,
            "ignoring a message with a probe header that is not ours"
        );
        if self.exported(None, Some(seed)) {
            self.forged_probes.with_label_values(&[seed]).inc();
        }
    }

    /// Records a valid probe of another instance found in a seed mailbox (left alone; logged at
    /// debug level: every round of every other instance brings some).
    pub fn foreign_probe(&self, seed: &str, folder: &str, instance: &str) {
        tracing::debug!(
            seed,
            folder,
            instance,
            "leaving another instance's probe alone"
        );
        if self.exported(None, Some(seed)) {
            self.foreign_probes.with_label_values(&[seed]).inc();
        }
    }

    /// Records a probe that was not found before its timeout: `missing`, or `unknown` when the
    /// mailbox could not be read. `first_time` is false when an earlier round already expired
    /// it (it is then not counted again).
    pub fn probe_expired(&self, route: &str, seed: &str, placement: Placement, first_time: bool) {
        tracing::warn!(
            route,
            seed,
            placement = placement.as_str(),
            "probe not found before the timeout"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        if first_time {
            let counter = if placement == Placement::Unknown {
                &self.probes_unknown
            } else {
                &self.probes_missing
            };
            counter.with_label_values(&[route, seed]).inc();
        }
        self.set_last_placement(route, seed, placement);
    }

    /// Records a bounce or delay notice of one of a route's probes, read from its bounce mailbox.
    pub fn bounce_read(&self, route: &str) {
        if self.exported(Some(route), None) {
            self.bounces.with_label_values(&[route]).inc();
        }
    }

    /// Records a probe the receiving server refused (and logs the reply).
    pub fn probe_rejected(&self, route: &str, seed: &str, bounce: &Bounce) {
        let class = match bounce.class.as_str() {
            // A full mailbox is the recipient's problem, like an unknown one.
            "mailbox_full" => "recipient",
            c if REJECTION_CLASSES.contains(&c) => c,
            _ => "other",
        };
        tracing::warn!(
            route,
            seed,
            class,
            status = bounce.status.as_deref().unwrap_or("-"),
            reply = bounce.diagnostic_code.as_deref().unwrap_or("-"),
            "probe rejected by the receiving server"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.probes_rejected
            .with_label_values(&[route, seed, class])
            .inc();
        self.set_last_placement(route, seed, Placement::Rejected);
    }

    /// Logs a delay notice of a probe (still watched).
    pub fn probe_deferred(&self, route: &str, seed: &str, bounce: &Bounce) {
        tracing::warn!(
            route,
            seed,
            status = bounce.status.as_deref().unwrap_or("-"),
            reply = bounce.diagnostic_code.as_deref().unwrap_or("-"),
            "probe deferred by the receiving server"
        );
    }

    /// Records the end of a round (Unix time).
    pub fn round_finished(&self, at: f64) {
        self.last_round.set(at);
    }

    /// Exports one route's DNS audit (and logs its status).
    pub fn record_audit(&self, report: &AuditReport) {
        tracing::info!(route = %report.route, status = report.status().as_str(), "DNS audit");
        if !self.exported(Some(&report.route), None) {
            return;
        }
        for check in Check::ALL {
            if let Some(ok) = report.check_ok(check) {
                self.dns_check_ok
                    .with_label_values(&[&report.route, check.as_str()])
                    .set(i64::from(ok));
            }
        }
        for z in &report.dnsbl {
            if let Some(listed) = z.listed {
                self.dnsbl_listed
                    .with_label_values(&[&report.route, &z.zone])
                    .set(i64::from(listed));
            }
        }
        if let Some(bits) = report.dkim_key_bits {
            self.dkim_key_bits
                .with_label_values(&[&report.route])
                .set(i64::from(bits));
        }
        if let Some(n) = report.spf_dns_lookups {
            self.spf_dns_lookups
                .with_label_values(&[&report.route])
                .set(i64::from(n));
        }
    }

    /// Replaces the diagnosed causes of a route × seed pair: a series per current cause (1);
    /// causes that no longer apply are removed, so the series count stays at what is wrong now
    /// rather than every cause × every pair.
    pub fn set_diagnosis(&self, route: &str, seed: &str, all_causes: &[&str], current: &[&str]) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for cause in all_causes {
            if current.contains(cause) {
                self.diagnosis
                    .with_label_values(&[route, seed, cause])
                    .set(1);
            } else {
                let _ = self.diagnosis.remove_label_values(&[route, seed, cause]);
            }
        }
    }

    /// Replaces the Gmail tab of a route × seed pair's latest probe: one series for the
    /// current tab (1), none when the probe has no tab (not Gmail, not in the inbox).
    pub fn set_last_tab(&self, route: &str, seed: &str, tab: Option<Tab>) {
        for t in Tab::ALL {
            if Some(t) == tab {
                self.last_tab
                    .with_label_values(&[route, seed, t.as_str()])
                    .set(1);
            } else {
                let _ = self
                    .last_tab
                    .remove_label_values(&[route, seed, t.as_str()]);
            }
        }
        if let Some(t) = tab {
            tracing::debug!(route, seed, tab = t.as_str(), "Gmail tab");
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

/// The `mailcanary_dmarc_*`, `mailcanary_tls_*` and `mailcanary_report_*` series. Labels are
/// a configured domain, a reporter label from [`crate::reports::labels`] (a configured list plus
/// `other`) and fixed result words: never a source IP, a report id or anything else a report
/// says as written.
pub struct ReportMetrics {
    pub dmarc_messages: IntCounterVec,
    pub dmarc_reports: IntCounterVec,
    pub dmarc_last_report: GaugeVec,
    pub tls_sessions: IntCounterVec,
    pub tls_failures: IntCounterVec,
    pub errors: IntCounterVec,
    pub last_read: GaugeVec,
}

/// The `reason` of `mailcanary_report_errors_total`: the report reader's fixed reasons.
pub const REPORT_ERROR_REASONS: [&str; 15] = [
    "empty",
    "too_large",
    "too_many",
    "not_xml",
    "not_json",
    "doctype",
    "not_feedback",
    "missing_element",
    "bad_number",
    "bad_date",
    "corrupt",
    "unsupported_compression",
    "count_too_large",
    "bad_period",
    "state",
];

impl ReportMetrics {
    fn new(r: &Registry) -> Self {
        ReportMetrics {
            dmarc_messages: counter(
                r,
                "mailcanary_dmarc_messages_total",
                "Messages claiming the domain that receivers counted in DMARC aggregate reports, by the disposition applied and the policy-evaluated (aligned) DKIM and SPF result. Counted when a report is read, once per report.",
                &["domain", "reporter", "disposition", "dkim", "spf"],
            ),
            dmarc_reports: counter(
                r,
                "mailcanary_dmarc_reports_total",
                "DMARC aggregate reports read (each reporter + report id once).",
                &["domain", "reporter"],
            ),
            dmarc_last_report: gauge(
                r,
                "mailcanary_dmarc_last_report_timestamp_seconds",
                "End of the period covered by the newest DMARC aggregate report of this reporter (restored from the state database at start-up).",
                &["domain", "reporter"],
            ),
            tls_sessions: counter(
                r,
                "mailcanary_tls_sessions_total",
                "SMTP TLS sessions to the domain's MX that receivers reported in TLS reports (RFC 8460), by result (successful, failed).",
                &["domain", "reporter", "result"],
            ),
            tls_failures: counter(
                r,
                "mailcanary_tls_failures_total",
                "Failed SMTP TLS sessions reported in TLS reports, by RFC 8460 result type (other: a type outside RFC 8460).",
                &["domain", "reporter", "result_type"],
            ),
            errors: counter(
                r,
                "mailcanary_report_errors_total",
                "Messages in a report mailbox that looked like a report but could not be read, by fixed reason.",
                &["mailbox", "reason"],
            ),
            last_read: gauge(
                r,
                "mailcanary_report_mailbox_last_read_timestamp_seconds",
                "When the report mailbox was last read completely.",
                &["mailbox"],
            ),
        }
    }

    /// The series a report mailbox always has.
    fn preset(&self, m: &crate::config::ReportMailbox) {
        let name = m.mailbox.name.as_str();
        for reason in REPORT_ERROR_REASONS {
            self.errors.with_label_values(&[name, reason]);
        }
        for domain in &m.domains {
            for reporter in m.reporters.iter().map(String::as_str).chain(["other"]) {
                self.dmarc_reports.with_label_values(&[domain, reporter]);
                // Every combination, so `increase()` sees a report's first messages too.
                for disposition in ["none", "quarantine", "reject", "other"] {
                    for dkim in ["pass", "fail"] {
                        for spf in ["pass", "fail"] {
                            self.dmarc_messages.with_label_values(&[
                                domain,
                                reporter,
                                disposition,
                                dkim,
                                spf,
                            ]);
                        }
                    }
                }
                for result in ["successful", "failed"] {
                    self.tls_sessions
                        .with_label_values(&[domain, reporter, result]);
                }
            }
        }
    }

    /// Counts one newly stored DMARC aggregate report (never a duplicate).
    pub fn dmarc_report(
        &self,
        mailbox: &str,
        domain: &str,
        reporter: &str,
        report: &crate::reports::dmarc::AggregateReport,
    ) {
        use crate::reports::labels;
        let messages = crate::reports::saturating_sum(report.records.iter().map(|r| r.count));
        tracing::info!(
            mailbox,
            domain,
            reporter,
            org_name = %report.org_name,
            report_id = %report.report_id,
            records = report.records.len(),
            messages,
            "DMARC aggregate report stored"
        );
        self.dmarc_reports
            .with_label_values(&[domain, reporter])
            .inc();
        for rec in &report.records {
            let counter = self.dmarc_messages.with_label_values(&[
                domain,
                reporter,
                labels::disposition(rec.disposition.as_deref()),
                labels::aligned(rec.dkim.as_deref()),
                labels::aligned(rec.spf.as_deref()),
            ]);
            inc_saturating(&counter, rec.count);
        }
        self.dmarc_report_seen(domain, reporter, report.end as f64);
    }

    /// Moves the newest-report time forward (a report read late never moves it back).
    pub fn dmarc_report_seen(&self, domain: &str, reporter: &str, end: f64) {
        let g = self
            .dmarc_last_report
            .with_label_values(&[domain, reporter]);
        if end > g.get() {
            g.set(end);
        }
    }

    /// Counts one newly stored TLS report's policies about `domain`.
    pub fn tls_report(
        &self,
        mailbox: &str,
        domain: &str,
        reporter: &str,
        report: &crate::reports::tlsrpt::TlsReport,
        policies: &[&crate::reports::tlsrpt::Policy],
    ) {
        use crate::reports::labels;
        let (ok, failed) = policies.iter().fold((0u64, 0u64), |(o, f), p| {
            (o.saturating_add(p.successful), f.saturating_add(p.failed))
        });
        tracing::info!(
            mailbox,
            domain,
            reporter,
            org_name = %report.org_name,
            report_id = %report.report_id,
            successful = ok,
            failed,
            "TLS report stored"
        );
        inc_saturating(
            &self
                .tls_sessions
                .with_label_values(&[domain, reporter, "successful"]),
            ok,
        );
        inc_saturating(
            &self
                .tls_sessions
                .with_label_values(&[domain, reporter, "failed"]),
            failed,
        );
        for p in policies {
            for f in &p.failures {
                let counter = self.tls_failures.with_label_values(&[
                    domain,
                    reporter,
                    labels::tls_result_type(&f.result_type),
                ]);
                inc_saturating(&counter, f.count);
            }
        }
    }

    /// Counts a message that looked like a report and could not be read, and logs why.
    pub fn report_error(
        &self,
        mailbox: &str,
        message_id: &str,
        reason: &'static str,
        error: &dyn std::fmt::Display,
    ) {
        tracing::warn!(mailbox, message_id, reason, error = %error, "report not readable; left in the mailbox");
        self.errors.with_label_values(&[mailbox, reason]).inc();
    }

    /// A report mailbox was read completely.
    pub fn mailbox_read(&self, mailbox: &str, at: f64, new_reports: usize) {
        tracing::debug!(mailbox, new_reports, "report mailbox read");
        self.last_read.with_label_values(&[mailbox]).set(at);
    }
}

/// Adds a count from a report to a counter, stopping at `u64::MAX` instead of wrapping (a
/// wrapped counter goes backwards, which Prometheus reads as a reset). Counts are capped at
/// parse time (`crate::reports::MAX_COUNT`), so this is a last line, not the rule.
fn inc_saturating(counter: &prometheus::IntCounter, n: u64) {
    counter.inc_by(n.min(u64::MAX - counter.get()));
}

fn int_gauge_plain(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn gauge_plain(r: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_never_send_a_counter_backwards() {
        use crate::reports::dmarc::{AggregateReport, Record};
        use crate::reports::tlsrpt::{Policy, TlsReport};
        let m = Metrics::new();
        let record = |count| Record {
            source_ip: "198.51.100.7".into(),
            count,
            header_from: "example.com".into(),
            ..Default::default()
        };
        // Counts the parser refuses (over 10^9): if one got here, the sum must not wrap to 1.
        let report = AggregateReport {
            org_name: "x".into(),
            report_id: "1".into(),
            end: 86_400,
            records: vec![record(u64::MAX), record(2)],
            ..Default::default()
        };
        m.reports
            .dmarc_report("rua", "example.com", "other", &report);
        m.reports
            .dmarc_report("rua", "example.com", "other", &report);
        let counter = m.reports.dmarc_messages.with_label_values(&[
            "example.com",
            "other",
            "none",
            "fail",
            "fail",
        ]);
        assert_eq!(counter.get(), u64::MAX);
        let policy = Policy {
            policy_type: "sts".into(),
            policy_domain: "example.com".into(),
            successful: u64::MAX,
            failed: 2,
            failures: vec![],
        };
        let tls = TlsReport {
            org_name: "x".into(),
            report_id: "1".into(),
            begin: 0,
            end: 86_400,
            contact: None,
            policies: vec![policy.clone(), policy.clone()],
        };
        m.reports
            .tls_report("rua", "example.com", "other", &tls, &[&policy, &policy]);
        let ok = m
            .reports
            .tls_sessions
            .with_label_values(&["example.com", "other", "successful"]);
        assert_eq!(ok.get(), u64::MAX);
    }

    #[test]
    fn only_the_current_gmail_tab_has_a_series() {
        let m = Metrics::new();
        m.set_last_tab("r", "gmail", Some(Tab::Promotions));
        m.set_last_tab("r", "gmail", Some(Tab::Primary));
        let text = m.render();
        assert!(text.contains(r#"mailcanary_last_tab{route="r",seed="gmail",tab="primary"} 1"#));
        assert!(!text.contains(r#"tab="promotions""#), "{text}");
        m.set_last_tab("r", "gmail", None);
        assert!(!m.render().contains("mailcanary_last_tab{"));
    }

    #[test]
    fn registry_builds_and_renders() {
        let m = Metrics::new();
        m.probes_sent.with_label_values(&["good", "seed1"]).inc();
        let text = m.render();
        assert!(text.contains("mailcanary_probes_sent_total{route=\"good\",seed=\"seed1\"} 1"));
        assert!(text.contains("# HELP mailcanary_last_round_timestamp_seconds"));
        assert!(text.contains("mailcanary_build_info{version="));
    }

    #[test]
    fn unknown_results_are_other() {
        use crate::verdict::AuthResult;
        assert_eq!(AuthResult::parse("bestguesspass").label(), "other");
        assert_eq!(AuthResult::Pass.label(), "pass");
        assert!(AuthResult::LABELS.contains(&AuthResult::parse("PermError").label()));
    }

    fn config(routes: &[&str], seeds: &[&str]) -> Config {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        let mut text = "[probe]\ntoken_key_file = \"token.key\"\ninstance = \"t\"\n".to_string();
        for r in routes {
            text +=
                &format!("[routes.{r}]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n");
        }
        for s in seeds {
            text += &format!(
                "[seeds.{s}]\naddress = \"{s}@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n"
            );
        }
        crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn series_follow_the_config_across_a_reload() {
        let m = Metrics::new();
        m.preset(&config(&["good", "spam"], &["s1", "s2"]));
        let text = m.render();
        assert!(text.contains("mailcanary_foreign_probes_total{seed=\"s2\"} 0"));
        assert!(text.contains(
            "# HELP mailcanary_foreign_probes_total Valid probe messages of another instance"
        ));
        assert!(text.contains("mailcanary_probes_sent_total{route=\"spam\",seed=\"s2\"} 0"));
        m.foreign_probe("s1", "INBOX", "site-b");
        m.set_diagnosis("spam", "s1", &["content_spam"], &["content_spam"]);
        m.set_last_placement("spam", "s1", Placement::Spam);
        // The reload drops route `spam` and seed `s2`.
        m.preset(&config(&["good"], &["s1"]));
        let text = m.render();
        for gone in ["route=\"spam\"", "seed=\"s2\""] {
            assert!(!text.contains(gone), "{gone} still exported:\n{text}");
        }
        assert!(text.contains("mailcanary_foreign_probes_total{seed=\"s1\"} 1"));
        assert!(text.contains("mailcanary_probes_sent_total{route=\"good\",seed=\"s1\"} 0"));
        // A probe of the removed route, still watched, is logged but brings no series back.
        m.set_last_placement("spam", "s1", Placement::Missing);
        m.probe_expired("spam", "s1", Placement::Missing, true);
        m.foreign_probe("s2", "INBOX", "site-b");
        let text = m.render();
        assert!(
            !text.contains("route=\"spam\"") && !text.contains("seed=\"s2\""),
            "{text}"
        );
    }

    #[test]
    fn reload_gauges_are_exported_as_prometheus_exports_its_own() {
        let m = Metrics::new();
        m.config_loaded(true, 1_700_000_000.0);
        m.config_loaded(false, 1_700_000_100.0);
        let text = m.render();
        assert!(text.contains("# HELP mailcanary_config_last_reload_successful Whether the last configuration reload attempt was successful.\n# TYPE mailcanary_config_last_reload_successful gauge\nmailcanary_config_last_reload_successful 0\n"), "{text}");
        assert!(text.contains("# HELP mailcanary_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n# TYPE mailcanary_config_last_reload_success_timestamp_seconds gauge\nmailcanary_config_last_reload_success_timestamp_seconds 1700000000\n"), "{text}");
    }
}
