//! Talking to an OAuth2 endpoint: a form POST (RFC 6749 §4.1.3/§6, RFC 8628 §3.1/§3.4) over
//! reqwest with our own rustls configuration (ring, the system's roots), and reading its JSON
//! answer: a token response (RFC 6749 §5.1), an error response (§5.2), or a device
//! authorization response (RFC 8628 §3.2). Answers are bounded in size; what a server writes
//! into an error is kept short and printable, and tokens never enter an error or a log line.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use super::OAuthError;
use crate::config::Secret;

/// A token request (or device authorization request) gets this long, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read: token responses are a few KiB.
const MAX_ANSWER: usize = 64 * 1024;

/// A successful token response (RFC 6749 §5.1).
pub struct TokenResponse {
    pub access_token: Secret,
    /// Seconds the access token lives, when the server says.
    pub expires_in: Option<u64>,
    /// A refresh token: the first one (device grant), or a rotated one.
    pub refresh_token: Option<Secret>,
}

/// An error response (RFC 6749 §5.2, RFC 8628 §3.5): `error` is the code the flows act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub error: String,
    pub description: Option<String>,
}

/// What an endpoint answered.
pub enum Answer<T> {
    Ok(T),
    Error(ErrorResponse),
}

#[derive(Deserialize)]
struct RawToken {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads a token endpoint's answer: 200 with an access token, or an error response.
pub fn token_answer(
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<Answer<TokenResponse>, OAuthError> {
    if status == 200 {
        let raw: RawToken = serde_json::from_slice(body)
            .map_err(|e| OAuthError::protocol(url, format!("not a token response: {e}")))?;
        let access_token = raw
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::protocol(url, "token response without access_token"))?;
        Ok(Answer::Ok(TokenResponse {
            access_token: Secret::new(access_token),
            expires_in: raw.expires_in.as_ref().and_then(seconds),
            refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        }))
    } else {
        Ok(Answer::Error(error_answer(url, status, body)?))
    }
}

/// An error response, or a protocol error when the body is not one.
pub fn error_answer(url: &str, status: u16, body: &[u8]) -> Result<ErrorResponse, OAuthError> {
    match serde_json::from_slice::<RawError>(body) {
        Ok(RawError {
            error: Some(error),
            error_description,
        }) => Ok(ErrorResponse {
            error: printable(&error, 64),
            description: error_description.map(|d| printable(&d, 256)),
        }),
        _ => Err(OAuthError::protocol(
            url,
            format!("HTTP status {status} without an OAuth2 error response"),
        )),
    }
}

/// `expires_in` as a number or a numeric string (some servers quote it).
pub fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// At most `max` characters, printable ASCII only (RFC 6749 §5.2 allows no more in `error`).
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c))
        .take(max)
        .collect()
}

/// The one HTTP client of the process (connection pool, our rustls config); built on first use.
fn client() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                // A token endpoint that redirects is misconfigured; following it would send
                // the client secret somewhere else.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("mailcanary/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// POSTs `form` (application/x-www-form-urlencoded) to `url`; the status and at most
/// [`MAX_ANSWER`] bytes of the body.
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> Result<(u16, Vec<u8>), OAuthError> {
    let client = client().map_err(|e| OAuthError::network(url, format!("HTTP client: {e}")))?;
    let mut response = client
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| OAuthError::network(url, request_error(&e)))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OAuthError::network(url, request_error(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(OAuthError::protocol(
                url,
                format!("answer larger than {MAX_ANSWER} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// What went wrong with a request, without the URL's query or the form (reqwest's Display
/// names the URL, which is ours and holds no secret; the form is never printed).
fn request_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        detail.push_str(": ");
        detail.push_str(&c.to_string());
        cur = c.source();
    }
    printable(&format!("{kind}{detail}"), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_as_in_rfc_6749_section_5_1() {
        let body = br#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#;
        let Answer::Ok(t) = token_answer("u", 200, body).expect("parses") else {
            panic!("an error answer");
        };
        assert_eq!(t.access_token.expose(), "2YotnFZFEjr1zCsicMWpAA");
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(
            t.refresh_token.as_ref().map(Secret::expose),
            Some("tGzv3JOkF0XG5Qx2TlKWIA")
        );
    }

    #[test]
    fn expires_in_may_be_quoted_or_absent() {
        let Answer::Ok(t) =
            token_answer("u", 200, br#"{"access_token":"a","expires_in":"3599"}"#).expect("ok")
        else {
            panic!("error");
        };
        assert_eq!(t.expires_in, Some(3599));
        assert!(t.refresh_token.is_none());
        let Answer::Ok(t) = token_answer("u", 200, br#"{"access_token":"a"}"#).expect("ok") else {
            panic!("error");
        };
        assert_eq!(t.expires_in, None);
    }

    #[test]
    fn an_error_response_as_in_rfc_6749_section_5_2() {
        let Answer::Error(e) = token_answer(
            "u",
            400,
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
        .expect("parses") else {
            panic!("a token");
        };
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(
            e.description.as_deref(),
            Some("Token has been expired or revoked.")
        );
    }

    #[test]
    fn what_is_no_oauth_answer_is_a_protocol_error() {
        for (status, body) in [
            (200u16, &b"<html>"[..]),
            (200, br#"{"token_type":"bearer"}"#),
            (400, b""),
            (502, b"Bad Gateway"),
        ] {
            let e = match token_answer("https://t.example/token", status, body) {
                Err(e) => e,
                Ok(_) => panic!("{status} {body:?} accepted"),
            };
            assert!(matches!(e, OAuthError::Protocol { .. }), "{e:?}");
            assert_eq!(e.reason(), "auth");
        }
    }

    #[test]
    fn server_text_is_kept_short_and_printable() {
        let long = "x".repeat(1000);
        let body = format!(r#"{{"error":"bad\u0007{long}","error_description":"{long}"}}"#);
        let e = error_answer("u", 400, body.as_bytes()).expect("parses");
        assert_eq!(e.error.len(), 64);
        assert!(!e.error.contains('\u{7}'));
        assert_eq!(e.description.map(|d| d.len()), Some(256));
    }
}
