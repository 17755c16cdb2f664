//! `mailcanary once`: one round now, the report on standard output (readable or the JSON
//! contract), and the worst status as the exit code (0 ok, 1 warning, 2 critical, 3 unknown).

use std::path::Path;
use std::process::ExitCode;

use crate::report;

pub fn run(path: &Path, json: bool) -> Result<ExitCode, ExitCode> {
    super::init_logs("warn");
    let config = super::load_config(path)?;
    let rt = super::runtime()?;
    let prober = super::prober(config)?;
    let config = prober.config();
    rt.block_on(async move {
        let records = prober.round().await.map_err(super::fail)?;
        prober.close().await;
        let report = report::build(&records, |r| {
            crate::probe::causes::for_record(r, Some(&config))
        });
        if json {
            let s = serde_json::to_string_pretty(&report)
                .map_err(|e| super::fail(format_args!("cannot encode the report: {e}")))?;
            println!("{s}");
        } else {
            print!(
                "{}",
                super::terminal::escape_lines(&report::render_text(&report))
            );
        }
        Ok(ExitCode::from(report.status.exit_code()))
    })
}
