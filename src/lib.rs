//! mailcanary: an end-to-end email deliverability probe.
//!
//! The application, by layer:
//! - [`cli`]: one file per subcommand (arguments, what it runs, its exit code);
//! - [`config`]: the strict config (plain data: validating it has no effect on the process),
//!   provider presets, secrets;
//! - [`oauth`]: OAuth2 access tokens for IMAP and SMTP logins (token requests, the caches a
//!   running setup shares, device login, SASL framing);
//! - [`probe`]: the pipeline of a probe — compose → send → fetch → judge → record → move the
//!   pair's standing ([`probe::prober`] runs each [`probe::round`], rounds do not wait for each
//!   other; [`probe::launch`] puts probes on their way, [`probe::watch`] finds and judges,
//!   [`probe::dispatch`] confirms bad outcomes at once, [`state`] records);
//! - [`report_mailbox`]: report mailboxes — fetch → unpack → store once → count the domain's
//!   DMARC aggregate and TLS reports, on their own schedule;
//! - [`jobs`]: the scheduled jobs of `run`, siblings — probe rounds, the DNS audit, the reading
//!   of report mailboxes;
//! - [`serve`]: `run` — the daemon (scheduler, signals), HTTP endpoints, the status page, reload;
//! - [`results`] (the results of a round as people, scripts and metrics read them: each record
//!   diagnosed and put in words once) and [`metrics`] (every Prometheus series by family, set
//!   only through `Metrics` methods).
//!
//! The rooms every pipeline shares, beside them rather than inside one: [`state`] (the one
//! SQLite file, one module per table family), [`imap`] (the IMAP client), [`outcome`] (what
//! became of a probe: placement, judgement, SMTP acceptance, bounce), [`standing`] (where a
//! route × seed pair stands across its probes: ok, suspect, confirmed, recovered), [`clock`]
//! (the wall clock) and [`truncate`] (cutting text to its bound).
//!
//! Libraries that import nothing of the application (at most [`status`] and [`truncate`]):
//! [`verdict`] (reads receivers' headers), [`dns_audit`] (checks the DNS behind the verdicts),
//! [`diagnosis`] (the fixed cause list and its fix sentences, shared by the probe and the
//! audit), [`gmail`] (Gmail's IMAP extensions: what to send, how to read the answers),
//! [`status`] (the one status word and exit-code table) and [`reports`] (reads DMARC aggregate
//! and TLS-RPT reports; [`reports::ReportKind`] spells each kind for everyone).
//!
//! The import graph is checked by `tests/import_graph.rs`: no circle between files, no arrow
//! from the libraries, the shared rooms or [`metrics`] up into the pipelines.

pub mod cli;
pub mod clock;
pub mod config;
pub mod diagnosis;
pub mod dns_audit;
pub mod gmail;
pub mod imap;
pub mod jobs;
pub mod metrics;
pub mod oauth;
pub mod outcome;
pub mod probe;
pub mod report_mailbox;
pub mod reports;
pub mod results;
pub mod serve;
pub mod standing;
pub mod state;
pub mod status;
pub mod truncate;
pub mod verdict;
