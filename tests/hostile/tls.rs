//! TLS for the hostile IMAP servers (RFC 8314 implicit TLS), with a test-only CA checked in under
//! `tests/hostile/tls/`: `ca.pem` signs `server.pem` (P-256, SAN IP 127.0.0.1, valid to 2126).
//! The key is public on purpose and worthless outside these tests. It is needed because
//! mailcanary refuses a seed mailbox without TLS (the password would go in clear), so every
//! IMAP scenario past the greeting has to speak TLS first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The CA the seeds trust (`ca_file`).
pub fn ca_file() -> PathBuf {
    dir().join("ca.pem")
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/tls")
}

fn server_config() -> Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let pem = std::fs::read(dir().join("server.pem")).expect("read server.pem");
            let chain = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .expect("parse server.pem");
            let pem = std::fs::read(dir().join("server-key.pem")).expect("read server-key.pem");
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .expect("parse server-key.pem")
                .expect("a private key in server-key.pem");
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
            Arc::new(config)
        })
        .clone()
}

/// A byte stream a hostile server can talk over: plain TCP or TLS.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Wraps an accepted connection in server-side TLS; the handshake runs on first read or write.
pub fn accept(tcp: TcpStream) -> Box<dyn Stream> {
    let conn = rustls::ServerConnection::new(server_config()).expect("TLS server connection");
    Box::new(rustls::StreamOwned::new(conn, tcp))
}
