//! The `Authentication-Results` header field (RFC 8601) and its ARC twin (RFC 8617 §4.1.1).
//!
//! The grammar (RFC 8601 §2.2), with `CFWS` allowed almost everywhere:
//!
//! ```text
//! authres-payload = [CFWS] authserv-id [ CFWS authres-version ]
//!                   ( no-result / 1*resinfo ) [CFWS] CRLF
//! no-result       = [CFWS] ";" [CFWS] "none"
//! resinfo         = [CFWS] ";" methodspec [ CFWS reasonspec ] [ CFWS 1*propspec ]
//! methodspec      = [CFWS] method [CFWS] "=" [CFWS] result
//! method          = Keyword [ [CFWS] "/" [CFWS] method-version ]
//! reasonspec      = "reason" [CFWS] "=" [CFWS] value
//! propspec        = ptype [CFWS] "." [CFWS] property [CFWS] "=" pvalue
//! pvalue          = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]
//! ```
//!
//! Real receivers bend it, and we read what they write:
//! - Microsoft writes no authserv-id at all (`Authentication-Results: spf=pass ...`): when the
//!   first word is followed by `=` or `/`, it is a method, not an authserv-id;
//! - `;` with no space after it, a comment glued to the result (`dmarc=pass(p=REJECT)`), a
//!   trailing `;`, upper-case keywords;
//! - properties without a ptype (Microsoft's `action=none`, `compauth=pass reason=100`);
//! - unquoted values holding `/`, `+`, `=` and `@` (DKIM `header.b`).
//!
//! A piece that cannot be read is skipped up to the next `;`, so one bad result never hides
//! the others.

use std::collections::BTreeMap;

use super::lexer::Cursor;
use super::{ArcAuthResultsHeader, AuthResult, AuthResultsHeader, MethodResult};

/// Parses the value of an `Authentication-Results` header field. Never fails: what cannot be
/// read is left out. `trusted` starts false; the judge decides it.
pub(crate) fn parse_header(value: &str) -> AuthResultsHeader {
    let mut cursor = Cursor::new(value);
    let (authserv_id, version) = authserv_id_and_version(&mut cursor);
    AuthResultsHeader {
        authserv_id,
        version,
        results: results(&mut cursor),
        trusted: false,
    }
}

/// Parses the value of an `ARC-Authentication-Results` header field: an `i=` instance tag
/// and `;` (RFC 8617 §4.1.1), then an `Authentication-Results` payload.
pub(crate) fn parse_arc_header(value: &str) -> ArcAuthResultsHeader {
    let mut cursor = Cursor::new(value);
    let instance = arc_instance(&mut cursor);
    let (authserv_id, version) = authserv_id_and_version(&mut cursor);
    ArcAuthResultsHeader {
        instance,
        authserv_id,
        version,
        results: results(&mut cursor),
    }
}

/// Reads `i=N;` when the value starts with it; otherwise leaves the cursor where it was.
fn arc_instance(cursor: &mut Cursor<'_>) -> Option<u32> {
    let start = cursor.pos();
    cursor.skip_cfws_quiet();
    if cursor.keyword().eq_ignore_ascii_case("i") {
        cursor.skip_cfws_quiet();
        if cursor.eat(b'=') {
            cursor.skip_cfws_quiet();
            let instance = cursor.take_while(|byte| byte.is_ascii_digit()).parse().ok();
            // The tag ends at `;`; whatever else is before it is not an authserv-id.
            cursor.skip_to_semicolon();
            cursor.eat(b';');
            return instance;
        }
    }
    cursor.set_pos(start);
    None
}

/// Reads the authserv-id and the optional version after it (RFC 8601 §2.2). The id is a
/// `value` (RFC 2045 token or quoted string); a first word followed by `=` or `/` is a
/// method instead, as in Microsoft's headers, and then there is no id.
fn authserv_id_and_version(cursor: &mut Cursor<'_>) -> (Option<String>, Option<u32>) {
    cursor.skip_cfws_quiet();
    let start = cursor.pos();
    let id = if cursor.peek() == Some(b'"') {
        Some(cursor.quoted_string())
    } else {
        let token =
            cursor.take_while(|byte| !super::lexer::is_ws(byte) && !b";()=/\"".contains(&byte));
        cursor.skip_cfws_quiet();
        if matches!(cursor.peek(), Some(b'=' | b'/')) {
            cursor.set_pos(start);
            return (None, None);
        }
        (!token.is_empty()).then(|| token.to_string())
    };
    cursor.skip_cfws_quiet();
    let mut version = None;
    if id.is_some() && cursor.peek().is_some_and(|byte| byte.is_ascii_digit()) {
        let before = cursor.pos();
        let digits = cursor.take_while(|byte| byte.is_ascii_digit());
        match cursor.peek() {
            // A version is all digits, then CFWS or `;` (or the end: "example.org 1").
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b'(' | b';') => {
                version = digits.parse().ok();
            }
            _ => cursor.set_pos(before),
        }
    }
    (id, version)
}

