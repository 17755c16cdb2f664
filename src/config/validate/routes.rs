//! The `[routes.NAME]` sections: the SMTP server, the sender (RFC 5322 §3.4 mailboxes), DKIM
//! signing, the message template, bounces and the DNS audit's view of the route.

use super::login::{ConnectionRules, DefaultPorts, LoginRule, RawConnection, connection};
use super::*;

/// Probes of a round that may follow one another over one SMTP session, by default: a large
/// round stops paying a TCP + TLS handshake + AUTH per probe, and the first of every 20 still
/// proves them. Postfix's own client reuses a session without a count limit.
const DEFAULT_PROBES_PER_SESSION: u32 = 20;
const MAX_PROBES_PER_SESSION: i64 = 1000;

pub(super) fn validate_route(
    name: &str,
    r: &RawRoute,
    base: &Path,
    errs: &mut Errors,
) -> Option<Route> {
    let section = format!("routes.{name}");
    let at = |k: &str| format!("{section}.{k}");
    check_name(errs, "routes", name);
    let raw = RawConnection {
        host: r.host.as_deref(),
        port: r.port,
        tls: r.tls.as_deref(),
        ca_file: &r.ca_file,
        username: r.username.as_deref(),
        password_env: &r.password_env,
        password_file: &r.password_file,
        auth: r.auth.as_deref(),
        oauth2: r.oauth2.as_ref(),
    };
    let rules = ConnectionRules {
        host_hint: "the SMTP server to send through",
        default_tls: TlsMode::Starttls,
        ports: DefaultPorts {
            tls: 465,
            starttls: 587,
            plain: 25,
        },
        login: LoginRule::Optional,
        oauth_preset: None,
    };
    let connection = connection(errs, &section, base, &raw, &rules);
    let (from, from_address, envelope_from) = sender(errs, &section, r);
    let timeout = duration(errs, &at("timeout"), r.timeout.as_deref(), "30s");
    let probes_per_session = match r.probes_per_session {
        None => DEFAULT_PROBES_PER_SESSION,
        Some(n) if (1..=MAX_PROBES_PER_SESSION).contains(&n) => n as u32,
        Some(n) => {
            errs.push(
                at("probes_per_session"),
                format!(
                    "must be between 1 (a fresh SMTP session per probe) and \
                     {MAX_PROBES_PER_SESSION}, not {n}"
                ),
            );
            DEFAULT_PROBES_PER_SESSION
        }
    };
    let mut sending_ips = Vec::new();
    for ip in &r.sending_ips {
        match ip.parse::<IpAddr>() {
            Ok(a) => sending_ips.push(a),
            Err(_) => errs.push(at("sending_ips"), format!("not an IP address: {ip:?}")),
        }
    }
    let dkim = r
        .dkim
        .as_ref()
        .and_then(|d| dkim_signing(errs, &section, base, d, &from_address));
    let expect_tab = r.expect_tab.as_deref().and_then(|t| {
        let tab = crate::gmail::Tab::parse(t);
        if tab.is_none() {
            errs.push(
                at("expect_tab"),
                format!(
                    "unknown Gmail tab {t:?}; expected one of {}",
                    crate::gmail::Tab::names()
                ),
            );
        }
        tab
    });
    // The audit's `dkim_key_file` is the mail server's signing key, read for its public half:
    // shared with the signing daemon by group as a rule (`root:_rspamd 0640`), its mode is
    // the mail server's business, not a secret of ours to warn about.
    let dkim_key_file = r.dkim_key_file.clone().map(|k| resolve(base, k));
    let bulk = r.bulk.unwrap_or(false);
    if bulk && !has_https_unsubscribe(r.message.list_unsubscribe.as_deref()) {
        // The probe stands for the route's bulk mail: without an https URI it can never show
        // one-click unsubscribe (RFC 8058 §3.1), and the requirement would be unmet by
        // construction.
        errs.push(
            at("message.list_unsubscribe"),
            "a bulk route's probe needs List-Unsubscribe with an https URI for one-click \
             unsubscribe (RFC 8058), e.g. \"<https://example.com/unsubscribe/probe>\"",
        );
    }
    let direction = match r.direction.as_deref() {
        None => crate::config::Direction::Outbound,
        Some(d) => crate::config::Direction::parse(d).unwrap_or_else(|| {
            errs.push(
                at("direction"),
                format!(
                    "unknown direction {d:?}; expected one of {}",
                    crate::config::Direction::NAMES.join(", ")
                ),
            );
            crate::config::Direction::Outbound
        }),
    };
    if bulk && direction == crate::config::Direction::Inbound {
        // The bulk-sender requirements judge our sending; an inbound route sends as a provider.
        errs.push(
            at("bulk"),
            "bulk applies to outbound routes (the providers' rules judge our sending), not to \
             direction = \"inbound\"",
        );
    }
    Some(Route {
        name: name.to_string(),
        host: connection.host,
        port: connection.port,
        tls: connection.tls,
        ca_file: connection.ca_file,
        auth: connection.auth,
        from,
        from_address,
        envelope_from,
        helo: r.helo.clone(),
        timeout: timeout?,
        probes_per_session,
        sending_ips,
        dnsbl_zones: r.dnsbl_zones.clone(),
        dkim_key_file,
        dkim_selector: r
            .dkim_selector
            .clone()
            .or_else(|| r.dkim.as_ref().and_then(|d| d.selector.clone())),
        dkim,
        message: message_template(&r.message),
        bounces: r.bounces.clone(),
        expect_tab,
        bulk,
        direction,
    })
}

