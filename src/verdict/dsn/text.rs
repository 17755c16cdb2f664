//! The human-readable text of bounces: which MTA wrote it, and what it says about each
//! recipient when there is no `message/delivery-status` part to say it (RFC 3464 §1 calls
//! these "non-standard" bounces; RFC 6522 §3 makes the text the report's first part).
//!
//! Each format is recognised by the sentence its MTA always writes; when several occur, the
//! first one in the text wins (a copy of another bounce can follow it):
//!
//! - Postfix (`bounce(8)` templates): "This is the mail system at host HOST." then one
//!   paragraph per recipient, `<addr>: host MX[IP] said: REPLY (in reply to ... command)`,
//!   continued on indented lines.
//! - Exim: "This message was created automatically by mail delivery software." then, per
//!   recipient, the address indented two spaces and its details four: `host MX [IP]`,
//!   `SMTP error from remote mail server after RCPT TO:<addr>:` and the reply lines. The
//!   returned copy follows `------ This is a copy of the message...`.
//! - qmail (`qmail-send`): "Hi. This is the qmail-send program at HOST." then `<addr>:` and its
//!   paragraph (`Remote host said: REPLY`, `Giving up on IP.`), and the copy after
//!   `--- Below this line is a copy of the message.`
//! - Sendmail: `----- The following addresses had permanent fatal errors -----` (or
//!   `transient non-fatal errors` for a warning) listing `<addr>` and `(reason: REPLY)`, then
//!   `----- Transcript of session follows -----` with `... while talking to MX.:`,
//!   `>>> RCPT To:<addr>` and `<<< REPLY` lines; the copy after
//!   `----- Original message follows -----` (or `Unsent message`, `Message header`).
//! - Exchange and Office 365: "Remote Server returned 'REPLY'" (or `#REPLY##` in older ones)
//!   under the recipient's address, `Generating server: HOST`, and "Original message headers:".
//! - Gmail: "The response from the remote server was:" followed by the reply lines.

use super::values::{self, clean, host};
use super::{Action, DsnFormat, DsnRecipient, Recipients, reply};

/// What a bounce's text says.
pub(super) struct TextReport<'a> {
    pub(super) format: DsnFormat,
    pub(super) recipients: Recipients,
    pub(super) reporting_mta: Option<String>,
    /// The header section of the returned message, when the text carries a copy.
    pub(super) returned: Option<&'a str>,
}

/// The first text in a format we know, read.
pub(super) fn read(texts: &[String]) -> Option<TextReport<'_>> {
    texts.iter().find_map(|text| read_one(text))
}

/// The sentences that identify each format (lower case).
const MARKERS: &[(&str, DsnFormat)] = &[
    ("this is the mail system at host", DsnFormat::Postfix),
    (
        "created automatically by mail delivery software",
        DsnFormat::Exim,
    ),
    ("this is the qmail-send program", DsnFormat::Qmail),
    ("transcript of session follows", DsnFormat::Sendmail),
    (
        "following addresses had permanent fatal errors",
        DsnFormat::Sendmail,
    ),
    (
        "following addresses had transient non-fatal errors",
        DsnFormat::Sendmail,
    ),
    ("remote server returned", DsnFormat::Exchange),
    (
        "diagnostic information for administrators",
        DsnFormat::Exchange,
    ),
    ("the response from the remote server was:", DsnFormat::Gmail),
    // Gmail's older plain-text bounces (no delivery-status part): "Delivery to the following
    // recipient failed permanently:" ... "Technical details of permanent failure:" ... "The error
    // that the other server returned was:".
    ("delivery to the following recipient", DsnFormat::Gmail),
    ("technical details of permanent failure", DsnFormat::Gmail),
    ("technical details of temporary failure", DsnFormat::Gmail),
    // Exim's per-recipient sentence, also under a customised or translated introduction.
    ("smtp error from remote mail server after", DsnFormat::Exim),
    ("the following address(es) failed", DsnFormat::Exim),
];

