//! Why a probe or a DNS check failed, and what to change: a fixed set of causes, each with a
//! one-sentence fix that names the record (or the setting) to change.
//!
//! The DNS audit attaches a [`Cause`] to every failing or warning check; the prober attaches
//! them to failing probe results through [`diagnose_verdict`], which takes plain strings so it
//! depends on nobody's types. [`Cause::as_str`] is the stable snake_case name used in JSON and
//! as a metric label value; the set only grows, names are never changed.

pub mod provider_reply;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Every cause name (for pre-setting and clearing the `mailcanary_diagnosis` series).
pub fn all_causes() -> Vec<&'static str> {
    Cause::ALL.iter().map(|c| c.as_str()).collect()
}

/// The fixed set of failure causes (serialized snake_case, see [`Cause::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The sending IP has no PTR record.
    PtrMissing,
    /// The PTR name of the sending IP does not resolve back to it (FCrDNS, RFC 8601 §3 "iprev").
    FcrdnsMismatch,
    /// The HELO name does not resolve to the sending IP, or is not in the PTR name's domain.
    HeloMismatch,
    /// The envelope domain publishes no SPF record.
    SpfMissing,
    /// SPF does not authorize the sending IP (fail, softfail, neutral or none for it).
    SpfIpNotAuthorized,
    /// The SPF record is broken: syntax, several records, an include without a record
    /// (RFC 7208 §4.5, §5.2): receivers return permerror.
    SpfPermerror,
    /// The SPF record needs more than 10 DNS lookups (RFC 7208 §4.6.4): permerror.
    SpfTooManyLookups,
    /// The SPF record makes more than 2 lookups that find nothing (RFC 7208 §4.6.4): permerror.
    SpfVoidLookups,
    /// The SPF record ends in `+all` or `?all` and so vouches for any server.
    SpfPermissive,
    /// No DKIM key is published at the selector (or it is revoked: empty `p=`).
    DkimKeyMissing,
    /// The record at the selector is not a usable DKIM key record.
    DkimKeyInvalid,
    /// The published DKIM key is not the key the server signs with.
    DkimKeyMismatch,
    /// The receiver computed a different body hash: the body changed after signing.
    DkimBodyHash,
    /// The DKIM key is shorter than 2048 bits (RFC 8301 §3.2: 1024 is the minimum).
    DkimWeakKey,
    /// The DKIM key record carries `t=y`: receivers treat the mail as unsigned (RFC 6376 §3.6.1).
    DkimTesting,
    /// The From domain publishes no DMARC record.
    DmarcMissing,
    /// The DMARC record does not parse.
    DmarcInvalid,
    /// Neither SPF nor DKIM passes for a domain aligned with the From domain (RFC 7489 §3.1).
    DmarcNotAligned,
    /// The spam filter scored the content as spam.
    ContentSpam,
    /// The sending IP is listed on a DNS blocklist (RFC 5782).
    Blocklisted,
    /// The SMTP server refused the message.
    SmtpRejected,
    /// The message never arrived.
    NotDelivered,
    /// A seed domain has no usable MX.
    MxMissing,
    /// A seed domain publishes no (valid) MTA-STS TXT record (RFC 8461 §3.1).
    MtaStsMissing,
    /// A seed domain publishes no (valid) TLS-RPT TXT record (RFC 8460 §3).
    TlsRptMissing,
    /// The DNS did not answer (timeout, SERVFAIL, REFUSED): nothing could be concluded.
    DnsError,
    /// The message carries no DKIM signature at all (`dkim=none`).
    DkimUnsigned,
    /// The receiver refused the message as unauthenticated without naming SPF, DKIM or DMARC
    /// (Gmail 5.7.26, Microsoft 5.7.509/5.7.515).
    RejectedUnauthenticated,
    /// The receiver deferred or refused the sending IP for volume or reputation (Yahoo
    /// 4.7.0 TSS04, Gmail 4.7.28, Microsoft 4.7.650).
    RateLimited,
    /// The seed address does not exist or is disabled (5.1.1, 5.1.10, 5.2.1).
    RecipientUnknown,
    /// The seed mailbox is full (5.2.2).
    MailboxFull,
    /// Gmail filed the probe under another inbox tab than the route expects (`expect_tab`).
    GmailTab,
    /// The receiver saw the mail come from an address the route's `sending_ips` does not list
    /// (read from the receiving hop's `Received:` field): the audit of the configured addresses
    /// did not look at the one the receiver judged.
    UnexpectedSendingIp,
    /// The hop into the receiver was not encrypted (no TLS), which Gmail requires of all senders.
    TlsMissing,
    /// The message header breaks RFC 5322 §3.6 (not exactly one From or Date, no valid
    /// Message-ID, a field that may appear once appears twice).
    HeaderMalformed,
    /// Bulk mail without RFC 8058 one-click unsubscribe (List-Unsubscribe with an https URI,
    /// List-Unsubscribe-Post, both signed by DKIM).
    OneClickUnsubscribeMissing,
}

