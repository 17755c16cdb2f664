//! The DKIM key record at `selector._domainkey.domain` (RFC 6376 §3.6): it exists, mail-auth
//! accepts it, its key is strong enough (RFC 8301 §3.2: at least 1024 bits, 2048 recommended;
//! fail under 1024, warn under 2048), it is not in testing mode (`t=y`), and, given the signing
//! key, it is that key's public half.

use std::path::Path;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;

use super::dns::Lookups;
use super::findings::{Check, CheckResult};
use super::keys::{self, PublicKey};
use super::tags;
use crate::diagnosis::{Cause, Context};
use crate::truncate;

/// Keys under this many bits fail.
pub const MIN_KEY_BITS: u32 = 1024;
/// Keys under this many bits warn.
pub const RECOMMENDED_KEY_BITS: u32 = 2048;

pub(crate) struct DkimOutcome {
    pub check: CheckResult,
    /// RSA modulus bits of the published key.
    pub bits: Option<u32>,
}

/// Checks the key record of `selector` in `domain`, against `signing_key` (a PEM private key)
/// when given.
pub(crate) async fn check<L: Lookups>(
    dns: &L,
    selector: &str,
    domain: &str,
    signing_key: Option<&Path>,
) -> DkimOutcome {
    let name = format!("{selector}._domainkey.{domain}");
    let ctx = Context {
        domain: Some(domain),
        dkim_domain: Some(domain),
        selector: Some(selector),
        ..Context::default()
    };
    let text = match key_record(dns, &name, &ctx).await {
        Ok(text) => text,
        Err(check) => return DkimOutcome { check, bits: None },
    };
    let record_tags = tags::parse(&text);
    let k = tags::get(&record_tags, "k").unwrap_or("rsa");
    let published = match keys::published_key(k, tags::get(&record_tags, "p").unwrap_or("")) {
        Ok(key) => key,
        Err(err) => {
            let check = CheckResult::failing(
                Check::Dkim,
                &name,
                format!("the key in p= is unusable: {err}"),
                Cause::DkimKeyInvalid,
                &ctx,
            );
            return DkimOutcome { check, bits: None };
        }
    };
    let testing = tags::get(&record_tags, "t").is_some_and(|t| tags::has_flag(t, "y"));
    let mut detail = format!("{} {}-bit key", published.kind(), published.bits());
    let compared = match signing_key {
        Some(path) => compare_with_signing_key(&name, &published, path, &mut detail, &ctx),
        None => Ok(()),
    };
    let check = match compared {
        Ok(()) => grade_key(&name, &published, testing, detail, &ctx),
        Err(check) => check,
    };
    let rsa = matches!(published, PublicKey::Rsa { .. });
    DkimOutcome {
        check,
        bits: rsa.then_some(published.bits()),
    }
}

/// The text of the key record at `name` that mail-auth accepts (the first one: the one its
/// verifier would use), or the check's result when there is none: missing, revoked (empty
/// `p=`, RFC 6376 §3.6.1), invalid, or a DNS error.
async fn key_record<L: Lookups>(
    dns: &L,
    name: &str,
    ctx: &Context<'_>,
) -> Result<String, CheckResult> {
    let txt = dns
        .txt(name)
        .await
        .map_err(|err| CheckResult::error(Check::Dkim, name, &err, ctx))?;
    if txt.is_void() {
        return Err(CheckResult::failing(
            Check::Dkim,
            name,
            format!("no DKIM key record ({})", txt.missing_word()),
            Cause::DkimKeyMissing,
            ctx,
        ));
    }
    let mut rejected = Vec::new();
    for raw in txt.records() {
        let text = String::from_utf8_lossy(raw).into_owned();
        match DomainKey::parse(raw) {
            Ok(_) => return Ok(text),
            Err(err) => rejected.push((text, err)),
        }
    }
    let revoked = rejected.iter().any(|(_, e)| {
        matches!(
            e,
            mail_auth::Error::Dkim(mail_auth::dkim::DkimError::RevokedPublicKey)
        )
    });
    if revoked {
        return Err(CheckResult::failing(
            Check::Dkim,
            name,
            "the key is revoked (empty p=)",
            Cause::DkimKeyMissing,
            ctx,
        ));
    }
    let shown: Vec<String> = rejected
        .iter()
        .map(|(text, err)| format!("\"{}\" ({err})", truncate::shorten(text, 60)))
        .collect();
    Err(CheckResult::failing(
        Check::Dkim,
        name,
        format!("no valid DKIM key record: {}", shown.join("; ")),
        Cause::DkimKeyInvalid,
        ctx,
    ))
}

/// Whether the published key is the public half of the signing key at `path`: `Ok` (and a
/// note in `detail`) when it is, else the check's result (mismatch, or an unreadable key).
fn compare_with_signing_key(
    name: &str,
    published: &PublicKey,
    path: &Path,
    detail: &mut String,
    ctx: &Context<'_>,
) -> Result<(), CheckResult> {
    match keys::signing_key_public(path) {
        Err(err) => {
            detail.push_str(&format!("; cannot compare with the signing key: {err}"));
            Err(CheckResult::local_error(Check::Dkim, name, detail.clone()))
        }
        Ok(signing) if signing != *published => {
            detail.push_str(&format!(
                "; it is not the public half of the signing key {} ({} {}-bit)",
                path.display(),
                signing.kind(),
                signing.bits()
            ));
            Err(CheckResult::failing(
                Check::Dkim,
                name,
                detail.clone(),
                Cause::DkimKeyMismatch,
                ctx,
            ))
        }
        Ok(_) => {
            detail.push_str(&format!("; matches the signing key {}", path.display()));
            Ok(())
        }
    }
}

