//! TLS for the HTTP endpoints (RFC 8446 / RFC 5246 through rustls on the ring provider, as
//! everywhere in mailcanary), set up from the web config's `tls_server_config`.
//!
//! The certificate is reloaded when its files change, as the exporter toolkit does (it re-reads
//! them on every handshake): each handshake compares the files' modification time, size and
//! inode with those of the pair in use (two `stat` calls) and re-reads both only when one
//! changed. A pair that cannot be used (half-written, mismatched) is logged and the previous
//! one stays in use, so renewing a certificate never takes the endpoint down; the next
//! handshake tries again. The client CA (`client_ca_file`) is read at start.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::SupportedCipherSuite;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

/// Who must show a client certificate (Go's `tls.ClientAuthType` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }
}

/// `tls_server_config`, validated (by [`crate::serve::web_config`]); [`server_config`] turns it
/// into a rustls config.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub client_ca_file: Option<PathBuf>,
    /// The protocol versions from `min_version` to `max_version`.
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Every TLS 1.3 suite and the chosen TLS 1.2 ones, in preference order.
    pub cipher_suites: Vec<SupportedCipherSuite>,
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    /// `prefer_server_cipher_suites` (the toolkit's default: true).
    pub prefer_server_order: bool,
}

/// A problem with one of the files `tls_server_config` names; `key` is its config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub key: &'static str,
    pub problem: String,
}

fn problem(key: &'static str, problem: impl std::fmt::Display) -> FileProblem {
    FileProblem {
        key,
        problem: problem.to_string(),
    }
}

/// The rustls server config of `settings`: every file read and checked (the key matches the
/// certificate, the CA file holds a CA), or every problem found.
pub fn server_config(
    settings: &TlsSettings,
) -> Result<Arc<rustls::ServerConfig>, Vec<FileProblem>> {
    let provider = Arc::new(CryptoProvider {
        cipher_suites: settings.cipher_suites.clone(),
        kx_groups: settings.kx_groups.clone(),
        ..rustls::crypto::ring::default_provider()
    });
    let mut problems = Vec::new();
    let cert = match CertFiles::load(&settings.cert_file, &settings.key_file, &provider) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let verifier = match client_verifier(settings, &provider) {
        Ok(v) => v,
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let builder = match rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.versions)
    {
        Ok(b) => Some(b),
        Err(e) => {
            problems.push(problem(
                "cipher_suites",
                format_args!("no cipher suite left for the TLS versions allowed: {e}"),
            ));
            None
        }
    };
    let (Some(cert), Some(builder)) = (cert, builder) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let resolver = ReloadingCert {
        cert_file: settings.cert_file.clone(),
        key_file: settings.key_file.clone(),
        provider,
        current: Mutex::new(cert),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.ignore_client_order = settings.prefer_server_order;
    // HTTP/1.1 only (the accept loop serves hyper's http1).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    settings: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, FileProblem> {
    if settings.client_auth == ClientAuth::NoClientCert {
        return Ok(None);
    }
    let Some(path) = &settings.client_ca_file else {
        // Refused by the web config's validation already.
        return Err(problem("client_ca_file", "required"));
    };
    let certs = read_certs(path).map_err(|p| problem("client_ca_file", p))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            problem(
                "client_ca_file",
                format_args!("{}: not a usable CA certificate: {e}", path.display()),
            )
        })?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = match settings.client_auth {
        ClientAuth::VerifyClientCertIfGiven => builder.allow_unauthenticated(),
        _ => builder,
    };
    let verifier = builder
        .build()
        .map_err(|e| problem("client_ca_file", format_args!("{}: {e}", path.display())))?;
    Ok(Some(verifier))
}

/// Every certificate of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: not a PEM key file: {e}", path.display()))?
        .ok_or_else(|| format!("no PEM private key in {}", path.display()))
}

/// What identifies a version of a file: modification time, size, inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<std::time::SystemTime>, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp(m.modified().ok(), m.len(), inode))
}

/// The certificate pair in use and the stamps of the files it was read from.
struct CertFiles {
    key: Arc<CertifiedKey>,
    stamps: (Option<Stamp>, Option<Stamp>),
}

impl CertFiles {
    fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: &CryptoProvider,
    ) -> Result<CertFiles, FileProblem> {
        // Stamps first: a file replaced while it is read is read again at the next handshake.
        let stamps = (stamp(cert_file), stamp(key_file));
        let chain = read_certs(cert_file).map_err(|p| problem("cert_file", p))?;
        let key = read_key(key_file).map_err(|p| problem("key_file", p))?;
        let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => problem(
                "key_file",
                format_args!(
                    "{} is not the key of the certificate in {}",
                    key_file.display(),
                    cert_file.display()
                ),
            ),
            e => problem(
                "key_file",
                format_args!("{}: cannot use this key: {e}", key_file.display()),
            ),
        })?;
        Ok(CertFiles {
            key: Arc::new(key),
            stamps,
        })
    }
}

/// Serves the certificate of `cert_file`/`key_file`, re-read when either file changes.
struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<CertFiles>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = (stamp(&self.cert_file), stamp(&self.key_file));
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != current.stamps {
            match CertFiles::load(&self.cert_file, &self.key_file, &self.provider) {
                Ok(fresh) => {
                    tracing::info!(
                        cert_file = %self.cert_file.display(),
                        "TLS certificate files changed; the new certificate is in use"
                    );
                    *current = fresh;
                }
                Err(p) => {
                    tracing::error!(
                        cert_file = %self.cert_file.display(),
                        error = %p.problem,
                        "TLS certificate files changed but cannot be used; the previous certificate stays in use"
                    );
                    // Not again for this version of the files.
                    current.stamps = now;
                }
            }
        }
        Some(current.key.clone())
    }
}
