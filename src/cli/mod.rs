//! The command line: one file per subcommand (its arguments, what it runs, its exit code).
//! `main.rs` parses and dispatches; everything else a command needs is here.

pub mod check_config;
pub mod check_dns;
pub mod hash_password;
pub mod inspect;
pub mod oauth;
pub mod once;
pub mod run;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::probe::prober::Prober;
use crate::state::probes::ProbeStore;
use crate::status::exit;

#[derive(Parser)]
#[command(
    name = "mailcanary",
    version,
    about = "End-to-end email deliverability probe"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run continuously: probe rounds on the schedule, HTTP on `probe.listen`.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        web: run::WebArgs,
    },
    /// Run one round now, print the report and exit (0 ok, 1 warning, 2 critical, 3 unknown).
    Once {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the stable JSON contract instead of the readable report.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file (and a web config file) and exit (0 valid, 3 invalid).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
        /// Also validate this web config file (TLS and basic auth, as `run` reads it).
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config: Option<PathBuf>,
    },
    /// Explain a received message: authentication results, SPF, spam-filter verdict.
    Inspect(inspect::InspectArgs),
    /// Audit the DNS behind the verdicts: rDNS, SPF, DKIM, DMARC, blocklists, MX, MTA-STS.
    CheckDns(check_dns::CheckDnsArgs),
    /// OAuth2 logins: `oauth login` gets a seed's or route's first refresh token.
    Oauth(oauth::OauthArgs),
    /// Print the bcrypt hash of the password on standard input, for the web config's
    /// `basic_auth_users`.
    HashPassword(hash_password::HashPasswordArgs),
}

/// Parses the command line. Usage errors exit 3 ("unknown"), not clap's 2, which means
/// "critical" here; `--help` and `--version` exit 0.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let code = if e.use_stderr() {
            exit::UNKNOWN
        } else {
            exit::OK
        };
        let _ = e.print();
        ExitCode::from(code)
    })
}

/// Runs the parsed command and returns its exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Inspect(args) => Ok(inspect::run(&args)),
        Command::CheckDns(args) => check_dns::run(&args),
        Command::Oauth(args) => oauth::run(&args),
        Command::HashPassword(args) => hash_password::run(&args),
        Command::CheckConfig { config, web_config } => {
            check_config::run(&config, web_config.as_deref())
        }
        Command::Once { config, json } => once::run(&config, json),
        Command::Run { config, web } => run::run(&config, &web),
    };
    result.unwrap_or_else(|code| code)
}

/// Prints `mailcanary: <what>` to standard error and gives the "unknown" exit code.
pub fn fail(what: impl std::fmt::Display) -> ExitCode {
    // Errors may quote what a server, a report or a DNS record said.
    eprintln!("mailcanary: {}", terminal::escape_lines(&what.to_string()));
    ExitCode::from(exit::UNKNOWN)
}

/// Logs to standard error, filtered by `RUST_LOG` (else `default`).
///
/// Wire traces of the protocol crates are never turned on, whatever `RUST_LOG` says: at
/// trace level they print IMAP `LOGIN` and SMTP `AUTH` lines with the password in clear.
pub fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let filter =
        WIRE_LOGGERS
            .iter()
            .fold(filter, |f, target| match format!("{target}=info").parse() {
                Ok(directive) => f.add_directive(directive),
                Err(_) => f,
            });
    // Colours only on a terminal: journald and `docker logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    // Every line escaped on its way out (terminal.rs): fields carry what servers and reports
    // said, and logs end up in terminals too (`docker logs`, `journalctl`).
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || terminal::EscapingWriter::new(std::io::stderr(), ansi))
        .with_ansi(ansi)
        .init();
}

/// Crates whose debug/trace output contains protocol lines with credentials (HTTP bodies of
/// token requests included).
const WIRE_LOGGERS: [&str; 7] = [
    "async_imap",
    "imap_proto",
    "lettre",
    "rustls",
    "reqwest",
    "hyper",
    "hyper_util",
];

/// Loads and validates a config file (every error at once), or says why not. Its warnings
/// (deprecated keys, secret files others can read) go to the log ([`config::load`]), or to
/// standard error when the command keeps no log (`check-config`, `check-dns`).
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    let config = config::load(path).map_err(fail)?;
    if !tracing::dispatcher::has_been_set() {
        for w in &config.warnings {
            eprintln!(
                "mailcanary: warning: {}",
                terminal::escape_lines(&w.to_string())
            );
        }
    }
    Ok(config)
}

/// The one async runtime builder of every command.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format_args!("cannot start the async runtime: {e}")))
}

/// Opens the state and builds the prober (which holds config, state and metrics).
pub fn prober(config: Config) -> Result<Arc<Prober>, ExitCode> {
    let config = Arc::new(config);
    let store =
        Arc::new(ProbeStore::open(&config.probe.state, &config.probe.instance).map_err(fail)?);
    let metrics = Arc::new(Metrics::new());
    let prober = Prober::new(config, store, metrics).map_err(fail)?;
    Ok(Arc::new(prober))
}
