//! DMARC (RFC 7489, RFC 9989): the From domain's policy record, and whether SPF (envelope
//! domain) or DKIM (signing domain) passes for a domain aligned with the From domain.
//!
//! mail-auth parses the record (`mail_auth::dmarc::Dmarc`). Its verifier needs a received
//! message and queries up to the TLD, so the policy discovery and the alignment are done here:
//! the record is looked up at the From domain, then at its parents down to (not including) the
//! TLD. The TLD itself is skipped: public-suffix DMARC records (RFC 9091) are out of scope, and
//! authoritative-only servers (the lab's) refuse questions about a TLD they do not serve.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::{Alignment, Dmarc, Policy, Psd};

use super::dns::{DnsError, Lookups};
use super::findings::{Check, CheckResult, CheckStatus};
use super::tags;
use crate::diagnosis::{Cause, Context};

/// The names whose `_dmarc` records are consulted for `domain`, longest first, TLD excluded.
fn policy_names(domain: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = domain;
    while rest.split('.').count() >= 2 {
        names.push(rest);
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => break,
        }
    }
    if names.is_empty() {
        names.push(domain);
    }
    names
}

/// The DMARC record found for a domain.
#[derive(Debug)]
enum Found {
    /// One valid record at `name` (`text` as published).
    Record {
        name: String,
        text: String,
        record: Dmarc,
    },
    /// No record anywhere on the way up.
    Missing,
    /// Several `v=DMARC1` records at `name`: receivers apply none (RFC 7489 §6.6.3).
    Several { name: String, count: usize },
    /// A `v=DMARC1` record at `name` that does not parse.
    Invalid { name: String, text: String },
}

/// The DMARC records at `_dmarc.NAME`: those starting with `v=DMARC1` (RFC 7489 §6.6.3).
async fn records_at<L: Lookups>(dns: &L, name: &str) -> Result<Vec<String>, DnsError> {
    let txt = dns.txt(&format!("_dmarc.{name}")).await?;
    Ok(txt
        .records()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .filter(|r| {
            let head = r.trim_start();
            head.len() >= 8
                && head.is_char_boundary(8)
                && head[..8].eq_ignore_ascii_case("v=DMARC1")
        })
        .collect())
}

async fn discover<L: Lookups>(dns: &L, domain: &str) -> Result<Found, DnsError> {
    for name in policy_names(domain) {
        let records = records_at(dns, name).await?;
        match records.as_slice() {
            [] => continue,
            [text] => {
                return Ok(match Dmarc::parse(text.as_bytes()) {
                    Ok(record) if record.p != Policy::Unspecified || !record.rua.is_empty() => {
                        Found::Record {
                            name: name.to_string(),
                            text: text.clone(),
                            record,
                        }
                    }
                    _ => Found::Invalid {
                        name: name.to_string(),
                        text: text.clone(),
                    },
                });
            }
            several => {
                return Ok(Found::Several {
                    name: name.to_string(),
                    count: several.len(),
                });
            }
        }
    }
    Ok(Found::Missing)
}

/// The organizational domain of `name` (RFC 9989 §4.10.2, without the TLD query): the
/// shortest name on the way up with a DMARC record, or the name of a `psd=n` record, or one
/// label below a `psd=y` record. Without any record: the last two labels (a heuristic, used
/// only to compare names that DMARC does not govern, such as PTR and HELO names).
/// DNS errors on the way are skipped, for the same reason.
pub(crate) async fn organizational_domain<L: Lookups>(dns: &L, name: &str) -> String {
    let names = policy_names(name);
    let mut org: Option<&str> = None;
    for (i, candidate) in names.iter().enumerate() {
        let Ok(records) = records_at(dns, candidate).await else {
            continue;
        };
        let Some(record) = records
            .first()
            .and_then(|r| Dmarc::parse(r.as_bytes()).ok())
        else {
            continue;
        };
        match record.psd {
            Psd::No => return (*candidate).to_string(),
            Psd::Yes if i > 0 => return names[i - 1].to_string(),
            _ => org = Some(candidate),
        }
    }
    match org {
        Some(org) => org.to_string(),
        None => names.last().map_or(name, |n| *n).to_string(),
    }
}

