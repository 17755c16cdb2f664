//! Config reload of `run`, on SIGHUP or `POST /-/reload`, the way Prometheus reloads its own:
//! the file is read and validated whole; an invalid one is refused — logged with every error,
//! answered with the message — and the running config stays. A valid one is put in force for
//! the next round (a running round finishes with the config it started with), keeping the IMAP
//! connections of unchanged mailboxes; a changed schedule replaces its cron job.
//! `mailcanary_config_last_reload_successful` and
//! `mailcanary_config_last_reload_success_timestamp_seconds` say how the last attempt went,
//! as `prometheus_config_last_reload_*` do.
//!
//! What needs a new socket or a new state file — `probe.listen`, `probe.state` — the instance
//! name (its probes in flight are the state's and the tokens') and the report mailboxes
//! (`[report_mailboxes.*]`, read by their own job set up at start) cannot change while running: such a
//! file is refused, saying so.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Mutex as AsyncMutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::clock::now;
use crate::config::{self, Config, ConfigError};
use crate::jobs::audit_job;
use crate::jobs::probe_job;
use crate::probe::prober::Prober;
use crate::probe::send::SendError;

/// Why a reload was refused. The running config stays in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file cannot be read, is not valid TOML, or has invalid values (every one listed).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The file changes settings that only a restart can change.
    #[error("{}", .0.join("; "))]
    NeedsRestart(Vec<String>),
    /// A route's SMTP client cannot be set up (its CA file, its TLS parameters).
    #[error("cannot set up the routes: {0}")]
    Setup(#[from] SendError),
    /// The scheduler refused a new job (the config is in force; its old schedule runs).
    #[error("scheduler: {0}")]
    Scheduler(String),
}

impl ReloadError {
    /// A fixed label for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ReloadError::Config(_) => "config",
            ReloadError::NeedsRestart(_) => "restart_needed",
            ReloadError::Setup(_) => "setup",
            ReloadError::Scheduler(_) => "scheduler",
        }
    }
}

/// The daemon's cron jobs: probe rounds and the DNS audit.
struct Jobs {
    round: Uuid,
    round_schedule: String,
    audit: Uuid,
    audit_schedule: String,
}

/// Reloads the config of a running daemon; owns its cron jobs.
pub struct Reloader {
    path: PathBuf,
    prober: Arc<Prober>,
    scheduler: JobScheduler,
    /// Set once a round has really finished (`/readyz`).
    ready: Arc<AtomicBool>,
    /// The jobs; the lock also makes reloads one at a time.
    jobs: AsyncMutex<Jobs>,
}

impl Reloader {
    /// Adds the round and audit jobs of the config in force to `scheduler`.
    pub async fn start(
        path: PathBuf,
        prober: Arc<Prober>,
        scheduler: JobScheduler,
        ready: Arc<AtomicBool>,
    ) -> Result<Reloader, JobSchedulerError> {
        let config = prober.config();
        let round_schedule = config.probe.schedule.clone();
        let audit_schedule = config.dns_audit.schedule.clone();
        let round = scheduler
            .add(probe_job::job(&round_schedule, &prober, &ready)?)
            .await?;
        let audit = scheduler.add(audit_job(&audit_schedule, &prober)?).await?;
        Ok(Reloader {
            path,
            prober,
            scheduler,
            ready,
            jobs: AsyncMutex::new(Jobs {
                round,
                round_schedule,
                audit,
                audit_schedule,
            }),
        })
    }

    /// Re-reads the config file and puts it in force, or refuses it; `trigger` (`SIGHUP`,
    /// `HTTP`) is logged. Exported as the reload metrics either way.
    pub async fn reload(&self, trigger: &str) -> Result<(), ReloadError> {
        let mut jobs = self.jobs.lock().await;
        let result = self.apply(&mut jobs).await;
        let metrics = &self.prober.metrics;
        match &result {
            Ok(()) => metrics.config_loaded(true, now()),
            Err(e) => {
                metrics.config_loaded(false, now());
                tracing::error!(
                    trigger,
                    path = %self.path.display(),
                    reason = e.reason(),
                    error = %e,
                    "config reload refused; the running config stays"
                );
            }
        }
        result
    }