impl Cause {
    /// Every cause, in declaration order (for pre-initialising metrics and for docs).
    pub const ALL: [Cause; 36] = [
        Cause::PtrMissing,
        Cause::FcrdnsMismatch,
        Cause::HeloMismatch,
        Cause::SpfMissing,
        Cause::SpfIpNotAuthorized,
        Cause::SpfPermerror,
        Cause::SpfTooManyLookups,
        Cause::SpfVoidLookups,
        Cause::SpfPermissive,
        Cause::DkimKeyMissing,
        Cause::DkimKeyInvalid,
        Cause::DkimKeyMismatch,
        Cause::DkimBodyHash,
        Cause::DkimWeakKey,
        Cause::DkimTesting,
        Cause::DmarcMissing,
        Cause::DmarcInvalid,
        Cause::DmarcNotAligned,
        Cause::ContentSpam,
        Cause::Blocklisted,
        Cause::SmtpRejected,
        Cause::NotDelivered,
        Cause::MxMissing,
        Cause::MtaStsMissing,
        Cause::TlsRptMissing,
        Cause::DnsError,
        Cause::DkimUnsigned,
        Cause::RejectedUnauthenticated,
        Cause::RateLimited,
        Cause::RecipientUnknown,
        Cause::MailboxFull,
        Cause::GmailTab,
        Cause::UnexpectedSendingIp,
        Cause::TlsMissing,
        Cause::HeaderMalformed,
        Cause::OneClickUnsubscribeMissing,
    ];

