//! The scheduled probe rounds of `run`: one round on `probe.schedule`, each after the jitter
//! of the config in force, and `/readyz` ready once a round has really finished. The round
//! itself lives in [`crate::probe`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_cron_scheduler::{Job, JobSchedulerError};

use crate::probe::prober::Prober;
use crate::probe::round::RoundError;

/// Probe rounds on `schedule`, each after the jitter of the config in force.
pub fn job(
    schedule: &str,
    prober: &Arc<Prober>,
    ready: &Arc<AtomicBool>,
) -> Result<Job, JobSchedulerError> {
    let (prober, ready) = (prober.clone(), ready.clone());
    Job::new_async(schedule, move |_id, _sched| {
        let (prober, ready) = (prober.clone(), ready.clone());
        Box::pin(async move {
            let jitter = prober.config().probe.jitter;
            if !jitter.is_zero() {
                let ms = rand::random::<u64>() % (jitter.as_millis() as u64).max(1);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            run_once(&prober, &ready).await;
        })
    })
}

/// Runs a round; `/readyz` turns ready only once a round has really finished.
pub async fn run_once(prober: &Prober, ready: &AtomicBool) {
    match prober.round().await {
        Ok(records) if !records.is_empty() => {
            tracing::debug!(probes = records.len(), "round recorded");
            ready.store(true, Ordering::Relaxed);
        }
        Ok(_) => {}
        Err(RoundError::Shutdown) => {}
        Err(e) => tracing::error!(error = %e, "round failed"),
    }
}
