//! The `mailcanary` command: parse the command line and dispatch to `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match mailcanary::cli::parse() {
        Ok(cli) => mailcanary::cli::dispatch(cli),
        Err(code) => code,
    }
}
