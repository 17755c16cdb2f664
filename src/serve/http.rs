//! The HTTP endpoints: `/metrics` (Prometheus; gzipped when accepted), `/healthz`, `/readyz`,
//! `/api/results`, `/api/reports` and `/api/requirements` (JSON), `/` (the status page) and
//! `POST /-/reload` (re-read the config, as
//! Prometheus' own endpoint, off unless enabled: [`crate::serve::lifecycle`]). Every other
//! handler only reads recorded state; probing runs on its schedule. TLS, basic auth and the
//! security headers of every response are set up in [`crate::serve::web`].
//!
//! [`serve`] is the accept loop (hyper, HTTP/1.1, optionally in TLS): a client gets
//! [`HEADER_READ_TIMEOUT`] to finish its TLS handshake and to send each request head, at most
//! [`MAX_CONNECTIONS`] are served at once and at most [`MAX_CONNECTIONS_PER_CLIENT`] from one
//! client address (more are closed at once, so one client holding idle connections cannot lock
//! Prometheus out), and shutdown gives open connections [`DRAIN_TIMEOUT`] to finish, then closes
//! them — a slow or idle client can neither hold a slot for ever nor delay the exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::report_mailbox::summary::{self, ReportsView};
use crate::results::scorecard::{self, Scorecard};
use crate::results::{self, Results};
use crate::serve::exposition;
use crate::serve::lifecycle::Lifecycle;
use crate::serve::reload::Reloader;
use crate::serve::status_page;
use crate::state::probes::ProbeStore;
use crate::state::reports::ReportStore;

/// The config in force (a reload changes it): it names the routes a diagnosis speaks of.
pub type ConfigFn = Box<dyn Fn() -> Arc<Config> + Send + Sync>;

/// What the handlers share.
pub struct AppState {
    pub store: Arc<ProbeStore>,
    /// The stored DMARC and TLS reports, when a report mailbox is configured.
    pub reports: Option<Arc<ReportStore>>,
    pub metrics: Arc<Metrics>,
    /// Set once the first round has finished (or resumed state was loaded).
    pub ready: Arc<AtomicBool>,
    pub config: ConfigFn,
    /// Serves `POST /-/reload`; `None`: the endpoint answers 404.
    pub reloader: Option<Arc<Reloader>>,
    /// Whether `POST /-/reload` is enabled, and who may call it.
    pub lifecycle: Lifecycle,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/results", get(results))
        .route("/api/reports", get(reports))
        .route("/api/requirements", get(requirements))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// `POST /-/reload`: 403 unless `--web.enable-lifecycle` (as Prometheus answers) or when the
/// request may come from a web page ([`Lifecycle::check`]); else 200 when the config was
/// re-read and put in force (from the next round), 500 when it was refused (the running config
/// stays). The reasons go to the log only: a config error can quote paths, variable names and
/// values.
async fn reload(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !s.lifecycle.enabled {
        return (
            StatusCode::FORBIDDEN,
            "lifecycle API is not enabled (run with --web.enable-lifecycle)\n",
        )
            .into_response();
    }
    if let Err(refusal) = s.lifecycle.check(&headers) {
        tracing::warn!(
            reason = refusal.reason(),
            error = %refusal,
            "POST /-/reload refused"
        );
        return (StatusCode::FORBIDDEN, "request refused; see the log\n").into_response();
    }
    let Some(reloader) = &s.reloader else {
        return (StatusCode::NOT_FOUND, "reload is not available\n").into_response();
    };
    match reloader.reload("HTTP").await {
        Ok(()) => (
            StatusCode::OK,
            "config reloaded; in force from the next round\n",
        )
            .into_response(),
        // Logged with every reason by the reloader.
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload refused; see the log\n",
        )
            .into_response(),
    }
}

/// The text exposition, gzipped when the client accepts it ([`exposition`]).
async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    exposition::respond(s.metrics.clone(), exposition::accepts_gzip(&headers)).await
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first round\n",
        )
            .into_response()
    }
}

