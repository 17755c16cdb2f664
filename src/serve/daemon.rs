//! `mailcanary run`: the scheduler plus the HTTP server. One round at start-up (which also
//! resumes probes a previous process left unresolved), then one per cron tick; SIGHUP reloads
//! the config ([`crate::serve::reload`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio_cron_scheduler::JobScheduler;

use crate::jobs::{audit_job, probe_job, report_job};
use crate::probe::prober::Prober;
use crate::serve::http::{self, AppState};
use crate::serve::reload::Reloader;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("scheduler: {0}")]
    Scheduler(String),
}

/// Runs until SIGINT or SIGTERM; SIGHUP (or `POST /-/reload`) re-reads the config at `path`.
pub async fn run(prober: Arc<Prober>, path: &Path) -> Result<(), DaemonError> {
    let (config, store, metrics) = (
        prober.config(),
        prober.store.clone(),
        prober.metrics.clone(),
    );
    if let Ok(Some(t)) = store.last_round_finished() {
        metrics.round_finished(t);
    }
    // The config read at start counts as loaded, as Prometheus counts its own.
    metrics.config_loaded(true, crate::clock::now());
    let listener = tokio::net::TcpListener::bind(config.probe.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.probe.listen.to_string(),
            source,
        })?;
    tracing::info!(
        listen = %config.probe.listen,
        schedule = %config.probe.schedule,
        instance = %config.probe.instance,
        "mailcanary running"
    );

    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let ready = Arc::new(AtomicBool::new(false));
    let reloader = Reloader::start(
        path.to_path_buf(),
        prober.clone(),
        scheduler.clone(),
        ready.clone(),
    )
    .await
    .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let reloader = Arc::new(reloader);
    let reports = report_job::start(&scheduler, &config, store.db(), metrics.clone())
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let state = Arc::new(AppState {
        store: store.clone(),
        reports,
        metrics: metrics.clone(),
        ready: ready.clone(),
        config: {
            let prober = prober.clone();
            Box::new(move || prober.config())
        },
        reloader: Some(reloader.clone()),
    });
    scheduler
        .start()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;

    let first_prober = prober.clone();
    let first_ready = ready.clone();
    tokio::spawn(async move { probe_job::run_once(&first_prober, &first_ready).await });

    let audit_metrics = metrics.clone();
    tokio::spawn(async move { audit_job::run_once(&config, &audit_metrics).await });

    let hangups = tokio::spawn(reload_on_sighup(reloader));

    http::serve(listener, http::router(state), shutdown_signal()).await;
    tracing::info!("shutting down");
    hangups.abort();
    prober.shut_down();
    let _ = scheduler.clone().shutdown().await;
    prober.close().await;
    Ok(())
}

/// Reloads the config on every SIGHUP (the convention of daemons, Prometheus' included).
async fn reload_on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
            return;
        };
        while hup.recv().await.is_some() {
            // A refused file is logged and exported by the reloader; the daemon goes on.
            let _ = reloader.reload("SIGHUP").await;
        }
    }
    #[cfg(not(unix))]
    let _ = reloader;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