    /// The stable snake_case name (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::PtrMissing => "ptr_missing",
            Cause::FcrdnsMismatch => "fcrdns_mismatch",
            Cause::HeloMismatch => "helo_mismatch",
            Cause::SpfMissing => "spf_missing",
            Cause::SpfIpNotAuthorized => "spf_ip_not_authorized",
            Cause::SpfPermerror => "spf_permerror",
            Cause::SpfTooManyLookups => "spf_too_many_lookups",
            Cause::SpfVoidLookups => "spf_void_lookups",
            Cause::SpfPermissive => "spf_permissive",
            Cause::DkimKeyMissing => "dkim_key_missing",
            Cause::DkimKeyInvalid => "dkim_key_invalid",
            Cause::DkimKeyMismatch => "dkim_key_mismatch",
            Cause::DkimBodyHash => "dkim_body_hash",
            Cause::DkimWeakKey => "dkim_weak_key",
            Cause::DkimTesting => "dkim_testing",
            Cause::DmarcMissing => "dmarc_missing",
            Cause::DmarcInvalid => "dmarc_invalid",
            Cause::DmarcNotAligned => "dmarc_not_aligned",
            Cause::ContentSpam => "content_spam",
            Cause::Blocklisted => "blocklisted",
            Cause::SmtpRejected => "smtp_rejected",
            Cause::NotDelivered => "not_delivered",
            Cause::MxMissing => "mx_missing",
            Cause::MtaStsMissing => "mta_sts_missing",
            Cause::TlsRptMissing => "tls_rpt_missing",
            Cause::DnsError => "dns_error",
            Cause::DkimUnsigned => "dkim_unsigned",
            Cause::RejectedUnauthenticated => "rejected_unauthenticated",
            Cause::RateLimited => "rate_limited",
            Cause::RecipientUnknown => "recipient_unknown",
            Cause::MailboxFull => "mailbox_full",
            Cause::GmailTab => "gmail_tab",
            Cause::UnexpectedSendingIp => "unexpected_sending_ip",
            Cause::TlsMissing => "tls_missing",
            Cause::HeaderMalformed => "header_malformed",
            Cause::OneClickUnsubscribeMissing => "one_click_unsubscribe_missing",
        }
    }

    /// One sentence saying what to change, naming the record. Fields of `ctx` that are
    /// `None` are replaced by a generic wording ("the sending IP", "your domain").
    pub fn fix(self, ctx: &Context<'_>) -> String {
        let domain = ctx.domain.unwrap_or("your domain");
        // The address with its family (`the IPv6 address 2001:db8::25`): an IPv6 address the
        // admin never configured is the classic surprise, so the sentence says which it is.
        let ip = ctx.ip.map_or_else(|| "the sending IP".to_string(), address);
        let bare_ip = ctx
            .ip
            .map_or_else(|| "the sending IP".to_string(), |ip| ip.to_string());
        let address_record = match ctx.ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(_)) => "AAAA record",
            Some(IpAddr::V4(_)) => "A record",
            None => "A/AAAA record",
        };
        let reverse_zone = ctx
            .ip
            .map_or_else(|| "its reverse zone".to_string(), reverse_zone);
        let selector = ctx.selector.unwrap_or("<selector>");
        let dkim_domain = ctx.dkim_domain.or(ctx.domain).unwrap_or("your domain");
        let dkim_name = format!("{selector}._domainkey.{dkim_domain}");
        match self {
            Cause::PtrMissing => format!(
                "Publish a PTR record for {ip} (in {reverse_zone}) naming a host whose \
                 {address_record} points back to it, and use that name as the HELO."
            ),
            Cause::FcrdnsMismatch => {
                let ptr = ctx.ptr_name.unwrap_or("the PTR name");
                format!(
                    "Make {ptr} resolve to {ip} (its {address_record}), or change the PTR record \
                     of {bare_ip} (in {reverse_zone}) to a name that does."
                )
            }
            Cause::HeloMismatch => {
                let target = ctx.ptr_name.unwrap_or("a name in your domain");
                format!(
                    "Set the HELO name of the server sending from {ip} to {target}, with an \
                     {address_record} pointing to {bare_ip}."
                )
            }
            Cause::SpfMissing => format!(
                "Publish one TXT record at {domain} such as \"v=spf1 {} -all\" listing every \
                 address that sends its mail.",
                spf_term(ctx.ip)
            ),
            Cause::SpfIpNotAuthorized => format!(
                "Add {} (or the include: of the provider sending from it) to the SPF record (TXT \
                 at {domain}).",
                spf_term(ctx.ip)
            ),
            Cause::SpfPermerror => format!(
                "Fix the SPF record (TXT at {domain}): publish exactly one valid \"v=spf1 ...\" \
                 record whose include:s all have records (RFC 7208 §4.5, §5.2)."
            ),
            Cause::SpfTooManyLookups => format!(
                "Flatten the SPF record (TXT at {domain}): replace include:, a, mx, ptr and \
                 exists terms with ip4:/ip6: ranges until it needs at most 10 DNS lookups \
                 (RFC 7208 §4.6.4)."
            ),
            Cause::SpfVoidLookups => format!(
                "Remove the include:, a, mx and exists terms of the SPF record (TXT at {domain}) \
                 that name domains without records: more than 2 is a permanent error \
                 (RFC 7208 §4.6.4)."
            ),
            Cause::SpfPermissive => format!(
                "End the SPF record (TXT at {domain}) with -all (or ~all) instead of +all/?all, \
                 so it stops vouching for every server on the internet."
            ),
            Cause::DkimKeyMissing => format!(
                "Publish the DKIM public key as a TXT record at {dkim_name} \
                 (\"v=DKIM1; k=rsa; p=<base64 public key>\")."
            ),
            Cause::DkimKeyInvalid => format!(
                "Republish the TXT record at {dkim_name} as a valid DKIM key record \
                 (\"v=DKIM1; k=rsa; p=<base64 public key>\", RFC 6376 §3.6.1)."
            ),
            Cause::DkimKeyMismatch => format!(
                "Publish the public half of the key the server signs with at {dkim_name}, or \
                 configure the signer to use the key published there."
            ),
            Cause::DkimBodyHash => "Stop changing the message body after it is signed (footers, \
                 disclaimers, line-ending or transfer-encoding rewrites between the signer and \
                 the receiver), or sign after the last change."
                .to_string(),
            Cause::DkimWeakKey => format!(
                "Generate a 2048-bit RSA key, publish it under a new selector (TXT at \
                 <new-selector>._domainkey.{dkim_domain}) and sign with it, then retire \
                 {dkim_name}."
            ),
            Cause::DkimTesting => format!(
                "Remove t=y from the DKIM record at {dkim_name}: receivers treat mail signed with \
                 a testing key as unsigned (RFC 6376 §3.6.1)."
            ),
            Cause::DmarcMissing => format!(
                "Publish a TXT record at _dmarc.{domain} such as \"v=DMARC1; p=none; \
                 rua=mailto:dmarc-reports@{domain}\", and raise p= once the reports show your \
                 mail aligned."
            ),
            Cause::DmarcInvalid => format!(
                "Fix the TXT record at _dmarc.{domain}: it must start with v=DMARC1 and use \
                 valid tags (RFC 7489 §6.3)."
            ),
            Cause::DmarcNotAligned => format!(
                "Sign with DKIM as d={domain} (publish its key under \
                 <selector>._domainkey.{domain}) or send with an envelope sender in {domain} \
                 that SPF authorizes, so SPF or DKIM passes for the From domain \
                 (RFC 7489 §3.1)."
            ),
            Cause::ContentSpam => {
                if ctx.spam_rules.is_empty() {
                    "Rework the message content the spam filter objected to (wording, links, \
                     images-to-text ratio, missing plain-text part)."
                        .to_string()
                } else {
                    format!(
                        "Rework the message content the spam filter objected to (top rules: {}).",
                        ctx.spam_rules.join(", ")
                    )
                }
            }
            Cause::Blocklisted => {
                let zone = ctx.dnsbl_zone.unwrap_or("the blocklist");
                format!(
                    "Find and stop what got {ip} listed, then ask {zone} to delist it (its TXT \
                     record at the listing name usually links the removal form)."
                )
            }
            Cause::SmtpRejected => match ctx.smtp_reply {
                Some(reply) => format!(
                    "Fix what the SMTP server's reply names (\"{}\"): credentials, relay \
                     permission, sender address or the policy check it cites.",
                    one_line(reply)
                ),
                None => "Fix what the SMTP server's reply names: credentials, relay permission, \
                         sender address or the policy check it cites."
                    .to_string(),
            },
            Cause::NotDelivered => "Look for the message in the sending server's queue and log \
                 and in the seed's quarantine: it was accepted but never reached the mailbox."
                .to_string(),
            Cause::MxMissing => format!(
                "Publish an MX record for {domain} naming a host that has an A/AAAA record and \
                 accepts mail on port 25."
            ),
            Cause::MtaStsMissing => format!(
                "Publish TXT \"v=STSv1; id=<policy id>\" at _mta-sts.{domain} and the policy at \
                 https://mta-sts.{domain}/.well-known/mta-sts.txt (RFC 8461 §3)."
            ),
            Cause::TlsRptMissing => format!(
                "Publish TXT \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\" at \
                 _smtp._tls.{domain} (RFC 8460 §3)."
            ),
            Cause::DnsError => format!(
                "Make sure the DNS servers for {domain} answer (a timeout, SERVFAIL or REFUSED \
                 is not a missing record), then run the audit again."
            ),
            Cause::DkimUnsigned => {
                let selector = ctx.selector.unwrap_or("<selector>");
                format!(
                    "Sign outgoing mail with DKIM as d={domain} (publish the key at \
                     {selector}._domainkey.{domain}) so that DMARC has an aligned signature."
                )
            }
            Cause::RejectedUnauthenticated => format!(
                "Authenticate mail from {domain} as the receiver requires: an SPF record that \
                 authorizes {ip} ({}), a DKIM signature with d={domain}, and a DMARC record.",
                spf_term(ctx.ip)
            ),
            Cause::RateLimited => format!(
                "Slow down and warm up {ip}: the receiver defers it for volume or complaints \
                 ({}); check its postmaster tools and your complaint rate.",
                ctx.smtp_reply
                    .map(one_line)
                    .unwrap_or_else(|| "4.7.x".to_string())
            ),
            Cause::RecipientUnknown => "Check the seed's address in the config: the receiver \
                 says the mailbox does not exist or is disabled."
                .to_string(),
            Cause::MailboxFull => "Empty the seed mailbox (or raise its quota): the receiver \
                 refuses new mail because it is full."
                .to_string(),
            Cause::UnexpectedSendingIp => {
                let listed = if ctx.expected_ips.is_empty() {
                    "none".to_string()
                } else {
                    ctx.expected_ips
                        .iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "The receiver took this mail from {ip}, which the route's sending_ips does not \
                     list (it lists {listed}): if the address is yours, add it to sending_ips, to \
                     the SPF record ({}) and give it a PTR record; if not, find the server or \
                     relay that sends from it (an MTA that prefers IPv6 when the receiving MX has \
                     an AAAA record is the usual one).",
                    spf_term(ctx.ip)
                )
            }
            Cause::TlsMissing => format!(
                "Turn on TLS for the mail the server sending from {ip} delivers (STARTTLS, e.g. \
                 Postfix smtp_tls_security_level = may): the receiver recorded the hop into it \
                 without encryption."
            ),
            Cause::HeaderMalformed => format!(
                "Fix the header the sending software writes ({}): RFC 5322 §3.6 allows exactly \
                 one From and one Date, and receivers also refuse mail without one valid \
                 Message-ID.",
                ctx.problem
                    .map_or_else(|| "see the header check".to_string(), one_line)
            ),
            Cause::OneClickUnsubscribeMissing => format!(
                "Add one-click unsubscribe to the bulk mail from {domain} ({}): a \
                 List-Unsubscribe header with an https URI, List-Unsubscribe-Post: \
                 List-Unsubscribe=One-Click, and both fields in the DKIM signature's h= tag \
                 (RFC 8058 §3.1, §4).",
                ctx.problem
                    .map_or_else(|| "see the header check".to_string(), one_line)
            ),
            Cause::GmailTab => format!(
                "Gmail filed it under {} instead of {}: make the message read like one person \
                 writing to another (no List-Unsubscribe or bulk headers, few links and \
                 images, a personal From name), or set expect_tab to the tab you accept.",
                ctx.tab.unwrap_or("another tab"),
                ctx.expected_tab.unwrap_or("the expected tab")
            ),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the fix sentences may name. Every field is optional; fill what you know.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The domain whose record must change (From / envelope / seed domain).
    pub domain: Option<&'a str>,
    /// The DKIM signing domain (`d=`), when it differs from `domain`.
    pub dkim_domain: Option<&'a str>,
    /// The sending IP.
    pub ip: Option<IpAddr>,
    /// The PTR name of the sending IP.
    pub ptr_name: Option<&'a str>,
    /// The HELO name the server uses.
    pub helo: Option<&'a str>,
    /// The DKIM selector.
    pub selector: Option<&'a str>,
    /// The DNS blocklist zone.
    pub dnsbl_zone: Option<&'a str>,
    /// The spam filter's top rules, most significant first.
    pub spam_rules: &'a [String],
    /// The SMTP reply of a refused submission.
    pub smtp_reply: Option<&'a str>,
    /// The Gmail tab the message was filed under, and the one the route expects.
    pub tab: Option<&'a str>,
    pub expected_tab: Option<&'a str>,
    /// The addresses the route's `sending_ips` lists (for `unexpected_sending_ip`).
    pub expected_ips: &'a [IpAddr],
    /// What exactly is wrong, in a few words (`2 From fields`, `no https URI`).
    pub problem: Option<&'a str>,
}

