//! `mailcanary run`: the [`daemon`] (cron scheduler, signals), the [`http`] endpoints, the
//! [`status_page`], and the scheduled DNS audit ([`audit_job`]).

pub mod audit_job;
pub mod daemon;
pub mod http;
pub mod status_page;