/// Whether `a` and `b` are the same domain, or (relaxed) share the organizational domain.
pub(crate) async fn aligned<L: Lookups>(dns: &L, a: &str, b: &str, strict: bool) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    if strict {
        return false;
    }
    organizational_domain(dns, a).await == organizational_domain(dns, b).await
}

/// What DMARC needs from the SPF and DKIM checks.
pub(crate) struct Identifiers<'a> {
    /// The envelope (RFC 5321.MailFrom) domain SPF was checked for.
    pub spf_domain: &'a str,
    /// Every sending IP evaluated to SPF pass.
    pub spf_passes: bool,
    /// The SPF check's status and cause.
    pub spf_check: Option<&'a CheckResult>,
    /// The DKIM signing domain, when a selector was given.
    pub dkim_domain: Option<&'a str>,
    /// The DKIM check, when a selector was given.
    pub dkim_check: Option<&'a CheckResult>,
}

fn policy_word(p: Policy) -> &'static str {
    match p {
        Policy::None => "none",
        Policy::Quarantine => "quarantine",
        Policy::Reject => "reject",
        Policy::Unspecified => "unspecified",
    }
}

fn alignment_word(a: Alignment) -> &'static str {
    match a {
        Alignment::Relaxed => "r",
        Alignment::Strict => "s",
    }
}

/// Checks the DMARC record of `from` and the alignment of the identifiers.
pub(crate) async fn check<L: Lookups>(dns: &L, from: &str, ids: &Identifiers<'_>) -> CheckResult {
    let ctx = Context {
        domain: Some(from),
        ..Context::default()
    };
    let subject = format!("_dmarc.{from}");
    let (name, text, record) = match policy_record(dns, from, &subject, &ctx).await {
        Ok(found) => found,
        Err(check) => return check,
    };
    let aligned = Alignments::of(dns, from, &record, ids).await;
    let detail = format!(
        "{}; {}",
        policy_summary(from, &name, &text, &record),
        aligned.describe(ids)
    );
    if (aligned.spf && ids.spf_passes) || (aligned.dkim && aligned.dkim_usable) {
        return CheckResult::ok(Check::Dmarc, subject, detail);
    }
    dmarc_failure(from, subject, detail, &aligned, ids, &ctx)
}

/// The DMARC record that applies to `from` (its name, its text as published, parsed), or the
/// check's result when there is none: missing, several or invalid (RFC 7489 §6.6.3), or a DNS
/// error.
async fn policy_record<L: Lookups>(
    dns: &L,
    from: &str,
    subject: &str,
    ctx: &Context<'_>,
) -> Result<(String, String, Dmarc), CheckResult> {
    match discover(dns, from).await {
        Err(err) => Err(CheckResult::error(Check::Dmarc, subject, &err, ctx)),
        Ok(Found::Missing) => Err(CheckResult::failing(
            Check::Dmarc,
            subject,
            format!("no DMARC record at _dmarc.{from} (nor at a parent domain)"),
            Cause::DmarcMissing,
            ctx,
        )),
        Ok(Found::Several { name, count }) => {
            let ctx = Context {
                domain: Some(&name),
                ..*ctx
            };
            Err(CheckResult::failing(
                Check::Dmarc,
                subject,
                format!(
                    "{count} DMARC records at _dmarc.{name}: receivers apply none (RFC 7489 §6.6.3)"
                ),
                Cause::DmarcInvalid,
                &ctx,
            ))
        }
        Ok(Found::Invalid { name, text }) => {
            let ctx = Context {
                domain: Some(&name),
                ..*ctx
            };
            Err(CheckResult::failing(
                Check::Dmarc,
                subject,
                format!("\"{text}\" at _dmarc.{name} does not parse or has no p= tag"),
                Cause::DmarcInvalid,
                &ctx,
            ))
        }
        Ok(Found::Record { name, text, record }) => Ok((name, text, record)),
    }
}

