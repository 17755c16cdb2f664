//! mailcanary: an end-to-end email deliverability probe.
//!
//! The pipeline, one module per job:
//! schedule → send → fetch → judge → record → export.

pub mod compose;
pub mod config;
pub mod dns_audit;
pub mod imap;
pub mod inspect;
pub mod send;
pub mod token;
pub mod verdict;
