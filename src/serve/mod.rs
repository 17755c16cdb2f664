//! `mailcanary run`: the [`daemon`] (cron scheduler, signals), the [`http`] endpoints, the
//! [`status_page`] (with its [`report_section`]), the scheduled DNS audit ([`audit_job`],
//! through the [`audit_gate`]), the scheduled reading of report mailboxes ([`report_job`]) and
//! config [`reload`] (requests [`coalesce`]d). Around the endpoints ([`web`]): the
//! [`web_config`] file with [`tls`] and [`basic_auth`], the [`lifecycle`] endpoint's guard,
//! and the security headers.

pub mod audit_gate;
pub mod audit_job;
pub mod basic_auth;
pub mod coalesce;
pub mod daemon;
pub mod http;
pub mod lifecycle;
pub mod reload;
pub mod report_job;
pub mod report_section;
pub mod status_page;
pub mod tls;
pub mod web;
pub mod web_config;