/// The policy that applies, in one line: `p=` at the From domain itself, `sp=` when inherited
/// from a parent's record (RFC 7489 §6.6.3), then pct, the alignment modes and the report URIs.
fn policy_summary(from: &str, name: &str, text: &str, record: &Dmarc) -> String {
    let inherited = name != from;
    let policy = if inherited { record.sp } else { record.p };
    let pct = tags::get(&tags::parse(text), "pct")
        .unwrap_or("100")
        .to_string();
    let rua = if record.rua.is_empty() {
        "no rua (no aggregate reports)".to_string()
    } else {
        // mail-auth keeps the address of a mailto: URI (the only scheme DMARC reports use).
        let uris: Vec<String> = record
            .rua
            .iter()
            .map(|u| format!("mailto:{}", u.uri()))
            .collect();
        format!("rua={}", uris.join(","))
    };
    let mut summary = format!(
        "p={}{}, pct={pct}, adkim={}, aspf={}, {rua}",
        policy_word(policy),
        if inherited {
            format!(" (sp of _dmarc.{name})")
        } else {
            String::new()
        },
        alignment_word(record.adkim),
        alignment_word(record.aspf),
    );
    if record.t {
        summary.push_str(", t=y (testing: enforcement lowered one level)");
    }
    summary
}

/// Which identifiers are aligned with the From domain (RFC 7489 §3.1), in the record's modes.
struct Alignments {
    /// The SPF (envelope) domain is aligned.
    spf: bool,
    /// The DKIM signing domain is aligned (false without a selector).
    dkim: bool,
    /// The DKIM check passed (ok or warn): its key can verify a signature.
    dkim_usable: bool,
}

impl Alignments {
    async fn of<L: Lookups>(dns: &L, from: &str, record: &Dmarc, ids: &Identifiers<'_>) -> Self {
        let spf = aligned(dns, ids.spf_domain, from, record.aspf == Alignment::Strict).await;
        let dkim = match ids.dkim_domain {
            Some(d) => aligned(dns, d, from, record.adkim == Alignment::Strict).await,
            None => false,
        };
        Alignments {
            spf,
            dkim,
            dkim_usable: ids.dkim_check.is_some_and(|c| c.status.is_passing()),
        }
    }

    /// `SPF passes for D (aligned); DKIM key for d=D usable (aligned)`.
    fn describe(&self, ids: &Identifiers<'_>) -> String {
        let aligned_word = |aligned: bool| if aligned { "aligned" } else { "not aligned" };
        let spf_words = format!(
            "SPF {} for {} ({})",
            if ids.spf_passes {
                "passes"
            } else {
                "does not pass"
            },
            ids.spf_domain,
            aligned_word(self.spf)
        );
        let dkim_words = match ids.dkim_domain {
            Some(d) => format!(
                "DKIM key for d={d} {} ({})",
                if self.dkim_usable {
                    "usable"
                } else {
                    "not usable"
                },
                aligned_word(self.dkim)
            ),
            None => "no DKIM selector given".to_string(),
        };
        format!("{spf_words}; {dkim_words}")
    }
}

