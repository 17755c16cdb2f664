//! `mailcanary run`: the [`daemon`] (cron scheduler, signals), the [`http`] endpoints, the
//! [`status_page`] (with its [`report_section`]), the scheduled DNS audit ([`audit_job`]), the
//! scheduled reading of report mailboxes ([`report_job`]) and config [`reload`].

pub mod audit_job;
pub mod daemon;
pub mod http;
pub mod reload;
pub mod report_job;
pub mod report_section;
pub mod status_page;
