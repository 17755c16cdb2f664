//! Bounded metric labels for reports. A report is attacker-controlled input (anyone can mail
//! the `rua` address), so nothing it says becomes a label as written: the reporter is matched
//! against a configured list and must be authenticated (else `other`), the results against the
//! fixed words of RFC 7489 Appendix C and RFC 8460 §4.3.

/// The label of a reporter not in the configured list.
pub const OTHER: &str = "other";

/// The reporter's label: the first of `known` (lower-case tokens such as `google.com`) that
/// the report names — in its org name or in the domain of its contact address — *and* that
/// the mail carrying it is authenticated for (`authenticated`: the domains of its passing
/// DKIM signatures and its DMARC-passing From, as the report mailbox's own receiver found
/// them); else `other`. Google writes `google.com`, Microsoft `Enterprise Outlook` from
/// `dmarcreport@microsoft.com`, Yahoo `Yahoo` from `dmarchelp@yahooinc.com`: the token may
/// match either. The org name and the address are whatever the sender wrote, so they only
/// say which label is claimed; the authentication says whether the claim holds
/// ([`token_matches_domain`]).
pub fn reporter<'a>(
    org_name: &str,
    email: Option<&str>,
    known: &'a [String],
    authenticated: &[String],
) -> &'a str {
    let org = org_name.to_ascii_lowercase();
    let domain = email
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.trim().trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default();
    known
        .iter()
        .find(|k| !k.is_empty() && (org.contains(k.as_str()) || domain.contains(k.as_str())))
        .filter(|k| authenticated.iter().any(|d| token_matches_domain(k, d)))
        .map_or(OTHER, |k| k.as_str())
}

/// Whether an authenticated domain belongs to a reporter token. A token with a dot is a domain:
/// the domain itself or one of its subdomains (`google.com` matches `google.com` and
/// `mail.google.com`, never `notgoogle.com`). A token without one is a name: some label of the
/// domain starts with it (`yahoo` matches `yahoo.com` and `yahooinc.com`) — weaker, since
/// anyone can register `yahoo-something.example`; list domains where that matters.
pub fn token_matches_domain(token: &str, domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if token.is_empty() || domain.is_empty() {
        return false;
    }
    if token.contains('.') {
        return domain == token
            || domain
                .strip_suffix(token)
                .is_some_and(|rest| rest.ends_with('.'));
    }
    domain.split('.').any(|label| label.starts_with(token))
}

/// The key a report is stored under with its `report_id` (deduplication): the org name,
/// lower case, runs of white space as one space. Not a label: it is never exported.
pub fn reporter_key(org_name: &str) -> String {
    org_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// A policy-evaluated DKIM or SPF result (RFC 7489 Appendix C `DMARCResultType`): `pass`, or
/// `fail` for anything else, including a missing one.
pub fn aligned(result: Option<&str>) -> &'static str {
    match result.map(str::trim) {
        Some(r) if r.eq_ignore_ascii_case("pass") => "pass",
        _ => "fail",
    }
}

/// The disposition applied (RFC 7489 Appendix C `DispositionType`; RFC 9990 adds nothing
/// else): `none`, `quarantine`, `reject`, else `other`.
pub fn disposition(value: Option<&str>) -> &'static str {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("none") | None => "none",
        Some("quarantine") => "quarantine",
        Some("reject") => "reject",
        _ => OTHER,
    }
}

/// The words of [`sender_requirement`]: which of Gmail's sender requirements a
/// "Sender requirement failed" comment in a DMARC aggregate report names, by its SMTP code.
pub const SENDER_REQUIREMENTS: &[&str] = &[
    "ptr",
    "unauthenticated",
    "spf",
    "rate_limited",
    "tls",
    "dkim",
    "dmarc_policy",
    "dmarc_alignment",
    "blocked",
    OTHER,
];

/// The requirement a "Sender requirement failed: 550-5.7.1" code names, as a bounded label:
/// Gmail's codes (SMTP errors and codes, support.google.com/a/answer/3726730): `x.7.25` (and
/// `4.7.23`) PTR, `5.7.26` unauthenticated, `x.7.27` SPF, `x.7.28` rate limited, `x.7.29` TLS,
/// `x.7.30` DKIM, `4.7.31`/`x.7.40` no DMARC policy, `x.7.32` alignment, `5.7.1` blocked; else
/// `other`.
pub fn sender_requirement(code: &str) -> &'static str {
    // `550-5.7.1`, `421 4.7.27`, `5.7.26`: the enhanced code is the last dotted word.
    let enhanced = code
        .split(|ch: char| ch == '-' || ch.is_whitespace())
        .rfind(|word| word.matches('.').count() == 2)
        .unwrap_or("");
    let mut parts = enhanced.split('.');
    let (Some(class), Some(subject), Some(detail)) = (parts.next(), parts.next(), parts.next())
    else {
        return OTHER;
    };
    match (class, subject, detail) {
        (_, "7", "25") | ("4", "7", "23") => "ptr",
        (_, "7", "26") => "unauthenticated",
        (_, "7", "27") => "spf",
        (_, "7", "28") => "rate_limited",
        (_, "7", "29") => "tls",
        (_, "7", "30") => "dkim",
        ("4", "7", "31") | (_, "7", "40") => "dmarc_policy",
        (_, "7", "32") => "dmarc_alignment",
        ("5", "7", "1") => "blocked",
        _ => OTHER,
    }
}

