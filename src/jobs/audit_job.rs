//! The scheduled DNS audit of `run`: every route on `dns_audit.schedule`, exported as metrics.
//! The checks themselves live in [`crate::dns_audit`].

use std::sync::Arc;
use std::time::Duration;

use tokio_cron_scheduler::Job;

use crate::config::{self, Config};
use crate::dns_audit::{Auditor, DEFAULT_TIMEOUT, ResolverSetupError, RouteAudit};
use crate::metrics::Metrics;

/// How long one scheduled audit of every route may take: audits are cheap but must never pile
/// up behind a dead resolver.
const AUDIT_DEADLINE: Duration = Duration::from_secs(300);

/// Audits every route of the config.
pub async fn audit_all(config: &Config) -> Result<Vec<RouteAudit>, ResolverSetupError> {
    let auditor = Auditor::new(config.dns_audit.nameserver, DEFAULT_TIMEOUT)?;
    let mut audits = Vec::new();
    for t in config::audit_targets(config) {
        audits.push(auditor.audit(&t).await);
    }
    Ok(audits)
}

/// One audit of every route, exported (the daemon's start-up run and its scheduled job).
pub async fn run_once(config: &Config, metrics: &Metrics) {
    match tokio::time::timeout(AUDIT_DEADLINE, audit_all(config)).await {
        Ok(Ok(audits)) => {
            for a in &audits {
                metrics.record_audit(a);
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "DNS audit could not run"),
        Err(_) => tracing::error!(
            deadline_seconds = AUDIT_DEADLINE.as_secs(),
            "DNS audit did not finish before its deadline; cancelled"
        ),
    }
}

/// The audit's scheduler job on `schedule`; each run audits the config in force then.
pub fn job(
    schedule: &str,
    config: Arc<dyn Fn() -> Arc<Config> + Send + Sync>,
    metrics: Arc<Metrics>,
) -> Result<Job, tokio_cron_scheduler::JobSchedulerError> {
    Job::new_async(schedule, move |_id, _s| {
        let config = config();
        let metrics = metrics.clone();
        Box::pin(async move { run_once(&config, &metrics).await })
    })
}
