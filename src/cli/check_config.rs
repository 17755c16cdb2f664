//! `mailcanary check-config`: validate a config file (every error at once, with its path) and
//! summarise it. Exit 0 valid, 3 invalid.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> Result<ExitCode, ExitCode> {
    let c = super::load_config(path)?;
    println!(
        "{}: ok ({} routes, {} seeds, {} probes per round, every {})",
        path.display(),
        c.routes.len(),
        c.seeds.len(),
        c.pairs().len(),
        humantime::format_duration(c.probe.interval)
    );
    for d in &c.deprecations {
        eprintln!("mailcanary: warning: {d}");
    }
    Ok(ExitCode::SUCCESS)
}
