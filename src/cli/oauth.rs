//! `mailcanary oauth login --config FILE --seed NAME` (or `--route`, `--bounce-mailbox`,
//! `--report-mailbox`): gets
//! the first refresh token of an `auth = "oauth2"` login by the device authorization grant
//! (RFC 8628). It prints the verification URL and the user code, waits while a person approves
//! in any browser, and writes the refresh token to the login's `refresh_token_file`
//! (atomically, mode 0600). Nothing secret is printed. Exit 0 with the file written, 3 else.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::terminal::escape;
use crate::config::{Config, Grant, OAuth2, SecretSource};
use crate::oauth::device::{self, Pacing};
use crate::oauth::persist;

#[derive(Args)]
pub struct OauthArgs {
    #[command(subcommand)]
    pub command: OauthCommand,
}

#[derive(Subcommand)]
pub enum OauthCommand {
    /// Get a login's first refresh token (device authorization grant, RFC 8628).
    Login(LoginArgs),
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    /// The seed whose login to authorize.
    #[arg(long, group = "target")]
    pub seed: Option<String>,
    /// The route whose SMTP login to authorize.
    #[arg(long, group = "target")]
    pub route: Option<String>,
    /// The bounce mailbox whose login to authorize.
    #[arg(long, group = "target")]
    pub bounce_mailbox: Option<String>,
    /// The report mailbox whose login to authorize.
    #[arg(long, group = "target")]
    pub report_mailbox: Option<String>,
}

pub fn run(args: &OauthArgs) -> Result<ExitCode, ExitCode> {
    match &args.command {
        OauthCommand::Login(login) => run_login(login),
    }
}

fn run_login(args: &LoginArgs) -> Result<ExitCode, ExitCode> {
    let config = crate::config::load_for_oauth_login(&args.config).map_err(super::fail)?;
    let named = [
        ("seed", &args.seed),
        ("route", &args.route),
        ("bounce_mailbox", &args.bounce_mailbox),
        ("report_mailbox", &args.report_mailbox),
    ];
    let Some((kind, name)) = named
        .iter()
        .find_map(|(kind, name)| name.as_deref().map(|n| (*kind, n)))
    else {
        return Err(super::fail(
            "name one of --seed, --route, --bounce-mailbox, --report-mailbox",
        ));
    };
    let oauth = find(&config, kind, name)?;
    let file = token_file(oauth, kind, name)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let grant = device::authorize(oauth).await.map_err(super::fail)?;
        let mut out = std::io::stdout().lock();
        // The URL and the code are what the token endpoint answered: escaped (terminal.rs).
        let _ = writeln!(
            out,
            "To let mailcanary read {kind} {name}, open {} and enter the code {}",
            escape(&grant.verification_uri),
            escape(&grant.user_code)
        );
        if let Some(complete) = &grant.verification_uri_complete {
            let _ = writeln!(out, "(or open {})", escape(complete));
        }
        let _ = writeln!(
            out,
            "Waiting for the approval (the code is valid for {} s)...",
            grant.expires_in.as_secs()
        );
        let _ = out.flush();
        drop(out);
        let token = device::poll(oauth, &grant, Pacing::default())
            .await
            .map_err(super::fail)?;
        let Some(refresh) = token.refresh_token else {
            return Err(super::fail(
                "the token endpoint gave no refresh token (for Microsoft, add offline_access to the scope)",
            ));
        };
        persist::write_token_file(&file, refresh.expose()).map_err(|e| {
            super::fail(format_args!("cannot write {}: {e}", file.display()))
        })?;
        println!("Approved: the refresh token is in {}", file.display());
        Ok(ExitCode::SUCCESS)
    })
}

/// The OAuth2 client of the named seed, route or bounce mailbox.
fn find<'a>(config: &'a Config, kind: &str, name: &str) -> Result<&'a OAuth2, ExitCode> {
    config
        .oauth_logins()
        .into_iter()
        .find(|(k, n, _)| *k == kind && *n == name)
        .map(|(_, _, o)| o)
        .ok_or_else(|| {
            super::fail(format_args!(
                "no {kind} named {name:?} with auth = \"oauth2\" in the config"
            ))
        })
}

/// Where the refresh token goes: the login's `refresh_token_file`.
fn token_file(oauth: &OAuth2, kind: &str, name: &str) -> Result<PathBuf, ExitCode> {
    if oauth.grant != Grant::RefreshToken {
        return Err(super::fail(format_args!(
            "{kind} {name} uses grant = \"client_credentials\": it needs no login"
        )));
    }
    match &oauth.refresh_token_source {
        Some(SecretSource::File(p)) => Ok(Path::new(p).to_path_buf()),
        _ => Err(super::fail(format_args!(
            "{kind} {name}: set oauth2.refresh_token_file, where the login writes the refresh token"
        ))),
    }
}
