//! mailcanary: an end-to-end email deliverability probe.
//!
//! The pipeline, one module per job:
//! schedule → send → fetch → judge → record → export.

pub mod config;
pub mod dns_audit;
pub mod inspect;
pub mod verdict;
