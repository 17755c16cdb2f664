//! The providers' own words: the refusal and deferral replies Gmail, Microsoft (Outlook.com and
//! Microsoft 365), Yahoo, GMX/web.de and Mail.ru document, mapped to a cause, the code that
//! identifies the reply, and — where the provider runs one — its delist or sender-support page.
//!
//! Sources (the reply texts in `tests/fixtures/dsn/` are quoted from them):
//! - Gmail: "Gmail SMTP errors and codes", <https://support.google.com/a/answer/3726730>, and the
//!   Email sender guidelines FAQ, <https://support.google.com/a/answer/14229414>: `x.7.25` no PTR,
//!   `5.7.26` unauthenticated (DMARC policy, or neither SPF nor DKIM), `x.7.27` SPF, `x.7.28`
//!   rate limited (unsolicited mail from the IP, SPF or DKIM domain), `x.7.29` no TLS, `x.7.30`
//!   DKIM, `4.7.31` and `x.7.40` no DMARC policy, `x.7.32` From not aligned, `5.7.1` blocked as
//!   likely unsolicited, or not RFC 5322 compliant (missing Message-ID, several From). Gmail runs
//!   no delist form; its link is the sender guidelines.
//! - Microsoft: "Email non-delivery reports and SMTP errors in Exchange Online"
//!   (<https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online>):
//!   `5.7.606`–`5.7.649` banned sending IP (delist at <https://sender.office.com/>), `5.7.700`–
//!   `5.7.750` sending tenant blocked; `5.7.509` DMARC; `5.7.515` required authentication level
//!   (Outlook.com's high-volume sender rules, May 2025). Outlook.com: `S3150`, `S3140` "part of
//!   their network is on our block list" (delist through the Outlook.com sender support form,
//!   <https://olcsupport.office.com/>).
//! - Yahoo: "SMTP error codes", <https://senders.yahooinc.com/smtp-error-codes/>: `TSS04`
//!   deferred for volume or complaints, `TSS09` permanently deferred, `PH01` and `554 5.7.9` not
//!   accepted for policy reasons; sender support at <https://senders.yahooinc.com/contact/>.
//! - GMX and web.de (United Internet): "Reject due to policy restrictions" with a case link on
//!   `postmaster.gmx.net` / `postmaster.web.de` that explains the case.
//! - Mail.ru: "spam message rejected" with a link on `help.mail.ru/notspam-support`.
//!
//! Links are fixed per provider, or taken from the reply only when they point to the provider's
//! own postmaster host (never any other URL a reply may carry).

use serde::Serialize;

use super::{Cause, Context, Diagnosis};

/// The longest reply text looked at.
const MAX_REPLY_BYTES: usize = 16 * 1024;
/// The longest link taken from a reply.
const MAX_LINK_CHARS: usize = 255;

/// The providers whose replies are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Gmail,
    Microsoft,
    Yahoo,
    Gmx,
    WebDe,
    MailRu,
}

impl Provider {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Microsoft => "microsoft",
            Provider::Yahoo => "yahoo",
            Provider::Gmx => "gmx",
            Provider::WebDe => "web_de",
            Provider::MailRu => "mail_ru",
        }
    }

    /// The name a sentence uses.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Gmail => "Gmail",
            Provider::Microsoft => "Microsoft",
            Provider::Yahoo => "Yahoo",
            Provider::Gmx => "GMX",
            Provider::WebDe => "web.de",
            Provider::MailRu => "Mail.ru",
        }
    }
}

/// A reply recognised as one a provider documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderReply {
    /// Whose reply it is.
    pub provider: Provider,
    /// The code that identifies it: an enhanced status code (`5.7.26`) or the provider's own
    /// (`S3150`, `TSS04`, `PH01`).
    pub code: String,
    /// The cause it names.
    pub cause: Cause,
    /// The provider's delist or sender-support page, where it runs one.
    pub link: Option<String>,
}

