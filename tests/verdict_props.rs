//! Property tests: the verdict reader never panics, whatever it is given, and what it
//! returns is consistent with the trust rules.

use mailcanary::verdict::{AuthResult, InspectError, Inspection, inspect, to_json};
use proptest::prelude::*;

/// Pieces that real and hostile headers are made of, so that generated input reaches deep
/// into the parsers instead of stopping at the first byte.
fn header_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Authentication-Results:".to_string()),
        Just("ARC-Authentication-Results: i=1;".to_string()),
        Just("Received-SPF:".to_string()),
        Just("X-Spam-Status: Yes, score=".to_string()),
        Just("X-Spam-Flag: YES".to_string()),
        Just("X-Spamd-Result: default: False [".to_string()),
        Just("X-Forefront-Antispam-Report: SFV:SPM;SCL:".to_string()),
        Just(" mx.example.net".to_string()),
        Just(" 1".to_string()),
        Just(";".to_string()),
        Just(" none".to_string()),
        Just(" spf=pass".to_string()),
        Just(" dkim/1=fail".to_string()),
        Just(" dmarc=pass(p=REJECT)".to_string()),
        Just(" reason=\"".to_string()),
        Just(" smtp.mailfrom=".to_string()),
        Just(" header.d=example.com".to_string()),
        Just(" policy . expired = 1".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("=".to_string()),
        Just(".".to_string()),
        Just("/".to_string()),
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n ".to_string()),
        Just("\n\t".to_string()),
        Just("\n\n".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,4}",
    ]
}

fn headerish() -> impl Strategy<Value = String> {
    prop::collection::vec(header_piece(), 0..60).prop_map(|pieces| pieces.concat())
}

fn ids() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            Just(String::new()),
            Just("mx.example.net".to_string()),
            Just("MX.EXAMPLE.NET".to_string()),
            "[a-z.]{0,8}",
        ],
        0..3,
    )
}

/// What must hold of every inspection.
fn check_invariants(inspection: &Inspection, ids: &[String]) {
    to_json(inspection).expect("renders as JSON");
    let trusted: Vec<_> = inspection
        .authentication_results
        .iter()
        .filter(|header| header.trusted)
        .collect();
    if ids.is_empty() {
        // Without ids, the top-most header is always trusted.
        if let Some(top) = inspection.authentication_results.first() {
            assert!(top.trusted);
        }
    }
    match trusted.first() {
        Some(first) => assert_eq!(inspection.verdict.authserv_id, first.authserv_id),
        None => {
            assert_eq!(inspection.verdict.authserv_id, None);
            assert_eq!(inspection.verdict.dkim, AuthResult::None);
            assert_eq!(inspection.verdict.dmarc, AuthResult::None);
        }
    }
    for header in &inspection.authentication_results {
        for result in &header.results {
            assert_eq!(result.method, result.method.to_ascii_lowercase());
            assert_eq!(
                result.result.as_str(),
                result.result.as_str().to_ascii_lowercase()
            );
            for key in result.properties.keys() {
                assert_eq!(*key, key.to_ascii_lowercase());
            }
        }
    }
    for score in [inspection.spam.score, inspection.spam.threshold]
        .into_iter()
        .flatten()
    {
        assert!(score.is_finite());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..2048), ids in ids()) {
        if let Ok(inspection) = inspect(&raw, &ids) {
            check_invariants(&inspection, &ids);
        }
    }

    #[test]
    fn never_panics_on_headerish_text(text in headerish(), ids in ids()) {
        match inspect(text.as_bytes(), &ids) {
            Ok(inspection) => check_invariants(&inspection, &ids),
            Err(InspectError::Empty) => prop_assert!(text.is_empty()),
            Err(err) => prop_assert_eq!(err.reason(), "parse"),
        }
    }

    #[test]
    fn lf_and_crlf_read_the_same(text in headerish(), ids in ids()) {
        // Only for text without CRs: a lone CR is content, not a line end.
        let lf = text.replace('\r', "");
        let crlf = lf.replace('\n', "\r\n");
        let a = inspect(lf.as_bytes(), &ids).map(|i| to_json(&i).expect("json"));
        let b = inspect(crlf.as_bytes(), &ids).map(|i| to_json(&i).expect("json"));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_header_added_below_never_overrides(value in headerish()) {
        // Whatever a sender writes below the receiver's header, the methods the receiver
        // reported keep the receiver's results.
        let value = value.replace(['\r', '\n'], " ");
        let raw = format!(
            "Authentication-Results: mx.example.net; spf=fail; dkim=fail; dmarc=fail\nReceived: x\nAuthentication-Results: mx.example.net;{value}\n"
        );
        let inspection = inspect(raw.as_bytes(), &[]).expect("message");
        prop_assert_eq!(&inspection.verdict.spf, &AuthResult::Fail);
        prop_assert_eq!(&inspection.verdict.dkim, &AuthResult::Fail);
        prop_assert_eq!(&inspection.verdict.dmarc, &AuthResult::Fail);
    }
}