/// A cause with its fix sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// The cause.
    pub cause: Cause,
    /// One sentence naming the record or setting to change.
    pub fix: String,
}

impl Diagnosis {
    /// The cause with its fix for `ctx`.
    pub fn new(cause: Cause, ctx: &Context<'_>) -> Self {
        Diagnosis {
            cause,
            fix: cause.fix(ctx),
        }
    }
}

/// What a receiver (or the sender) said about one probe message, as plain strings.
///
/// Result strings are the RFC 8601 result keywords, compared case-insensitively:
/// SPF `pass|fail|softfail|neutral|none|temperror|permerror`, DKIM
/// `pass|fail|neutral|none|policy|temperror|permerror`, DMARC `pass|fail|none|...`.
/// `None` means "not reported".
#[derive(Debug, Clone, Copy, Default)]
pub struct VerdictFacts<'a> {
    /// The SPF result the receiver reported.
    pub spf: Option<&'a str>,
    /// The DKIM result the receiver reported.
    pub dkim: Option<&'a str>,
    /// The receiver's reason text for the DKIM result (e.g. "body hash did not verify").
    pub dkim_reason: Option<&'a str>,
    /// The DMARC result the receiver reported.
    pub dmarc: Option<&'a str>,
    /// Whether the receiver's spam filter flagged the message.
    pub spam: bool,
    /// Where the message landed: `inbox`, `junk` (or `spam`), `missing` (or `not_delivered`).
    pub placement: Option<&'a str>,
    /// The error of a failed submission (SMTP reply or transport error), if sending failed.
    pub send_error: Option<&'a str>,
}