/// The published key's strength (RFC 8301 §3.2, RSA only) and testing flag (`t=y`).
fn grade_key(
    name: &str,
    published: &PublicKey,
    testing: bool,
    mut detail: String,
    ctx: &Context<'_>,
) -> CheckResult {
    let bits = published.bits();
    let rsa = matches!(published, PublicKey::Rsa { .. });
    if rsa && bits < MIN_KEY_BITS {
        detail.push_str(&format!(
            "; under {MIN_KEY_BITS} bits receivers ignore the signature (RFC 8301 §3.2)"
        ));
        return CheckResult::failing(Check::Dkim, name, detail, Cause::DkimWeakKey, ctx);
    }
    if rsa && bits < RECOMMENDED_KEY_BITS {
        detail.push_str(&format!(
            "; under the recommended {RECOMMENDED_KEY_BITS} bits"
        ));
        return CheckResult::warning(Check::Dkim, name, detail, Cause::DkimWeakKey, ctx);
    }
    if testing {
        detail.push_str("; t=y: testing mode, receivers treat the mail as unsigned");
        return CheckResult::warning(Check::Dkim, name, detail, Cause::DkimTesting, ctx);
    }
    CheckResult::ok(Check::Dkim, name, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns_audit::findings::CheckStatus;
    use crate::dns_audit::testdns::FakeDns;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/dns/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .to_string()
    }

    fn dns() -> FakeDns {
        // Published as a DNS server splits them: 250-byte strings.
        let split = |record: String| {
            record
                .as_bytes()
                .chunks(250)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let testing = fixture("rsa2048.txt").replace("k=rsa;", "k=rsa; t=y;");
        FakeDns::parse(&format!(
            "strong._domainkey.example.test TXT {}\n\
             weak._domainkey.example.test TXT {}\n\
             test._domainkey.example.test TXT {}\n\
             ed._domainkey.example.test TXT {}\n\
             revoked._domainkey.example.test TXT \"v=DKIM1; k=rsa; p=\"\n\
             junk._domainkey.example.test TXT \"v=DKIM1; k=dsa; p=AAAA\"\n\
             other._domainkey.example.test A 127.0.0.1\n",
            split(fixture("rsa2048.txt")),
            split(fixture("rsa1024.txt")),
            split(testing),
            split(fixture("ed25519.txt")),
        ))
    }

    async fn run(selector: &str, key: Option<&str>) -> DkimOutcome {
        let path = key.map(|k| {
            std::path::PathBuf::from(format!(
                "{}/tests/fixtures/dns/keys/{k}",
                env!("CARGO_MANIFEST_DIR")
            ))
        });
        check(&dns(), selector, "example.test", path.as_deref()).await
    }

    #[tokio::test]
    async fn key_strength_and_testing() {
        let strong = run("strong", None).await;
        assert_eq!(strong.check.status, CheckStatus::Ok, "{:?}", strong.check);
        assert_eq!(strong.bits, Some(2048));
        let weak = run("weak", None).await;
        assert_eq!(weak.check.status, CheckStatus::Warn);
        assert_eq!(weak.check.cause, Some(Cause::DkimWeakKey));
        assert_eq!(weak.bits, Some(1024));
        let testing = run("test", None).await;
        assert_eq!(testing.check.cause, Some(Cause::DkimTesting));
        let ed = run("ed", None).await;
        assert_eq!(ed.check.status, CheckStatus::Ok, "{:?}", ed.check);
        assert_eq!(ed.bits, None);
    }

    #[tokio::test]
    async fn missing_revoked_and_invalid() {
        assert_eq!(
            run("nothing", None).await.check.cause,
            Some(Cause::DkimKeyMissing)
        );
        assert_eq!(
            run("other", None).await.check.cause,
            Some(Cause::DkimKeyMissing)
        );
        assert_eq!(
            run("revoked", None).await.check.cause,
            Some(Cause::DkimKeyMissing)
        );
        assert_eq!(
            run("junk", None).await.check.cause,
            Some(Cause::DkimKeyInvalid)
        );
    }

    #[tokio::test]
    async fn signing_key_comparison() {
        let same = run("weak", Some("rsa1024.pkcs1.pem")).await;
        assert_eq!(
            same.check.cause,
            Some(Cause::DkimWeakKey),
            "{:?}",
            same.check
        );
        assert!(same.check.detail.contains("matches the signing key"));
        let other = run("strong", Some("rsa1024.pkcs8.pem")).await;
        assert_eq!(other.check.cause, Some(Cause::DkimKeyMismatch));
        let ed = run("ed", Some("ed25519.pem")).await;
        assert_eq!(ed.check.status, CheckStatus::Ok, "{:?}", ed.check);
        let unreadable = run("strong", Some("no-such-key.pem")).await;
        assert_eq!(unreadable.check.status, CheckStatus::Error);
        assert_eq!(unreadable.check.cause, None);
    }
}