/// Postfix's per-recipient paragraph (`<addr>: host MX[IP] said: ... (in reply to ...)`) read
/// without its introduction: Postfix's bounce templates can be translated
/// (`bounce_template_file`), and then no English sentence names the format.
fn looks_like_postfix(text: &str) -> bool {
    lines(text).take(500).any(|line| {
        line.starts_with('<')
            && line.contains(">: ")
            && (line.contains(" said: ") || line.contains("(in reply to "))
    })
}

fn read_one(text: &str) -> Option<TextReport<'_>> {
    // ASCII lower-casing keeps every byte offset, so positions found in `lower` are
    // positions in `text`.
    let lower = text.to_ascii_lowercase();
    let marked = MARKERS
        .iter()
        .filter_map(|(marker, format)| lower.find(marker).map(|at| (at, *format)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, format)| format);
    let format = match marked {
        Some(format) => format,
        None if looks_like_postfix(text) => DsnFormat::Postfix,
        None => return None,
    };
    let page = Page {
        text,
        lower: &lower,
    };
    Some(match format {
        DsnFormat::Postfix => page.postfix(),
        DsnFormat::Exim => page.exim(),
        DsnFormat::Qmail => page.qmail(),
        DsnFormat::Sendmail => page.sendmail(),
        DsnFormat::Exchange => page.exchange(),
        DsnFormat::Gmail | DsnFormat::Rfc3464 => page.gmail(),
    })
}

/// Fills in, for each recipient the delivery-status fields left without a reply or remote
/// MTA, what the text says about the same address (or about the only recipient, when both
/// name exactly one).
pub(super) fn fill_in(recipients: &mut [DsnRecipient], from_text: &Recipients) {
    let only = recipients.len() == 1 && from_text.kept.len() == 1;
    for recipient in recipients.iter_mut() {
        let same = from_text.kept.iter().find(|other| {
            match (&recipient.final_recipient, &other.final_recipient) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
        });
        let Some(other) = same.or_else(|| from_text.kept.first().filter(|_| only)) else {
            continue;
        };
        if recipient.diagnostic_code.is_none() {
            recipient.diagnostic_code = other.diagnostic_code.clone();
        }
        if recipient.remote_mta.is_none() {
            recipient.remote_mta = other.remote_mta.clone();
        }
        if recipient.status.is_none() {
            recipient.status = other.status.clone();
        }
    }
}

/// The first `Message-ID:` line in the texts (a bounce that quotes the headers it returns).
pub(super) fn message_id_in(texts: &[String]) -> Option<String> {
    texts.iter().flat_map(|text| lines(text)).find_map(|line| {
        let line = line.trim_start();
        let name = line.get(..11)?;
        if !name.eq_ignore_ascii_case("message-id:") {
            return None;
        }
        values::message_id(&line[11..])
    })
}

/// Lines without their line ends (LF or CRLF).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// A recipient as the text describes it.
fn recipient(
    address: Option<&str>,
    action: Action,
    remote_mta: Option<&str>,
    reply_text: &str,
) -> DsnRecipient {
    let diagnostic_code = clean(&reply::join(reply_text));
    DsnRecipient {
        final_recipient: address.and_then(values::address),
        action: Some(action),
        status: diagnostic_code.as_deref().and_then(reply::enhanced_code),
        remote_mta: remote_mta.and_then(host),
        diagnostic_code,
        ..DsnRecipient::default()
    }
}

/// An address alone on a line (`a@b`, `<a@b>`), without its `<>`.
fn bare_address(text: &str) -> Option<&str> {
    let text = text.trim();
    let text = text
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(text);
    (text.contains('@') && !text.contains(char::is_whitespace) && !text.contains(['<', '>']))
        .then_some(text)
}