/// Reads every `resinfo` up to the end of the value. A `;` is expected before each one, but a
/// missing one is forgiven (`mx.example.net spf=pass`).
fn results(cursor: &mut Cursor<'_>) -> Vec<MethodResult> {
    let mut results = Vec::new();
    loop {
        cursor.skip_cfws_quiet();
        if cursor.at_end() {
            return results;
        }
        if cursor.eat(b';') {
            continue;
        }
        let before = cursor.pos();
        if let Some(result) = resinfo(cursor) {
            results.push(result);
        }
        if cursor.pos() == before {
            cursor.bump();
        }
    }
}

/// Reads one `resinfo` after its `;`, up to (not including) the next `;`. `None` for the
/// `none` of a no-result header, and for anything that is not `method=result`.
fn resinfo(cursor: &mut Cursor<'_>) -> Option<MethodResult> {
    let mut comments = String::new();
    let method = cursor.keyword();
    if method.is_empty() {
        cursor.skip_to_semicolon();
        return None;
    }
    cursor.skip_cfws(&mut comments);
    let mut method_version = None;
    if cursor.eat(b'/') {
        cursor.skip_cfws(&mut comments);
        method_version = cursor.take_while(|byte| byte.is_ascii_digit()).parse().ok();
        cursor.skip_cfws(&mut comments);
    }
    if !cursor.eat(b'=') {
        // `authserv-id; none` (RFC 8601 §2.2 no-result), or a word we cannot read.
        cursor.skip_to_semicolon();
        return None;
    }
    cursor.skip_cfws(&mut comments);
    let result = cursor.keyword();
    if result.is_empty() {
        cursor.skip_to_semicolon();
        return None;
    }

    let mut reason = None;
    let mut properties = BTreeMap::new();
    loop {
        cursor.skip_cfws(&mut comments);
        if matches!(cursor.peek(), None | Some(b';')) {
            break;
        }
        let ptype = cursor.keyword();
        if ptype.is_empty() {
            // Not a property: skip this word (a stray `.`, `)`, `"`...) and go on.
            cursor.bump();
            cursor.bare();
            continue;
        }
        cursor.skip_cfws(&mut comments);
        let mut key = ptype.to_string();
        if cursor.eat(b'.') {
            cursor.skip_cfws(&mut comments);
            key.push('.');
            key.push_str(cursor.keyword());
            cursor.skip_cfws(&mut comments);
        }
        key.make_ascii_lowercase();
        if !cursor.eat(b'=') {
            // A word without a value carries nothing we can report.
            continue;
        }
        cursor.skip_cfws(&mut comments);
        let value = cursor.value();
        if key == "reason" && reason.is_none() {
            // RFC 8601 §2.7: the reason is human-readable text, so white space is collapsed.
            reason = Some(collapse(&value));
        } else {
            properties.entry(key).or_insert(value);
        }
    }

    Some(MethodResult {
        method: method.to_ascii_lowercase(),
        result: AuthResult::parse(result),
        reason,
        properties,
        comment: (!comments.is_empty()).then_some(comments),
        method_version,
    })
}

fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        super::lexer::push_collapsed(&mut out, ch);
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn result(method: &str, result: &str, list: &[(&str, &str)]) -> MethodResult {
        MethodResult {
            method: method.to_string(),
            result: AuthResult::parse(result),
            reason: None,
            properties: props(list),
            comment: None,
            method_version: None,
        }
    }

    fn with_comment(mut r: MethodResult, comment: &str) -> MethodResult {
        r.comment = Some(comment.to_string());
        r
    }

    fn with_reason(mut r: MethodResult, reason: &str) -> MethodResult {
        r.reason = Some(reason.to_string());
        r
    }

    fn header(
        id: Option<&str>,
        version: Option<u32>,
        results: Vec<MethodResult>,
    ) -> AuthResultsHeader {
        AuthResultsHeader {
            authserv_id: id.map(str::to_string),
            version,
            results,
            trusted: false,
        }
    }

    #[track_caller]
    fn check(value: &str, expected: AuthResultsHeader) {
        assert_eq!(parse_header(value), expected, "parsing {value:?}");
    }

    // RFC 8601 Appendix B.2: service provided, no authentication done.
    #[test]
    fn no_result_with_version() {
        check(
            " example.org 1; none",
            header(Some("example.org"), Some(1), vec![]),
        );
        check(
            "example.org; none",
            header(Some("example.org"), None, vec![]),
        );
        check(
            "example.org 1",
            header(Some("example.org"), Some(1), vec![]),
        );
        check("example.org", header(Some("example.org"), None, vec![]));
        check("example.org;", header(Some("example.org"), None, vec![]));
    }

    // RFC 8601 Appendix B.3 and B.4.
    #[test]
    fn single_and_several_methods() {
        check(
            " example.com;\n          spf=pass smtp.mailfrom=example.net",
            header(
                Some("example.com"),
                None,
                vec![result("spf", "pass", &[("smtp.mailfrom", "example.net")])],
            ),
        );
        check(
            " example.com;\n auth=pass (cram-md5) smtp.auth=sender@example.net;\n spf=pass smtp.mailfrom=example.net",
            header(
                Some("example.com"),
                None,
                vec![
                    with_comment(
                        result("auth", "pass", &[("smtp.auth", "sender@example.net")]),
                        "cram-md5",
                    ),
                    result("spf", "pass", &[("smtp.mailfrom", "example.net")]),
                ],
            ),
        );
        check(
            "example.com; iprev=pass\n policy.iprev=192.0.2.200",
            header(
                Some("example.com"),
                None,
                vec![result("iprev", "pass", &[("policy.iprev", "192.0.2.200")])],
            ),
        );
    }

    // RFC 8601 Appendix B.6: reason with quoted strings.
    #[test]
    fn reason_quoted() {
        check(
            " example.com;\n dkim=pass reason=\"good signature\"\n header.i=@mail-router.example.net;\n dkim=fail reason=\"bad signature\"\n header.i=@newyork.example.com",
            header(
                Some("example.com"),
                None,
                vec![
                    with_reason(
                        result("dkim", "pass", &[("header.i", "@mail-router.example.net")]),
                        "good signature",
                    ),
                    with_reason(
                        result("dkim", "fail", &[("header.i", "@newyork.example.com")]),
                        "bad signature",
                    ),
                ],
            ),
        );
        // An unquoted reason, and CFWS around `=`.
        check(
            "x; dkim=fail reason (why) = expired header.d=a.example",
            header(
                Some("x"),
                None,
                vec![with_comment(
                    with_reason(
                        result("dkim", "fail", &[("header.d", "a.example")]),
                        "expired",
                    ),
                    "why",
                )],
            ),
        );
    }

    // RFC 8601 Appendix B.7: comments everywhere, a method version, CFWS around `.` and `=`.
    #[test]
    fn comment_heavy_example() {
        let value = " foo.example.net (foobar) 1 (baz);\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\n      policy (A dot can go here) . (like that) expired\n      (this surprised me) = (as I wasn't expecting it) 1362471462";
        let mut expected = result("dkim", "fail", &[("policy.expired", "1362471462")]);
        expected.method_version = Some(1);
        expected.comment = Some(
            "Because I like it One yay wait for it A dot can go here like that this surprised me as I wasn't expecting it"
                .to_string(),
        );
        check(
            value,
            header(Some("foo.example.net"), Some(1), vec![expected]),
        );
    }

    #[test]
    fn method_version_without_cfws() {
        let mut expected = result("dkim", "pass", &[("header.d", "example.com")]);
        expected.method_version = Some(1);
        check(
            "mx; dkim/1=pass header.d=example.com",
            header(Some("mx"), None, vec![expected]),
        );
    }

    #[test]
    fn microsoft_header_without_authserv_id() {
        let value = " spf=pass (sender IP is 40.107.22.41)\r\n smtp.mailfrom=example.com; dkim=pass (signature was verified)\r\n header.d=example.com;dmarc=pass action=none\r\n header.from=example.com;compauth=pass reason=100";
        // The header splitter already removed the CRLFs; keep them here to prove they are
        // plain white space to this parser.
        check(
            value,
            header(
                None,
                None,
                vec![
                    with_comment(
                        result("spf", "pass", &[("smtp.mailfrom", "example.com")]),
                        "sender IP is 40.107.22.41",
                    ),
                    with_comment(
                        result("dkim", "pass", &[("header.d", "example.com")]),
                        "signature was verified",
                    ),
                    result(
                        "dmarc",
                        "pass",
                        &[("action", "none"), ("header.from", "example.com")],
                    ),
                    with_reason(result("compauth", "pass", &[]), "100"),
                ],
            ),
        );
    }

    #[test]
    fn microsoft_method_with_version_first() {
        check(
            "dkim/1=pass header.d=example.com",
            header(
                None,
                None,
                vec![MethodResult {
                    method_version: Some(1),
                    ..result("dkim", "pass", &[("header.d", "example.com")])
                }],
            ),
        );
    }

    #[test]
    fn comment_glued_to_result_and_upper_case() {
        check(
            "MX.Example.NET; DMARC=PASS(p=REJECT,sp=QUARANTINE) HEADER.FROM=Example.COM;SPF=SoftFail",
            header(
                Some("MX.Example.NET"),
                None,
                vec![
                    with_comment(
                        result("dmarc", "pass", &[("header.from", "Example.COM")]),
                        "p=REJECT,sp=QUARANTINE",
                    ),
                    result("spf", "softfail", &[]),
                ],
            ),
        );
    }

    #[test]
    fn trailing_semicolons_and_empty_resinfos() {
        check(
            "mx;; spf=pass;;;  ; dkim=none;",
            header(
                Some("mx"),
                None,
                vec![result("spf", "pass", &[]), result("dkim", "none", &[])],
            ),
        );
    }

    #[test]
    fn semicolons_inside_comments_and_quotes_do_not_split() {
        check(
            "mx; dkim=pass (2048-bit key; unprotected) header.d=example.com header.b=\"Ab;cd\"",
            header(
                Some("mx"),
                None,
                vec![with_comment(
                    result(
                        "dkim",
                        "pass",
                        &[("header.d", "example.com"), ("header.b", "Ab;cd")],
                    ),
                    "2048-bit key; unprotected",
                )],
            ),
        );
    }

    #[test]
    fn nested_comments_and_quoted_pairs() {
        check(
            "mx (a (nested) comment); spf=fail (outer (inner \\) paren) end) smtp.mailfrom=a@b",
            header(
                Some("mx"),
                None,
                vec![with_comment(
                    result("spf", "fail", &[("smtp.mailfrom", "a@b")]),
                    "outer (inner ) paren) end",
                )],
            ),
        );
    }

    #[test]
    fn quoted_values_and_quoted_local_part() {
        check(
            "mx; spf=pass smtp.mailfrom=\"john \\\"q\\\" doe\"@example.com header.from = \"a b\"",
            header(
                Some("mx"),
                None,
                vec![result(
                    "spf",
                    "pass",
                    &[
                        ("smtp.mailfrom", "john \"q\" doe@example.com"),
                        ("header.from", "a b"),
                    ],
                )],
            ),
        );
    }

    #[test]
    fn values_with_base64_characters() {
        check(
            "mx; dkim=pass header.i=@example.com header.s=s1 header.b=Ab+/c9==",
            header(
                Some("mx"),
                None,
                vec![result(
                    "dkim",
                    "pass",
                    &[
                        ("header.i", "@example.com"),
                        ("header.s", "s1"),
                        ("header.b", "Ab+/c9=="),
                    ],
                )],
            ),
        );
    }

    #[test]
    fn quoted_authserv_id() {
        check(
            "\"mx.example.net\" 2; spf=none",
            header(
                Some("mx.example.net"),
                Some(2),
                vec![result("spf", "none", &[])],
            ),
        );
    }

    #[test]
    fn authserv_id_then_missing_semicolon() {
        check(
            "mx.example.net spf=pass smtp.mailfrom=a.example",
            header(
                Some("mx.example.net"),
                None,
                vec![result("spf", "pass", &[("smtp.mailfrom", "a.example")])],
            ),
        );
    }

    #[test]
    fn version_must_be_all_digits() {
        // `1x` is not a version; it is read (and dropped) as a word that is not a result.
        check(
            "mx 1x; spf=pass",
            header(Some("mx"), None, vec![result("spf", "pass", &[])]),
        );
        // A version too large for u32 is dropped, the results are kept.
        check(
            "mx 99999999999; spf=pass",
            header(Some("mx"), None, vec![result("spf", "pass", &[])]),
        );
    }

    #[test]
    fn repeated_property_keeps_the_first() {
        check(
            "mx; dkim=pass header.d=first.example header.d=second.example",
            header(
                Some("mx"),
                None,
                vec![result("dkim", "pass", &[("header.d", "first.example")])],
            ),
        );
    }

    #[test]
    fn unknown_results_are_kept_lower_case() {
        check(
            "atlas.yahoo.com; dkim=PERM_FAIL header.i=@x; dmarc=unknown header.from=x; dmarc=bestguesspass",
            header(
                Some("atlas.yahoo.com"),
                None,
                vec![
                    result("dkim", "perm_fail", &[("header.i", "@x")]),
                    result("dmarc", "unknown", &[("header.from", "x")]),
                    result("dmarc", "bestguesspass", &[]),
                ],
            ),
        );
    }

    #[test]
    fn garbage_is_skipped_up_to_the_next_semicolon() {
        check(
            "mx; ===; (only a comment); spf; dkim=; 42=pass; dmarc=pass . ) \"x\" header.from=a.example",
            header(
                Some("mx"),
                None,
                vec![
                    result("42", "pass", &[]),
                    result("dmarc", "pass", &[("header.from", "a.example")]),
                ],
            ),
        );
    }

    #[test]
    fn word_without_value_is_ignored() {
        check(
            "mx; spf=pass smtp.mailfrom a.example header.from=b.example",
            header(
                Some("mx"),
                None,
                vec![result("spf", "pass", &[("header.from", "b.example")])],
            ),
        );
    }

    #[test]
    fn unterminated_comment_keeps_what_came_before() {
        check(
            "mx; spf=pass smtp.mailfrom=a.example; dkim=fail (never closed; dmarc=pass",
            header(
                Some("mx"),
                None,
                vec![
                    result("spf", "pass", &[("smtp.mailfrom", "a.example")]),
                    with_comment(result("dkim", "fail", &[]), "never closed; dmarc=pass"),
                ],
            ),
        );
        check(
            "mx (never closed; spf=pass",
            header(Some("mx"), None, vec![]),
        );
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        check(
            "mx; spf=pass smtp.mailfrom=a.example; dkim=fail reason=\"never closed; dmarc=pass",
            header(
                Some("mx"),
                None,
                vec![
                    result("spf", "pass", &[("smtp.mailfrom", "a.example")]),
                    with_reason(result("dkim", "fail", &[]), "never closed; dmarc=pass"),
                ],
            ),
        );
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let value = format!("mx; spf=pass {}", "(".repeat(200_000));
        let parsed = parse_header(&value);
        assert_eq!(parsed.results.len(), 1);
        let value = format!(
            "mx; spf=pass {}x{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert_eq!(
            parse_header(&value).results[0]
                .comment
                .as_deref()
                .map(str::len),
            Some(199_999)
        );
    }

    #[test]
    fn empty_and_blank_values() {
        check("", header(None, None, vec![]));
        check("   ", header(None, None, vec![]));
        check(";", header(None, None, vec![]));
        check(
            "; spf=pass",
            header(None, None, vec![result("spf", "pass", &[])]),
        );
    }

    #[test]
    fn empty_property_value() {
        check(
            "mx; spf=pass smtp.mailfrom=; dkim=none",
            header(
                Some("mx"),
                None,
                vec![
                    result("spf", "pass", &[("smtp.mailfrom", "")]),
                    result("dkim", "none", &[]),
                ],
            ),
        );
    }

    #[test]
    fn non_ascii_text_survives() {
        check(
            "mx; spf=fail (dömäin ñot permitted) smtp.mailfrom=ü@example.com",
            header(
                Some("mx"),
                None,
                vec![with_comment(
                    result("spf", "fail", &[("smtp.mailfrom", "ü@example.com")]),
                    "dömäin ñot permitted",
                )],
            ),
        );
        // A non-ASCII keyword is not a keyword.
        check(
            "mx; spé=pass; dkim=pass",
            header(Some("mx"), None, vec![result("dkim", "pass", &[])]),
        );
    }

    #[test]
    fn arc_instance_tag() {
        let arc = parse_arc_header(
            "i=2; mx.google.com;\n dkim=pass header.i=@example.com;\n spf=pass smtp.mailfrom=a@example.com",
        );
        assert_eq!(arc.instance, Some(2));
        assert_eq!(arc.authserv_id.as_deref(), Some("mx.google.com"));
        assert_eq!(arc.results.len(), 2);

        let spaced = parse_arc_header(" I = 1 ; mx.example.net 1; none");
        assert_eq!(
            (
                spaced.instance,
                spaced.authserv_id.as_deref(),
                spaced.version
            ),
            (Some(1), Some("mx.example.net"), Some(1))
        );

        // Without the tag, the payload is read as it is.
        let untagged = parse_arc_header("mx.example.net; arc=none");
        assert_eq!(untagged.instance, None);
        assert_eq!(untagged.authserv_id.as_deref(), Some("mx.example.net"));
        assert_eq!(untagged.results, vec![result("arc", "none", &[])]);

        let bad = parse_arc_header("i=x; mx; spf=pass");
        assert_eq!(
            (bad.instance, bad.authserv_id.as_deref()),
            (None, Some("mx"))
        );
    }
}
