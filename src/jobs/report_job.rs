//! The scheduled reading of report mailboxes in `run`: each `[report_mailboxes.NAME]` on its own
//! schedule and once at start-up, never two reads of one mailbox at once, each bounded in time.
//! The reading itself lives in [`crate::report_mailbox`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::clock::now;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::report_mailbox::ReportReader;
use crate::state::reports::ReportStore;
use crate::state::{Db, StateError};

/// How long one read of a report mailbox may take: a first read of a big mailbox is slow, but a
/// dead server must not stall the next one for ever.
const READ_DEADLINE: Duration = Duration::from_secs(600);

/// Opens the reports of the state `db`, restores the newest-report gauges from them, and
/// schedules every report mailbox (the first read starts at once). `None` when no report
/// mailbox is configured.
pub async fn start(
    scheduler: &JobScheduler,
    config: &Config,
    db: &Arc<Db>,
    metrics: Arc<Metrics>,
) -> Result<Option<Arc<ReportStore>>, StartError> {
    if config.report_mailboxes.is_empty() {
        return Ok(None);
    }
    let store = Arc::new(ReportStore::new(db.clone()));
    for (domain, reporter, end) in store.last_dmarc_per_reporter()? {
        metrics
            .reports
            .dmarc_report_seen(&domain, &reporter, end as f64);
    }
    for mailbox in &config.report_mailboxes {
        let reader = Arc::new(Mutex::new(ReportReader::new(
            mailbox,
            store.clone(),
            metrics.clone(),
            config.dns_audit.nameserver,
            config.probe.retention,
        )));
        let retention = config.probe.retention;
        let job_reader = reader.clone();
        let job_store = store.clone();
        let job = Job::new_async(mailbox.schedule.as_str(), move |_id, _s| {
            let reader = job_reader.clone();
            let store = job_store.clone();
            Box::pin(async move { read_once(&reader, &store, retention).await })
        })
        .map_err(|e| StartError::Schedule(mailbox.mailbox.name.clone(), e))?;
        scheduler
            .add(job)
            .await
            .map_err(|e| StartError::Schedule(mailbox.mailbox.name.clone(), e))?;
        let first_store = store.clone();
        tokio::spawn(async move { read_once(&reader, &first_store, retention).await });
    }
    Ok(Some(store))
}

/// One read of one mailbox, unless a read of it is still running; then the pruning of what is
/// older than the retention.
async fn read_once(reader: &Mutex<ReportReader>, store: &ReportStore, retention: Duration) {
    let Ok(mut reader) = reader.try_lock() else {
        tracing::info!("report mailbox still being read; this scheduled read is skipped");
        return;
    };
    let name = reader.name().to_string();
    match tokio::time::timeout(READ_DEADLINE, reader.read()).await {
        // A read that found nothing new is the common case: logged at debug only.
        Ok(Ok(s)) if s.messages == 0 => tracing::debug!(mailbox = %name, "report mailbox read"),
        Ok(Ok(s)) => tracing::info!(
            mailbox = %name,
            messages = s.messages,
            new_reports = s.new_reports,
            duplicates = s.duplicates,
            unreadable = s.unreadable,
            ignored = s.ignored,
            "report mailbox read"
        ),
        Ok(Err(e)) => {
            tracing::warn!(mailbox = %name, reason = e.reason(), error = %e, "report mailbox read failed")
        }
        Err(_) => tracing::error!(
            mailbox = %name,
            deadline_seconds = READ_DEADLINE.as_secs(),
            "report mailbox read did not finish before its deadline; cancelled"
        ),
    }
    if let Err(e) = store.prune(now() - retention.as_secs_f64()) {
        tracing::warn!(error = %e, "cannot prune old reports");
    }
}

/// Why report reading could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("report_mailboxes.{0}.schedule: {1}")]
    Schedule(String, tokio_cron_scheduler::JobSchedulerError),
}
