//! `mailcanary inspect`: the verdict reader as a command.
//!
//! A thin edge around [`crate::verdict::inspect`] and [`crate::path::read`]: read the file (or
//! standard input), judge it, print either the JSON contract or a short explanation for a
//! person: the trusted Authentication-Results header (RFC 8601), Received-SPF (RFC 7208 §9.1)
//! when that header reports no SPF result, the spam filter, the headers not believed, and the
//! path the message took (its `Received:` hops, RFC 5321 §4.4).
//!
//! JSON of a message: `{"kind": "message", <the verdict contract>, "path": <crate::path::Path>}`
//! (`path` is `null` only when the input has no header section).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod bounce;
mod complaint;
mod path;
mod report;

use crate::cli::terminal::escape;
use crate::verdict::{self, Inspection, Method, MethodResult, ReceivedSpf, SpamVerdict};

/// Arguments of `mailcanary inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Print the stable JSON contract instead of the human explanation.
    #[arg(long)]
    pub json: bool,
    /// Trust only Authentication-Results headers from this authserv-id (repeatable; case
    /// does not matter). An empty ID ("") trusts headers that carry no authserv-id, as
    /// Microsoft 365 and Outlook.com write them. Without it, the top-most header's
    /// authserv-id is trusted.
    #[arg(long = "authserv-id", value_name = "ID")]
    pub authserv_ids: Vec<String>,
    /// A domain of the receiver (repeatable): `Received:` hops written by hosts under it are
    /// its own and believed. Without it, the domains come from --authserv-id, else from the
    /// top-most hop.
    #[arg(long = "receiver-domain", value_name = "DOMAIN")]
    pub receiver_domains: Vec<String>,
    /// The message to read (RFC 5322), or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,
}

/// Exit code when the input could not be read as a message.
const EXIT_UNREADABLE: u8 = 2;

/// Why the command could not read its input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file (or standard input) could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given (`-` for standard input).
        path: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The bytes were read but are not a message.
    #[error("{path}: {source}")]
    NotAMessage {
        /// The path as given (`-` for standard input).
        path: String,
        /// What was wrong with the bytes.
        #[source]
        source: verdict::InspectError,
    },
}

impl InputError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            InputError::Io { .. } => "io",
            InputError::NotAMessage { source, .. } => source.reason(),
        }
    }
}