/// The causes behind one probe's verdict, most fundamental first, each with its fix.
///
/// Rules (one cause per problem, no consequences reported twice):
/// - a send error yields only `smtp_rejected`; a message that never arrived only `not_delivered`;
/// - SPF `fail|softfail|neutral` → `spf_ip_not_authorized`, `permerror` → `spf_permerror`,
///   `none` → `spf_missing`;
/// - DKIM `fail|permerror` whose reason mentions the body hash → `dkim_body_hash`, a reason
///   saying the key is missing (no key / NXDOMAIN / key not found) → `dkim_key_missing`, any other
///   failure → `dkim_key_mismatch` (the signature does not verify against the published key).
///   DKIM `none` alone is no cause: unsigned mail is DMARC's business;
/// - DMARC `fail` → `dmarc_not_aligned` only when no SPF or DKIM cause explains it;
///   DMARC `none` → `dmarc_missing`;
/// - spam flagged or junk placement → `content_spam` only when no authentication cause explains
///   it (receivers score failing authentication too).
///
/// `ctx.spam_rules` names the spam rules in the `content_spam` fix.
pub fn diagnose_verdict(facts: &VerdictFacts<'_>, ctx: &Context<'_>) -> Vec<Diagnosis> {
    let is = |value: Option<&str>, words: &[&str]| {
        value.is_some_and(|v| words.iter().any(|w| v.trim().eq_ignore_ascii_case(w)))
    };
    if facts.send_error.is_some() {
        let ctx = Context {
            smtp_reply: facts.send_error,
            ..*ctx
        };
        return vec![Diagnosis::new(Cause::SmtpRejected, &ctx)];
    }
    if is(facts.placement, &["missing", "not_delivered", "lost"]) {
        return vec![Diagnosis::new(Cause::NotDelivered, ctx)];
    }
    let mut causes = Vec::new();
    if is(facts.spf, &["fail", "softfail", "neutral"]) {
        causes.push(Cause::SpfIpNotAuthorized);
    } else if is(facts.spf, &["permerror"]) {
        causes.push(Cause::SpfPermerror);
    } else if is(facts.spf, &["none"]) {
        causes.push(Cause::SpfMissing);
    }
    if is(facts.dkim, &["fail", "permerror"]) {
        let reason = facts.dkim_reason.unwrap_or("").to_ascii_lowercase();
        if reason.contains("body hash") || reason.contains("bodyhash") {
            causes.push(Cause::DkimBodyHash);
        } else if reason.contains("no key")
            || reason.contains("key not found")
            || reason.contains("nxdomain")
            || reason.contains("no public key")
        {
            causes.push(Cause::DkimKeyMissing);
        } else {
            causes.push(Cause::DkimKeyMismatch);
        }
    }
    // Unsigned mail has nothing for DMARC to align with DKIM; name it when DMARC is not
    // passing, and name the alignment failure itself whenever DMARC failed.
    // A receiver that reports DMARC evaluated DKIM: no DKIM result beside a failing DMARC
    // (rspamd writes none for unsigned mail) is unsigned mail too.
    let unsigned = is(facts.dkim, &["none"]) || (facts.dkim.is_none() && facts.dmarc.is_some());
    if unsigned && !is(facts.dmarc, &["pass"]) && facts.dmarc.is_some() {
        causes.push(Cause::DkimUnsigned);
    }
    if is(facts.dmarc, &["fail"]) {
        causes.push(Cause::DmarcNotAligned);
    } else if is(facts.dmarc, &["none"]) {
        causes.push(Cause::DmarcMissing);
    }
    let junk = is(facts.placement, &["junk", "spam"]);
    if (facts.spam || junk) && causes.is_empty() {
        causes.push(Cause::ContentSpam);
    }
    causes
        .into_iter()
        .map(|cause| Diagnosis::new(cause, ctx))
        .collect()
}

/// The conventional reverse zone holding the PTR of `ip`: the /24 for IPv4
/// (`0.0.127.in-addr.arpa`), the /64 for IPv6.
pub fn reverse_zone(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6.octets()[..8]
                .iter()
                .flat_map(|byte| [byte >> 4, byte & 0x0f])
                .rev()
                .map(|n| format!("{n:x}"))
                .collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}

/// An address with its family, as fix sentences name it: `the IPv4 address 192.0.2.1`,
/// `the IPv6 address 2001:db8::1` (an IPv4-mapped IPv6 address is named as IPv4).
pub fn address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("the IPv4 address {v4}"),
        IpAddr::V6(v6) => format!("the IPv6 address {v6}"),
    }
}

fn spf_term(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => format!("ip4:{v4}"),
        Some(IpAddr::V6(v6)) => format!("ip6:{v6}"),
        None => "ip4:<sending IP>".to_string(),
    }
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        let cut: String = flat.chars().take(160).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests;