    async fn apply(&self, jobs: &mut Jobs) -> Result<(), ReloadError> {
        let next = config::load(&self.path)?;
        let running = self.prober.config();
        let restart = needs_restart(&running, &next);
        if !restart.is_empty() {
            return Err(ReloadError::NeedsRestart(restart));
        }
        let (round_schedule, audit_schedule) =
            (next.probe.schedule.clone(), next.dns_audit.schedule.clone());
        let carried = self.prober.reload(next)?;
        let config = self.prober.config();
        tracing::info!(
            path = %self.path.display(),
            routes = config.routes.len(),
            seeds = config.seeds.len(),
            kept_connections = carried.kept.join(","),
            new_connections = carried.fresh.join(","),
            dropped_connections = carried.dropped.join(","),
            "config reloaded; in force from the next round"
        );
        let scheduler = |e: JobSchedulerError| ReloadError::Scheduler(e.to_string());
        if round_schedule != jobs.round_schedule {
            let job =
                probe_job::job(&round_schedule, &self.prober, &self.ready).map_err(scheduler)?;
            let id = self.scheduler.add(job).await.map_err(scheduler)?;
            // A removed job's round still running finishes: the scheduler only stops firing it.
            self.scheduler
                .remove(&jobs.round)
                .await
                .map_err(scheduler)?;
            (jobs.round, jobs.round_schedule) = (id, round_schedule);
        }
        if audit_schedule != jobs.audit_schedule {
            let job = audit_job(&audit_schedule, &self.prober).map_err(scheduler)?;
            let id = self.scheduler.add(job).await.map_err(scheduler)?;
            self.scheduler
                .remove(&jobs.audit)
                .await
                .map_err(scheduler)?;
            (jobs.audit, jobs.audit_schedule) = (id, audit_schedule);
        }
        // New routes get their DNS audit series now rather than at the next scheduled audit.
        let metrics = self.prober.metrics.clone();
        tokio::spawn(async move { audit_job::run_once(&config, &metrics).await });
        Ok(())
    }
}

/// The settings of `next` that differ from `running` and only a restart can change.
fn needs_restart(running: &Config, next: &Config) -> Vec<String> {
    let (a, b) = (&running.probe, &next.probe);
    let mut out = Vec::new();
    if a.listen != b.listen {
        out.push(format!(
            "probe.listen: cannot change from {} to {} while running; restart mailcanary",
            a.listen, b.listen
        ));
    }
    if a.state != b.state {
        out.push(format!(
            "probe.state: cannot change from {} to {} while running; restart mailcanary",
            a.state.display(),
            b.state.display()
        ));
    }
    if a.instance != b.instance {
        out.push(format!(
            "probe.instance: cannot change from {:?} to {:?} while running; restart mailcanary",
            a.instance, b.instance
        ));
    }
    // The report mailboxes' job is set up once, at start (its own store and schedule).
    if running.report_mailboxes != next.report_mailboxes {
        out.push("report_mailboxes: cannot change while running; restart mailcanary".to_string());
    }
    out
}

fn audit_job(schedule: &str, prober: &Arc<Prober>) -> Result<Job, JobSchedulerError> {
    let p = prober.clone();
    audit_job::job(
        schedule,
        Arc::new(move || p.config()),
        prober.metrics.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(probe: &str) -> Config {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        let text = format!(
            "[probe]\ntoken_key_file = \"token.key\"\n{probe}\n\
             [routes.main]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n\
             [seeds.s]\naddress = \"s@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n"
        );
        config::parse(&text, &std::path::Path::new(dir).join("x.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn listen_state_and_instance_need_a_restart_the_rest_does_not() {
        let running = config("instance = \"a\"\nlisten = \"127.0.0.1:9925\"\nstate = \"s.db\"");
        let same_but_schedule = config(
            "instance = \"a\"\nlisten = \"127.0.0.1:9925\"\nstate = \"s.db\"\nschedule = \"* * * * *\"",
        );
        assert!(needs_restart(&running, &same_but_schedule).is_empty());
        let moved = config("instance = \"b\"\nlisten = \"127.0.0.1:9926\"\nstate = \"t.db\"");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        assert_eq!(
            needs_restart(&running, &moved),
            vec![
                "probe.listen: cannot change from 127.0.0.1:9925 to 127.0.0.1:9926 while running; restart mailcanary".to_string(),
                format!("probe.state: cannot change from {dir}/s.db to {dir}/t.db while running; restart mailcanary"),
                "probe.instance: cannot change from \"a\" to \"b\" while running; restart mailcanary".to_string(),
            ]
        );
    }
}