/// Runs the command; exit 0 when the message was read, 2 when the input was unreadable.
/// A complaint feedback report (ARF) and a bounce (delivery status notification) are told
/// from a plain message by themselves.
pub fn run(args: &InspectArgs) -> ExitCode {
    let raw = match read_input(&args.input) {
        Ok(raw) => raw,
        Err(err) => {
            eprintln!("mailcanary inspect: {}", escape(&err.to_string()));
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    match crate::reports::arf::parse(&raw) {
        Ok(complaint) => return emit(complaint::render(&complaint, args.json), args.json),
        // A feedback report whose feedback part is broken: say so rather than read it as a
        // plain message.
        Err(err @ crate::reports::ReportError::Missing { .. }) => {
            eprintln!("mailcanary inspect: {}: {err}", args.input);
            return ExitCode::from(EXIT_UNREADABLE);
        }
        Err(_) => {}
    }
    let rendered = match verdict::dsn::read(&raw) {
        Ok(Some(dsn)) => bounce::render(&dsn, args.json),
        _ => match crate::reports::unpack(Some(&args.input), &raw) {
            // A DMARC or TLS report (the first one, for an archive of several).
            Ok(found) if !found.is_empty() => match found[0].parse() {
                Ok(parsed) => report::render(&parsed, args.json),
                Err(err) => {
                    // What the parser quotes back comes from the file.
                    eprintln!(
                        "mailcanary inspect: {}: {}",
                        escape(&args.input),
                        escape(&err.to_string())
                    );
                    return ExitCode::from(EXIT_UNREADABLE);
                }
            },
            // A report file or archive that is broken (not merely "not a report").
            Err(err) if looks_like_report_file(&args.input, &raw) => {
                eprintln!(
                    "mailcanary inspect: {}: {}",
                    escape(&args.input),
                    escape(&err.to_string())
                );
                return ExitCode::from(EXIT_UNREADABLE);
            }
            _ => match verdict::inspect(&raw, &args.authserv_ids) {
                Ok(inspection) => {
                    let receiver = crate::path::Receiver::new(&args.receiver_domains).with(
                        &crate::path::Receiver::from_authserv_ids(&args.authserv_ids),
                    );
                    let hops = crate::path::read(&raw, &receiver).ok();
                    if args.json {
                        message_json(&inspection, hops.as_ref())
                    } else {
                        let mut text = explain(&inspection, &args.authserv_ids);
                        if let Some(hops) = &hops {
                            text.push('\n');
                            text.push_str(&path::explain(hops));
                        }
                        Ok(text)
                    }
                }
                Err(source) => {
                    let err = InputError::NotAMessage {
                        path: args.input.clone(),
                        source,
                    };
                    eprintln!("mailcanary inspect: {}", escape(&err.to_string()));
                    return ExitCode::from(EXIT_UNREADABLE);
                }
            },
        },
    };
    emit(rendered, args.json)
}

/// Prints what was rendered; exit 0, or the unknown exit code when the JSON could not be
/// written.
fn emit(rendered: Result<String, serde_json::Error>, json: bool) -> ExitCode {
    let text = match rendered {
        Ok(text) => text,
        Err(err) => {
            eprintln!("mailcanary inspect: cannot render JSON: {err}");
            return ExitCode::from(crate::status::exit::UNKNOWN);
        }
    };
    // Values are escaped where the text is built; this guards the whole of it (the JSON
    // contract is left as serde_json writes it, control characters as \u escapes).
    let text = if json {
        text
    } else {
        crate::cli::terminal::escape_lines(&text)
    };
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    let _ = io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// Whether the input is meant as a report: its name says so, or it starts as XML, JSON, gzip
/// or zip does (a mail starts with header fields).
fn looks_like_report_file(name: &str, raw: &[u8]) -> bool {
    let name = name.to_ascii_lowercase();
    let by_name = [".xml", ".xml.gz", ".zip", ".json", ".json.gz", ".gz"]
        .iter()
        .any(|ext| name.ends_with(ext));
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &raw[i..]);
    let by_bytes = start.is_some_and(|s| {
        s.starts_with(b"<")
            || s.starts_with(b"{")
            || s.starts_with(&[0x1f, 0x8b])
            || s.starts_with(b"PK")
    });
    by_name || by_bytes
}

/// The JSON contract of a plain message: `"kind": "message"` first, then the inspection,
/// then the path.
fn message_json(
    inspection: &Inspection,
    path: Option<&crate::path::Path>,
) -> Result<String, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Message<'a> {
        kind: &'static str,
        #[serde(flatten)]
        inspection: &'a Inspection,
        path: Option<&'a crate::path::Path>,
    }
    serde_json::to_string_pretty(&Message {
        kind: "message",
        inspection,
        path,
    })
    .map(|json| json + "\n")
}

/// Reads `input` (a path, or `-` for standard input) and judges it.
pub fn read(input: &str, trusted_authserv_ids: &[String]) -> Result<Inspection, InputError> {
    let raw = read_input(input)?;
    verdict::inspect(&raw, trusted_authserv_ids).map_err(|source| InputError::NotAMessage {
        path: input.to_string(),
        source,
    })
}

/// The bytes of `input` (a path, or `-` for standard input).
fn read_input(input: &str) -> Result<Vec<u8>, InputError> {
    let mut raw = Vec::new();
    let io_error = |source| InputError::Io {
        path: input.to_string(),
        source,
    };
    if input == "-" {
        io::stdin().lock().read_to_end(&mut raw).map_err(io_error)?;
    } else {
        raw = std::fs::read(PathBuf::from(input)).map_err(io_error)?;
    }
    Ok(raw)
}

/// The explanation for a person: who judged, what passed, what failed and why, the spam
/// filter's score and rules, and what else was in the message but not believed.
pub fn explain(inspection: &Inspection, trusted_authserv_ids: &[String]) -> String {
    let mut out = judged_by(inspection, trusted_authserv_ids);
    out.push('\n');
    for method in Method::ALL {
        out.push_str(&method_lines(inspection, method));
    }
    out.push('\n');
    out.push_str(&spam_line(&inspection.spam));
    out.push_str(&not_believed(inspection));
    out
}

/// Who judged: the trusted Authentication-Results header's authserv-id (RFC 8601 §2.5), and why
/// it is trusted.
fn judged_by(inspection: &Inspection, trusted_authserv_ids: &[String]) -> String {
    let trusted = inspection
        .authentication_results
        .iter()
        .find(|header| header.trusted);
    match trusted {
        Some(header) => {
            let id = header
                .authserv_id
                .as_deref()
                .map_or_else(|| "a server that gives no authserv-id".to_string(), escape);
            let why = if trusted_authserv_ids.is_empty() {
                "the top-most Authentication-Results header; use --authserv-id to choose"
            } else {
                "trusted by --authserv-id"
            };
            format!("Judged by: {id} ({why})\n")
        }
        None if inspection.authentication_results.is_empty() => {
            "Judged by: nobody (no Authentication-Results header)\n".to_string()
        }
        None => format!(
            "Judged by: nobody (no Authentication-Results header from {})\n",
            list(trusted_authserv_ids)
        ),
    }
}

