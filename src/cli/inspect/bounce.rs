//! `mailcanary inspect` on a bounce (RFC 3464 delivery status notification, or the text
//! bounces of Exim, qmail, Sendmail, Exchange): who refused what, with which reply, and the
//! cause and fix the probe would report.
//!
//! JSON contract: `{"kind": "dsn", "dsn": {"format", "reporting_mta", "recipients":
//! [{"final_recipient", "action", "status", "remote_mta", "diagnostic_code"}],
//! "original_message_id", "original_envelope_id", "probe_token", "cause", "provider"}}` —
//! `status` as written (`"5.7.26"`), `action` lower case, unknown fields `null`; `provider` is
//! the provider's documented reply the refused (else delayed) recipient got, as
//! [`crate::diagnosis::provider_reply::recognise`] knows it (`{"provider", "code", "cause",
//! "link"}`).

use serde::Serialize;

use crate::cli::terminal::escape;
use crate::diagnosis::provider_reply::{ProviderReply, recognise};
use crate::diagnosis::{Context, Diagnosis};
use crate::outcome::Bounce;
use crate::results::causes::bounce_cause;
use crate::verdict::dsn::{Dsn, DsnRecipient};

#[derive(Serialize)]
struct Json<'a> {
    kind: &'static str,
    dsn: View<'a>,
}

#[derive(Serialize)]
struct View<'a> {
    format: &'static str,
    reporting_mta: Option<&'a str>,
    recipients: Vec<Recipient<'a>>,
    original_message_id: Option<&'a str>,
    original_envelope_id: Option<&'a str>,
    probe_token: Option<&'a str>,
    cause: Option<&'static str>,
    provider: Option<ProviderReply>,
}

#[derive(Serialize)]
struct Recipient<'a> {
    final_recipient: Option<&'a str>,
    action: Option<&'static str>,
    status: Option<&'a str>,
    remote_mta: Option<&'a str>,
    diagnostic_code: Option<&'a str>,
}

fn recipient(r: &DsnRecipient) -> Recipient<'_> {
    Recipient {
        final_recipient: r.final_recipient.as_deref(),
        action: r.action.map(|a| a.as_str()),
        status: r.status.as_deref(),
        remote_mta: r.remote_mta.as_deref(),
        diagnostic_code: r.diagnostic_code.as_deref(),
    }
}

/// The cause and fix the probe would report for this bounce, if it reports a failure or delay.
fn diagnosis(dsn: &Dsn) -> Option<Diagnosis> {
    let bounce = Bounce::from_dsn(dsn)?;
    let ctx = Context {
        smtp_reply: bounce.diagnostic_code.as_deref(),
        ..Context::default()
    };
    Some(Diagnosis::new(bounce_cause(&bounce), &ctx))
}

/// The provider's documented reply to the refused (else delayed) recipient.
fn provider_reply(dsn: &Dsn) -> Option<ProviderReply> {
    let recipient = dsn.first_failure().or_else(|| dsn.first_delay())?;
    recognise(
        recipient.status.as_deref(),
        recipient.diagnostic_code.as_deref().unwrap_or(""),
    )
}

/// The JSON contract or the explanation for a person.
pub fn render(dsn: &Dsn, json: bool) -> Result<String, serde_json::Error> {
    let diagnosis = diagnosis(dsn);
    let provider = provider_reply(dsn);
    if json {
        let view = View {
            format: dsn.format.as_str(),
            reporting_mta: dsn.reporting_mta.as_deref(),
            recipients: dsn.recipients.iter().map(recipient).collect(),
            original_message_id: dsn.original_message_id.as_deref(),
            original_envelope_id: dsn.original_envelope_id.as_deref(),
            probe_token: dsn.probe_token.as_deref(),
            cause: diagnosis.as_ref().map(|d| d.cause.as_str()),
            provider,
        };
        return serde_json::to_string_pretty(&Json {
            kind: "dsn",
            dsn: view,
        })
        .map(|j| j + "\n");
    }
    Ok(explain(dsn, diagnosis.as_ref(), provider.as_ref()))
}

/// The explanation for a person. Every value comes from the bounce, that is from whoever
/// sent it: escaped.
fn explain(dsn: &Dsn, diagnosis: Option<&Diagnosis>, provider: Option<&ProviderReply>) -> String {
    let mut out = format!(
        "A bounce ({} report{}), about {} recipient(s):\n",
        dsn.format.as_str(),
        dsn.reporting_mta
            .as_deref()
            .map(|m| format!(" from {}", escape(m)))
            .unwrap_or_default(),
        dsn.recipients_total
    );
    for r in &dsn.recipients {
        out.push_str(&format!(
            "  {}: {} {}{}\n",
            escape(
                r.final_recipient
                    .as_deref()
                    .unwrap_or("(recipient not named)")
            ),
            r.action.map(|a| a.as_str()).unwrap_or("(no action)"),
            escape(r.status.as_deref().unwrap_or("(no status)")),
            r.remote_mta
                .as_deref()
                .map(|m| format!(" at {}", escape(m)))
                .unwrap_or_default()
        ));
        if let Some(reply) = &r.diagnostic_code {
            out.push_str(&format!("    {}\n", escape(reply)));
        }
    }
    let names: Vec<String> = [
        dsn.probe_token
            .as_deref()
            .map(|t| format!("probe token {}", escape(t))),
        dsn.original_envelope_id
            .as_deref()
            .map(|e| format!("envelope id {}", escape(e))),
        dsn.original_message_id
            .as_deref()
            .map(|m| format!("Message-ID {}", escape(m))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !names.is_empty() {
        out.push_str(&format!("It names the message by {}.\n", names.join(", ")));
    }
    match diagnosis {
        Some(d) => out.push_str(&format!(
            "Cause: {}. Fix: {}\n",
            d.cause.as_str(),
            escape(&d.fix)
        )),
        None => out.push_str("It reports no failure or delay.\n"),
    }
    if let Some(reply) = provider {
        out.push_str(&format!(
            "{} documents this reply ({}: {}){}.\n",
            reply.provider.name(),
            escape(&reply.code),
            reply.cause.as_str(),
            reply
                .link
                .as_deref()
                .map(|link| format!("; see {}", escape(link)))
                .unwrap_or_default()
        ));
    }
    out
}