/// How far a line is indented.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The header section after the line that contains `marker` (lower case), blank lines skipped.
fn after_marker<'a>(text: &'a str, lower: &str, marker: &str) -> Option<&'a str> {
    let at = lower.find(marker)?;
    let rest = &text[at..];
    let line_end = rest.find('\n').map_or(rest.len(), |end| end + 1);
    let copy = rest[line_end..].trim_start_matches(['\r', '\n']);
    (!copy.is_empty()).then_some(copy)
}

/// The first of several markers that occurs, for the returned copy.
fn after_any<'a>(text: &'a str, lower: &str, markers: &[&str]) -> Option<&'a str> {
    markers
        .iter()
        .filter_map(|marker| lower.find(marker).map(|at| (at, *marker)))
        .min_by_key(|(at, _)| *at)
        .and_then(|(_, marker)| after_marker(text, lower, marker))
}

/// The host named on a `... HOST.` line after `marker` (lower case), without the final dot.
fn host_after(text: &str, lower: &str, marker: &str) -> Option<String> {
    let at = lower.find(marker)? + marker.len();
    let word = text[at..].split_whitespace().next()?;
    host(word.trim_end_matches(['.', ':']))
}

/// One bounce text and its lower-case copy.
struct Page<'a, 'l> {
    text: &'a str,
    lower: &'l str,
}

