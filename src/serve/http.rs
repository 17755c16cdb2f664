//! The HTTP endpoints: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/api/results` and
//! `/api/reports` (JSON), `/` (the status page) and `POST /-/reload` (re-read the config, as
//! Prometheus' own endpoint). Every other handler only reads recorded state; probing runs on
//! its schedule.
//!
//! [`serve`] is the accept loop (hyper, HTTP/1.1): a client gets [`HEADER_READ_TIMEOUT`] to send
//! its request head, at most [`MAX_CONNECTIONS`] are served at once (more are closed at once),
//! and shutdown gives open connections [`DRAIN_TIMEOUT`] to finish, then closes them — a slow
//! or idle client can neither hold a slot for ever nor delay the exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::report_mailbox::summary::{self, ReportsView};
use crate::results::{self, Results};
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
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/results", get(results))
        .route("/api/reports", get(reports))
        .route("/-/reload", post(reload))
        .with_state(state)
}

/// `POST /-/reload`: 200 when the config was re-read and put in force (from the next round),
/// 500 with the reasons when it was refused (the running config stays), as Prometheus answers.
async fn reload(State(s): State<Arc<AppState>>) -> Response {
    let Some(reloader) = &s.reloader else {
        return (StatusCode::NOT_FOUND, "reload is not available\n").into_response();
    };
    match reloader.reload("HTTP").await {
        Ok(()) => (
            StatusCode::OK,
            "config reloaded; in force from the next round\n",
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
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
    let failures = s.store.recent_failures(10).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read recent failures for the status page");
        Vec::new()
    });
    let failures = results::build(&failures, &(s.config)());
    let reports = report_view(&s).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read reports for the status page");
        None
    });
    match latest(&s) {
        Ok(r) => Html(status_page::render(
            &r,
            &failures,
            reports.as_ref(),
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
/// How long shutdown waits for open connections before closing them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves `router` on `listener` until `shutdown` resolves, then drains for at most
/// [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = MAX_CONNECTIONS, "too many HTTP connections; closing a new one");
            continue;
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            drop(slot);
        });
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
