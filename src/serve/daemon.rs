//! `mailcanary run`: the scheduler plus the HTTP server. One round at start-up (which also
//! resumes probes a previous process left unresolved), then one per cron tick.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::probe::round::{Prober, RoundError};
use crate::serve::http::{self, AppState};

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

/// Runs until SIGINT or SIGTERM.
pub async fn run(prober: Arc<Prober>) -> Result<(), DaemonError> {
    let (config, store, metrics) = (
        prober.config.clone(),
        prober.store.clone(),
        prober.metrics.clone(),
    );
    if let Ok(Some(t)) = store.last_round_finished() {
        metrics.round_finished(t);
    }
    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let reports = crate::serve::report_job::start(&scheduler, &config, metrics.clone())
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let state = Arc::new(AppState {
        store: store.clone(),
        reports,
        metrics: metrics.clone(),
        ready: Default::default(),
        diagnose: {
            let config = config.clone();
            Box::new(move |r: &crate::probe::store::ProbeRecord| {
                crate::probe::causes::for_record(r, Some(&config))
            })
        },
    });
    let listener = tokio::net::TcpListener::bind(config.probe.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.probe.listen.to_string(),
            source,
        })?;
    tracing::info!(listen = %config.probe.listen, schedule = %config.probe.schedule, "mailcanary running");

    let jitter = config.probe.jitter;
    let job_prober = prober.clone();
    let job_state = state.clone();
    let job = Job::new_async(config.probe.schedule.as_str(), move |_id, _sched| {
        let prober = job_prober.clone();
        let state = job_state.clone();
        Box::pin(async move {
            if !jitter.is_zero() {
                let ms = rand::random::<u64>() % (jitter.as_millis() as u64).max(1);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            run_round(&prober, &state).await;
        })
    })
    .map_err(|e| DaemonError::Scheduler(format!("schedule {:?}: {e}", config.probe.schedule)))?;
    scheduler
        .add(job)
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    crate::serve::audit_job::schedule(&scheduler, config.clone(), metrics.clone())
        .await
        .map_err(|e| DaemonError::Scheduler(format!("dns_audit.schedule: {e}")))?;
    scheduler
        .start()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;

    let first_prober = prober.clone();
    let first_state = state.clone();
    tokio::spawn(async move { run_round(&first_prober, &first_state).await });

    let audit_config = config.clone();
    let audit_metrics = metrics.clone();
    tokio::spawn(
        async move { crate::serve::audit_job::run_once(&audit_config, &audit_metrics).await },
    );

    http::serve(listener, http::router(state), shutdown_signal()).await;
    tracing::info!("shutting down");
    prober.shut_down();
    let _ = scheduler.clone().shutdown().await;
    prober.close().await;
    Ok(())
}

/// Runs a round; `/readyz` turns ready only once a round has really finished.
async fn run_round(prober: &Prober, state: &AppState) {
    match prober.round().await {
        Ok(records) if !records.is_empty() => {
            tracing::debug!(probes = records.len(), "round recorded");
            state.ready.store(true, Ordering::Relaxed);
        }
        Ok(_) => {}
        Err(RoundError::Shutdown) => {}
        Err(e) => tracing::error!(error = %e, "round failed"),
    }
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
