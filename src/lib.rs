//! mailcanary: an end-to-end email deliverability probe.
//!
//! The pipeline, one module per job:
//! schedule → send → fetch → judge → record → export.

pub mod audit;
pub mod compose;
pub mod config;
pub mod daemon;
pub mod diagnose;
pub mod dns_audit;
pub mod http;
pub mod imap;
pub mod inspect;
pub mod judge;
pub mod metrics;
pub mod report;
pub mod round;
pub mod send;
pub mod state;
pub mod status_page;
pub mod token;
pub mod verdict;
