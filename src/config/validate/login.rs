//! The connection and login every route and mailbox has: host, port, TLS mode, CA file and
//! credentials — a password, or OAuth2 (`[…oauth2]`: grant, endpoints, client, refresh token).
//! Default ports: 587 with STARTTLS (RFC 6409 §3.1), 465 and 993 with implicit TLS (RFC 8314
//! §3), 143 for IMAP with STARTTLS (RFC 9051 §6.2.1), 25 for plain SMTP.

use super::*;

/// The connection fields routes and seeds share, as written.
pub(super) struct RawConnection<'a> {
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<i64>,
    pub(super) tls: Option<&'a str>,
    pub(super) ca_file: &'a Option<PathBuf>,
    pub(super) username: Option<&'a str>,
    pub(super) password_env: &'a Option<String>,
    pub(super) password_file: &'a Option<PathBuf>,
    pub(super) auth: Option<&'a str>,
    pub(super) oauth2: Option<&'a RawOAuth2>,
}

/// What differs between a route's SMTP connection and a seed's IMAP connection.
pub(super) struct ConnectionRules<'a> {
    /// Why the host is required, shown in the error.
    pub(super) host_hint: &'static str,
    pub(super) default_tls: TlsMode,
    pub(super) ports: DefaultPorts,
    pub(super) login: LoginRule<'a>,
    /// The provider's OAuth2 defaults (a seed's preset); routes have none.
    pub(super) oauth_preset: Option<&'static OAuthPreset>,
}

/// The port used when none is given, per TLS mode.
pub(super) struct DefaultPorts {
    pub(super) tls: u16,
    pub(super) starttls: u16,
    pub(super) plain: u16,
}

impl DefaultPorts {
    fn for_mode(&self, tls: TlsMode) -> u16 {
        match tls {
            TlsMode::Tls => self.tls,
            TlsMode::Starttls => self.starttls,
            TlsMode::None => self.plain,
        }
    }
}

/// How a connection logs in.
pub(super) enum LoginRule<'a> {
    /// SMTP AUTH (RFC 4954) only when configured: username and password come together.
    Optional,
    /// IMAP always logs in (RFC 9051 §6.2.3): the password is required, the username defaults
    /// to `default_username` (the mailbox address).
    Required { default_username: &'a str },
}

/// A validated connection.
pub(super) struct Connection {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tls: TlsMode,
    pub(super) ca_file: Option<PathBuf>,
    /// `None` for a route without SMTP AUTH, and when the login is incomplete (errors pushed).
    pub(super) auth: Option<Credentials>,
}

/// Validates the connection fields of `section` (`routes.NAME` or `seeds.NAME`), in the order
/// the errors are reported: host, tls, port, ca_file, the login, then TLS for the password.
pub(super) fn connection(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Connection {
    let at = |k: &str| format!("{section}.{k}");
    let host = match raw.host {
        Some(h) if !h.trim().is_empty() => h.to_string(),
        _ => {
            errs.push(at("host"), format!("required ({})", rules.host_hint));
            String::new()
        }
    };
    let tls = tls_mode(errs, &at("tls"), raw.tls, rules.default_tls);
    let port = port(errs, &at("port"), raw.port, rules.ports.for_mode(tls));
    let ca_file = ca_file(errs, &at("ca_file"), base, raw.ca_file);
    let auth = credentials(errs, section, base, raw, rules);
    let sends_password = auth.is_some() || matches!(rules.login, LoginRule::Required { .. });
    if sends_password && tls == TlsMode::None {
        // The connection's default mode is named first.
        let modes = match rules.default_tls {
            TlsMode::Tls => "\"tls\" or \"starttls\"",
            TlsMode::Starttls | TlsMode::None => "\"starttls\" or \"tls\"",
        };
        errs.push(
            at("tls"),
            format!("refusing to send a password without TLS; use {modes}"),
        );
    }
    Connection {
        host,
        port,
        tls,
        ca_file,
        auth,
    }
}

/// The login of a connection: `auth = "password"` (the default) or `auth = "oauth2"`.
pub(super) fn credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    match raw.auth.unwrap_or("password") {
        "password" => {
            if raw.oauth2.is_some() {
                errs.push(at("oauth2"), "set auth = \"oauth2\" to use it");
            }
            password_credentials(errs, section, base, raw, &rules.login)
        }
        "oauth2" => oauth2_credentials(errs, section, base, raw, rules),
        other => {
            errs.push(
                at("auth"),
                format!("expected \"password\" or \"oauth2\", got {other:?}"),
            );
            None
        }
    }
}

