//! The scheduled jobs of `mailcanary run`, one file each: probe rounds ([`probe_job`]), the DNS
//! audit ([`audit_job`]) and the reading of report mailboxes ([`report_job`]). Each runs its
//! pipeline on its own schedule, bounded in time; the daemon and reload only start and replace
//! them.

pub mod audit_job;
pub mod probe_job;
pub mod report_job;
