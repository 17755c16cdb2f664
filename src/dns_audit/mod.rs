//! The DNS audit: reverse DNS, SPF, DKIM, DMARC and blocklists behind a route's verdicts, and
//! the MX / MTA-STS / TLS-RPT records of the seed domains.
//!
//! One module per standard, each a thin layer over the [`dns`] adapter (hickory-resolver) with the
//! record parsing and SPF evaluation left to mail-auth: [`rdns`], [`spf`], [`dkim`],
//! [`dmarc_record`], [`dnsbl`], [`seeds`]. The fixed cause set and the fix sentences live in
//! [`crate::diagnosis`], shared with the prober. [`Auditor::audit`] runs them all for one
//! [`AuditTarget`] and returns a [`RouteAudit`]; a DNS timeout, SERVFAIL or REFUSED makes a
//! check `error` (never `fail`: "did not answer" is not "missing").
//!
//! # Statuses and exit codes
//!
//! Each check result is `ok`, `warn` (works, but a risk: 1024-bit key, `t=y`, `+all`, HELO
//! mismatch, missing MTA-STS / TLS-RPT), `fail` (receivers hold it against the mail) or `error`
//! (could not be checked). The report is `critical` if any check fails, else `unknown` if any
//! errs, else `warning` if any warns, else `ok`; `check-dns` exits 0 / 1 / 2 / 3 accordingly,
//! and 3 for usage and resolver-setup errors.
//!
//! Every `fail` and `warn` carries exactly one cause, the root cause: a missing PTR fails `ptr`
//! and `fcrdns` with `ptr_missing` (not `fcrdns_mismatch`, which means "the PTR name does not
//! point back"); a DMARC failure caused by a failing SPF or DKIM check of an aligned domain
//! carries that check's cause. So each problem is one distinct cause in
//! [`RouteAudit::causes`]. A DMARC policy of `p=none` and a missing `rua` are reported in the
//! detail but are not warnings: they meet receivers' requirements.
//!
//! # Metrics (exported by the prober, from a [`RouteAudit`])
//!
//! `mailcanary_dns_check_ok{route,check}` = [`RouteAudit::check_ok`] (1 when every result of
//! the check is ok or warn; absent when the check did not apply), `check` one of
//! [`Check::as_str`]; `mailcanary_dnsbl_listed{route,zone}` from [`RouteAudit::dnsbl`];
//! `mailcanary_dkim_key_bits{route}` from [`RouteAudit::dkim_key_bits`] (RSA only);
//! `mailcanary_spf_dns_lookups{route}` from [`RouteAudit::spf_dns_lookups`].
//!
//! # The JSON contract (`mailcanary check-dns --json`)
//!
//! [`RouteAudit::to_json`] prints one object. Keys are never removed or renamed; new keys may
//! be added. Every key below is always present (absent values are `null`, lists may be `[]`).
//!
//! ```json
//! {
//!   "route": "adhoc",
//!   "from_domain": "no-ptr.test",
//!   "status": "critical",
//!   "causes": ["ptr_missing"],
//!   "checks": [
//!     {
//!       "check": "ptr",
//!       "subject": "127.0.0.5",
//!       "status": "fail",
//!       "detail": "no PTR record (5.0.0.127.in-addr.arpa: NXDOMAIN)",
//!       "cause": "ptr_missing",
//!       "fix": "Publish a PTR record for 127.0.0.5 (in 0.0.127.in-addr.arpa) naming a host whose A record points back to it, and use that name as the HELO."
//!     },
//!     {
//!       "check": "spf",
//!       "subject": "no-ptr.test",
//!       "status": "ok",
//!       "detail": "\"v=spf1 ip4:127.0.0.5 -all\": 127.0.0.5 pass; 0 DNS lookups (limit 10), 0 void (limit 2)",
//!       "cause": null,
//!       "fix": null
//!     }
//!   ],
//!   "dkim_key_bits": 2048,
//!   "spf_dns_lookups": 0,
//!   "spf_void_lookups": 0,
//!   "dnsbl": [
//!     { "zone": "dnsbl.test", "listed": false, "listed_ips": [] }
//!   ]
//! }
//! ```
//!
//! - `status`: `ok` | `warning` | `critical` | `unknown`;
//! - `causes`: distinct causes of `fail` and `warn` checks, in check order;
//! - `checks[].check`: `ptr` | `fcrdns` | `helo` | `spf` | `dkim` | `dmarc` | `dnsbl` | `mx` |
//!   `mta_sts` | `tls_rpt`, in that order; one entry per subject (each IP for `ptr`, `fcrdns`,
//!   `helo`; `IP in ZONE` for `dnsbl`; each seed domain for `mx`, `mta_sts`, `tls_rpt`);
//!   a check that does not apply is absent;
//! - `checks[].status`: `ok` | `warn` | `fail` | `error`;
//! - `checks[].cause`: a [`Cause`] name or `null`; `dns_error` on DNS errors; `fix` is its
//!   sentence or `null`;
//! - `dnsbl[].listed`: `true` | `false` | `null` (the zone could not be queried).

pub mod auditor;
pub mod dkim;
pub mod dmarc_record;
pub mod dns;
pub mod dnsbl;
pub mod findings;
pub mod keys;
pub mod rdns;
pub mod seeds;
pub mod spf;
pub mod tags;
#[cfg(test)]
mod testdns;

pub use auditor::{AuditTarget, Auditor, DEFAULT_TIMEOUT};
pub use dns::{DnsError, ResolverSetupError};
pub use findings::{Check, CheckResult, CheckStatus, DnsblZoneResult, RouteAudit};