/// Username and password, by the rules of `login`.
pub(super) fn password_credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    login: &LoginRule<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    let password = secret(
        errs,
        &at("password"),
        raw.password_env,
        raw.password_file,
        base,
    );
    // A password source that is set but unusable has already been reported.
    let source_set = raw.password_env.is_some() || raw.password_file.is_some();
    match login {
        LoginRule::Optional => match (raw.username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.to_string(),
                login: Login::Password(password),
            }),
            (None, None) => None,
            (Some(_), None) => {
                if !source_set {
                    errs.push(
                        at("password"),
                        "username is set: set password_env or password_file too",
                    );
                }
                None
            }
            (None, Some(_)) => {
                errs.push(at("username"), "a password is set: set the username too");
                None
            }
        },
        LoginRule::Required { default_username } => {
            if password.is_none() && !source_set {
                errs.push(
                    at("password"),
                    "set password_env or password_file (for Gmail/Outlook: an app password)",
                );
            }
            Some(Credentials {
                username: raw.username.unwrap_or(default_username).to_string(),
                login: Login::Password(password?),
            })
        }
    }
}

/// `auth = "oauth2"`: the user name the token is for, and the `[oauth2]` client (RFC 6749).
pub(super) fn oauth2_credentials(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    raw: &RawConnection<'_>,
    rules: &ConnectionRules<'_>,
) -> Option<Credentials> {
    let at = |k: &str| format!("{section}.{k}");
    if raw.password_env.is_some() || raw.password_file.is_some() {
        errs.push(
            at("password"),
            "auth = \"oauth2\" sends no password: remove password_env/password_file",
        );
    }
    let username = match (&rules.login, raw.username) {
        (_, Some(u)) => Some(u.to_string()),
        (LoginRule::Required { default_username }, None) => Some(default_username.to_string()),
        (LoginRule::Optional, None) => {
            errs.push(
                at("username"),
                "required with auth = \"oauth2\" (the user the token is for)",
            );
            None
        }
    };
    let Some(o) = raw.oauth2 else {
        errs.push(
            at("oauth2"),
            "required with auth = \"oauth2\": client_id and the token source",
        );
        return None;
    };
    let oauth = oauth2_client(errs, &at("oauth2"), base, o, rules.oauth_preset);
    Some(Credentials {
        username: username?,
        login: Login::OAuth2(Box::new(oauth?)),
    })
}

