//! Every test that needs what `scripts/test` sets up: the loopback mail lab (`lab/mailstack
//! up`: Postfix, rspamd, Dovecot, NSD) and the monitoring tools (promtool, amtool, Prometheus,
//! Alertmanager, Chromium). They fail, never skip, when it is missing, and say how to start it.
//! Run them alone with `cargo nextest run --test lab`; plain `cargo test` on a fresh clone
//! runs everything else (unit tests, corpora, config fixtures, the CLI on files).

#[path = "../common/mod.rs"]
mod common;

mod alerting;
mod audit;
mod bounces;
mod crash;
mod daemon;
mod dashboard_queries;
mod dashboards;
mod deploy;
mod dns_audit;
mod faults;
mod fleet;
mod golden;
mod instances;
mod live_monitoring;
mod mail_bomb;
mod mailstack;
mod monitoring;
mod oauth;
mod one_connection;
mod pairs;
mod probe;
mod reload;
mod reports;
mod seed_safety;
mod status_page;
mod web;
