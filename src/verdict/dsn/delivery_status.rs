//! The `message/delivery-status` body (RFC 3464 §2.1): a group of per-message fields, then
//! one group of per-recipient fields per recipient, groups separated by blank lines. Each
//! group is header-like (RFC 5322 §2.2 fields, folding allowed), so it is split with the same
//! header splitter as a message.
//!
//! Real reports bend this: some leave out the per-message group, some put `Reporting-MTA` in
//! the recipient's group, some add blank lines. So every group is read for both kinds of
//! fields: per-message fields are taken from the first group that has them, and any group with
//! `Final-Recipient`, `Original-Recipient`, `Action` or `Status` is a recipient.

use super::values::{address, clean, diagnostic, host, message_id, status};
use super::{Action, DsnRecipient, Recipients};
use crate::verdict::headers;

/// The per-message fields (RFC 3464 §2.2) that are kept.
#[derive(Default)]
pub(super) struct PerMessage {
    /// `Original-Envelope-Id` (§2.2.1).
    pub(super) original_envelope_id: Option<String>,
    /// `Reporting-MTA` (§2.2.2), untyped.
    pub(super) reporting_mta: Option<String>,
    /// `Arrival-Date` (§2.2.5).
    pub(super) arrival_date: Option<String>,
    /// Gmail's `X-Original-Message-ID`.
    pub(super) original_message_id: Option<String>,
    /// Whether Postfix's `X-Postfix-Queue-ID` or `X-Postfix-Sender` was seen.
    pub(super) postfix: bool,
}

/// Reads one delivery-status body into `message` and `recipients`.
pub(super) fn read(body: &[u8], message: &mut PerMessage, recipients: &mut Recipients) {
    for group in groups(body) {
        let Ok(fields) = headers::split(group) else {
            continue;
        };
        let mut recipient = DsnRecipient::default();
        let mut is_recipient = false;
        for field in &fields {
            let name = field.name;
            let is = |other: &str| name.eq_ignore_ascii_case(other);
            if is("Original-Envelope-Id") {
                set(&mut message.original_envelope_id, || clean(&field.value()));
            } else if is("Reporting-MTA") {
                set(&mut message.reporting_mta, || host(&field.value()));
            } else if is("Arrival-Date") {
                set(&mut message.arrival_date, || clean(&field.value()));
            } else if is("X-Original-Message-ID") {
                set(&mut message.original_message_id, || {
                    message_id(&field.value())
                });
            } else if is("X-Postfix-Queue-ID") || is("X-Postfix-Sender") {
                message.postfix = true;
            } else if is("Final-Recipient") {
                is_recipient = true;
                set(&mut recipient.final_recipient, || address(&field.value()));
            } else if is("Original-Recipient") {
                is_recipient = true;
                set(&mut recipient.original_recipient, || {
                    address(&field.value())
                });
            } else if is("Action") {
                is_recipient = true;
                if recipient.action.is_none() {
                    recipient.action = Action::parse(&field.value());
                }
            } else if is("Status") {
                is_recipient = true;
                set(&mut recipient.status, || status(&field.value()));
            } else if is("Remote-MTA") {
                set(&mut recipient.remote_mta, || host(&field.value()));
            } else if is("Diagnostic-Code") {
                set(&mut recipient.diagnostic_code, || {
                    diagnostic(&field.value())
                });
            } else if is("Last-Attempt-Date") {
                set(&mut recipient.last_attempt_date, || clean(&field.value()));
            } else if is("Will-Retry-Until") {
                set(&mut recipient.will_retry_until, || clean(&field.value()));
            }
        }
        if is_recipient {
            recipients.push(recipient);
        }
    }
}

/// Sets `slot` from `value` unless it is already set: the first field of a name wins.
fn set(slot: &mut Option<String>, value: impl FnOnce() -> Option<String>) {
    if slot.is_none() {
        *slot = value();
    }
}

/// The groups of a delivery-status body: runs of lines between blank lines (empty, or only
/// white space), each as one slice.
fn groups(body: &[u8]) -> Vec<&[u8]> {
    let mut groups = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let next = body[pos..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(body.len(), |offset| pos + offset + 1);
        let blank = body[pos..next]
            .iter()
            .all(|&byte| byte.is_ascii_whitespace());
        match (blank, start) {
            (true, Some(from)) => {
                groups.push(&body[from..pos]);
                start = None;
            }
            (false, None) => start = Some(pos),
            _ => {}
        }
        pos = next;
    }
    if let Some(from) = start {
        groups.push(&body[from..]);
    }
    groups
}