/// One method: its result, the details the receiver gave, and why when it did not pass; the
/// other results reported for it on lines of their own.
fn method_lines(inspection: &Inspection, method: Method) -> String {
    let result = inspection.verdict.get(method);
    let mut out = format!("  {:<6} {:<10}", method.as_str(), result.as_str());
    let Some(decided) = inspection.decided_by(method) else {
        match inspection.spf_from_received_spf() {
            Some(spf) if method == Method::Spf => {
                let _ = writeln!(out, "{}", received_spf_detail(spf));
            }
            _ => out.push_str("not reported\n"),
        }
        return out;
    };
    out.push_str(&describe(decided));
    out.push('\n');
    let others = inspection
        .results_for(method)
        .filter(|other| !std::ptr::eq(*other, decided));
    for other in others {
        let _ = writeln!(
            out,
            "  {:<6} {:<10}also: {} {}",
            "",
            "",
            other.result,
            describe(other)
        );
    }
    out
}

/// The SPF result taken from Received-SPF (RFC 7208 §9.1) when no Authentication-Results
/// header reports one.
fn received_spf_detail(spf: &ReceivedSpf) -> String {
    let mut detail = String::from("from Received-SPF");
    if let Some(ip) = &spf.client_ip {
        let _ = write!(detail, " client-ip={}", escape(ip));
    }
    if let Some(from) = &spf.envelope_from {
        let _ = write!(detail, " envelope-from={}", escape(from));
    }
    if let Some(comment) = &spf.comment {
        let _ = write!(detail, " ({})", escape(comment));
    }
    detail
}