impl<'a> Page<'a, '_> {
    /// The text up to the first of `markers` (where the returned copy starts).
    fn before(&self, markers: &[&str]) -> &'a str {
        let end = markers
            .iter()
            .filter_map(|marker| self.lower.find(marker))
            .min()
            .unwrap_or(self.text.len());
        &self.text[..end]
    }

    fn postfix(&self) -> TextReport<'a> {
        let action = if self.lower.contains("this is a warning only")
            || self.lower.contains("could not be delivered for more than")
        {
            Action::Delayed
        } else if self.lower.contains("was successfully delivered") {
            Action::Delivered
        } else {
            Action::Failed
        };
        let mut recipients = Recipients::default();
        let mut paragraph: Option<String> = None;
        let finish = |paragraph: Option<String>, recipients: &mut Recipients| {
            if let Some(paragraph) = paragraph {
                recipients.push(postfix_recipient(&paragraph, action));
            }
        };
        for line in lines(self.text) {
            if line.starts_with('<') {
                finish(paragraph.take(), &mut recipients);
                paragraph = Some(line.to_string());
            } else if let Some(open) = &mut paragraph {
                if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
                    open.push(' ');
                    open.push_str(line.trim());
                } else {
                    finish(paragraph.take(), &mut recipients);
                }
            }
        }
        finish(paragraph, &mut recipients);
        TextReport {
            format: DsnFormat::Postfix,
            recipients,
            reporting_mta: host_after(self.text, self.lower, "this is the mail system at host"),
            returned: None,
        }
    }

    fn exim(&self) -> TextReport<'a> {
        const COPY: &[&str] = &["------ this is a copy of the message"];
        let action = if self.lower.contains("has not yet been delivered") {
            Action::Delayed
        } else {
            Action::Failed
        };
        let mut recipients = Recipients::default();
        let mut current: Option<EximRecipient> = None;
        for line in lines(self.before(COPY)) {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                if let Some(current) = &mut current {
                    current.in_reply = false;
                }
                continue;
            }
            let depth = indent(line);
            if (1..=3).contains(&depth)
                && let Some(address) = bare_address(trimmed)
            {
                if let Some(done) = current.take() {
                    recipients.push(done.finish(action));
                }
                current = Some(EximRecipient::new(address));
                continue;
            }
            let Some(current) = current.as_mut().filter(|_| depth >= 4) else {
                continue;
            };
            let lower = trimmed.to_ascii_lowercase();
            if current.in_reply {
                // Older Exim puts the host before the reply: `host mx [ip]: 550 ...`.
                let reply_line = match trimmed.strip_prefix("host ") {
                    Some(rest) => rest.split_once("]: ").map_or(trimmed, |(_, reply)| reply),
                    None => trimmed,
                };
                current.reply.push(reply_line.to_string());
            } else if lower.contains("smtp error from remote mail") {
                current.in_reply = true;
            } else if let Some(rest) = trimmed.strip_prefix("host ") {
                current.remote = rest.split_whitespace().next().map(str::to_string);
            } else {
                current.other.push(trimmed.to_string());
            }
        }
        if let Some(done) = current {
            recipients.push(done.finish(action));
        }
        TextReport {
            format: DsnFormat::Exim,
            recipients,
            reporting_mta: None,
            returned: after_any(self.text, self.lower, COPY),
        }
    }

    fn qmail(&self) -> TextReport<'a> {
        const COPY: &[&str] = &["--- below this line is a copy of the message"];
        let mut recipients = Recipients::default();
        let mut current: Option<(String, Vec<String>)> = None;
        let finish = |current: Option<(String, Vec<String>)>, recipients: &mut Recipients| {
            if let Some((address, details)) = current {
                recipients.push(qmail_recipient(&address, &details));
            }
        };
        for line in lines(self.before(COPY)) {
            let trimmed = line.trim();
            if let Some(address) = trimmed
                .strip_suffix(':')
                .filter(|address| address.starts_with('<'))
                .and_then(bare_address)
            {
                finish(current.take(), &mut recipients);
                current = Some((address.to_string(), Vec::new()));
            } else if trimmed.is_empty() {
                finish(current.take(), &mut recipients);
            } else if let Some((_, details)) = &mut current {
                details.push(trimmed.to_string());
            }
        }
        finish(current, &mut recipients);
        TextReport {
            format: DsnFormat::Qmail,
            recipients,
            reporting_mta: host_after(self.text, self.lower, "this is the qmail-send program at"),
            returned: after_any(self.text, self.lower, COPY),
        }
    }

    fn sendmail(&self) -> TextReport<'a> {
        let scan = SendmailScan::of(lines(self.before(SENDMAIL_COPY)));
        TextReport {
            format: DsnFormat::Sendmail,
            recipients: scan.recipients(),
            reporting_mta: None,
            returned: after_any(self.text, self.lower, SENDMAIL_COPY),
        }
    }

    fn exchange(&self) -> TextReport<'a> {
        const COPY: &[&str] = &["original message headers:"];
        let action = if self.lower.contains("delivery is delayed") {
            Action::Delayed
        } else {
            Action::Failed
        };
        let mut recipients = Recipients::default();
        let mut address: Option<String> = None;
        let mut reporting_mta = None;
        for line in lines(self.before(COPY)) {
            let trimmed = line.trim();
            let lower = trimmed.to_ascii_lowercase();
            if let Some(server) = lower.strip_prefix("generating server:") {
                reporting_mta = host(&trimmed[trimmed.len() - server.len()..]);
            } else if let Some(found) = exchange_address(trimmed) {
                address = Some(found.to_string());
            } else if lower.contains("remote server")
                && let Some(at) = lower.find("returned '")
            {
                let quoted = &trimmed[at + "returned '".len()..];
                let reply = quoted.rfind('\'').map_or(quoted, |end| &quoted[..end]);
                recipients.push(recipient(address.as_deref(), action, None, reply));
            } else if trimmed.starts_with('#') && trimmed.ends_with('#') && trimmed.len() > 2 {
                // Exchange 2007/2010: `#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##`.
                let reply = trimmed.trim_matches(|ch: char| ch == '#' || ch.is_whitespace());
                if reply.starts_with(['4', '5']) {
                    recipients.push(recipient(address.as_deref(), action, None, reply));
                }
            }
        }
        TextReport {
            format: DsnFormat::Exchange,
            recipients,
            reporting_mta,
            returned: after_any(self.text, self.lower, COPY),
        }
    }

    /// Gmail, both forms: the current "The response from the remote server was:" and the older
    /// plain-text one ("Delivery to the following recipient failed permanently:" / "has been
    /// delayed:", the address on its own line, "Technical details of permanent (temporary)
    /// failure:", "...rejected by the server for the recipient domain D by MX. [IP].", "The
    /// error that the other server returned was:" and the reply; the returned copy after
    /// "----- Original message -----").
    fn gmail(&self) -> TextReport<'a> {
        const REPLY_MARKERS: &[&str] = &[
            "the response from the remote server was:",
            "the error that the other server returned was:",
            "technical details of permanent failure:",
            "technical details of temporary failure:",
        ];
        const COPY: &[&str] = &[
            "----- original message -----",
            "----- message header follows -----",
        ];
        let body = self.before(COPY);
        let lower = &self.lower[..body.len()];
        let action = if lower.contains("temporary problem")
            || lower.contains("will retry")
            || lower.contains("has been delayed")
            || lower.contains("technical details of temporary failure")
        {
            Action::Delayed
        } else {
            Action::Failed
        };
        let (at, marker) = REPLY_MARKERS
            .iter()
            .find_map(|marker| lower.find(marker).map(|at| (at, *marker)))
            .unwrap_or((body.len(), ""));
        let intro = &body[..at];
        let mut reply = Vec::new();
        let after = body.get(at + marker.len()..).unwrap_or("");
        for line in lines(after).skip_while(|line| line.trim().is_empty()) {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                break;
            }
            // Gmail's own explanation before the remote reply is not the reply.
            let lower = trimmed.to_ascii_lowercase();
            if lower.starts_with("google tried to deliver your message") {
                continue;
            }
            if lower.starts_with("the error that the other server returned was:") {
                reply.clear();
                let rest = trimmed["the error that the other server returned was:".len()..].trim();
                if !rest.is_empty() {
                    reply.push(rest);
                }
                continue;
            }
            reply.push(trimmed);
        }
        let mut recipients = Recipients::default();
        if !reply.is_empty() {
            recipients.push(recipient(
                gmail_address(intro).or_else(|| listed_address(intro)),
                action,
                gmail_remote(body),
                &reply.join(" "),
            ));
        }
        TextReport {
            format: DsnFormat::Gmail,
            recipients,
            reporting_mta: None,
            returned: after_any(self.text, self.lower, COPY),
        }
    }
}

