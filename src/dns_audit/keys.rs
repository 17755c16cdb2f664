//! DKIM public keys: the published one (`p=` of the key record) and the public half of the
//! signing key (a PEM file), in one comparable form, with the RSA modulus size in bits.
//!
//! mail-auth validates the key record but exposes neither the key bytes nor their type, and
//! ring refuses to load RSA private keys under 2048 bits (exactly the weak keys we must
//! compare), so the few DER structures involved are read here: SubjectPublicKeyInfo
//! (RFC 5280 §4.1), RSAPublicKey / RSAPrivateKey (RFC 8017 appendix A.1) and PKCS #8
//! PrivateKeyInfo (RFC 5208 §5). Ed25519 public keys come from mail-auth (ring).

use std::path::Path;

/// A public key in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: modulus and public exponent, big-endian, without leading zero bytes.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// Ed25519 (RFC 8463): the raw 32-byte key.
    Ed25519(Vec<u8>),
}

impl PublicKey {
    /// The key size: the RSA modulus length in bits, 256 for Ed25519.
    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Rsa { modulus, .. } => match modulus.first() {
                Some(first) => {
                    let len = u32::try_from(modulus.len()).unwrap_or(u32::MAX / 8);
                    len.saturating_mul(8).saturating_sub(first.leading_zeros())
                }
                None => 0,
            },
            PublicKey::Ed25519(_) => 256,
        }
    }

    /// `rsa` or `ed25519` (the DKIM `k=` names, RFC 6376 §3.6.1, RFC 8463).
    pub fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "rsa",
            PublicKey::Ed25519(_) => "ed25519",
        }
    }
}

/// A key that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The signing key file cannot be read.
    #[error("cannot read the signing key {path}: {message}")]
    Read { path: String, message: String },
    /// No private key in the PEM file.
    #[error("{path} holds no PEM private key")]
    NoPrivateKey { path: String },
    /// `p=` is not valid base64.
    #[error("p= is not valid base64")]
    Base64,
    /// The DER structure is not what it should be.
    #[error("malformed {0}")]
    Der(&'static str),
    /// A key type DKIM does not use.
    #[error("unsupported key type: {0}")]
    Unsupported(String),
}

impl KeyError {
    /// A fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            KeyError::Read { .. } => "key_read",
            KeyError::NoPrivateKey { .. } | KeyError::Base64 | KeyError::Der(_) => "key_format",
            KeyError::Unsupported(_) => "key_unsupported",
        }
    }
}

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1 rsaEncryption
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.3.101.112 id-Ed25519
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A reader over DER TLVs; every read is bounds-checked.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), KeyError> {
        let err = || KeyError::Der(what);
        let (&tag, rest) = self.0.split_first().ok_or_else(err)?;
        let (&first, mut rest) = rest.split_first().ok_or_else(err)?;
        let len = if first & 0x80 == 0 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(err());
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return Err(err());
        }
        let (content, after) = rest.split_at(len);
        self.0 = after;
        Ok((tag, content))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], KeyError> {
        match self.next(what)? {
            (found, content) if found == tag => Ok(content),
            _ => Err(KeyError::Der(what)),
        }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }
}

fn unsigned(integer: &[u8]) -> Vec<u8> {
    let start = integer
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(integer.len());
    integer[start..].to_vec()
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
fn rsa_public_key(der: &[u8]) -> Result<PublicKey, KeyError> {
    let what = "RSAPublicKey";
    let mut seq = Der(Der(der).expect(TAG_SEQUENCE, what)?);
    let modulus = unsigned(seq.expect(TAG_INTEGER, what)?);
    let exponent = unsigned(seq.expect(TAG_INTEGER, what)?);
    if modulus.is_empty() || exponent.is_empty() {
        return Err(KeyError::Der(what));
    }
    Ok(PublicKey::Rsa { modulus, exponent })
}

/// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
fn subject_public_key_info(der: &[u8]) -> Result<PublicKey, KeyError> {
    let what = "SubjectPublicKeyInfo";
    let mut spki = Der(Der(der).expect(TAG_SEQUENCE, what)?);
    let mut algorithm = Der(spki.expect(TAG_SEQUENCE, what)?);
    let oid = algorithm.expect(TAG_OID, what)?;
    let bits = spki.expect(TAG_BIT_STRING, what)?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(KeyError::Der(what)),
    };
    if oid == OID_RSA {
        rsa_public_key(key)
    } else if oid == OID_ED25519 && key.len() == 32 {
        Ok(PublicKey::Ed25519(key.to_vec()))
    } else {
        Err(KeyError::Unsupported(format!(
            "algorithm OID {}",
            hex::encode(oid)
        )))
    }
}

/// The key of a DKIM key record: `k=` (default `rsa`) and the base64 `p=` value.
/// RSA keys are accepted as SubjectPublicKeyInfo (what `openssl rsa -pubout` writes and almost
/// everyone publishes) or as a bare RSAPublicKey (the letter of RFC 6376 §3.6.1).
pub fn published_key(k: &str, p_base64: &str) -> Result<PublicKey, KeyError> {
    let compact: Vec<u8> = p_base64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = mail_parser::decoders::base64::base64_decode(&compact).ok_or(KeyError::Base64)?;
    match k.trim().to_ascii_lowercase().as_str() {
        "" | "rsa" => {
            let outer = Der(&der).expect(TAG_SEQUENCE, "RSA public key")?;
            if Der(outer).peek_tag() == Some(TAG_SEQUENCE) {
                subject_public_key_info(&der)
            } else {
                rsa_public_key(&der)
            }
        }
        "ed25519" if der.len() == 32 => Ok(PublicKey::Ed25519(der)),
        "ed25519" => Err(KeyError::Der("Ed25519 public key (32 bytes)")),
        other => Err(KeyError::Unsupported(other.to_string())),
    }
}

