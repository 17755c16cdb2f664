//! The DNS audit of configured routes: `check-dns --config` and, in `run`, on its own schedule
//! with metrics. The checks themselves live in `dns_audit`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::{Config, DnsAuditConfig};
use crate::dns_audit::{AuditReport, AuditTarget, Auditor, Check, DEFAULT_TIMEOUT};
use crate::metrics::Metrics;

/// One audit target per route: its From/envelope domains, sending IPs, DKIM selector (and the
/// signing key when mailcanary signs), and the seed domains it sends to.
pub fn targets(config: &Config) -> Vec<AuditTarget> {
    config
        .routes
        .iter()
        .map(|r| {
            let mut seed_domains: Vec<String> = config
                .seeds
                .iter()
                .filter(|s| s.routes.contains(&r.name))
                .filter_map(|s| s.address.rsplit_once('@').map(|(_, d)| d.to_string()))
                .collect();
            seed_domains.sort();
            seed_domains.dedup();
            let envelope = r.envelope_from.rsplit_once('@').map(|(_, d)| d.to_string());
            AuditTarget {
                route: r.name.clone(),
                from_domain: r.from_domain().to_string(),
                envelope_domain: envelope,
                ips: r.sending_ips.clone(),
                helo: r.helo.clone(),
                dkim_selector: r.dkim_selector.clone(),
                dkim_domain: r.dkim.as_ref().map(|d| d.domain.clone()),
                signing_key: r
                    .dkim
                    .as_ref()
                    .map(|d| d.key_file.clone())
                    .or_else(|| r.dkim_key_file.clone()),
                seed_domains,
                dnsbl_zones: r
                    .dnsbl_zones
                    .clone()
                    .unwrap_or_else(|| config.dns_audit.dnsbl_zones.clone()),
            }
        })
        .collect()
}

fn auditor(cfg: &DnsAuditConfig) -> Result<Auditor, String> {
    Auditor::new(cfg.nameserver, DEFAULT_TIMEOUT).map_err(|e| e.to_string())
}

/// Audits every route of the config.
pub async fn audit_all(config: &Config) -> Result<Vec<AuditReport>, String> {
    let auditor = auditor(&config.dns_audit)?;
    let mut reports = Vec::new();
    for t in targets(config) {
        reports.push(auditor.audit(&t).await);
    }
    Ok(reports)
}

/// Exports one route's audit.
pub fn export(metrics: &Metrics, report: &AuditReport) {
    for check in Check::ALL {
        if let Some(ok) = report.check_ok(check) {
            metrics
                .dns_check_ok
                .with_label_values(&[&report.route, check.as_str()])
                .set(i64::from(ok));
        }
    }
    for z in &report.dnsbl {
        if let Some(listed) = z.listed {
            metrics
                .dnsbl_listed
                .with_label_values(&[&report.route, &z.zone])
                .set(i64::from(listed));
        }
    }
    if let Some(bits) = report.dkim_key_bits {
        metrics
            .dkim_key_bits
            .with_label_values(&[&report.route])
            .set(i64::from(bits));
    }
    if let Some(n) = report.spf_dns_lookups {
        metrics
            .spf_dns_lookups
            .with_label_values(&[&report.route])
            .set(i64::from(n));
    }
}

/// One audit of every route, exported (the daemon's start-up run and its scheduled job).
pub async fn run_once(config: &Config, metrics: &Metrics) {
    match audit_all(config).await {
        Ok(reports) => {
            for r in &reports {
                export(metrics, r);
                tracing::info!(route = %r.route, status = r.status().as_str(), "DNS audit");
            }
        }
        Err(e) => tracing::error!(error = %e, "DNS audit could not run"),
    }
}

/// Adds the audit to the daemon's scheduler.
pub async fn schedule(
    scheduler: &JobScheduler,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
) -> Result<(), String> {
    let schedule = config.dns_audit.schedule.clone();
    let job = Job::new_async(schedule.as_str(), move |_id, _s| {
        let config = config.clone();
        let metrics = metrics.clone();
        Box::pin(async move {
            // Audits are cheap but must never pile up behind a dead resolver.
            let _ =
                tokio::time::timeout(Duration::from_secs(300), run_once(&config, &metrics)).await;
        })
    })
    .map_err(|e| format!("dns_audit.schedule {schedule:?}: {e}"))?;
    scheduler
        .add(job)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `check-dns --config FILE`: every route, readable or JSON; exit as `once`.
pub fn check_config_routes(config: &Config, json: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailcanary: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let reports = match rt.block_on(audit_all(config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailcanary check-dns: {e}");
            return ExitCode::from(3);
        }
    };
    if json {
        let items: Vec<serde_json::Value> = reports
            .iter()
            .filter_map(|r| serde_json::from_str(&r.to_json()).ok())
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for r in &reports {
            println!("route {}:", r.route);
            print!("{}", r.render_text());
        }
    }
    let worst = reports
        .iter()
        .map(|r| r.status().exit_code())
        .map(rank)
        .max()
        .unwrap_or(0);
    ExitCode::from(unrank(worst))
}

/// Orders exit codes by severity: ok < unknown < warning < critical.
fn rank(code: u8) -> u8 {
    match code {
        0 => 0,
        3 => 1,
        1 => 2,
        _ => 3,
    }
}

fn unrank(r: u8) -> u8 {
    match r {
        0 => 0,
        1 => 3,
        2 => 1,
        _ => 2,
    }
}
