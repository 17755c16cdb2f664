//! `mailcanary inspect`: the verdict reader as a command.

use std::process::ExitCode;

/// Arguments of `mailcanary inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Print the stable JSON contract instead of the human explanation.
    #[arg(long)]
    pub json: bool,
    /// Trust only Authentication-Results headers from this authserv-id (repeatable).
    #[arg(long = "authserv-id", value_name = "ID")]
    pub authserv_ids: Vec<String>,
    /// The message to read (RFC 5322), or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,
}

/// Runs the command; exit 0 when the message was read, 2 when the input was unreadable.
pub fn run(_args: &InspectArgs) -> ExitCode {
    eprintln!("mailcanary inspect: not implemented yet");
    ExitCode::from(2)
}