/// What was in the message but not used for the verdict: untrusted Authentication-Results
/// headers and the ARC-Authentication-Results of the chain (RFC 8617 §4.1.1).
fn not_believed(inspection: &Inspection) -> String {
    let authserv_id = |id: Option<&str>| id.map_or_else(|| "(no authserv-id)".to_string(), escape);
    let untrusted: Vec<String> = inspection
        .authentication_results
        .iter()
        .filter(|header| !header.trusted)
        .map(|header| {
            format!(
                "  Authentication-Results from {}: {}",
                authserv_id(header.authserv_id.as_deref()),
                summary(&header.results)
            )
        })
        .chain(inspection.arc_authentication_results.iter().map(|header| {
            format!(
                "  ARC-Authentication-Results i={} from {}: {}",
                header
                    .instance
                    .map_or_else(|| "?".to_string(), |i| i.to_string()),
                authserv_id(header.authserv_id.as_deref()),
                summary(&header.results)
            )
        }))
        .collect();
    if untrusted.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nAlso in the message, not used for the verdict:\n");
    for line in untrusted {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One result's details: properties (minus the signature fragment), reason, comment.
fn describe(result: &MethodResult) -> String {
    let mut parts: Vec<String> = result
        .properties
        .iter()
        // `header.b` is a few characters of the signature: noise to a person.
        .filter(|(key, _)| key.as_str() != "header.b")
        .map(|(key, value)| format!("{}={}", escape(key), escape(value)))
        .collect();
    if let Some(reason) = &result.reason {
        parts.push(format!("reason: {}", escape(reason)));
    }
    if let Some(comment) = &result.comment {
        parts.push(format!("({})", escape(comment)));
    }
    parts.join(" ")
}

fn summary(results: &[MethodResult]) -> String {
    if results.is_empty() {
        return "none".to_string();
    }
    results
        .iter()
        .map(|result| {
            format!(
                "{}={}",
                escape(&result.method),
                escape(result.result.as_str())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn spam_line(spam: &SpamVerdict) -> String {
    let Some(source) = spam.source else {
        return "Spam filter: no spam-filter headers\n".to_string();
    };
    let mut out = format!(
        "Spam filter: {} says {}",
        source.as_str(),
        if spam.flagged { "SPAM" } else { "not spam" }
    );
    match (spam.score, spam.threshold) {
        (Some(score), Some(threshold)) => {
            let _ = write!(out, ", score {score} (spam at {threshold})");
        }
        (Some(score), None) => {
            let _ = write!(out, ", score {score}");
        }
        (None, Some(threshold)) => {
            let _ = write!(out, ", no score (spam at {threshold})");
        }
        (None, None) => {}
    }
    out.push('\n');
    if !spam.rules.is_empty() {
        let rules: Vec<String> = spam.rules.iter().map(|rule| escape(rule)).collect();
        let _ = writeln!(out, "  rules: {}", rules.join(", "));
    }
    out
}

fn list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| {
            if id.trim().is_empty() {
                "(no authserv-id)".to_string()
            } else {
                escape(id.trim())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain_raw(raw: &str, ids: &[&str]) -> String {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let inspection = verdict::inspect(raw.as_bytes(), &ids).expect("message");
        explain(&inspection, &ids)
    }

    #[test]
    fn explains_who_judged_and_why_things_failed() {
        let text = explain_raw(
            "Authentication-Results: mx.example.net;\n dkim=fail reason=\"signature verification failed\" header.d=a.example header.b=XyZ;\n dkim=pass header.d=esp.example;\n spf=softfail (mx.example.net: 192.0.2.1 is not permitted) smtp.mailfrom=a.example;\n dmarc=fail (p=REJECT) header.from=a.example\nAuthentication-Results: evil.example; dmarc=pass\nX-Spam-Status: Yes, score=7.2 required=5.0 tests=SPF_SOFTFAIL,DMARC_REJECT autolearn=no\n\nbody\n",
            &[],
        );
        assert_eq!(
            text,
            "Judged by: mx.example.net (the top-most Authentication-Results header; use --authserv-id to choose)\n\
             \n  spf    softfail  smtp.mailfrom=a.example (mx.example.net: 192.0.2.1 is not permitted)\
             \n  dkim   pass      header.d=esp.example\
             \n                   also: fail header.d=a.example reason: signature verification failed\
             \n  dmarc  fail      header.from=a.example (p=REJECT)\
             \n  arc    none      not reported\
             \n  iprev  none      not reported\
             \n\nSpam filter: spamassassin says SPAM, score 7.2 (spam at 5)\
             \n  rules: SPF_SOFTFAIL, DMARC_REJECT\
             \n\nAlso in the message, not used for the verdict:\
             \n  Authentication-Results from evil.example: dmarc=pass\n"
        );
    }

    #[test]
    fn explains_fallbacks_and_absences() {
        let text = explain_raw(
            "Received-SPF: pass (mx: ok) client-ip=192.0.2.1; envelope-from=a@b.example\nARC-Authentication-Results: i=1; mx.example.net; arc=none\nSubject: x\n",
            &["mx.example.net"],
        );
        assert!(
            text.starts_with("Judged by: nobody (no Authentication-Results header)\n"),
            "{text}"
        );
        assert!(text.contains("  spf    pass      from Received-SPF client-ip=192.0.2.1 envelope-from=a@b.example (mx: ok)\n"), "{text}");
        assert!(
            text.contains("Spam filter: no spam-filter headers\n"),
            "{text}"
        );
        assert!(
            text.contains("  ARC-Authentication-Results i=1 from mx.example.net: arc=none\n"),
            "{text}"
        );

        let text = explain_raw(
            "Authentication-Results: other.example; spf=pass\n",
            &["", "mx.example.net"],
        );
        assert!(text.starts_with("Judged by: nobody (no Authentication-Results header from (no authserv-id), mx.example.net)\n"), "{text}");
        let text = explain_raw("Authentication-Results: spf=pass smtp.mailfrom=a\n", &[]);
        assert!(
            text.starts_with("Judged by: a server that gives no authserv-id"),
            "{text}"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let text = explain_raw(
            "Authentication-Results: mx\x1b[2J; spf=fail (\x1b]0;pwned\x07) smtp.mailfrom=a\n",
            &[],
        );
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(!text.contains('\x07'), "{text:?}");
        assert!(text.contains("\\u{1b}"), "{text:?}");
    }

    #[test]
    fn unreadable_input_names_path_and_cause() {
        let err = read("/nonexistent/mail.eml", &[]).expect_err("missing file");
        assert_eq!(err.reason(), "io");
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/mail.eml: "),
            "{err}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.eml");
        std::fs::write(&empty, b"").expect("write");
        let path = empty.display().to_string();
        let err = read(&path, &[]).expect_err("empty");
        assert_eq!(err.to_string(), format!("{path}: the input is empty"));
        assert_eq!(err.reason(), "empty");
    }
}
