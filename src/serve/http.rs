//! The HTTP endpoints: `/metrics` (Prometheus), `/healthz`, `/readyz`, `/api/results` (JSON) and
//! `/` (the status page). Every handler only reads recorded state; probing runs on its schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::probe::store::{ProbeRecord, Store};
use crate::report::{self, Report};
use crate::serve::status_page;

/// Names the causes of a stored probe (see `diagnose`).
pub type DiagnoseFn = Box<dyn Fn(&ProbeRecord) -> Vec<crate::diagnosis::Diagnosis> + Send + Sync>;

/// What the handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// Set once the first round has finished (or resumed state was loaded).
    pub ready: AtomicBool,
    pub diagnose: DiagnoseFn,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/results", get(results))
        .with_state(state)
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

fn latest(s: &AppState) -> Result<Report, String> {
    let records = s.store.latest_per_pair().map_err(|e| e.to_string())?;
    Ok(report::build(&records, |r| (s.diagnose)(r)))
}

async fn results(State(s): State<Arc<AppState>>) -> Response {
    match latest(&s) {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn status(State(s): State<Arc<AppState>>) -> Response {
    let failures = s.store.recent_failures(10).unwrap_or_default();
    let failures = report::build(&failures, |r| (s.diagnose)(r));
    match latest(&s) {
        Ok(r) => Html(status_page::render(
            &r,
            &failures,
            crate::probe::store::now(),
        ))
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