/// One Postfix paragraph: `<addr>: host MX[IP] said: REPLY (in reply to RCPT TO command)`
/// (`refused to talk to me: REPLY` for a greeting refusal), or
/// `<addr> (expanded from <alias>): reason`.
fn postfix_recipient(paragraph: &str, action: Action) -> DsnRecipient {
    let close = paragraph.find('>').unwrap_or(paragraph.len());
    let address = paragraph.get(1..close);
    let rest = paragraph.get(close + 1..).unwrap_or("");
    // After `(expanded from <alias>)`, if any: the reason follows the first `:` outside `<>`.
    let reason = match rest
        .find("):")
        .filter(|_| rest.trim_start().starts_with('('))
    {
        Some(end) => &rest[end + 2..],
        None => rest.split_once(':').map_or(rest, |(_, reason)| reason),
    };
    let reason = reason.trim();
    let said = reason
        .split_once(" said: ")
        .or_else(|| reason.split_once(" refused to talk to me: "));
    let (remote, reply) = match said {
        Some((who, reply)) => {
            let remote = who
                .strip_prefix("host ")
                .map(|host| host.split(['[', ' ']).next().unwrap_or(host));
            (remote, reply)
        }
        None => (None, reason),
    };
    let reply = match reply.rfind("(in reply to ") {
        Some(at) if reply.trim_end().ends_with(')') => reply[..at].trim_end(),
        _ => reply,
    };
    recipient(address, action, remote, reply)
}