/// The TLS failure result types of RFC 8460 §4.3 (with the DANE/MTA-STS ones of §4.3.1–4.3.3).
pub const TLS_RESULT_TYPES: &[&str] = &[
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
];

/// A TLS failure's result type as a label: one of [`TLS_RESULT_TYPES`], else `other`.
pub fn tls_result_type(value: &str) -> &'static str {
    let v = value.trim().to_ascii_lowercase();
    TLS_RESULT_TYPES
        .iter()
        .find(|t| **t == v)
        .copied()
        .unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["google.com", "microsoft.com", "yahoo", "lab"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn auth(domains: &[&str]) -> Vec<String> {
        domains.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn reporters_by_org_or_email_domain_when_authenticated() {
        let k = known();
        assert_eq!(
            reporter(
                "google.com",
                Some("noreply-dmarc-support@google.com"),
                &k,
                &auth(&["google.com"])
            ),
            "google.com"
        );
        assert_eq!(
            reporter(
                "Enterprise Outlook",
                Some("dmarcreport@microsoft.com"),
                &k,
                &auth(&["microsoft.com"])
            ),
            "microsoft.com"
        );
        assert_eq!(
            reporter(
                "Yahoo",
                Some("dmarchelp@yahooinc.com"),
                &k,
                &auth(&["yahooinc.com"])
            ),
            "yahoo"
        );
        assert_eq!(
            reporter(
                "Mail.RU",
                Some("dmarc_support@corp.mail.ru"),
                &k,
                &auth(&["corp.mail.ru"])
            ),
            OTHER
        );
        // Anything a reporter writes that is not in the list is `other`, never itself.
        assert_eq!(
            reporter("<script>\"", None, &k, &auth(&["evil.example"])),
            OTHER
        );
        assert_eq!(reporter("", None, &[], &[]), OTHER);
    }

    #[test]
    fn a_claimed_reporter_without_its_authentication_is_other() {
        let k = known();
        // Anyone can write "google.com" into a report and mail it.
        assert_eq!(
            reporter(
                "google.com",
                Some("noreply-dmarc-support@google.com"),
                &k,
                &[]
            ),
            OTHER
        );
        // Authenticated, but for another domain: their own, or one that merely contains ours.
        for domain in [
            "attacker.example",
            "notgoogle.com",
            "google.com.attacker.example",
        ] {
            assert_eq!(
                reporter("google.com", None, &k, &auth(&[domain])),
                OTHER,
                "{domain}"
            );
        }
        // Authenticated as Google, but the report does not name a listed reporter.
        assert_eq!(reporter("Someone", None, &k, &auth(&["google.com"])), OTHER);
    }

    #[test]
    fn tokens_match_domains_at_label_boundaries() {
        assert!(token_matches_domain("google.com", "google.com"));
        assert!(token_matches_domain("google.com", "Mail.Google.COM."));
        assert!(!token_matches_domain("google.com", "notgoogle.com"));
        assert!(!token_matches_domain(
            "google.com",
            "google.com.evil.example"
        ));
        assert!(token_matches_domain("yahoo", "yahooinc.com"));
        assert!(token_matches_domain("yahoo", "mail.yahoo.co.jp"));
        assert!(!token_matches_domain("yahoo", "notyahoo.com"));
        assert!(!token_matches_domain("", "google.com"));
        assert!(!token_matches_domain("google.com", ""));
    }

    #[test]
    fn reporter_key_folds_case_and_space() {
        assert_eq!(
            reporter_key("  Enterprise\t Outlook "),
            "enterprise outlook"
        );
    }

    #[test]
    fn results_and_dispositions_are_fixed_words() {
        assert_eq!(aligned(Some("PASS")), "pass");
        assert_eq!(aligned(Some("fail")), "fail");
        assert_eq!(aligned(Some("softfail")), "fail");
        assert_eq!(aligned(None), "fail");
        assert_eq!(disposition(Some("Quarantine")), "quarantine");
        assert_eq!(disposition(None), "none");
        assert_eq!(disposition(Some("discard")), OTHER);
        assert_eq!(
            tls_result_type("STARTTLS-not-supported"),
            "starttls-not-supported"
        );
        assert_eq!(tls_result_type("made-up"), OTHER);
    }
}
