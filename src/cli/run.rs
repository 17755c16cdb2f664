//! `mailcanary run`: the daemon (rounds on the schedule, the DNS audit, HTTP) until SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::serve::web::Web;

/// The HTTP options of `run`, named as Prometheus and its exporters name theirs.
#[derive(clap::Args, Debug, Default)]
pub struct WebArgs {
    /// A web config file (the Prometheus exporter toolkit's format): TLS and basic auth for
    /// every endpoint.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<PathBuf>,
    /// Serve `POST /-/reload` (off by default, as in Prometheus; SIGHUP always reloads).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// A host name (or `name:port`) a lifecycle request's Host header may carry besides the
    /// listen address, e.g. a Kubernetes Service or reverse proxy name. Repeatable.
    #[arg(long = "web.allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
}

pub fn run(path: &Path, args: &WebArgs) -> Result<ExitCode, ExitCode> {
    super::init_logs("info");
    let config = super::load_config(path)?;
    let web = Web {
        config: match &args.web_config {
            Some(p) => Some(crate::serve::web_config::load(p).map_err(super::fail)?),
            None => None,
        },
        enable_lifecycle: args.enable_lifecycle,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    let rt = super::runtime()?;
    let prober = super::prober(config)?;
    let result = rt.block_on(crate::serve::daemon::run(prober, path, web));
    // Whatever a task still does (a send in flight, a log-out) gets one more second: the
    // process exits within seconds of SIGTERM, as container and service managers expect.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map(|()| ExitCode::SUCCESS).map_err(super::fail)
}
