//! The OAuth2 and reload family: when each OAuth2 login's access token expires, whether its
//! last refresh failed (what the alert fires on, whatever the token's lifetime), and whether
//! the last config reload worked, as Prometheus exports its own
//! (`prometheus_config_last_reload_*`).

use prometheus::{Gauge, GaugeVec, IntGauge, IntGaugeVec, Registry};

use super::{Configured, Metrics, gauge, gauge_plain, int_gauge, int_gauge_plain, retire};
use crate::config::Config;

/// The OAuth2 expiry and config reload series.
pub struct RuntimeMetrics {
    pub config_reload_successful: IntGauge,
    pub config_reload_success_timestamp: Gauge,
    pub oauth_token_expiry: GaugeVec,
    pub oauth_route_token_expiry: GaugeVec,
    pub oauth_refresh_failing: IntGaugeVec,
    pub oauth_route_refresh_failing: IntGaugeVec,
}

impl RuntimeMetrics {
    pub(super) fn new(r: &Registry) -> Self {
        RuntimeMetrics {
            config_reload_successful: int_gauge_plain(
                r,
                "mailcanary_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            ),
            config_reload_success_timestamp: gauge_plain(
                r,
                "mailcanary_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            ),
            oauth_token_expiry: gauge(
                r,
                "mailcanary_oauth_token_expiry_timestamp_seconds",
                "When the OAuth2 access token of a seed (or bounce mailbox) login expires (Unix time; 0 until one was had). Refreshed ahead of expiry every round: in the past means the refresh fails.",
                &["seed"],
            ),
            oauth_route_token_expiry: gauge(
                r,
                "mailcanary_oauth_route_token_expiry_timestamp_seconds",
                "When the OAuth2 access token of a route's SMTP login expires (Unix time; 0 until one was had).",
                &["route"],
            ),
            oauth_refresh_failing: int_gauge(
                r,
                "mailcanary_oauth_refresh_failing",
                "1 when the last attempt to get an OAuth2 access token for a seed (or bounce mailbox) login failed, 0 when it worked.",
                &["seed"],
            ),
            oauth_route_refresh_failing: int_gauge(
                r,
                "mailcanary_oauth_route_refresh_failing",
                "1 when the last attempt to get an OAuth2 access token for a route's SMTP login failed, 0 when it worked.",
                &["route"],
            ),
        }
    }

    /// Every configured OAuth2 login's expiry at 0 until a token is had, and not failing.
    pub(super) fn preset(&self, config: &Config) {
        for (kind, name, _) in config.oauth_logins() {
            self.gauge(kind, name).set(0.0);
            self.failing(kind, name).set(0);
        }
    }

    /// The refresh-failing gauge of an OAuth2 login, labelled as [`Self::gauge`].
    fn failing(&self, kind: &str, name: &str) -> prometheus::IntGauge {
        if kind == "route" {
            self.oauth_route_refresh_failing.with_label_values(&[name])
        } else {
            self.oauth_refresh_failing.with_label_values(&[name])
        }
    }

    /// The expiry gauge of an OAuth2 login: `route` for routes, else `seed` (bounce mailboxes
    /// share the seed label, as in `mailcanary_imap_errors_total`).
    fn gauge(&self, kind: &str, name: &str) -> prometheus::Gauge {
        if kind == "route" {
            self.oauth_route_token_expiry.with_label_values(&[name])
        } else {
            self.oauth_token_expiry.with_label_values(&[name])
        }
    }

    /// Removes the series of routes and seeds the config no longer has.
    pub(super) fn retire(&self, c: &Configured) {
        retire(&self.oauth_token_expiry, c);
        retire(&self.oauth_route_token_expiry, c);
        retire(&self.oauth_refresh_failing, c);
        retire(&self.oauth_route_refresh_failing, c);
    }
}

impl Metrics {
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
        self.runtime.gauge(kind, name).set(seconds);
    }

    /// Records that an OAuth2 login has a valid access token (refreshed or still good).
    pub fn oauth_refresh_worked(&self, kind: &str, name: &str) {
        self.runtime.failing(kind, name).set(0);
    }

    /// Records a failed OAuth2 token refresh (and logs it): for a seed or bounce mailbox an
    /// `auth` error of its mailbox; a route's shows as its failed send.
    pub fn oauth_refresh_failed(&self, kind: &str, name: &str, error: &crate::oauth::OAuthError) {
        tracing::warn!(kind, name, reason = error.reason(), error = %error, "OAuth2 token refresh failed");
        self.runtime.failing(kind, name).set(1);
        if kind != "route" {
            self.probe
                .imap_errors
                .with_label_values(&[name, error.reason()])
                .inc();
        }
    }

    /// Records the outcome of a config reload as Prometheus records its own: success sets the
    /// timestamp; a refused file leaves the running config and the timestamp as they were.
    pub fn config_loaded(&self, ok: bool, at: f64) {
        self.runtime.config_reload_successful.set(i64::from(ok));
        if ok {
            self.runtime.config_reload_success_timestamp.set(at);
        }
    }
}
