//! The `mailcanary` command: parses the CLI and wires the modules together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use mailcanary::config::{self, Config};
use mailcanary::metrics::Metrics;
use mailcanary::report;
use mailcanary::round::Prober;
use mailcanary::state::Store;

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
    /// Run continuously: probe rounds on the schedule, HTTP on `probe.listen`.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run one round now, print the report and exit (0 ok, 1 warning, 2 critical, 3 unknown).
    Once {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the stable JSON contract instead of the readable report.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file and exit (0 valid, 3 invalid).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Explain a received message: authentication results, SPF, spam-filter verdict.
    Inspect(mailcanary::inspect::InspectArgs),
    /// Audit the DNS behind the verdicts: rDNS, SPF, DKIM, DMARC, blocklists, MX, MTA-STS.
    CheckDns(mailcanary::dns_audit::CheckDnsArgs),
}

/// Exit code for config and usage errors (monitoring-plugin "unknown").
const EXIT_UNKNOWN: u8 = 3;

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: journald and `docker logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("mailcanary: {e}");
        ExitCode::from(EXIT_UNKNOWN)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("mailcanary: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_UNKNOWN)
        })
}

/// Opens the state and builds the prober (which holds config, state and metrics).
fn setup(config: Config) -> Result<Arc<Prober>, ExitCode> {
    let config = Arc::new(config);
    let store = Store::open(&config.probe.state).map_err(|e| {
        eprintln!("mailcanary: {e}");
        ExitCode::from(EXIT_UNKNOWN)
    })?;
    let store = Arc::new(store);
    let metrics = Arc::new(Metrics::new());
    let prober = Prober::new(config.clone(), store.clone(), metrics.clone()).map_err(|e| {
        eprintln!("mailcanary: {e}");
        ExitCode::from(EXIT_UNKNOWN)
    })?;
    Ok(Arc::new(prober))
}

fn main() -> ExitCode {
    // Usage errors exit 3 ("unknown"), not clap's 2, which means "critical" here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_UNKNOWN } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Inspect(args) => return mailcanary::inspect::run(&args),
        Command::CheckDns(args) => match &args.config {
            Some(path) => load(path).map(|c| mailcanary::audit::check_config_routes(&c, args.json)),
            None => return mailcanary::dns_audit::run(&args),
        },
        Command::CheckConfig { config } => load(&config).map(|c| {
            println!(
                "{}: ok ({} routes, {} seeds, {} probes per round, every {})",
                config.display(),
                c.routes.len(),
                c.seeds.len(),
                c.pairs().len(),
                humantime::format_duration(c.probe.interval)
            );
            ExitCode::SUCCESS
        }),
        Command::Once { config, json } => {
            init_logs("warn");
            load(&config).and_then(|c| once(c, json))
        }
        Command::Run { config } => {
            init_logs("info");
            load(&config).and_then(run)
        }
    };
    result.unwrap_or_else(|code| code)
}

fn once(config: Config, json: bool) -> Result<ExitCode, ExitCode> {
    let rt = runtime()?;
    let prober = setup(config)?;
    let config = prober.config.clone();
    rt.block_on(async move {
        let records = prober.round().await.map_err(|e| {
            eprintln!("mailcanary: {e}");
            ExitCode::from(EXIT_UNKNOWN)
        })?;
        prober.close().await;
        let report = report::build(&records, |r| {
            mailcanary::diagnose::for_record(r, Some(&config))
        });
        if json {
            match serde_json::to_string_pretty(&report) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("mailcanary: cannot encode the report: {e}");
                    return Err(ExitCode::from(EXIT_UNKNOWN));
                }
            }
        } else {
            print!("{}", report::render_text(&report));
        }
        Ok(ExitCode::from(report.status.exit_code()))
    })
}

fn run(config: Config) -> Result<ExitCode, ExitCode> {
    let rt = runtime()?;
    let prober = setup(config)?;
    rt.block_on(mailcanary::daemon::run(prober))
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| {
            eprintln!("mailcanary: {e}");
            ExitCode::from(EXIT_UNKNOWN)
        })
}
