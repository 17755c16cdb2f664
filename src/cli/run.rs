//! `mailcanary run`: the daemon (rounds on the schedule, the DNS audit, HTTP) until SIGTERM.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> Result<ExitCode, ExitCode> {
    super::init_logs("info");
    let config = super::load_config(path)?;
    let rt = super::runtime()?;
    let prober = super::prober(config)?;
    rt.block_on(crate::serve::daemon::run(prober))
        .map(|()| ExitCode::SUCCESS)
        .map_err(super::fail)
}
