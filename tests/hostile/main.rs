//! Hostile-server tests: the built `mailcanary` binary, driven only through its config file, its
//! `once --json` output, its exit status, its HTTP port and signals, against small servers of
//! our own on 127.0.0.1 (ephemeral ports, never any other address) that misbehave ON PURPOSE.
//! These stand in for what a real server cannot be made to do; the end-to-end tests use the
//! real lab (tests/probe_lab.rs and friends).
//!
//! Every test has its own servers, ports and temporary directory, so they run in parallel. None
//! can hang the suite: a child still running at its limit is killed and the test fails saying
//! so (`child`). Each asserts the exit status, the wall time, the probe's outcome and the peak
//! RSS (VmHWM, `rss`) of the child.

mod child;
mod control;
mod daemon;
mod gmail;
mod gmail_server;
mod imap;
mod imap_server;
mod oauth;
#[path = "../common/rss.rs"]
mod rss;
mod setup;
mod smtp;
mod smtp_server;
mod tls;
mod wire;

use std::time::Duration;

/// `once` must have ended by then (route timeout 3 s, probe timeouts 3–8 s).
pub const ONCE_WITHIN: Duration = Duration::from_secs(20);
/// A child still running then is killed.
pub const HARD_LIMIT: Duration = Duration::from_secs(30);
