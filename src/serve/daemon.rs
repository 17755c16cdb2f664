//! `mailcanary run`: the scheduler plus the HTTP server. One round at start-up (which also
//! resumes probes a previous process left unresolved), then one per cron tick; SIGHUP reloads
//! the config ([`crate::serve::reload`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio_cron_scheduler::JobScheduler;

use crate::jobs::audit_gate::Trigger;
use crate::jobs::{audit_job, probe_job, report_job};
use crate::probe::prober::Prober;
use crate::serve::basic_auth::BasicAuth;
use crate::serve::http::{self, AppState};
use crate::serve::lifecycle::Lifecycle;
use crate::serve::reload::Reloader;
use crate::serve::web::{self, Web};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// The web config's TLS files could not be used (changed since they were validated).
    #[error("web config {path}: {problems}")]
    Tls { path: String, problems: String },
}

/// Runs until SIGINT or SIGTERM; SIGHUP (or `POST /-/reload`, when `web` enables it) re-reads
/// the config at `path`.
pub async fn run(prober: Arc<Prober>, path: &Path, web: Web) -> Result<(), DaemonError> {
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
    let tls = web.tls().map_err(|problems| DaemonError::Tls {
        path: web
            .config
            .as_ref()
            .map(|c| c.path.display().to_string())
            .unwrap_or_default(),
        problems,
    })?;
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
        web = web.config.as_ref().map_or("no TLS, no basic auth".to_string(), |c| c.summary()),
        lifecycle = web.enable_lifecycle,
        "mailcanary running"
    );
    if web
        .config
        .as_ref()
        .is_some_and(|c| c.tls.is_none() && !c.users.is_empty())
    {
        tracing::warn!(
            "basic auth without TLS: passwords cross the network in clear; add tls_server_config"
        );
    }

    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let ready = Arc::new(AtomicBool::new(false));
    let audits = audit_job::gate(metrics.clone());
    let reloader = Reloader::start(
        path.to_path_buf(),
        prober.clone(),
        scheduler.clone(),
        ready.clone(),
        audits.clone(),
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
        lifecycle: Lifecycle {
            enabled: web.enable_lifecycle,
            listen: config.probe.listen,
            allowed_hosts: web.allowed_hosts.clone(),
        },
    });
    let auth = web.config.as_ref().and_then(|c| BasicAuth::new(&c.users));
    scheduler
        .start()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;

    let first_prober = prober.clone();
    let first_ready = ready.clone();
    tokio::spawn(async move { probe_job::run_once(&first_prober, &first_ready).await });

    audits.request(config, Trigger::Start);

    let hangups = tokio::spawn(reload_on_sighup(reloader));

    http::serve(listener, web::app(state, auth), tls, shutdown_signal()).await;
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