/// DMARC fails. When an aligned identifier fails its own check, that check's cause is the root
/// cause (one cause per problem), and an aligned check that errs leaves DMARC undecided;
/// otherwise nothing aligned passes: `dmarc_not_aligned`.
fn dmarc_failure(
    from: &str,
    subject: String,
    detail: String,
    aligned: &Alignments,
    ids: &Identifiers<'_>,
    ctx: &Context<'_>,
) -> CheckResult {
    let aligned_checks = [(aligned.spf, ids.spf_check), (aligned.dkim, ids.dkim_check)];
    for (is_aligned, check) in aligned_checks {
        let (true, Some(check)) = (is_aligned, check) else {
            continue;
        };
        match (check.status, check.cause) {
            (CheckStatus::Error, _) => {
                return CheckResult::error_detail(
                    Check::Dmarc,
                    subject,
                    format!("{detail}; cannot tell whether DMARC passes"),
                    ctx,
                );
            }
            (_, Some(cause)) if !check.status.is_passing() => {
                let mut result = CheckResult::failing(
                    Check::Dmarc,
                    subject,
                    format!(
                        "{detail}; DMARC fails because {} fails",
                        check.check.as_str()
                    ),
                    cause,
                    ctx,
                );
                result.fix = check.fix.clone();
                return result;
            }
            _ => {}
        }
    }
    CheckResult::failing(
        Check::Dmarc,
        subject,
        format!("{detail}; DMARC fails: nothing passes for a domain aligned with {from}"),
        Cause::DmarcNotAligned,
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::testdns::FakeDns;

    fn dns() -> FakeDns {
        FakeDns::parse(
            r#"
            _dmarc.example.test        TXT "v=DMARC1; p=reject; pct=50; rua=mailto:d@example.test"
            _dmarc.two.test            TXT "v=DMARC1; p=none"
            _dmarc.two.test            TXT "v=DMARC1; p=reject"
            _dmarc.bad.test            TXT "v=DMARC1; p=sometimes"
            _dmarc.other.test          TXT "some-verification=1"
            _dmarc.psd.example         TXT "v=DMARC1; p=none; psd=y"
            _dmarc.broken.test         SERVFAIL
            "#,
        )
    }

    #[test]
    fn policy_names_stop_above_the_tld() {
        assert_eq!(
            policy_names("a.b.example.test"),
            ["a.b.example.test", "b.example.test", "example.test"]
        );
        assert_eq!(policy_names("example.test"), ["example.test"]);
        assert_eq!(policy_names("localhost"), ["localhost"]);
    }

    #[tokio::test]
    async fn discovery() {
        let dns = dns();
        assert!(matches!(
            discover(&dns, "example.test").await,
            Ok(Found::Record { ref name, .. }) if name == "example.test"
        ));
        assert!(matches!(
            discover(&dns, "mail.example.test").await,
            Ok(Found::Record { ref name, .. }) if name == "example.test"
        ));
        assert!(matches!(
            discover(&dns, "two.test").await,
            Ok(Found::Several { count: 2, .. })
        ));
        assert!(matches!(
            discover(&dns, "bad.test").await,
            Ok(Found::Invalid { .. })
        ));
        assert!(matches!(
            discover(&dns, "other.test").await,
            Ok(Found::Missing)
        ));
        assert!(matches!(
            discover(&dns, "broken.test").await,
            Err(DnsError::ServFail { .. })
        ));
    }

    #[tokio::test]
    async fn organizational_domains() {
        let dns = dns();
        assert_eq!(
            organizational_domain(&dns, "a.b.example.test").await,
            "example.test"
        );
        assert_eq!(
            organizational_domain(&dns, "mail.nodmarc.test").await,
            "nodmarc.test"
        );
        assert_eq!(
            organizational_domain(&dns, "x.org.psd.example").await,
            "org.psd.example"
        );
        assert!(aligned(&dns, "mail.example.test", "example.test", false).await);
        assert!(!aligned(&dns, "mail.example.test", "example.test", true).await);
        assert!(!aligned(&dns, "example.test", "other.test", false).await);
    }

    fn spf(status: crate::dns_audit::findings::CheckStatus, cause: Option<Cause>) -> CheckResult {
        CheckResult {
            check: Check::Spf,
            subject: "x".into(),
            status,
            detail: "d".into(),
            cause,
            fix: cause.map(|c| c.fix(&Context::default())),
        }
    }

    #[tokio::test]
    async fn alignment_outcomes() {
        use crate::dns_audit::findings::CheckStatus;
        let dns = dns();
        let passing = spf(CheckStatus::Ok, None);
        let ids = Identifiers {
            spf_domain: "mail.example.test",
            spf_passes: true,
            spf_check: Some(&passing),
            dkim_domain: None,
            dkim_check: None,
        };
        let ok = check(&dns, "example.test", &ids).await;
        assert_eq!(ok.status, CheckStatus::Ok, "{ok:?}");
        assert!(ok.detail.contains("p=reject, pct=50"), "{}", ok.detail);

        let foreign = Identifiers {
            spf_domain: "other.test",
            ..ids
        };
        let not_aligned = check(&dns, "example.test", &foreign).await;
        assert_eq!(not_aligned.cause, Some(Cause::DmarcNotAligned));

        // SPF aligned but failing its own check: its cause is the root cause.
        let failing = spf(CheckStatus::Fail, Some(Cause::SpfTooManyLookups));
        let root = Identifiers {
            spf_passes: false,
            spf_check: Some(&failing),
            ..ids
        };
        let rooted = check(&dns, "example.test", &root).await;
        assert_eq!(rooted.status, CheckStatus::Fail);
        assert_eq!(rooted.cause, Some(Cause::SpfTooManyLookups));

        let missing = check(&dns, "nodmarc.test", &ids).await;
        assert_eq!(missing.cause, Some(Cause::DmarcMissing));
        let errored = check(&dns, "broken.test", &ids).await;
        assert_eq!(errored.status, CheckStatus::Error);
    }
}
