//! Hostile input too large or too repetitive to keep as fixture files: generated here.

use std::time::{Duration, Instant};

use mailcanary::verdict::{AuthResult, inspect};

/// Generous bound: each case below takes a few milliseconds in a debug build. A parser that
/// went quadratic would take minutes.
const BOUND: Duration = Duration::from_secs(20);

fn timed<T>(what: &str, run: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = run();
    let took = start.elapsed();
    assert!(took < BOUND, "{what} took {took:?}");
    out
}

#[test]
fn one_megabyte_authentication_results_value() {
    let mut raw =
        String::from("Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=a.example;");
    while raw.len() < 1 << 20 {
        raw.push_str(" dkim=pass header.d=x.example header.b=AbCdEfGh;");
    }
    raw.push_str("\nSubject: big\n\nbody\n");
    let inspection = timed("1 MB value", || inspect(raw.as_bytes(), &[])).expect("message");
    assert_eq!(inspection.verdict.spf, AuthResult::Pass);
    assert_eq!(inspection.verdict.dkim, AuthResult::Pass);
    assert!(inspection.authentication_results[0].results.len() > 20_000);
}

#[test]
fn one_megabyte_folded_header() {
    let mut raw = String::from("Authentication-Results: mx.example.net;\r\n spf=fail");
    while raw.len() < 1 << 20 {
        raw.push_str("\r\n (folded comment line)");
    }
    raw.push_str("\r\n\r\n");
    let inspection = timed("1 MB folded", || inspect(raw.as_bytes(), &[])).expect("message");
    assert_eq!(inspection.verdict.spf, AuthResult::Fail);
}

#[test]
fn one_megabyte_of_unterminated_comments_and_quotes() {
    for unit in ["(", "\"", "\\", "(\"", "=", ";", "((((()"] {
        let raw = format!(
            "Authentication-Results: mx; spf=pass {}\n",
            unit.repeat((1 << 20) / unit.len())
        );
        let inspection = timed(unit, || inspect(raw.as_bytes(), &[])).expect("message");
        assert_eq!(inspection.verdict.spf, AuthResult::Pass, "unit {unit:?}");
    }
}

#[test]
fn one_megabyte_single_line_without_colon_is_not_a_message() {
    let raw = vec![b'A'; 1 << 20];
    let err = timed("1 MB junk", || inspect(&raw, &[])).expect_err("not a message");
    assert_eq!(err.reason(), "parse");
    assert!(
        err.to_string().len() < 200,
        "the error quotes a short prefix only"
    );
}

#[test]
fn many_headers() {
    let mut raw = String::new();
    for i in 0..20_000 {
        raw.push_str(&format!(
            "Authentication-Results: mx{}.example; spf=pass\n",
            i % 7
        ));
        raw.push_str("Received-SPF: pass client-ip=192.0.2.1\nX-Spam-Status: No, score=1\n");
    }
    let inspection = timed("many headers", || inspect(raw.as_bytes(), &[])).expect("message");
    assert_eq!(inspection.authentication_results.len(), 20_000);
    assert_eq!(
        inspection
            .authentication_results
            .iter()
            .filter(|h| h.trusted)
            .count(),
        20_000 / 7 + 1
    );
}

#[test]
fn spam_headers_of_a_megabyte() {
    let tests = vec!["RULE_X"; 100_000].join(",");
    let raw = format!(
        "X-Spam-Status: Yes, score=9.9 required=5.0 tests={tests} autolearn=no\nX-Spamd-Result: default: True [1 / 2]; {}\nX-Forefront-Antispam-Report: {}\n",
        "S(1)[a];".repeat(100_000),
        "SFV:SPM;".repeat(100_000)
    );
    let inspection = timed("spam", || inspect(raw.as_bytes(), &[])).expect("message");
    assert!(inspection.spam.flagged);
    assert_eq!(inspection.spam.rules.len(), 100_000);
}
