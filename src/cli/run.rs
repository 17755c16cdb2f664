//! `mailcanary run`: the daemon (rounds on the schedule, the DNS audit, HTTP) until SIGTERM.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> Result<ExitCode, ExitCode> {
    super::init_logs("info");
    let config = super::load_config(path)?;
    let rt = super::runtime()?;
    let prober = super::prober(config)?;
    let result = rt.block_on(crate::serve::daemon::run(prober, path));
    // Whatever a task still does (a send in flight, a log-out) gets one more second: the
    // process exits within seconds of SIGTERM, as container and service managers expect.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map(|()| ExitCode::SUCCESS).map_err(super::fail)
}
