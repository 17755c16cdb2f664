//! The probe family: what the rounds record — sends and their failures, probes found (where,
//! how judged, how fast), missing, unknown, rejected, late; IMAP errors of every mailbox read;
//! forged and foreign probe headers; the latest placement, verdict, delivery time, diagnosis and
//! Gmail tab of every route × seed pair, and when the last round finished.
//!
//! The series budget (issue #23, `budget_tests.rs`): a route × seed pair costs at most 25
//! series once it had an outcome. So the distributions are per route (the delivery histogram,
//! the authentication results) and a pair keeps only its latest values (placement, verdict,
//! delivery time, spam score); a pair's counters of outcomes other than `sent` appear when
//! first counted, not at 0 — Prometheus does not see their first increment in `rate()`, the
//! gauges the alerts use see it at once.

use prometheus::{Gauge, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, Registry};

use super::{Configured, Metrics, counter, gauge, gauge_plain, histogram, int_gauge, retire};
use crate::config::Config;
use crate::gmail::Tab;
use crate::imap::ImapError;
use crate::outcome::{Bounce, Judgement, Placement, SendOutcome, SmtpSession};
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
/// The `placement` of `mailcanary_last_placement`: where the latest probe landed, or what else
/// became of it (a delay notice came back; the SMTP server did not accept it).
pub const LAST_OUTCOMES: [&str; 8] = [
    "inbox", "spam", "other", "missing", "unknown", "rejected", "deferred", "not_sent",
];
/// The `reason` of `mailcanary_forged_bounces_total`: why a bounce that names one of our
/// probes was not believed (spelt by `probe::watch::bounces::Unproven::as_str`).
pub const FORGED_BOUNCE_REASONS: [&str; 4] = ["token", "envelope_id", "message_id", "mismatch"];
pub const IMAP_REASONS: [&str; 6] = ["network", "tls", "auth", "timeout", "protocol", "throttled"];
/// Delivery buckets: 0.1 s … 30 min.
const DELIVERY_BUCKETS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1500.0,
    1800.0,
];
const SMTP_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The probe rounds' series.
pub struct ProbeMetrics {
    pub probes_sent: IntCounterVec,
    pub send_failures: IntCounterVec,
    pub probes_received: IntCounterVec,
    pub probes_missing: IntCounterVec,
    pub probes_late: IntCounterVec,
    pub probes_rejected: IntCounterVec,
    pub bounces: IntCounterVec,
    pub probes_unknown: IntCounterVec,
    pub auth_results: IntCounterVec,
    pub delivery_duration: HistogramVec,
    pub last_delivery: GaugeVec,
    pub smtp_send_duration: HistogramVec,
    pub last_placement: IntGaugeVec,
    pub last_auth_pass: IntGaugeVec,
    pub spam_score: GaugeVec,
    pub last_success: GaugeVec,
    pub last_round: Gauge,
    pub round_interval: Gauge,
    pub imap_errors: IntCounterVec,
    pub forged_probes: IntCounterVec,
    pub forged_bounces: IntCounterVec,
    pub foreign_probes: IntCounterVec,
    pub diagnosis: IntGaugeVec,
    pub last_tab: IntGaugeVec,
}