impl ProviderReply {
    /// The cause with its fix sentence for `ctx`, the provider's page named in it (`... (Microsoft
    /// delist request: https://sender.office.com/).`).
    pub fn diagnosis(&self, ctx: &Context<'_>) -> Diagnosis {
        let mut fix = self.cause.fix(ctx);
        if let Some(link) = &self.link {
            let what = match (self.cause, self.provider) {
                (Cause::Blocklisted, _) => "delist request",
                (_, Provider::Gmail) => "sender guidelines",
                (_, Provider::Gmx | Provider::WebDe | Provider::MailRu) => "explanation",
                _ => "sender support",
            };
            let body = fix.trim_end_matches('.').to_string();
            fix = format!("{body} ({} {what}: {link}).", self.provider.name());
        }
        Diagnosis {
            cause: self.cause,
            fix,
        }
    }
}

/// Recognises a provider's documented reply from its enhanced status code (`Status`, when
/// known) and reply text. `None` for replies no provider here documents.
pub fn recognise(status: Option<&str>, reply: &str) -> Option<ProviderReply> {
    let reply = prefix(reply, MAX_REPLY_BYTES);
    let lower = reply.to_ascii_lowercase();
    let code = enhanced_code(reply).or_else(|| status.and_then(parse_code));
    let reply_for = |provider, code: String, cause, link: Option<String>| {
        Some(ProviderReply {
            provider,
            code,
            cause,
            link,
        })
    };

    // Outlook.com's own codes come first: they ride on generic 550 5.7.1 replies.
    for tag in ["s3150", "s3140", "s3115", "s3114"] {
        if lower.contains(&format!("({tag})")) || lower.contains(&format!("[{tag}]")) {
            return reply_for(
                Provider::Microsoft,
                tag.to_ascii_uppercase(),
                Cause::Blocklisted,
                Some(OUTLOOK_SUPPORT.to_string()),
            );
        }
    }
    // Yahoo's codes in brackets.
    for (tag, cause) in [
        ("[tss04]", Cause::RateLimited),
        ("[tss09]", Cause::Blocklisted),
        ("[ts01]", Cause::RateLimited),
        ("[ts02]", Cause::RateLimited),
        ("[ts03]", Cause::Blocklisted),
        ("[ph01]", Cause::ContentSpam),
    ] {
        if lower.contains(tag) {
            return reply_for(
                Provider::Yahoo,
                tag.trim_matches(['[', ']']).to_ascii_uppercase(),
                cause,
                Some(YAHOO_SUPPORT.to_string()),
            );
        }
    }
    if (lower.contains("yahooinc.com") || lower.contains("yahoo.com/"))
        && let Some(code) = &code
        && (code.subject, code.detail) == (7, 9)
    {
        return reply_for(
            Provider::Yahoo,
            code.text(),
            Cause::ContentSpam,
            Some(YAHOO_SUPPORT.to_string()),
        );
    }
    // United Internet and Mail.ru explain the case behind a link on their postmaster host.
    for (provider, host) in [
        (Provider::Gmx, "postmaster.gmx.net"),
        (Provider::WebDe, "postmaster.web.de"),
    ] {
        if let Some(link) = link_on(reply, host) {
            return reply_for(
                provider,
                code.map_or_else(|| "policy".to_string(), |code| code.text()),
                Cause::SmtpRejected,
                Some(link),
            );
        }
    }
    if let Some(link) = link_on(reply, "help.mail.ru") {
        return reply_for(
            Provider::MailRu,
            code.map_or_else(|| "spam".to_string(), |code| code.text()),
            Cause::ContentSpam,
            Some(link),
        );
    }

    let code = code?;
    let gmail = lower.contains("gsmtp") || lower.contains("support.google.com");
    let microsoft = lower.contains("outlook.com")
        || lower.contains("office365")
        || lower.contains("prod.protection")
        || lower.contains("access denied")
        || matches!((code.subject, code.detail), (7, 500..=799));
    if gmail {
        let cause = match (code.class, code.subject, code.detail) {
            (_, 7, 25) | (4, 7, 23) => Cause::PtrMissing,
            (_, 7, 26) if lower.contains("dmarc") => Cause::DmarcNotAligned,
            (_, 7, 26) => Cause::RejectedUnauthenticated,
            (_, 7, 27) => Cause::SpfIpNotAuthorized,
            (_, 7, 28) => Cause::RateLimited,
            (_, 7, 29) => Cause::TlsMissing,
            (_, 7, 30) => Cause::DkimUnsigned,
            (4, 7, 31) | (_, 7, 40) => Cause::DmarcMissing,
            (_, 7, 32) => Cause::DmarcNotAligned,
            (5, 7, 1)
                if lower.contains("rfc 5322")
                    || lower.contains("message-id")
                    || lower.contains("messageid")
                    || lower.contains("'from' header") =>
            {
                Cause::HeaderMalformed
            }
            (5, 7, 1) if lower.contains("unsolicited") || lower.contains("spam") => {
                Cause::ContentSpam
            }
            (4, 7, 0) if lower.contains("unsolicited") => Cause::RateLimited,
            (4, 7, 0) if lower.contains("authentication") => Cause::RejectedUnauthenticated,
            _ => return None,
        };
        return reply_for(
            Provider::Gmail,
            code.text(),
            cause,
            Some(GMAIL_GUIDELINES.to_string()),
        );
    }
    if microsoft {
        let (cause, link) = match (code.class, code.subject, code.detail) {
            (5, 7, 606..=649) => (Cause::Blocklisted, Some(MICROSOFT_DELIST)),
            (5, 7, 700..=750) => (Cause::Blocklisted, Some(MICROSOFT_TENANT_HELP)),
            (5, 7, 509) => (Cause::DmarcNotAligned, None),
            (5, 7, 515) => (Cause::RejectedUnauthenticated, Some(OUTLOOK_POLICIES)),
            (4, 7, 500..=699) => (Cause::RateLimited, Some(OUTLOOK_SUPPORT)),
            _ => return None,
        };
        return reply_for(
            Provider::Microsoft,
            code.text(),
            cause,
            link.map(str::to_string),
        );
    }
    None
}

