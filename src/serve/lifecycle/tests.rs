use super::*;
use axum::http::HeaderValue;

fn lifecycle(listen: &str, allowed: &[&str]) -> Lifecycle {
    Lifecycle {
        enabled: true,
        listen: listen.parse().expect("listen address"),
        allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            header::HeaderName::from_static(k),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    h
}

#[test]
fn curl_and_scripts_on_the_listen_address_pass() {
    let l = lifecycle("127.0.0.1:9925", &[]);
    for host in [
        "127.0.0.1:9925",
        "localhost:9925",
        "LOCALHOST:9925",
        "localhost.:9925",
    ] {
        assert_eq!(l.check(&headers(&[("host", host)])), Ok(()), "{host}");
    }
    // A content type that no form can send, and same-origin fetch metadata.
    let h = headers(&[
        ("host", "127.0.0.1:9925"),
        ("content-type", "application/json"),
        ("sec-fetch-site", "same-origin"),
        ("origin", "http://127.0.0.1:9925"),
    ]);
    assert_eq!(l.check(&h), Ok(()));
}

#[test]
fn a_host_that_is_not_the_listen_address_is_refused() {
    let l = lifecycle("127.0.0.1:9925", &[]);
    for host in [
        "evil.example:9925",
        "evil.example",
        "127.0.0.2:9925",
        "127.0.0.1:80",
        "127.0.0.1",
        "localhost",
        "[::1]:9925",
        "user@127.0.0.1:9925",
        "",
    ] {
        assert!(
            matches!(l.check(&headers(&[("host", host)])), Err(Refusal::Host(_))),
            "{host}"
        );
    }
    assert_eq!(l.check(&HeaderMap::new()), Err(Refusal::NoHost));
}

#[test]
fn on_every_address_any_ip_literal_on_the_port_passes_but_no_foreign_name() {
    let l = lifecycle("0.0.0.0:9925", &[]);
    for host in ["10.1.2.3:9925", "[fe80::1]:9925", "localhost:9925"] {
        assert_eq!(l.check(&headers(&[("host", host)])), Ok(()), "{host}");
    }
    for host in ["mailcanary.example:9925", "10.1.2.3:9926"] {
        assert!(l.check(&headers(&[("host", host)])).is_err(), "{host}");
    }
    // Not on loopback: `localhost` names another machine's view, not this listener.
    let l = lifecycle("10.1.2.3:9925", &[]);
    assert!(l.check(&headers(&[("host", "localhost:9925")])).is_err());
    assert_eq!(l.check(&headers(&[("host", "10.1.2.3:9925")])), Ok(()));
}

#[test]
fn the_allow_list_admits_a_service_name_with_any_or_its_own_port() {
    let l = lifecycle(
        "0.0.0.0:9925",
        &["mailcanary.monitoring.svc", "proxy.example:443"],
    );
    for host in [
        "mailcanary.monitoring.svc",
        "mailcanary.monitoring.svc:9925",
        "MailCanary.Monitoring.svc.:8080",
        "proxy.example:443",
    ] {
        assert_eq!(l.check(&headers(&[("host", host)])), Ok(()), "{host}");
    }
    for host in ["proxy.example", "proxy.example:80", "monitoring.svc"] {
        assert!(l.check(&headers(&[("host", host)])).is_err(), "{host}");
    }
}

#[test]
fn a_foreign_or_null_origin_is_refused() {
    let l = lifecycle("127.0.0.1:9925", &[]);
    for origin in [
        "https://evil.example",
        "http://evil.example:9925",
        "null",
        "http://127.0.0.1:9925/path",
        "file://",
        "http://127.0.0.1:9926",
    ] {
        let h = headers(&[("host", "127.0.0.1:9925"), ("origin", origin)]);
        assert!(matches!(l.check(&h), Err(Refusal::Origin(_))), "{origin}");
    }
}

#[test]
fn cross_site_and_same_site_fetch_metadata_is_refused() {
    let l = lifecycle("127.0.0.1:9925", &[]);
    for site in ["cross-site", "same-site", "Cross-Site"] {
        let h = headers(&[("host", "127.0.0.1:9925"), ("sec-fetch-site", site)]);
        assert!(matches!(l.check(&h), Err(Refusal::FetchSite(_))), "{site}");
    }
    let h = headers(&[("host", "127.0.0.1:9925"), ("sec-fetch-site", "none")]);
    assert_eq!(l.check(&h), Ok(()));
}

#[test]
fn the_content_types_a_form_can_send_are_refused() {
    let l = lifecycle("127.0.0.1:9925", &[]);
    for kind in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "Multipart/Form-Data; boundary=x",
    ] {
        let h = headers(&[("host", "127.0.0.1:9925"), ("content-type", kind)]);
        assert!(
            matches!(l.check(&h), Err(Refusal::ContentType(_))),
            "{kind}"
        );
    }
}

#[test]
fn authorities_split_as_rfc_3986_writes_them() {
    assert_eq!(split_authority("a:1"), Some(("a", Some(1))));
    assert_eq!(split_authority("[::1]:9925"), Some(("::1", Some(9925))));
    assert_eq!(split_authority("[::1]"), Some(("::1", None)));
    assert_eq!(split_authority("::1"), None);
    assert_eq!(split_authority("a:99999"), None);
    assert_eq!(split_authority("[::1]x"), None);
}
