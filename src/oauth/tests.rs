//! The token logic against a tiny HTTP token endpoint of ours (no OAuth2 server in unit tests:
//! the lab's glewlwyd covers the real thing in `tests/lab/oauth.rs`). The fake answers each
//! request with the next scripted answer and records what it was sent and when.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::device::{self, DeviceError, Pacing};
use super::*;
use crate::config::oauth2::TokenCache;

/// One request the fake received: its form body and when.
#[derive(Debug, Clone)]
struct Seen {
    body: String,
    at: Instant,
}

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Serves `answers` (status, JSON body) in order; the last one repeats.
    async fn start(answers: Vec<(u16, &'static str)>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/token", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut sock, _)) = listener.accept().await {
                let body = read_request(&mut sock).await;
                log.lock().expect("log").push(Seen {
                    body,
                    at: Instant::now(),
                });
                let (status, json) = answers[n.min(answers.len() - 1)];
                n += 1;
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        Fake { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }
}

/// Reads one HTTP/1.1 request; returns its body.
async fn read_request(sock: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = sock.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text[end + 4..end + 4 + length].to_string();
            }
        }
    }
    String::new()
}

fn client(url: &str, grant: Grant, refresh: Option<&str>, file: Option<&Path>) -> OAuth2 {
    let cache = TokenCache::default();
    cache.state.try_lock().expect("fresh cache").refresh_token = refresh.map(Secret::new);
    OAuth2 {
        grant,
        token_url: url.to_string(),
        device_authorization_url: Some(url.replace("/token", "/device")),
        client_id: "mailcanary".to_string(),
        client_secret: Some(Secret::new("client-secret-9")),
        scope: "mail".to_string(),
        refresh_token_source: file.map(|f| SecretSource::File(f.to_path_buf())),
        cache,
    }
}

use std::path::Path;

#[tokio::test]
async fn the_refresh_grant_gets_a_token_once_and_serves_it_from_the_cache() {
    let fake = Fake::start(vec![(
        200,
        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#,
    )])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, Some("rt-1"), None);
    assert_eq!(access_token(&o).await.expect("token").expose(), "at-1");
    assert_eq!(access_token(&o).await.expect("token").expose(), "at-1");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "the second call is served from the cache");
    let body = &seen[0].body;
    for part in [
        "grant_type=refresh_token",
        "refresh_token=rt-1",
        "client_id=mailcanary",
        "client_secret=client-secret-9",
        "scope=mail",
    ] {
        assert!(body.split('&').any(|p| p == part), "{part} not in {body}");
    }
    let expiry = o.cache.expiry().expect("expiry recorded");
    let left = expiry
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(left > Duration::from_secs(3590), "{left:?}");
}

#[tokio::test]
async fn a_token_is_refreshed_ahead_of_its_expiry() {
    let fake = Fake::start(vec![
        (200, r#"{"access_token":"at-1","expires_in":1}"#),
        (200, r#"{"access_token":"at-2","expires_in":1}"#),
    ])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, Some("rt-1"), None);
    assert_eq!(access_token(&o).await.expect("token").expose(), "at-1");
    // Half of a one-second life is the margin: after 0.7 s the token is due.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(access_token(&o).await.expect("token").expose(), "at-2");
    assert_eq!(fake.seen().len(), 2);
}

#[test]
fn a_token_is_replaced_at_half_its_life() {
    assert_eq!(margin(Duration::from_secs(10)), Duration::from_secs(5));
    assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(1800));
}

