//! mailcanary: an end-to-end email deliverability probe.
//!
//! The application, by layer:
//! - [`cli`]: one file per subcommand (arguments, what it runs, its exit code);
//! - [`config`]: the strict config, provider presets, secrets;
//! - [`oauth`]: OAuth2 access tokens for IMAP and SMTP logins (token requests, cache, device
//!   login, SASL framing);
//! - [`probe`]: the pipeline of one round — compose → send → fetch → judge → record
//!   ([`probe::round`] runs it, [`probe::store`] records it);
//! - [`feedback`]: report mailboxes — fetch → unpack → store once → count the domain's DMARC
//!   aggregate and TLS reports, on their own schedule;
//! - [`serve`]: `run` — the scheduler, HTTP endpoints, the status page, the scheduled DNS audit;
//! - [`report`] (the result of a round as people and scripts read it) and [`metrics`] (every
//!   Prometheus series, set only through `Metrics` methods).
//!
//! Libraries that import nothing of the application: [`verdict`] (reads receivers' headers),
//! [`dns_audit`] (checks the DNS behind the verdicts), [`diagnosis`] (the fixed cause list and
//! its fix sentences, shared by the probe and the audit), [`path`] (the hops of a message's
//! `Received:` fields, and what the receiver saw), [`gmail`] (Gmail's IMAP extensions:
//! what to send, how to read the answers), [`status`] (the one status word
//! and exit-code table), [`reports`] (reads DMARC aggregate and TLS-RPT reports) and
//! [`requirements`] (the providers' sender requirements as data, and a route's score against them).

pub mod cli;
pub mod config;
pub mod diagnosis;
pub mod dns_audit;
pub mod feedback;
pub mod gmail;
pub mod metrics;
pub mod oauth;
pub mod path;
pub mod probe;
pub mod report;
pub mod reports;
pub mod requirements;
pub mod serve;
pub mod status;
pub mod verdict;
