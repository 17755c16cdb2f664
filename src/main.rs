//! The `mailcanary` command: parses the CLI and wires the modules together.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailcanary",
    version,
    about = "End-to-end email deliverability probe"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explain a received message: authentication results, SPF, spam-filter verdict.
    Inspect(mailcanary::inspect::InspectArgs),
    /// Audit the DNS behind the verdicts: rDNS, SPF, DKIM, DMARC, blocklists, MX, MTA-STS.
    CheckDns(mailcanary::dns_audit::CheckDnsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(args) => mailcanary::inspect::run(&args),
        Command::CheckDns(args) => mailcanary::dns_audit::run(&args),
    }
}