#[tokio::test]
async fn a_rotated_refresh_token_is_written_back_and_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("refresh-token");
    std::fs::write(&file, "rt-1\n").expect("write");
    let fake = Fake::start(vec![
        (
            200,
            r#"{"access_token":"at-1","expires_in":1,"refresh_token":"rt-2"}"#,
        ),
        (200, r#"{"access_token":"at-2","expires_in":3600}"#),
    ])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, Some("rt-1"), Some(&file));
    access_token(&o).await.expect("token");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "rt-2\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    access_token(&o).await.expect("token");
    let seen = fake.seen();
    assert!(
        seen[1].body.contains("refresh_token=rt-2"),
        "{}",
        seen[1].body
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_is_an_auth_error_without_the_token_in_it() {
    let fake = Fake::start(vec![(
        400,
        r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
    )])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, Some("rt-secret-77"), None);
    let e = access_token(&o).await.expect_err("refused");
    assert_eq!(e.reason(), "auth");
    let text = e.to_string();
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(!text.contains("rt-secret-77"), "{text}");
    assert!(!format!("{e:?}").contains("rt-secret-77"));
    assert_eq!(o.cache.expiry(), None);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_auth_error() {
    // A port nothing listens on (bound, then closed).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("addr");
    let o = client(
        &format!("http://{addr}/token"),
        Grant::RefreshToken,
        Some("rt"),
        None,
    );
    let e = access_token(&o).await.expect_err("no server");
    assert!(matches!(e, OAuthError::Network { .. }), "{e:?}");
    assert_eq!(e.reason(), "auth");
}

#[tokio::test]
async fn no_refresh_token_yet_says_to_log_in() {
    let o = client("http://127.0.0.1:9/token", Grant::RefreshToken, None, None);
    let e = access_token(&o).await.expect_err("no token");
    assert!(matches!(e, OAuthError::NoRefreshToken));
    assert!(e.to_string().contains("oauth login"));
}

#[tokio::test]
async fn the_client_credentials_grant_sends_no_refresh_token() {
    let fake = Fake::start(vec![(200, r#"{"access_token":"app-1","expires_in":3599}"#)]).await;
    let o = client(&fake.url, Grant::ClientCredentials, None, None);
    assert_eq!(access_token(&o).await.expect("token").expose(), "app-1");
    let body = &fake.seen()[0].body;
    assert!(body.contains("grant_type=client_credentials"), "{body}");
    assert!(body.contains("client_secret=client-secret-9"), "{body}");
    assert!(!body.contains("refresh_token"), "{body}");
}

#[tokio::test]
async fn debug_output_never_shows_a_token_or_secret() {
    let fake = Fake::start(vec![(
        200,
        r#"{"access_token":"at-visible?","expires_in":3600}"#,
    )])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, Some("rt-visible?"), None);
    access_token(&o).await.expect("token");
    let debug = format!(
        "{o:?} {:?}",
        crate::config::Login::OAuth2(Box::new(o.clone()))
    );
    for secret in ["at-visible?", "rt-visible?", "client-secret-9"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

// ---- the device authorization grant (RFC 8628): the polling rules the lab server cannot show

const DEVICE: &str = r#"{"device_code":"dc-1","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device","verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT","expires_in":1800,"interval":0}"#;

#[test]
fn a_device_authorization_response_as_in_rfc_8628_section_3_2() {
    let d = device::device_answer("u", DEVICE.as_bytes()).expect("parses");
    assert_eq!(d.user_code, "WDJB-MJHT");
    assert_eq!(d.verification_uri, "https://example.com/device");
    assert_eq!(d.expires_in, Duration::from_secs(1800));
    assert_eq!(d.interval, Duration::ZERO);
    // Google writes verification_url; the interval defaults to 5 s.
    let google = br#"{"device_code":"d","user_code":"GQVQ-JKEC","verification_url":"https://www.google.com/device","expires_in":1800}"#;
    let d = device::device_answer("u", google).expect("parses");
    assert_eq!(d.verification_uri, "https://www.google.com/device");
    assert_eq!(d.interval, Duration::from_secs(5));
    assert!(device::device_answer("u", br#"{"user_code":"x"}"#).is_err());
}

#[tokio::test]
async fn polling_waits_while_pending_slows_down_when_told_and_returns_the_token() {
    let fake = Fake::start(vec![
        (400, r#"{"error":"authorization_pending"}"#),
        (400, r#"{"error":"slow_down"}"#),
        (400, r#"{"error":"authorization_pending"}"#),
        (
            200,
            r#"{"access_token":"at-d","expires_in":3600,"refresh_token":"rt-d"}"#,
        ),
    ])
    .await;
    let o = client(&fake.url, Grant::RefreshToken, None, None);
    let d = device::device_answer("u", DEVICE.as_bytes()).expect("parses");
    let step = Duration::from_millis(300);
    let token = device::poll(
        &o,
        &d,
        Pacing {
            slow_down_step: step,
        },
    )
    .await
    .expect("approved");
    assert_eq!(
        token.refresh_token.as_ref().map(Secret::expose),
        Some("rt-d")
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen[0].body.contains("device_code=dc-1"),
        "{}",
        seen[0].body
    );
    assert!(
        seen[0]
            .body
            .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
        "{}",
        seen[0].body
    );
    // Before slow_down the interval was 0; after it, every wait is at least the step.
    assert!(
        seen[1].at - seen[0].at < step,
        "no slow down before it was asked"
    );
    assert!(seen[2].at - seen[1].at >= step, "slow_down not honoured");
    assert!(seen[3].at - seen[2].at >= step, "the slower pace is kept");
}

#[tokio::test]
async fn polling_stops_on_expired_token_and_access_denied() {
    let d = device::device_answer("u", DEVICE.as_bytes()).expect("parses");
    let fake = Fake::start(vec![(400, r#"{"error":"expired_token"}"#)]).await;
    let o = client(&fake.url, Grant::RefreshToken, None, None);
    let e = device::poll(&o, &d, Pacing::default()).await.err();
    assert!(matches!(e, Some(DeviceError::Expired)), "{e:?}");
    let fake = Fake::start(vec![(400, r#"{"error":"access_denied"}"#)]).await;
    let o = client(&fake.url, Grant::RefreshToken, None, None);
    let e = device::poll(&o, &d, Pacing::default()).await.err();
    assert!(matches!(e, Some(DeviceError::Denied)), "{e:?}");
    let fake = Fake::start(vec![(400, r#"{"error":"invalid_client"}"#)]).await;
    let o = client(&fake.url, Grant::RefreshToken, None, None);
    let e = device::poll(&o, &d, Pacing::default()).await.err();
    assert!(
        matches!(&e, Some(DeviceError::OAuth(OAuthError::Refused { error, .. })) if error == "invalid_client"),
        "{e:?}"
    );
}

#[tokio::test]
async fn polling_gives_up_when_the_code_expires_while_pending() {
    let fake = Fake::start(vec![(400, r#"{"error":"authorization_pending"}"#)]).await;
    let o = client(&fake.url, Grant::RefreshToken, None, None);
    let d = device::device_answer(
        "u",
        br#"{"device_code":"d","user_code":"u","verification_uri":"https://e/x","expires_in":1,"interval":0}"#,
    )
    .expect("parses");
    let d = device::DeviceAuthorization {
        interval: Duration::from_millis(300),
        ..d
    };
    let started = Instant::now();
    let e = device::poll(&o, &d, Pacing::default()).await.err();
    assert!(matches!(e, Some(DeviceError::Expired)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(fake.seen().len() >= 2, "it polled while the code was valid");
}
