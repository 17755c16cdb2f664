//! `mailcanary run`: the [`daemon`] (cron scheduler, signals), the [`http`] endpoints (the
//! `/metrics` body: [`exposition`]), the [`status_page`] (with its [`report_section`] and
//! [`requirement_section`], escaping with [`html`]) and config [`reload`] (requests
//! [`coalesce`]d). Around the endpoints ([`web`]): the [`web_config`] file with [`tls`] and
//! [`basic_auth`], the [`lifecycle`] endpoint's guard, and the security headers. The scheduled
//! jobs it runs are in [`crate::jobs`].

pub mod basic_auth;
pub mod coalesce;
pub mod daemon;
pub mod exposition;
pub mod html;
pub mod http;
pub mod lifecycle;
pub mod reload;
pub mod report_section;
pub mod requirement_section;
pub mod status_page;
pub mod tls;
pub mod web;
pub mod web_config;