/// One qmail paragraph: `Remote host said: REPLY` when the remote host replied, else the
/// paragraph is qmail's own reason (`Sorry, no mailbox here by that name. (#5.1.1)`).
fn qmail_recipient(address: &str, details: &[String]) -> DsnRecipient {
    let mut remote = None;
    let mut reply: Vec<&str> = Vec::new();
    let mut in_reply = false;
    for line in details {
        if let Some(ip) = line.strip_prefix("Giving up on ") {
            remote = Some(ip.trim_end_matches('.'));
            in_reply = false;
        } else if let Some(ip) = line.strip_prefix("Connected to ") {
            remote = ip.split_whitespace().next();
        } else if let Some(ip) = line.strip_suffix(" does not like recipient.") {
            remote = Some(ip);
        } else if let Some(said) = line.strip_prefix("Remote host said:") {
            reply = vec![said.trim()];
            in_reply = true;
        } else if in_reply {
            reply.push(line);
        }
    }
    let text = if reply.is_empty() {
        details.join(" ")
    } else {
        reply.join(" ")
    };
    recipient(Some(address), Action::Failed, remote, &text)
}

/// An Exchange recipient line: an address alone, or `Display Name (addr)`.
fn exchange_address(line: &str) -> Option<&str> {
    if let Some(address) = bare_address(line) {
        return Some(address);
    }
    let inner = line.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    (line.len() < 200)
        .then(|| bare_address(&inner[open + 1..]))
        .flatten()
}

/// The address Gmail names: `... delivered to ADDR ...`, `... your message to ADDR ...`.
fn gmail_address(intro: &str) -> Option<&str> {
    let lower = intro.to_ascii_lowercase();
    [
        "delivered to ",
        "your message to ",
        "delivering your message to ",
    ]
    .iter()
    .filter_map(|marker| lower.find(marker).map(|at| at + marker.len()))
    .min()
    .and_then(|at| intro[at..].split_whitespace().next())
    .map(|word| word.trim_matches(|ch: char| ".,;:<>()".contains(ch)))
    .filter(|word| word.contains('@'))
}

/// The address alone on a line after "Delivery to the following recipient(s) ...:" (Gmail's
/// older bounces indent it).
fn listed_address(intro: &str) -> Option<&str> {
    let lower = intro.to_ascii_lowercase();
    let at = lower.find("delivery to the following recipient")?;
    lines(&intro[at..])
        .skip(1)
        .map(str::trim)
        .find(|line| !line.is_empty())
        .and_then(bare_address)
}

/// The host Gmail names in "...rejected by the server for the recipient domain D by MX. [IP]."
fn gmail_remote(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let at = lower.find("for the recipient domain ")?;
    let rest = &text[at..];
    let by = rest.find(" by ")? + " by ".len();
    let host = rest[by..].split_whitespace().next()?;
    let host = host.trim_end_matches('.');
    (!host.is_empty() && host.contains('.')).then_some(host)
}

/// An Exim recipient being read.
struct EximRecipient {
    address: String,
    remote: Option<String>,
    reply: Vec<String>,
    other: Vec<String>,
    in_reply: bool,
}

impl EximRecipient {
    fn new(address: &str) -> Self {
        EximRecipient {
            address: address.to_string(),
            remote: None,
            reply: Vec::new(),
            other: Vec::new(),
            in_reply: false,
        }
    }

    fn finish(self, action: Action) -> DsnRecipient {
        let text = if self.reply.is_empty() {
            self.other.join(" ")
        } else {
            self.reply.join(" ")
        };
        recipient(Some(&self.address), action, self.remote.as_deref(), &text)
    }
}

/// The lines after which Sendmail appends the returned message.
const SENDMAIL_COPY: &[&str] = &[
    "----- original message follows -----",
    "----- unsent message follows -----",
    "----- message header follows -----",
    "----- original message header follows -----",
];

/// What a Sendmail bounce's text lists: the addresses with their section (permanent or
/// transient errors) and reason, the replies of the session transcript, the remote host.
struct SendmailScan {
    listed: Vec<(String, Action, Option<String>)>,
    /// Replies in the transcript: (the RCPT address they answer, or None after DATA; text).
    replies: Vec<(Option<String>, String)>,
    remote: Option<String>,
}

