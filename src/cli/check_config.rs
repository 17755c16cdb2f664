//! `mailcanary check-config`: validate a config file (every error at once, with its path) and
//! summarise it; with `--web.config.file`, the web config file too (its TLS files read and
//! checked, as `run` would). Exit 0 valid, 3 invalid.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path, web_config: Option<&Path>) -> Result<ExitCode, ExitCode> {
    let c = super::load_config(path)?;
    let web = match web_config {
        Some(p) => Some(crate::serve::web_config::load(p).map_err(super::fail)?),
        None => None,
    };
    println!(
        "{}: ok ({} routes, {} seeds, {} probes per round, every {})",
        path.display(),
        c.routes.len(),
        c.seeds.len(),
        c.pairs().len(),
        humantime::format_duration(c.probe.interval)
    );
    if let Some(web) = web {
        println!("{}: ok ({})", web.path.display(), web.summary());
    }
    Ok(ExitCode::SUCCESS)
}
