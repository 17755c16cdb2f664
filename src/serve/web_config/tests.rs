use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/web");

fn parse_text(text: &str) -> Result<WebConfig, WebConfigError> {
    parse(text, &Path::new(DIR).join("web.yml"))
}

#[test]
fn the_full_fixture_becomes_the_settings_it_names() {
    let c = load(&Path::new(DIR).join("valid-tls-auth.yml")).unwrap_or_else(|e| panic!("{e}"));
    let tls = c.tls.as_ref().expect("TLS");
    assert_eq!(tls.cert_file, Path::new(DIR).join("server.pem"));
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(tls.versions.len(), 2);
    // TLS 1.3 suites first (all of them), then the chosen TLS 1.2 ones in the order given.
    let names: Vec<String> = tls
        .cipher_suites
        .iter()
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    assert_eq!(
        names[names.len() - 2..],
        [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
    assert!(
        names[..names.len() - 2]
            .iter()
            .all(|n| n.starts_with("TLS13_")),
        "{names:?}"
    );
    let groups: Vec<String> = tls
        .kx_groups
        .iter()
        .map(|g| format!("{:?}", g.name()))
        .collect();
    assert_eq!(groups, ["X25519", "secp256r1"]);
    assert!(tls.prefer_server_order);
    assert_eq!(c.users.len(), 2);
}

#[test]
fn debug_output_names_users_but_never_their_hashes() {
    let c = load(&Path::new(DIR).join("valid-tls-auth.yml")).unwrap_or_else(|e| panic!("{e}"));
    let shown = format!("{c:?}");
    assert!(
        shown.contains("prometheus") && !shown.contains("$2y$"),
        "{shown}"
    );
}

#[test]
fn an_empty_or_comment_only_file_means_no_tls_and_no_auth() {
    for text in ["", "\n", "# nothing\n", "{}"] {
        let c = parse_text(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert!(c.tls.is_none() && c.users.is_empty(), "{text:?}");
    }
}

#[test]
fn tls_12_only_and_tls_13_only_are_possible() {
    let base = "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n";
    let only12 = parse_text(&format!("{base}  max_version: TLS12\n")).expect("TLS 1.2 only");
    assert_eq!(
        only12.tls.expect("tls").versions,
        vec![&rustls::version::TLS12]
    );
    let only13 = parse_text(&format!("{base}  min_version: TLS13\n")).expect("TLS 1.3 only");
    assert_eq!(
        only13.tls.expect("tls").versions,
        vec![&rustls::version::TLS13]
    );
    assert_eq!(
        parse_text(base).expect("defaults").summary(),
        "TLS 1.2 and 1.3, no basic auth"
    );
}
