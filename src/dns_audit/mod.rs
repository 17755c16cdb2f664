//! The DNS audit: reverse DNS, SPF, DKIM, DMARC and blocklists behind a route's verdicts.

pub mod diagnosis;
pub mod keys;
pub mod tags;

pub use diagnosis::{Cause, Context, Diagnosis, VerdictFacts, diagnose_verdict};

use std::process::ExitCode;

/// Arguments of `mailcanary check-dns`.
#[derive(Debug, clap::Args)]
pub struct CheckDnsArgs {
    /// Audit every route of this config file.
    #[arg(long, conflicts_with = "domain")]
    pub config: Option<std::path::PathBuf>,
    /// Ad hoc: the From / envelope domain to audit.
    #[arg(long, requires = "ip")]
    pub domain: Option<String>,
    /// Ad hoc: a sending IP address (repeatable).
    #[arg(long)]
    pub ip: Vec<std::net::IpAddr>,
    /// Ad hoc: the HELO name the sending server uses.
    #[arg(long)]
    pub helo: Option<String>,
    /// Ad hoc: the DKIM selector.
    #[arg(long)]
    pub selector: Option<String>,
    /// Print the stable JSON contract instead of the readable report.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command; exit codes as `once` (0 ok, 1 warning, 2 critical, 3 unknown).
pub fn run(_args: &CheckDnsArgs) -> ExitCode {
    eprintln!("mailcanary check-dns: not implemented yet");
    ExitCode::from(3)
}