impl ProbeMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        ProbeMetrics {
            probes_sent: counter(
                r,
                "mailcanary_probes_sent_total",
                "Probe messages accepted by the route's SMTP server.",
                &["route", "seed"],
            ),
            send_failures: counter(
                r,
                "mailcanary_send_failures_total",
                "Probe messages the route's SMTP server did not accept, by fixed reason.",
                &["route", "reason"],
            ),
            probes_received: counter(
                r,
                "mailcanary_probes_received_total",
                "Probe messages found in the seed mailbox, by placement (inbox, spam, other).",
                &["route", "seed", "placement"],
            ),
            probes_missing: counter(
                r,
                "mailcanary_probes_missing_total",
                "Probes not found before the timeout while the mailbox was readable.",
                &["route", "seed"],
            ),
            probes_late: counter(
                r,
                "mailcanary_probes_late_total",
                "Probes whose outcome came after the timeout (counted missing or unknown then): found within the late window, or refused by a bounce that came late.",
                &["route", "seed"],
            ),
            probes_rejected: counter(
                r,
                "mailcanary_probes_rejected_total",
                "Probes the receiving server refused: a bounce (DSN) for them came back, by kind of refusal.",
                &["route", "seed", "class"],
            ),
            bounces: counter(
                r,
                "mailcanary_bounces_total",
                "Bounces and delay notices of our probes read from the route's bounce mailbox.",
                &["route"],
            ),
            probes_unknown: counter(
                r,
                "mailcanary_probes_unknown_total",
                "Probes whose mailbox could not be read before the timeout (placement unknown, not missing).",
                &["route", "seed"],
            ),
            auth_results: counter(
                r,
                "mailcanary_auth_results_total",
                "Receiver verdicts of found probes of the route (every seed), per method and result.",
                &["route", "method", "result"],
            ),
            delivery_duration: histogram(
                r,
                "mailcanary_delivery_duration_seconds",
                "Time from SMTP acceptance to the probe being seen in the seed mailbox, every seed of the route.",
                &["route"],
                &DELIVERY_BUCKETS,
            ),
            last_delivery: gauge(
                r,
                "mailcanary_last_delivery_duration_seconds",
                "Time from SMTP acceptance to the latest found probe of this route and seed being seen in the seed mailbox.",
                &["route", "seed"],
            ),
            smtp_send_duration: histogram(
                r,
                "mailcanary_smtp_send_duration_seconds",
                "Time the SMTP transaction took to the final reply: from connect on a fresh session (session=\"fresh\"), from MAIL on one an earlier probe of the round opened (session=\"reused\").",
                &["route", "session"],
                &SMTP_BUCKETS,
            ),
            last_placement: int_gauge(
                r,
                "mailcanary_last_placement",
                "1 for the placement of the latest probe of this route and seed (or `deferred`: a delay notice came back; `not_sent`: the SMTP server did not accept it), 0 for the others.",
                &["route", "seed", "placement"],
            ),
            last_auth_pass: int_gauge(
                r,
                "mailcanary_last_auth_pass",
                "1 if the latest found probe passed this method at the receiver, else 0.",
                &["route", "seed", "method"],
            ),
            spam_score: gauge(
                r,
                "mailcanary_spam_score",
                "The receiver's spam score of the latest found probe (NaN when the receiver writes none).",
                &["route", "seed"],
            ),
            last_success: gauge(
                r,
                "mailcanary_last_success_timestamp_seconds",
                "When a probe last landed in the inbox with SPF, DKIM and DMARC passing (Unix time).",
                &["route", "seed"],
            ),
            last_round: gauge_plain(
                r,
                "mailcanary_last_round_timestamp_seconds",
                "When the last probe round finished (Unix time).",
            ),
            round_interval: gauge_plain(
                r,
                "mailcanary_round_interval_seconds",
                "The configured interval between probe rounds.",
            ),
            imap_errors: counter(
                r,
                "mailcanary_imap_errors_total",
                "Errors reading a seed mailbox, by fixed reason.",
                &["seed", "reason"],
            ),
            forged_probes: counter(
                r,
                "mailcanary_forged_probes_total",
                "Messages carrying a probe token that does not verify or was already used; never touched.",
                &["seed"],
            ),
            forged_bounces: counter(
                r,
                "mailcanary_forged_bounces_total",
                "Bounces in a bounce mailbox that name one of our probes but prove nothing (a probe token or envelope id that does not verify, only the probe's Message-ID, or proofs naming two probes); the probe is not changed and the bounce never touched.",
                &["mailbox", "reason"],
            ),
            foreign_probes: counter(
                r,
                "mailcanary_foreign_probes_total",
                "Valid probe messages of another instance sharing the seed mailbox and token key; never judged or touched.",
                &["seed"],
            ),
            diagnosis: int_gauge(
                r,
                "mailcanary_diagnosis",
                "1 when the latest probe of this route and seed has this diagnosed cause.",
                &["route", "seed", "cause"],
            ),
            last_tab: int_gauge(
                r,
                "mailcanary_last_tab",
                "1 for the Gmail inbox tab the latest probe of this route and seed was filed under; no series when it has none.",
                &["route", "seed", "tab"],
            ),
        }
    }

    /// Creates the series of the configured routes and seeds at 0, and of each pair only
    /// `mailcanary_probes_sent_total` (the dashboards list the pairs from it); a pair's other
    /// counters appear when first counted (the series budget, see the module doc).
    pub(super) fn preset(&self, config: &Config) {
        self.round_interval.set(config.probe.interval.as_secs_f64());
        for (route, seed) in config.pairs() {
            self.probes_sent
                .with_label_values(&[route.name.as_str(), seed.name.as_str()]);
        }
        for route in &config.routes {
            let r = route.name.as_str();
            for reason in SEND_REASONS {
                self.send_failures.with_label_values(&[r, reason]);
            }
            for method in ["spf", "dkim", "dmarc"] {
                for result in ["pass", "fail"] {
                    self.auth_results.with_label_values(&[r, method, result]);
                }
            }
            self.delivery_duration.with_label_values(&[r]);
            for session in SmtpSession::NAMES {
                self.smtp_send_duration.with_label_values(&[r, session]);
            }
            self.bounces.with_label_values(&[r]);
        }
        for seed in &config.seeds {
            for reason in IMAP_REASONS {
                self.imap_errors.with_label_values(&[&seed.name, reason]);
            }
            self.forged_probes.with_label_values(&[&seed.name]);
            self.foreign_probes.with_label_values(&[&seed.name]);
        }
        // Bounce and report mailboxes are `seed` in `mailcanary_imap_errors_total` too.
        let mailboxes = config
            .bounce_mailboxes
            .iter()
            .chain(config.report_mailboxes.iter().map(|m| &m.mailbox));
        for mailbox in mailboxes {
            for reason in IMAP_REASONS {
                self.imap_errors.with_label_values(&[&mailbox.name, reason]);
            }
        }
        for mailbox in &config.bounce_mailboxes {
            for reason in FORGED_BOUNCE_REASONS {
                self.forged_bounces
                    .with_label_values(&[&mailbox.name, reason]);
            }
        }
    }

    /// Removes the series of routes and seeds the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.probes_sent, c);
        retire(&self.send_failures, c);
        retire(&self.probes_received, c);
        retire(&self.probes_missing, c);
        retire(&self.probes_late, c);
        retire(&self.probes_rejected, c);
        retire(&self.bounces, c);
        retire(&self.probes_unknown, c);
        retire(&self.auth_results, c);
        retire(&self.delivery_duration, c);
        retire(&self.last_delivery, c);
        retire(&self.smtp_send_duration, c);
        retire(&self.last_placement, c);
        retire(&self.last_auth_pass, c);
        retire(&self.spam_score, c);
        retire(&self.last_success, c);
        retire(&self.imap_errors, c);
        retire(&self.forged_probes, c);
        retire(&self.forged_bounces, c);
        retire(&self.foreign_probes, c);
        retire(&self.diagnosis, c);
        retire(&self.last_tab, c);
    }
}

