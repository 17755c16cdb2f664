//! The HTTP side against hostile clients, hermetic: the real accept loop ([`http::serve`]) with
//! the real router, layers, reloader and TLS on loopback ports, clients written byte by byte.
//! Only the DNS audit is replaced by a counting fake (the real one would query the network).

use super::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;
use crate::jobs::audit_gate::AuditGate;
use crate::metrics::Metrics;
use crate::probe::prober::Prober;
use crate::serve::lifecycle::Lifecycle;
use crate::serve::reload::Reloader;
use crate::state::probes::ProbeStore;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/web");
const PASSWORD: &str = "correct horse battery staple";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// The probe config of a harness; `route_extra` goes into its one route.
fn config_text(listen: SocketAddr, route_extra: &str) -> String {
    format!(
        "[probe]\ntoken_key_file = \"token.key\"\nlisten = \"{listen}\"\nschedule = \"0 0 1 1 *\"\n\
         [dns_audit]\nschedule = \"0 0 1 1 *\"\n\
         [routes.main]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n{route_extra}\n\
         [seeds.s]\naddress = \"s@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n"
    )
}

/// A running HTTP side: `mailcanary run` minus the rounds.
struct Harness {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    reloader: Arc<Reloader>,
    audits: Arc<AuditGate>,
    /// The router as served (layers included), for requests that bypass the sockets.
    app: Router,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

struct Options {
    lifecycle: bool,
    allowed_hosts: Vec<String>,
    users: bool,
    /// A web config file (TLS; its users unless `users`).
    web_config: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lifecycle: true,
            allowed_hosts: Vec::new(),
            users: false,
            web_config: None,
        }
    }
}

impl Harness {
    async fn start(options: Options) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("token.key"),
            "web-test-token-key-0123456789",
        )
        .expect("key");
        std::fs::write(dir.path().join("password"), "pw").expect("password");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let path = dir.path().join("mailcanary.toml");
        std::fs::write(&path, config_text(addr, "")).expect("config");
        let config = Arc::new(crate::config::load(&path).unwrap_or_else(|e| panic!("{e}")));
        let store = Arc::new(
            ProbeStore::open(&dir.path().join("state.sqlite"), "web-test").expect("state"),
        );
        let metrics = Arc::new(Metrics::new());
        let prober =
            Arc::new(Prober::new(config.clone(), store.clone(), metrics.clone()).expect("prober"));
        let scheduler = tokio_cron_scheduler::JobScheduler::new()
            .await
            .expect("scheduler");
        // Audits take 300 ms here: long enough for a burst to find one running.
        let audits = AuditGate::new(Arc::new(|_c: Arc<Config>| {
            Box::pin(tokio::time::sleep(Duration::from_millis(300)))
        }));
        let ready = Arc::new(AtomicBool::new(true));
        let reloader = Arc::new(
            Reloader::start(
                path,
                prober.clone(),
                scheduler,
                ready.clone(),
                audits.clone(),
            )
            .await
            .expect("reloader"),
        );
        let state = Arc::new(AppState {
            store,
            reports: None,
            metrics,
            ready,
            config: {
                let prober = prober.clone();
                Box::new(move || prober.config())
            },
            reloader: Some(reloader.clone()),
            lifecycle: Lifecycle {
                enabled: options.lifecycle,
                listen: addr,
                allowed_hosts: options.allowed_hosts,
            },
        });
        let web = Web {
            config: options.web_config.map(|file| {
                crate::serve::web_config::load(&file).unwrap_or_else(|e| panic!("{e}"))
            }),
            ..Web::default()
        };
        let mut users = web
            .config
            .as_ref()
            .map(|c| c.users.clone())
            .unwrap_or_default();
        if options.users {
            users = BTreeMap::from([(
                "prometheus".to_string(),
                bcrypt::hash(PASSWORD, 4).expect("bcrypt"),
            )]);
        }
        let tls = web.tls().expect("TLS set-up");
        let app = app(state, BasicAuth::new(&users));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, app.clone(), tls, async {
            let _ = stopped.await;
        }));
        Harness {
            addr,
            dir,
            reloader,
            audits,
            app,
            stop: Some(stop),
            server,
        }
    }

    fn write_config(&self, route_extra: &str) {
        std::fs::write(
            self.dir.path().join("mailcanary.toml"),
            config_text(self.addr, route_extra),
        )
        .expect("config");
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
    }
}