fn latest(s: &AppState) -> Result<Results, crate::state::StateError> {
    let records = s.store.latest_per_pair()?;
    let pairs = s.store.pairs()?;
    Ok(results::build(&records, &(s.config)()).with_pair_states(&pairs))
}

async fn results(State(s): State<Arc<AppState>>) -> Response {
    match latest(&s) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The routes' sender requirements per provider, scored from the latest results.
fn scored(s: &AppState) -> Result<Scorecard, crate::state::StateError> {
    let records = s.store.latest_per_pair()?;
    Ok(scorecard::scorecard(&records, &(s.config)()))
}

/// `/api/requirements`: the scorecard (`results::scorecard`).
async fn requirements(State(s): State<Arc<AppState>>) -> Response {
    match scored(&s) {
        Ok(card) => axum::Json(card).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// How far back `/api/reports` and the status page look.
pub const REPORT_WINDOW_DAYS: u32 = 7;

/// The report view, `None` when no report mailbox is configured.
fn report_view(s: &AppState) -> Result<Option<ReportsView>, crate::state::StateError> {
    let Some(store) = &s.reports else {
        return Ok(None);
    };
    let since = crate::clock::now() - f64::from(REPORT_WINDOW_DAYS) * 86_400.0;
    let stored = store.received_since(since)?;
    Ok(Some(summary::view(&stored, REPORT_WINDOW_DAYS, |ip| {
        store.source_name(ip).ok().flatten().flatten()
    })))
}

async fn reports(State(s): State<Arc<AppState>>) -> Response {
    match report_view(&s) {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no report mailbox is configured ([report_mailboxes.NAME])\n",
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn status(State(s): State<Arc<AppState>>) -> Response {
    let failures = s.store.recent_failures(20).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read recent failures for the status page");
        Vec::new()
    });
    let failures = results::build(&failures, &(s.config)());
    let reports = report_view(&s).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read reports for the status page");
        None
    });
    let requirements = scored(&s).map(|card| card.routes).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot score the sender requirements for the status page");
        Vec::new()
    });
    match latest(&s) {
        Ok(r) => Html(status_page::render(
            &r,
            &failures,
            reports.as_ref(),
            &requirements,
            crate::clock::now(),
        ))
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// How long a client may take to send its request head (slowloris gets this, not for ever).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Connections served at once for one client address: a quarter of [`MAX_CONNECTIONS`], so one
/// client (reconnecting idle connections as fast as they time out) cannot take every slot. A
/// Prometheus server keeps one connection per target; a reverse proxy in front of mailcanary
/// counts as one client.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = 16;
/// How long shutdown waits for open connections before closing them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most
/// [`DRAIN_TIMEOUT`]. With `tls`, every connection is TLS (the handshake gets
/// [`HEADER_READ_TIMEOUT`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let clients = ClientSlots::default();
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(client) = clients.take(peer.ip()) else {
            tracing::warn!(%peer, limit = MAX_CONNECTIONS_PER_CLIENT, "too many HTTP connections from this client; closing a new one");
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = MAX_CONNECTIONS, "too many HTTP connections; closing a new one");
            continue;
        };
        let http = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .clone();
        let service = TowerToHyperService::new(router.clone());
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    drop((slot, client));
                });
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(tcp);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HEADER_READ_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            // An untrusted client certificate, a plain-HTTP request, a scanner.
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake not finished in time; closing");
                            return;
                        }
                    };
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
                    }
                    drop((slot, client));
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            drain_seconds = DRAIN_TIMEOUT.as_secs(),
            "closing HTTP connections still open after the drain"
        );
    }
}

/// Open connections per client address.
#[derive(Clone, Default)]
struct ClientSlots(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

/// One connection of a client; its slot is given back when dropped.
struct ClientSlot {
    slots: ClientSlots,
    ip: std::net::IpAddr,
}

impl ClientSlots {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<std::net::IpAddr, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection from `ip`, unless it has [`MAX_CONNECTIONS_PER_CLIENT`].
    fn take(&self, ip: std::net::IpAddr) -> Option<ClientSlot> {
        // An IPv4 client on a dual-stack socket is the same client as over IPv4.
        let ip = ip.to_canonical();
        let mut open = self.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_CLIENT {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