impl SendmailScan {
    fn of<'l>(lines: impl Iterator<Item = &'l str>) -> SendmailScan {
        let mut listed: Vec<(String, Action, Option<String>)> = Vec::new();
        let mut section: Option<Action> = None;
        let mut in_transcript = false;
        let mut remote: Option<String> = None;
        // Replies in the transcript: (the RCPT address they answer, or None after DATA; text).
        let mut replies: Vec<(Option<String>, String)> = Vec::new();
        let mut command_address: Option<String> = None;
        let mut reply_open = false;
        for line in lines {
            let trimmed = line.trim();
            let lower = trimmed.to_ascii_lowercase();
            if lower.contains("following addresses had permanent fatal errors") {
                (section, in_transcript) = (Some(Action::Failed), false);
                continue;
            }
            if lower.contains("following addresses had transient non-fatal errors") {
                (section, in_transcript) = (Some(Action::Delayed), false);
                continue;
            }
            if lower.contains("transcript of session follows") {
                (section, in_transcript) = (None, true);
                continue;
            }
            if let Some(action) = section {
                if let Some(reason) = lower.strip_prefix("(reason:") {
                    let reason = &trimmed[trimmed.len() - reason.len()..];
                    if let Some((_, _, slot)) = listed.last_mut() {
                        slot.get_or_insert_with(|| reason.trim().trim_end_matches(')').to_string());
                    }
                } else if let Some(address) = bare_address(trimmed) {
                    listed.push((address.to_string(), action, None));
                }
                continue;
            }
            if !in_transcript {
                continue;
            }
            if let Some(reply) = trimmed.strip_prefix("<<<") {
                let reply = reply.trim();
                match replies.last_mut() {
                    Some((_, text)) if reply_open => {
                        text.push(' ');
                        text.push_str(reply);
                    }
                    _ => replies.push((command_address.clone(), reply.to_string())),
                }
                reply_open = true;
                continue;
            }
            reply_open = false;
            if let Some(command) = trimmed.strip_prefix(">>>") {
                let command = command.trim();
                command_address = command
                    .get(..8)
                    .filter(|verb| verb.eq_ignore_ascii_case("rcpt to:"))
                    .and_then(|_| bare_address(&command[8..]))
                    .map(str::to_string);
            } else if let Some(at) = lower.find("while talking to ") {
                let host = &trimmed[at + "while talking to ".len()..];
                remote = Some(host.trim_end_matches([':', '.']).to_string());
            }
        }
        SendmailScan {
            listed,
            replies,
            remote,
        }
    }

    /// The recipients: each listed address with the transcript's reply to its RCPT (else the
    /// failing reply after DATA, else its reason); without a list, every refused RCPT.
    fn recipients(&self) -> Recipients {
        let (listed, replies, remote) = (&self.listed, &self.replies, &self.remote);
        let failing = |reply: &&(Option<String>, String)| reply.1.starts_with(['4', '5']);
        let mut recipients = Recipients::default();
        for (address, action, reason) in listed {
            if recipients.is_full() {
                // Only counted: looking up its reply would make this loop quadratic.
                recipients.total += 1;
                continue;
            }
            let answer = replies
                .iter()
                .filter(failing)
                .find(|(to, _)| {
                    to.as_deref()
                        .is_some_and(|to| to.eq_ignore_ascii_case(address))
                })
                .or_else(|| replies.iter().filter(failing).find(|(to, _)| to.is_none()));
            let reply = answer
                .map(|(_, reply)| reply.as_str())
                .or(reason.as_deref());
            recipients.push(recipient(
                Some(address),
                *action,
                remote.as_deref(),
                reply.unwrap_or(""),
            ));
        }
        if listed.is_empty() {
            // No address list: every refused RCPT is a recipient.
            for (address, reply) in replies.iter().filter(failing) {
                if let Some(address) = address {
                    recipients.push(recipient(
                        Some(address),
                        Action::Failed,
                        remote.as_deref(),
                        reply,
                    ));
                }
            }
        }
        recipients
    }
}