const GMAIL_GUIDELINES: &str = "https://support.google.com/a/answer/81126";
const MICROSOFT_DELIST: &str = "https://sender.office.com/";
const MICROSOFT_TENANT_HELP: &str = "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online";
const OUTLOOK_SUPPORT: &str = "https://olcsupport.office.com/";
const OUTLOOK_POLICIES: &str = "https://sendersupport.olc.protection.outlook.com/pm/policies.aspx";
const YAHOO_SUPPORT: &str = "https://senders.yahooinc.com/contact/";

/// An enhanced status code (RFC 3463 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code {
    class: u16,
    subject: u16,
    detail: u16,
}

impl Code {
    fn text(self) -> String {
        format!("{}.{}.{}", self.class, self.subject, self.detail)
    }
}

fn parse_code(word: &str) -> Option<Code> {
    let mut parts = word.trim().split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(class, "2" | "4" | "5") {
        return None;
    }
    let number = |part: &str| {
        ((1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
    };
    Some(Code {
        class: class.parse().ok()?,
        subject: number(subject)?,
        detail: number(detail)?,
    })
}

/// The reply's own enhanced code: the first word that is one, alone or glued to the reply code
/// (`550-5.7.26`), or behind a `#` (`#5.7.1`).
fn enhanced_code(reply: &str) -> Option<Code> {
    reply.split_whitespace().take(64).find_map(|word| {
        let word = word.trim_matches(|ch: char| !ch.is_ascii_alphanumeric() && ch != '.');
        let word = word
            .split_once('-')
            .filter(|(reply_code, _)| reply_code.len() == 3)
            .map_or(word, |(_, rest)| rest);
        let word = word.rsplit('#').next().unwrap_or(word);
        parse_code(word)
    })
}

/// The first `https://` link in `reply` whose host is `host`, trailing punctuation removed.
fn link_on(reply: &str, host: &str) -> Option<String> {
    reply.split_whitespace().find_map(|word| {
        let start = word.find("https://")?;
        let link = word[start..].trim_end_matches(|ch: char| ".,;:)>]'\"".contains(ch));
        let rest = &link["https://".len()..];
        let link_host = rest.split(['/', '?', '#']).next().unwrap_or("");
        link_host
            .eq_ignore_ascii_case(host)
            .then(|| link.chars().take(MAX_LINK_CHARS).collect())
    })
}

fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause_of(status: Option<&str>, reply: &str) -> Option<(Provider, String, Cause)> {
        recognise(status, reply).map(|r| (r.provider, r.code, r.cause))
    }

    #[test]
    fn gmail_codes() {
        let cases = [
            (
                "550-5.7.26 Unauthenticated email from sender.example is not accepted due to domain's DMARC policy. gsmtp",
                Cause::DmarcNotAligned,
            ),
            (
                "550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. gsmtp",
                Cause::RejectedUnauthenticated,
            ),
            (
                "550-5.7.27 Your email has been blocked because the sender is unauthenticated. Gmail requires all bulk email senders to authenticate with SPF. gsmtp",
                Cause::SpfIpNotAuthorized,
            ),
            (
                "421-4.7.30 Your email has been rate limited because DKIM authentication didn't pass for this message. gsmtp",
                Cause::DkimUnsigned,
            ),
            (
                "550-5.7.30 Your email has been blocked because DKIM authentication didn't pass for this message. gsmtp",
                Cause::DkimUnsigned,
            ),
            (
                "421-4.7.32 Your email has been rate limited because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain. gsmtp",
                Cause::DmarcNotAligned,
            ),
            (
                "550-5.7.32 Your email has been blocked because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain. gsmtp",
                Cause::DmarcNotAligned,
            ),
            (
                "421-4.7.40 Your email has been rate limited because DMARC policy is missing for the domain. gsmtp",
                Cause::DmarcMissing,
            ),
            (
                "421-4.7.29 Your email has been rate limited because this message wasn't sent over a TLS connection. gsmtp",
                Cause::TlsMissing,
            ),
            (
                "550-5.7.25 The IP address sending this message does not have a PTR record setup. gsmtp",
                Cause::PtrMissing,
            ),
            (
                "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP address. gsmtp",
                Cause::RateLimited,
            ),
            (
                "550-5.7.1 Gmail has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. gsmtp",
                Cause::ContentSpam,
            ),
            (
                "550-5.7.1 Messages missing a valid Message-ID header are not accepted. gsmtp",
                Cause::HeaderMalformed,
            ),
        ];
        for (reply, cause) in cases {
            let got = recognise(None, reply).unwrap_or_else(|| panic!("not recognised: {reply}"));
            assert_eq!(
                (got.provider, got.cause),
                (Provider::Gmail, cause),
                "{reply}"
            );
            assert_eq!(got.link.as_deref(), Some(GMAIL_GUIDELINES));
        }
        assert_eq!(
            cause_of(Some("5.7.27"), "Your message was refused - gsmtp"),
            Some((Provider::Gmail, "5.7.27".into(), Cause::SpfIpNotAuthorized))
        );
    }

    #[test]
    fn microsoft_codes_and_delist_links() {
        let banned = recognise(None, "550 5.7.606 Access denied, banned sending IP [192.0.2.8]. To request removal from this list please visit https://sender.office.com/ and follow the directions.")
            .expect("recognised");
        assert_eq!(
            (
                banned.provider,
                banned.code.as_str(),
                banned.cause,
                banned.link.as_deref()
            ),
            (
                Provider::Microsoft,
                "5.7.606",
                Cause::Blocklisted,
                Some(MICROSOFT_DELIST)
            )
        );
        let s3150 = recognise(Some("5.7.1"), "550 5.7.1 Unfortunately, messages from [192.0.2.8] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.")
            .expect("recognised");
        assert_eq!(
            (s3150.code.as_str(), s3150.cause, s3150.link.as_deref()),
            ("S3150", Cause::Blocklisted, Some(OUTLOOK_SUPPORT))
        );
        assert_eq!(
            cause_of(
                None,
                "550 5.7.515 Access denied, sending domain [sender.example] doesn't meet the required authentication level."
            ),
            Some((
                Provider::Microsoft,
                "5.7.515".into(),
                Cause::RejectedUnauthenticated
            ))
        );
        assert_eq!(
            cause_of(
                None,
                "550 5.7.705 Access denied, tenant has exceeded threshold."
            ),
            Some((Provider::Microsoft, "5.7.705".into(), Cause::Blocklisted))
        );
        assert_eq!(
            cause_of(
                None,
                "550 5.7.509 Access denied, sending domain sender.example does not pass DMARC verification and has a DMARC policy of reject."
            ),
            Some((
                Provider::Microsoft,
                "5.7.509".into(),
                Cause::DmarcNotAligned
            ))
        );
    }

    #[test]
    fn yahoo_gmx_mailru() {
        assert_eq!(
            cause_of(
                None,
                "421 4.7.0 [TSS04] Messages from 192.0.2.9 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
            ),
            Some((Provider::Yahoo, "TSS04".into(), Cause::RateLimited))
        );
        assert_eq!(
            cause_of(
                None,
                "554 Message not allowed - [PH01] Email not accepted for policy reasons. Please visit https://postmaster.yahooinc.com/error-codes"
            ),
            Some((Provider::Yahoo, "PH01".into(), Cause::ContentSpam))
        );
        assert_eq!(
            cause_of(
                None,
                "554 5.7.9 Message not accepted for policy reasons.  See https://postmaster.yahooinc.com/error-codes"
            ),
            Some((Provider::Yahoo, "5.7.9".into(), Cause::ContentSpam))
        );
        let gmx = recognise(None, "554-Transaction failed 554-Reject due to policy restrictions. 554 For explanation visit https://postmaster.gmx.net/en/case?c=r0701&i=ip&v=192.0.2.9&r=1N2xyz-1abc")
            .expect("recognised");
        assert_eq!(gmx.provider, Provider::Gmx);
        assert_eq!(
            gmx.link.as_deref(),
            Some("https://postmaster.gmx.net/en/case?c=r0701&i=ip&v=192.0.2.9&r=1N2xyz-1abc")
        );
        let webde = recognise(None, "554-Transaction failed 554-Reject due to policy restrictions. 554 For explanation visit https://postmaster.web.de/en/case?c=r0701&i=ip&v=192.0.2.9").expect("recognised");
        assert_eq!(webde.provider, Provider::WebDe);
        let mailru = recognise(None, "550 spam message rejected. Please visit https://help.mail.ru/notspam-support/id?c=AbCdEf or report details to abuse@corp.mail.ru. Error code: 0123ABCD.").expect("recognised");
        assert_eq!(
            (mailru.provider, mailru.cause),
            (Provider::MailRu, Cause::ContentSpam)
        );
        assert_eq!(
            mailru.link.as_deref(),
            Some("https://help.mail.ru/notspam-support/id?c=AbCdEf")
        );
    }

    #[test]
    fn the_fix_names_the_providers_page() {
        let reply = recognise(
            None,
            "550 5.7.606 Access denied, banned sending IP [192.0.2.8].",
        )
        .expect("recognised");
        let ip = "192.0.2.8".parse().ok();
        let d = reply.diagnosis(&Context {
            ip,
            ..Context::default()
        });
        assert_eq!(d.cause, Cause::Blocklisted);
        assert_eq!(
            d.fix,
            "Find and stop what got the IPv4 address 192.0.2.8 listed, then ask the blocklist to \
             delist it (its TXT record at the listing name usually links the removal form) \
             (Microsoft delist request: https://sender.office.com/)."
        );
    }

    #[test]
    fn other_replies_and_foreign_links_are_not_taken() {
        assert_eq!(
            recognise(
                None,
                "550 5.1.1 <a@b>: Recipient address rejected: User unknown"
            ),
            None
        );
        assert_eq!(recognise(None, ""), None);
        // A link to another host is never taken as a provider's page.
        assert_eq!(
            recognise(
                None,
                "554 rejected, see https://postmaster.gmx.net.evil.example/x"
            ),
            None
        );
        assert_eq!(recognise(None, &"x".repeat(100_000)), None);
    }
}