impl Metrics {
    pub fn set_last_placement(&self, route: &str, seed: &str, placement: Placement) {
        self.set_last_outcome(route, seed, placement.as_str());
    }

    /// Sets `mailcanary_last_placement` to one of [`LAST_OUTCOMES`].
    pub fn set_last_outcome(&self, route: &str, seed: &str, outcome: &str) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        for p in LAST_OUTCOMES {
            self.probe
                .last_placement
                .with_label_values(&[route, seed, p])
                .set(i64::from(p == outcome));
        }
    }

    /// Puts back the gauges of a pair's latest outcome after a restart (nothing is counted
    /// again), so that an alert on them neither resolves nor fires anew.
    pub fn restore_last(&self, route: &str, seed: &str, outcome: &str, j: Option<&Judgement>) {
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.set_last_outcome(route, seed, outcome);
        if let Some(j) = j {
            for method in [Method::Spf, Method::Dkim, Method::Dmarc] {
                self.probe
                    .last_auth_pass
                    .with_label_values(&[route, seed, method.as_str()])
                    .set(i64::from(j.verdict.get(method).is_pass()));
            }
            self.probe
                .spam_score
                .with_label_values(&[route, seed])
                .set(j.spam.score.unwrap_or(f64::NAN));
            if let Some(path) = &j.path {
                self.set_last_hop_tls(route, seed, path.last_hop_tls());
            }
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
        self.probe
            .probes_received
            .with_label_values(&[route, seed, placement.as_str()])
            .inc();
        if late {
            self.probe
                .probes_late
                .with_label_values(&[route, seed])
                .inc();
        }
        if let Some(d) = delivery {
            self.probe
                .delivery_duration
                .with_label_values(&[route])
                .observe(d);
            self.probe
                .last_delivery
                .with_label_values(&[route, seed])
                .set(d);
        }
        if let Some(path) = &j.path {
            self.path_observed(route, seed, path);
        }
        let v = &j.verdict;
        for method in Method::ALL {
            let result = v.get(method);
            let method = method.as_str();
            self.probe
                .auth_results
                .with_label_values(&[route, method, result.label()])
                .inc();
        }
        for method in [Method::Spf, Method::Dkim, Method::Dmarc] {
            let (result, method) = (v.get(method), method.as_str());
            self.probe
                .last_auth_pass
                .with_label_values(&[route, seed, method])
                .set(i64::from(result.is_pass()));
        }
        self.probe
            .spam_score
            .with_label_values(&[route, seed])
            .set(j.spam.score.unwrap_or(f64::NAN));
        self.set_last_placement(route, seed, placement);
        if placement == Placement::Inbox && v.spf.is_pass() && v.dkim.is_pass() && v.dmarc.is_pass()
        {
            self.probe
                .last_success
                .with_label_values(&[route, seed])
                .set(crate::clock::now());
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
        self.probe
            .probes_sent
            .with_label_values(&[route, seed])
            .inc();
        self.probe
            .smtp_send_duration
            .with_label_values(&[route, outcome.session.as_str()])
            .observe(outcome.duration_seconds);
    }

    /// Records a probe that could not be sent (and logs why): the pair's last placement is
    /// `not_sent`.
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
        self.probe
            .send_failures
            .with_label_values(&[route, reason])
            .inc();
        self.set_last_outcome(route, seed, "not_sent");
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
        self.probe
            .send_failures
            .with_label_values(&[route, reason])
            .inc();
    }

    /// Records an IMAP error of a seed mailbox (and logs it).
    pub fn imap_error(&self, seed: &str, error: &ImapError) {
        tracing::warn!(seed, reason = error.reason(), error = %error, "IMAP error");
        if !self.exported(None, Some(seed)) {
            return;
        }
        self.probe
            .imap_errors
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
            self.probe.forged_probes.with_label_values(&[seed]).inc();
        }
    }

    /// Records a bounce that names one of our probes (`probe`: its public id) without proving
    /// it (`reason`: one of [`FORGED_BOUNCE_REASONS`]); logged, the bounce left alone.
    pub fn forged_bounce(&self, mailbox: &str, reason: &'static str, probe: &str) {
        tracing::warn!(
            mailbox,
            reason,
            probe_id = probe,
            "ignoring a bounce that names one of our probes but does not prove it (left in the mailbox)"
        );
        if self.exported(None, Some(mailbox)) {
            self.probe
                .forged_bounces
                .with_label_values(&[mailbox, reason])
                .inc();
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
            self.probe.foreign_probes.with_label_values(&[seed]).inc();
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
                &self.probe.probes_unknown
            } else {
                &self.probe.probes_missing
            };
            counter.with_label_values(&[route, seed]).inc();
        }
        self.set_last_placement(route, seed, placement);
    }

    /// Records a bounce or delay notice of one of a route's probes, read from its bounce mailbox.
    pub fn bounce_read(&self, route: &str) {
        if self.exported(Some(route), None) {
            self.probe.bounces.with_label_values(&[route]).inc();
        }
    }

    /// Records a probe the receiving server refused (and logs the reply). `late`: the bounce
    /// came after the probe's timeout (it was counted missing or unknown then; it counts as
    /// late too). `latest`: the probe is still its pair's latest result, so the pair's last
    /// placement becomes `rejected`; a late bounce of an older probe changes no gauge.
    pub fn probe_rejected(
        &self,
        route: &str,
        seed: &str,
        bounce: &Bounce,
        late: bool,
        latest: bool,
    ) {
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
            late,
            "probe rejected by the receiving server"
        );
        if !self.exported(Some(route), Some(seed)) {
            return;
        }
        self.probe
            .probes_rejected
            .with_label_values(&[route, seed, class])
            .inc();
        if late {
            self.probe
                .probes_late
                .with_label_values(&[route, seed])
                .inc();
        }
        if latest {
            self.set_last_placement(route, seed, Placement::Rejected);
        }
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
        self.set_last_outcome(route, seed, "deferred");
    }

    /// Records the end of a round (Unix time).
    pub fn round_finished(&self, at: f64) {
        self.probe.last_round.set(at);
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
                self.probe
                    .diagnosis
                    .with_label_values(&[route, seed, cause])
                    .set(1);
            } else {
                let _ = self
                    .probe
                    .diagnosis
                    .remove_label_values(&[route, seed, cause]);
            }
        }
    }

    /// Replaces the Gmail tab of a route × seed pair's latest probe: one series for the
    /// current tab (1), none when the probe has no tab (not Gmail, not in the inbox).
    pub fn set_last_tab(&self, route: &str, seed: &str, tab: Option<Tab>) {
        for t in Tab::ALL {
            if Some(t) == tab {
                self.probe
                    .last_tab
                    .with_label_values(&[route, seed, t.as_str()])
                    .set(1);
            } else {
                let _ = self
                    .probe
                    .last_tab
                    .remove_label_values(&[route, seed, t.as_str()]);
            }
        }
        if let Some(t) = tab {
            tracing::debug!(route, seed, tab = t.as_str(), "Gmail tab");
        }
    }
}