/// The public half of a PEM private key (PKCS #1 RSA, or PKCS #8 RSA / Ed25519).
pub fn public_from_private_pem(pem: &[u8], path: &str) -> Result<PublicKey, KeyError> {
    use rustls::pki_types::PrivateKeyDer;
    let mut reader = pem;
    let key = rustls_pemfile::private_key(&mut reader)
        .map_err(|e| KeyError::Read {
            path: path.to_string(),
            message: e.to_string(),
        })?
        .ok_or_else(|| KeyError::NoPrivateKey {
            path: path.to_string(),
        })?;
    match &key {
        PrivateKeyDer::Pkcs1(der) => rsa_private_key(der.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(der) => pkcs8(der.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(_) => Err(KeyError::Unsupported(
            "EC (SEC1) keys are not used by DKIM".to_string(),
        )),
        _ => Err(KeyError::Unsupported(
            "unknown private key format".to_string(),
        )),
    }
}

/// Reads `path` and returns its public key.
pub fn signing_key_public(path: &Path) -> Result<PublicKey, KeyError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| KeyError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    public_from_private_pem(&pem, &shown)
}

/// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
fn rsa_private_key(der: &[u8]) -> Result<PublicKey, KeyError> {
    let what = "RSAPrivateKey";
    let mut seq = Der(Der(der).expect(TAG_SEQUENCE, what)?);
    seq.expect(TAG_INTEGER, what)?;
    let modulus = unsigned(seq.expect(TAG_INTEGER, what)?);
    let exponent = unsigned(seq.expect(TAG_INTEGER, what)?);
    if modulus.is_empty() || exponent.is_empty() {
        return Err(KeyError::Der(what));
    }
    Ok(PublicKey::Rsa { modulus, exponent })
}

/// PrivateKeyInfo ::= SEQUENCE { version, privateKeyAlgorithm, privateKey OCTET STRING, ... }
fn pkcs8(der: &[u8]) -> Result<PublicKey, KeyError> {
    let what = "PKCS #8 PrivateKeyInfo";
    let mut seq = Der(Der(der).expect(TAG_SEQUENCE, what)?);
    seq.expect(TAG_INTEGER, what)?;
    let mut algorithm = Der(seq.expect(TAG_SEQUENCE, what)?);
    let oid = algorithm.expect(TAG_OID, what)?;
    let private = seq.expect(TAG_OCTET_STRING, what)?;
    if oid == OID_RSA {
        rsa_private_key(private)
    } else if oid == OID_ED25519 {
        let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_maybe_unchecked_der(der)
            .map_err(|_| KeyError::Der("Ed25519 private key"))?;
        Ok(PublicKey::Ed25519(key.public_key()))
    } else {
        Err(KeyError::Unsupported(format!(
            "algorithm OID {}",
            hex::encode(oid)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/dns/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn p_of(record: &str) -> String {
        let tags = crate::dns_audit::tags::parse(record);
        crate::dns_audit::tags::get(&tags, "p")
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn published_rsa_key_sizes() {
        let k2048 = published_key("rsa", &p_of(&fixture("rsa2048.txt"))).expect("2048");
        assert_eq!(k2048.bits(), 2048);
        assert_eq!(k2048.kind(), "rsa");
        let k1024 = published_key("", &p_of(&fixture("rsa1024.txt"))).expect("1024");
        assert_eq!(k1024.bits(), 1024);
    }

    #[test]
    fn private_keys_match_their_published_halves() {
        let published = published_key("rsa", &p_of(&fixture("rsa1024.txt"))).expect("p=");
        for file in ["rsa1024.pkcs8.pem", "rsa1024.pkcs1.pem"] {
            let private = public_from_private_pem(fixture(file).as_bytes(), file).expect(file);
            assert_eq!(private, published, "{file}");
        }
        let other = published_key("rsa", &p_of(&fixture("rsa2048.txt"))).expect("p=");
        assert_ne!(other, published);
    }

    #[test]
    fn ed25519_keys() {
        let published =
            published_key("ed25519", &p_of(&fixture("ed25519.txt"))).expect("ed25519 p=");
        assert_eq!(published.bits(), 256);
        assert_eq!(published.kind(), "ed25519");
        let private = public_from_private_pem(fixture("ed25519.pem").as_bytes(), "ed25519.pem")
            .expect("ed25519 private");
        assert_eq!(private, published);
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert_eq!(published_key("rsa", "!!!"), Err(KeyError::Base64));
        assert!(matches!(
            published_key("rsa", "MAMCAQE="),
            Err(KeyError::Der(_))
        ));
        assert!(published_key("rsa", "").is_err());
        assert!(matches!(
            published_key("dsa", "AAAA"),
            Err(KeyError::Unsupported(_))
        ));
        assert!(matches!(
            public_from_private_pem(b"not pem", "x"),
            Err(KeyError::NoPrivateKey { .. })
        ));
        // Truncated DER at every length: never a panic.
        let der =
            mail_parser::decoders::base64::base64_decode(p_of(&fixture("rsa1024.txt")).as_bytes())
                .expect("base64");
        for len in 0..der.len() {
            let _ = subject_public_key_info(&der[..len]);
        }
    }
}
