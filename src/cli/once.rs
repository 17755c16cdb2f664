//! `mailcanary once`: one round now, the results on standard output (readable or the JSON
//! contract; the readable form ends with a line per sender requirement the probes show unmet,
//! `results::scorecard`), and the worst status as the exit code (0 ok, 1 warning, 2 critical,
//! 3 unknown).

use std::path::Path;
use std::process::ExitCode;

use crate::results;

pub fn run(path: &Path, json: bool) -> Result<ExitCode, ExitCode> {
    super::init_logs("warn");
    let config = super::load_config(path)?;
    let rt = super::runtime()?;
    let prober = super::prober(config)?;
    let config = prober.config();
    rt.block_on(async move {
        let records = prober.round_now().await.map_err(super::fail)?;
        prober.close().await;
        let records = results::latest_of_each_pair(&records);
        let pairs = prober.store.pairs().map_err(super::fail)?;
        let results = results::build(&records, &config).with_pair_states(&pairs);
        if json {
            let s = serde_json::to_string_pretty(&results)
                .map_err(|e| super::fail(format_args!("cannot encode the results: {e}")))?;
            println!("{s}");
        } else {
            print!(
                "{}",
                super::terminal::escape_lines(&results::words::render_text(&results))
            );
            // The providers' sender requirements this round's probes show unmet.
            let scored = results::scorecard::score_routes(&records, &config);
            for line in results::scorecard::unmet_lines(&scored) {
                println!(
                    "{}",
                    super::terminal::escape(&format!("requirement {line}"))
                );
            }
        }
        Ok(ExitCode::from(results.status.exit_code()))
    })
}
