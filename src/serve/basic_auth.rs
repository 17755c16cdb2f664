//! HTTP basic authentication (RFC 7617) for every endpoint, with the web config's
//! `basic_auth_users` (bcrypt hashes), as the Prometheus exporter toolkit checks them
//! (`web/handler.go` there):
//!
//! - the user name is compared with every configured one in constant time, and an unknown user
//!   still costs a bcrypt comparison (against a fixed hash), so timing tells no user names apart;
//! - one bcrypt comparison runs at a time (they are CPU-bound: many at once would starve the
//!   probe), on the blocking pool;
//! - successful checks are cached (at most [`CACHE_SIZE`], keyed by a SHA-256 of user, hash and
//!   password, never the password itself), so a scrape every 15 s does not cost a bcrypt each
//!   time. Failures are not cached: each wrong guess costs the guesser a bcrypt, one at a time.
//!
//! A missing or wrong login answers 401 with `WWW-Authenticate: Basic` (RFC 7617 §2).
//!
//! Except [`UNAUTHENTICATED_PATHS`]: `/healthz` and `/readyz` answer a fixed word and nothing
//! else, and their callers — Kubernetes' liveness and readiness probes, Docker health checks,
//! load balancers — cannot send a secret (a probe's headers are written in the Deployment in
//! clear). Every other endpoint, the status page and `/-/reload` included, needs the login.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Successful checks remembered.
pub const CACHE_SIZE: usize = 100;

/// The toolkit's bcrypt hash of "fakepassword" (cost 10): compared against for an unknown user
/// so that the answer takes as long as for a known one.
const UNKNOWN_USER_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// The users and the cache of successful checks.
pub struct BasicAuth {
    /// (user name, bcrypt hash).
    users: Vec<(Vec<u8>, String)>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt comparison at a time.
    bcrypt: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// `None` when no user is configured: no authentication, as in the toolkit.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Arc<BasicAuth>> {
        if users.is_empty() {
            return None;
        }
        Some(Arc::new(BasicAuth {
            users: users
                .iter()
                .map(|(u, h)| (u.as_bytes().to_vec(), h.clone()))
                .collect(),
            verified: Mutex::new(HashSet::new()),
            bcrypt: tokio::sync::Semaphore::new(1),
        }))
    }

    /// Whether `authorization` (the request's header) names a configured user with the right
    /// password.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        // Every configured name is compared, in constant time: no early exit on a match.
        let mut hash: Option<&str> = None;
        for (name, h) in &self.users {
            if bool::from(name.as_slice().ct_eq(user.as_slice())) {
                hash = Some(h);
            }
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or(UNKNOWN_USER_HASH).to_string();
        let key = cache_key(&user, &hash, &password);
        if known && self.cache().contains(&key) {
            return true;
        }
        let Ok(_turn) = self.bcrypt.acquire().await else {
            return false;
        };
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let ok = known && matches;
        if ok {
            let mut cache = self.cache();
            if cache.len() >= CACHE_SIZE {
                // Forget a tenth (the set's order is random per process): the next checks of
                // those logins cost a bcrypt again, nothing else.
                let drop: Vec<[u8; 32]> = cache.iter().take(CACHE_SIZE / 10).copied().collect();
                for k in drop {
                    cache.remove(&k);
                }
            }
            cache.insert(key);
        }
        ok
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many successful checks are cached (for tests).
    pub fn cached(&self) -> usize {
        self.cache().len()
    }
}

/// User and password of a `Basic` authorization (RFC 7617 §2: the user-id ends at the first
/// colon); `None` for any other scheme or a malformed value.
fn credentials(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn cache_key(user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    // Lengths first, so that no two different triples hash the same bytes.
    for part in [user, hash.as_bytes(), password] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The paths served without a login (see the module doc).
pub const UNAUTHENTICATED_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The middleware: the request goes on only with a valid login, else 401.
pub async fn require(State(auth): State<Arc<BasicAuth>>, request: Request, next: Next) -> Response {
    if UNAUTHENTICATED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    if auth
        .check(request.headers().get(header::AUTHORIZATION))
        .await
    {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic")],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).expect("header value")
    }

    fn auth() -> Arc<BasicAuth> {
        // Cost 4, the lowest: these tests check the logic, not bcrypt's speed.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let users = BTreeMap::from([("prometheus".to_string(), hash)]);
        BasicAuth::new(&users).expect("a user")
    }

    #[tokio::test]
    async fn the_right_login_passes_and_is_cached_once() {
        let auth = auth();
        assert!(auth.check(Some(&basic("prometheus", "s3cret"))).await);
        assert!(auth.check(Some(&basic("prometheus", "s3cret"))).await);
        assert_eq!(auth.cached(), 1);
    }

    #[tokio::test]
    async fn wrong_or_missing_logins_fail_and_are_not_cached() {
        let auth = auth();
        for header in [
            None,
            Some(basic("prometheus", "wrong")),
            Some(basic("prometheus", "")),
            Some(basic("nobody", "s3cret")),
            Some(basic("Prometheus", "s3cret")),
            Some(HeaderValue::from_static("Bearer abc")),
            Some(HeaderValue::from_static("Basic !!!")),
            // No colon: no user-id/password pair.
            Some(HeaderValue::from_static("Basic cHJvbWV0aGV1cw==")),
        ] {
            assert!(!auth.check(header.as_ref()).await, "{header:?}");
        }
        assert_eq!(auth.cached(), 0);
    }

    #[tokio::test]
    async fn the_password_may_contain_colons_and_the_scheme_any_case() {
        let hash = bcrypt::hash("a:b:c", 4).expect("hash");
        let auth = BasicAuth::new(&BTreeMap::from([("u".to_string(), hash)])).expect("a user");
        let token = base64::engine::general_purpose::STANDARD.encode("u:a:b:c");
        let header = HeaderValue::from_str(&format!("bAsIc {token}")).expect("header");
        assert!(auth.check(Some(&header)).await);
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let users: BTreeMap<String, String> = (0..CACHE_SIZE + 20)
            .map(|i| (format!("user{i}"), hash.clone()))
            .collect();
        let auth = BasicAuth::new(&users).expect("users");
        for i in 0..CACHE_SIZE + 20 {
            assert!(auth.check(Some(&basic(&format!("user{i}"), "pw"))).await);
        }
        assert!(auth.cached() <= CACHE_SIZE, "{}", auth.cached());
    }

    #[test]
    fn no_users_means_no_authentication() {
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }
}