/// The `[oauth2]` table: grant, endpoints (from the provider preset unless given), client,
/// scope and the refresh token, loaded now (unless `oauth login` is about to create it).
pub(super) fn oauth2_client(
    errs: &mut Errors,
    section: &str,
    base: &Path,
    o: &RawOAuth2,
    seed_preset: Option<&'static OAuthPreset>,
) -> Option<OAuth2> {
    let at = |k: &str| format!("{section}.{k}");
    let preset = match o.provider.as_deref() {
        None => seed_preset,
        Some(name) => match provider::oauth_preset(name) {
            Some(p) => Some(p),
            None => {
                errs.push(
                    at("provider"),
                    format!(
                        "no OAuth2 defaults for {name:?}; expected one of {}",
                        provider::oauth_names()
                    ),
                );
                None
            }
        },
    };
    let grant = match o.grant.as_deref().unwrap_or("refresh_token") {
        "refresh_token" => Some(Grant::RefreshToken),
        "client_credentials" => Some(Grant::ClientCredentials),
        other => {
            errs.push(
                at("grant"),
                format!("expected \"refresh_token\" or \"client_credentials\", got {other:?}"),
            );
            None
        }
    };
    let token_url = http_url(
        errs,
        &at("token_url"),
        o.token_url.as_deref().or(preset.map(|p| p.token_url)),
    );
    let device_authorization_url = match o
        .device_authorization_url
        .as_deref()
        .or(preset.map(|p| p.device_authorization_url))
    {
        Some(u) => http_url(errs, &at("device_authorization_url"), Some(u)),
        None => None,
    };
    let client_id = match o.client_id.as_deref() {
        Some(c) if !c.trim().is_empty() => Some(c.to_string()),
        _ => {
            errs.push(at("client_id"), "required (from your app registration)");
            None
        }
    };
    let scope = match o.scope.as_deref().or(preset.map(|p| p.scope)) {
        Some(s) if !s.trim().is_empty() => Some(s.to_string()),
        _ => {
            errs.push(at("scope"), "required (no provider preset gives one)");
            None
        }
    };
    let client_secret = secret(
        errs,
        &at("client_secret"),
        &o.client_secret_env,
        &o.client_secret_file,
        base,
    );
    let refresh_file = o.refresh_token_file.clone().map(|f| resolve(base, f));
    let refresh_source = match SecretSource::from_pair(&o.refresh_token_env, &refresh_file) {
        Ok(s) => s,
        Err(e) => {
            errs.push(at("refresh_token"), e);
            None
        }
    };
    let set = o.refresh_token_env.is_some() || o.refresh_token_file.is_some();
    let mut refresh_token = None;
    match grant {
        Some(Grant::RefreshToken) => match &refresh_source {
            None if !set => errs.push(
                at("refresh_token"),
                "set refresh_token_env or refresh_token_file (`mailcanary oauth login` gets one)",
            ),
            None => {}
            Some(SecretSource::File(p)) if errs.1.for_oauth_login && !p.exists() => {}
            Some(SecretSource::File(p)) if !p.exists() => errs.push(
                at("refresh_token"),
                format!(
                    "no such file: {} (`mailcanary oauth login` creates it)",
                    p.display()
                ),
            ),
            Some(src) => match src.load() {
                Ok(t) => {
                    if let SecretSource::File(f) = src {
                        errs.check_secret_file(at("refresh_token_file"), f);
                    }
                    refresh_token = Some(t);
                }
                Err(e) => errs.push(at("refresh_token"), e),
            },
        },
        Some(Grant::ClientCredentials) => {
            if set {
                errs.push(
                    at("refresh_token"),
                    "not used with grant = \"client_credentials\": remove it",
                );
            }
            if client_secret.is_none()
                && o.client_secret_env.is_none()
                && o.client_secret_file.is_none()
            {
                errs.push(
                    at("client_secret"),
                    "required with grant = \"client_credentials\": set client_secret_env or client_secret_file",
                );
            }
        }
        None => {}
    }
    let cache = TokenCache::default();
    if let Ok(mut state) = cache.state.try_lock() {
        *state = TokenState {
            access: None,
            refresh_token,
        };
    }
    Some(OAuth2 {
        grant: grant?,
        token_url: token_url?,
        device_authorization_url,
        client_id: client_id?,
        client_secret,
        scope: scope?,
        refresh_token_source: refresh_source,
        cache,
    })
}

/// An `http://` or `https://` URL (plain http only makes sense for a test server).
pub(super) fn http_url(errs: &mut Errors, path: &str, value: Option<&str>) -> Option<String> {
    match value {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u.to_string()),
        Some(u) => {
            errs.push(path, format!("expected an https:// URL, got {u:?}"));
            None
        }
        None => {
            errs.push(path, "required (no provider preset gives one)");
            None
        }
    }
}