/// A parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line and headers, without the blank line) on `stream` with
/// `Connection: close` and reads the whole answer (10 s at most).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &str,
) -> std::io::Result<Answer> {
    let request = format!("{head}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("no complete answer in 10 s"))??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

/// One plain-HTTP request to `addr`: `method path`, Host `addr`, plus `extra` header lines.
async fn send(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Answer {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}");
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    exchange(&mut tcp, &head)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn assert_security_headers(a: &Answer, what: &str) {
    assert_eq!(
        a.header("content-security-policy"),
        Some(content_security_policy()),
        "{what}: {a:?}"
    );
    assert!(
        content_security_policy().starts_with("default-src 'none';")
            && content_security_policy().contains("frame-ancestors 'none'"),
        "{}",
        content_security_policy()
    );
    assert_eq!(
        a.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{what}");
}

// ---- lifecycle ----

#[tokio::test]
async fn reload_is_refused_unless_the_lifecycle_api_is_enabled() {
    let h = Harness::start(Options {
        lifecycle: false,
        ..Options::default()
    })
    .await;
    let a = send(h.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (
            403,
            "lifecycle API is not enabled (run with --web.enable-lifecycle)\n"
        )
    );
    assert_security_headers(&a, "403");
    assert_eq!(h.reloader.reloads(), 0);
    h.stop().await;
}

#[tokio::test]
async fn cross_site_requests_are_refused_and_a_plain_post_reloads() {
    let h = Harness::start(Options::default()).await;
    let hostile: &[(&str, &[&str])] = &[
        ("foreign Origin", &["Origin: https://evil.example"]),
        ("null Origin", &["Origin: null"]),
        ("Sec-Fetch-Site cross-site", &["Sec-Fetch-Site: cross-site"]),
        (
            "HTML form",
            &["Content-Type: application/x-www-form-urlencoded"],
        ),
        (
            "no-cors fetch with a body",
            &["Content-Type: text/plain;charset=UTF-8"],
        ),
    ];
    for (what, headers) in hostile {
        let a = send(h.addr, "POST", "/-/reload", headers).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (403, "request refused; see the log\n"),
            "{what}"
        );
    }
    // DNS rebinding: the page's own name in Host (and Origin, which then matches it).
    let mut tcp = TcpStream::connect(h.addr).await.expect("connect");
    let port = h.addr.port();
    let a = exchange(
        &mut tcp,
        &format!("POST /-/reload HTTP/1.1\r\nHost: rebind.evil.example:{port}\r\nOrigin: http://rebind.evil.example:{port}"),
    )
    .await
    .expect("answer");
    assert_eq!(a.status, 403, "wrong Host: {a:?}");
    assert_eq!(h.reloader.reloads(), 0, "a refused request reloaded");
    // What curl -X POST sends.
    let a = send(h.addr, "POST", "/-/reload", &["User-Agent: curl/8"]).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, "config reloaded; in force from the next round\n")
    );
    assert_eq!(h.reloader.reloads(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_allowed_host_name_may_reload() {
    let h = Harness::start(Options {
        allowed_hosts: vec!["mailcanary.monitoring.svc".into()],
        ..Options::default()
    })
    .await;
    let mut tcp = TcpStream::connect(h.addr).await.expect("connect");
    let a = exchange(
        &mut tcp,
        "POST /-/reload HTTP/1.1\r\nHost: mailcanary.monitoring.svc:9925",
    )
    .await
    .expect("answer");
    assert_eq!(a.status, 200, "{a:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_refused_reload_answers_a_generic_error_and_keeps_the_details_for_the_log() {
    let h = Harness::start(Options::default()).await;
    // An invalid file that quotes a value and names a path.
    h.write_config("port = 70000\npassword_env = \"SECRET-VALUE-IN-THE-WRONG-FIELD\"");
    let a = send(h.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (500, "reload refused; see the log\n")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_reloads_is_at_most_two_reloads_and_one_audit() {
    use tower::ServiceExt as _;
    let h = Harness::start(Options::default()).await;
    h.write_config("sending_ips = [\"192.0.2.7\"]");
    // 500 requests at once, straight into the served router (handler, guard, coalescing,
    // reloader and audit gate as in `run`): over sockets the connection limits would spread
    // them out (tested apart, below). Reloads are held until all 500 have arrived: a burst
    // is requests arriving while a reload runs, however slowly a loaded machine sends them.
    let held = h.reloader.hold().await;
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (app, host) = (h.app.clone(), h.addr.to_string());
            tokio::spawn(async move {
                let request = axum::http::Request::builder()
                    .method("POST")
                    .uri("/-/reload")
                    .header("host", host)
                    .body(axum::body::Body::empty())
                    .expect("request");
                app.oneshot(request).await.map(|r| r.status())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.reloader.requests() < 500 {
        assert!(
            Instant::now() < deadline,
            "only {} of 500 requests arrived",
            h.reloader.requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(held);
    for t in tasks {
        let status = t.await.expect("task").expect("router");
        assert_eq!(status, 200);
    }
    let reloads = h.reloader.reloads();
    assert!(
        (1..=2).contains(&reloads),
        "{reloads} reloads for a burst of 500"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.audits.running() {
        assert!(Instant::now() < deadline, "the audit never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.audits.started(), 1, "one audit for the one change");
    h.stop().await;
}

#[tokio::test]
async fn a_reload_that_changes_nothing_audited_runs_no_audit() {
    let h = Harness::start(Options::default()).await;
    h.write_config("sending_ips = [\"192.0.2.7\"]");
    assert_eq!(send(h.addr, "POST", "/-/reload", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.audits.started(), 1);
    // Only the SMTP timeout changes: nothing the audit reads.
    h.write_config("sending_ips = [\"192.0.2.7\"]\ntimeout = \"45s\"");
    assert_eq!(send(h.addr, "POST", "/-/reload", &[]).await.status, 200);
    assert_eq!(send(h.addr, "POST", "/-/reload", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.reloader.reloads(), 3);
    assert_eq!(
        h.audits.started(),
        1,
        "an audit for a change it does not see"
    );
    h.stop().await;
}

// ---- basic auth and headers ----

#[tokio::test]
async fn every_endpoint_but_the_health_checks_needs_the_password_when_users_are_configured() {
    let h = Harness::start(Options {
        users: true,
        ..Options::default()
    })
    .await;
    let good = basic("prometheus", PASSWORD);
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/"),
        ("GET", "/api/results"),
        ("GET", "/api/reports"),
        ("GET", "/no-such-page"),
        ("POST", "/-/reload"),
    ] {
        for (what, auth) in [
            ("no password", None),
            ("wrong password", Some(basic("prometheus", "wrong"))),
            ("unknown user", Some(basic("root", PASSWORD))),
        ] {
            let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
            let a = send(h.addr, method, path, &headers).await;
            assert_eq!(a.status, 401, "{method} {path} with {what}: {a:?}");
            assert_eq!(
                a.header("www-authenticate"),
                Some("Basic"),
                "{method} {path}"
            );
            assert_security_headers(&a, &format!("401 of {path}"));
        }
        let a = send(h.addr, method, path, &[&good]).await;
        assert_ne!(a.status, 401, "{method} {path} with the password: {a:?}");
    }
    assert_eq!(send(h.addr, "GET", "/metrics", &[&good]).await.status, 200);
    // Kubernetes' probes cannot send a password: the health checks answer without one.
    let a = send(h.addr, "GET", "/healthz", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    assert_security_headers(&a, "/healthz");
    assert_eq!(send(h.addr, "GET", "/readyz", &[]).await.status, 200);
    h.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_the_csp_admits_the_page_style() {
    let h = Harness::start(Options::default()).await;
    for path in ["/", "/metrics", "/healthz", "/api/results", "/nowhere"] {
        let a = send(h.addr, "GET", path, &[]).await;
        assert_security_headers(&a, path);
    }
    // The page's one style block is the one the policy's hash admits, and it has no script.
    let page = send(h.addr, "GET", "/", &[]).await.body;
    let style = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(s, _)| s)
        .expect("a style block");
    use base64::Engine as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
    assert!(
        content_security_policy().contains(&format!("'sha256-{hash}'")),
        "{}",
        content_security_policy()
    );
    assert_eq!(page.matches("<style").count(), 1);
    assert!(!page.contains("<script") && !page.contains(" style="));
    h.stop().await;
}

// ---- connections ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_five_idle_connections_from_one_client_do_not_lock_out_another() {
    let h = Harness::start(Options::default()).await;
    let mut idle = Vec::new();
    for _ in 0..65 {
        idle.push(TcpStream::connect(h.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another client (another loopback address) is served at once.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let mut tcp = socket
        .connect(h.addr)
        .await
        .expect("connect from 127.0.0.2");
    let started = Instant::now();
    let a = exchange(
        &mut tcp,
        &format!("GET /healthz HTTP/1.1\r\nHost: {}", h.addr),
    )
    .await
    .expect("another client is served");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The idle client's connections past its limit were closed at once.
    let mut closed = 0;
    for s in &mut idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        65 - http::MAX_CONNECTIONS_PER_CLIENT,
        "closed connections"
    );
    drop(idle);
    h.stop().await;
}

// ---- TLS ----

/// A TLS client trusting `ca` (a fixture), with the client certificate `client` if any.
fn tls_client(ca: &str, client: Option<&str>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(fixture(ca)).expect("CA file");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let pem = std::fs::read(fixture(&format!("{name}.pem"))).expect("client cert");
            let chain = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .expect("client chain");
            let pem = std::fs::read(fixture(&format!("{name}-key.pem"))).expect("client key");
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .expect("key file")
                .expect("a key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// GET /healthz over TLS; the server's certificate (DER) and the answer, or the error.
async fn tls_get(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<(Vec<u8>, Answer)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = connector.connect(name, tcp).await?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let a = exchange(&mut tls, &format!("GET /healthz HTTP/1.1\r\nHost: {addr}")).await?;
    Ok((cert, a))
}

#[tokio::test]
async fn tls_serves_a_trusting_client_and_fails_an_untrusting_one_and_plain_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {FIXTURES}/server.pem\n  key_file: {FIXTURES}/server-key.pem\n"
        ),
    )
    .expect("web config");
    let h = tls_harness(&web).await;
    let (_, a) = tls_get(h.addr, &tls_client("ca.pem", None))
        .await
        .expect("trusting client");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    assert_security_headers(&a, "HTTPS");
    // A client that trusts another CA refuses the server.
    let e = tls_get(h.addr, &tls_client("client-ca.pem", None)).await;
    assert!(e.is_err(), "a client trusting another CA was served");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(h.addr).await.expect("connect");
    assert!(
        exchange(&mut tcp, "GET /healthz HTTP/1.1\r\nHost: x")
            .await
            .is_err()
    );
    h.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_and_only_those_of_the_configured_ca_pass() {
    let h = tls_harness(&fixture("valid-tls-auth.yml")).await;
    // valid-tls-auth.yml also has basic-auth users; /healthz answers without a password.
    let (_, a) = tls_get(h.addr, &tls_client("ca.pem", Some("client")))
        .await
        .expect("the configured CA's client");
    assert_eq!(a.status, 200, "{a:?}");
    for (what, client) in [
        ("no certificate", None),
        ("untrusted CA", Some("rogue-client")),
    ] {
        let r = tls_get(h.addr, &tls_client("ca.pem", client)).await;
        assert!(r.is_err(), "{what}: served {:?}", r.map(|(_, a)| a.status));
    }
    h.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_from_the_next_handshake_and_a_broken_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixture("server.pem"), &cert).expect("copy");
    std::fs::copy(fixture("server-key.pem"), &key).expect("copy");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n",
    )
    .expect("web");
    let h = tls_harness(&web).await;
    // A new client each time: a resumed TLS session shows no certificate.
    let client = || tls_client("ca.pem", None);
    let der = |name: &str| {
        let pem = std::fs::read(fixture(name)).expect("pem");
        rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .expect("a cert")
            .expect("cert")
            .to_vec()
    };
    let (served, _) = tls_get(h.addr, &client()).await.expect("first");
    assert_eq!(served, der("server.pem"));
    // Renewal as cert-manager and certbot do it: new files renamed into place.
    std::fs::copy(fixture("server-renewed.pem"), dir.path().join("c.tmp")).expect("copy");
    std::fs::copy(fixture("server-renewed-key.pem"), dir.path().join("k.tmp")).expect("copy");
    std::fs::rename(dir.path().join("k.tmp"), &key).expect("rename");
    std::fs::rename(dir.path().join("c.tmp"), &cert).expect("rename");
    let (served, _) = tls_get(h.addr, &client()).await.expect("after renewal");
    assert_eq!(served, der("server-renewed.pem"), "the renewed certificate");
    // A half-written certificate: the last good one stays in use.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB").expect("write");
    let (served, _) = tls_get(h.addr, &client()).await.expect("while broken");
    assert_eq!(served, der("server-renewed.pem"));
    h.stop().await;
}

async fn tls_harness(web: &Path) -> Harness {
    Harness::start(Options {
        web_config: Some(web.to_path_buf()),
        ..Options::default()
    })
    .await
}
