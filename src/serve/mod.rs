//! `mailcanary run`: the [`daemon`] (cron scheduler, signals), the [`http`] endpoints, the
//! [`status_page`] (with its [`report_section`], both escaping with [`html`]) and config
//! [`reload`]. The scheduled jobs it
//! runs are in [`crate::jobs`].

pub mod daemon;
pub mod html;
pub mod http;
pub mod reload;
pub mod report_section;
pub mod status_page;