/// Whether a `List-Unsubscribe` value offers an https URI (RFC 2369 §3.2: `<...>` list).
fn has_https_unsubscribe(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(',').any(|uri| {
            uri.trim()
                .trim_start_matches('<')
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        })
    })
}

/// The From header (RFC 5322 §3.6.2), its address, and the envelope sender (RFC 5321 MAIL
/// FROM; default: the From address).
pub(super) fn sender(errs: &mut Errors, section: &str, r: &RawRoute) -> (String, String, String) {
    let from = r.from.clone().unwrap_or_default();
    let from_address = match address_of(&from) {
        Some(a) => a,
        None => {
            errs.push(
                format!("{section}.from"),
                format!("expected an address like \"Probe <probe@example.com>\", got {from:?}"),
            );
            String::new()
        }
    };
    let envelope_from = match &r.envelope_from {
        Some(e) => match address_of(e) {
            Some(a) => a,
            None => {
                errs.push(
                    format!("{section}.envelope_from"),
                    format!("expected an address, got {e:?}"),
                );
                String::new()
            }
        },
        None => from_address.clone(),
    };
    (from, from_address, envelope_from)
}

/// `[dkim]`: signing inside the probe (RFC 6376), the domain defaulting to the From domain.
pub(super) fn dkim_signing(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    d: &RawDkim,
    from_address: &str,
) -> Option<DkimSigning> {
    let domain = d
        .domain
        .clone()
        .unwrap_or_else(|| domain_of(from_address).to_string());
    let selector = d.selector.clone();
    let key_file = d.key_file.clone().map(|k| resolve(base, k));
    if selector.is_none() {
        errs.push(
            format!("{section}.dkim.selector"),
            "required when [dkim] is set",
        );
    }
    let key_path = format!("{section}.dkim.key_file");
    match &key_file {
        None => errs.push(
            key_path,
            "required when [dkim] is set (a PEM RSA private key)",
        ),
        Some(k) if !k.is_file() => errs.push(key_path, format!("no such file: {}", k.display())),
        // The key mailcanary signs with itself is as secret as a password.
        Some(k) => errs.check_secret_file(key_path, k),
    }
    Some(DkimSigning {
        domain,
        selector: selector?,
        key_file: key_file?,
    })
}

pub(super) fn message_template(m: &RawMessage) -> MessageTemplate {
    MessageTemplate {
        subject: m
            .subject
            .clone()
            .unwrap_or_else(|| "Your weekly account summary".to_string()),
        text: m.text.clone().unwrap_or_else(|| DEFAULT_TEXT.to_string()),
        html: m.html.clone().unwrap_or_else(|| DEFAULT_HTML.to_string()),
        list_unsubscribe: m.list_unsubscribe.clone(),
    }
}

pub(super) const DEFAULT_TEXT: &str = "Hello,\n\nHere is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.\n\nYou can review your notification preferences at any time from your account page.\n\nThank you,\nThe Operations Team\n";

pub(super) const DEFAULT_HTML: &str = "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<p>Hello,</p>\n<p>Here is your weekly account summary. Nothing needs your attention this week:\nyour settings are unchanged and your last sign-in was from a known device.</p>\n<p>You can review your notification preferences at any time from your account page.</p>\n<p>Thank you,<br>The Operations Team</p>\n</body></html>\n";
