//! Unit tests of the report readers; the golden corpus is `tests/reports_corpus.rs`.

use std::io::Write;

use super::*;

const MINIMAL: &str = "<feedback><report_metadata><org_name>o</org_name>\
<report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range>\
</report_metadata><policy_published><domain>example.com</domain></policy_published></feedback>";

#[test]
fn minimal_report_reads() {
    let report = dmarc::parse(MINIMAL.as_bytes()).expect("report");
    assert_eq!(report.org_name, "o");
    assert_eq!((report.begin, report.end), (1, 2));
    assert!(report.records.is_empty());
}

#[test]
fn doctype_with_entity_is_refused_never_expanded() {
    let xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY x \"EXPANDED\">\
<!ENTITY ext SYSTEM \"file:///etc/passwd\">]>\n"
        .to_string()
        + &MINIMAL.replace("<org_name>o</org_name>", "<org_name>&x;&ext;</org_name>");
    let err = dmarc::parse(xml.as_bytes()).expect_err("refused");
    assert_eq!(err, ReportError::Doctype);
    assert_eq!(err.reason(), "doctype");
}

#[test]
fn undeclared_entity_is_not_xml() {
    let xml = MINIMAL.replace("<org_name>o</org_name>", "<org_name>&x;</org_name>");
    let err = dmarc::parse(xml.as_bytes()).expect_err("refused");
    assert_eq!(err.reason(), "not_xml", "{err}");
}

#[test]
fn predefined_entities_and_char_refs_are_expanded() {
    let xml = MINIMAL.replace(
        "<org_name>o</org_name>",
        "<org_name>A&amp;B&#x43;</org_name>",
    );
    assert_eq!(
        dmarc::parse(xml.as_bytes()).expect("report").org_name,
        "A&BC"
    );
}

#[test]
fn missing_and_bad_values_are_named() {
    let xml = MINIMAL.replace("<org_name>o</org_name>", "");
    assert_eq!(
        dmarc::parse(xml.as_bytes()).expect_err("missing"),
        ReportError::Missing {
            element: "report_metadata/org_name"
        }
    );
    let xml = MINIMAL.replace("<begin>1</begin>", "<begin>yesterday</begin>");
    let err = dmarc::parse(xml.as_bytes()).expect_err("bad");
    assert_eq!(err.reason(), "bad_number");
    assert_eq!(
        err.to_string(),
        "bad number in report_metadata/date_range/begin: \"yesterday\""
    );
}

#[test]
fn wrong_root_and_deep_nesting_are_refused() {
    let err = dmarc::parse(b"<html/>").expect_err("root");
    assert_eq!(err.reason(), "not_feedback");
    let deep = "<feedback>".to_string() + &"<a>".repeat(100_000);
    assert_eq!(
        dmarc::parse(deep.as_bytes()).expect_err("deep").reason(),
        "too_many"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[test]
fn gzip_bomb_is_refused_at_the_budget() {
    // 40 MiB of spaces compress to ~40 KiB; reading stops at the 32 MiB budget + 1 byte.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..40 {
        encoder.write_all(&chunk).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 1024 * 1024);
    let err = unpack(Some("bomb.xml.gz"), &bomb).expect_err("bomb");
    assert_eq!(err.reason(), "too_large", "{err}");
}

#[test]
fn truncated_gzip_is_corrupt() {
    let packed = gzip(MINIMAL.as_bytes());
    let err = unpack(None, &packed[..packed.len() / 2]).expect_err("truncated");
    assert_eq!(err.reason(), "corrupt", "{err}");
}

#[test]
fn gzip_unpacks_to_a_dmarc_document() {
    let found = unpack(Some("r.xml.gz"), &gzip(MINIMAL.as_bytes())).expect("unpacked");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, ReportKind::Dmarc);
    assert_eq!(found[0].name.as_deref(), Some("r.xml"));
    assert!(matches!(found[0].parse(), Ok(Report::Dmarc(_))));
}

#[test]
fn unsupported_compression_and_garbage_are_named() {
    assert_eq!(
        unpack(Some("r.xml.bz2"), b"BZh91AY")
            .expect_err("bz2")
            .reason(),
        "unsupported_compression"
    );
    assert_eq!(
        unpack(None, b"\x00\x01garbage")
            .expect_err("garbage")
            .reason(),
        "not_a_report"
    );
    assert_eq!(unpack(None, b"").expect_err("empty").reason(), "empty");
}

#[test]
fn tlsrpt_bad_values_are_named() {
    let json = r#"{"organization-name":"o","date-range":{"start-datetime":"nope",
        "end-datetime":"2016-04-01T23:59:59Z"},"report-id":"1","policies":[]}"#;
    assert_eq!(
        tlsrpt::parse(json.as_bytes()).expect_err("date").reason(),
        "bad_date"
    );
    assert_eq!(
        tlsrpt::parse(b"[1,2").expect_err("json").reason(),
        "not_json"
    );
}

#[test]
fn deeply_nested_mail_is_refused() {
    let mut mail =
        String::from("From: a@sender.test\nContent-Type: multipart/mixed; boundary=b0\n\n");
    for level in 1..20 {
        mail.push_str(&format!(
            "--b{}\nContent-Type: multipart/mixed; boundary=b{level}\n\n",
            level - 1
        ));
    }
    let err = unpack(None, mail.as_bytes()).expect_err("deep");
    assert_eq!(err.reason(), "too_many", "{err}");
}

#[test]
fn mail_without_a_report_is_not_a_report() {
    let mail = b"From: a@sender.test\nSubject: hello\n\nJust text.\n";
    assert_eq!(
        unpack(None, mail).expect_err("none").reason(),
        "not_a_report"
    );
}

#[test]
fn googles_sender_requirement_comments_are_read_and_counted() {
    let record = |count: u32, reason: &str| {
        format!(
            "<record><row><source_ip>192.0.2.7</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>{reason}</policy_evaluated></row>\
             <identifiers><header_from>example.com</header_from></identifiers></record>"
        )
    };
    let xml = MINIMAL.replace(
        "</feedback>",
        &format!(
            "{}{}{}</feedback>",
            record(3, "<reason><type>local_policy</type><comment>Sender requirement failed: 550-5.7.1</comment></reason>"),
            record(2, "<reason><type>local_policy</type><comment>sender requirement failed: 421-4.7.32 </comment></reason>"),
            record(5, "<reason><type>forwarded</type><comment>looks forwarded</comment></reason>"),
        ),
    );
    let report = dmarc::parse(xml.as_bytes()).expect("report");
    let codes: Vec<Option<&str>> = report
        .records
        .iter()
        .map(|r| r.sender_requirement_failed.as_deref())
        .collect();
    assert_eq!(codes, [Some("550-5.7.1"), Some("421-4.7.32"), None]);
    assert_eq!(report.sender_requirement_failures(), 5);
    assert_eq!(report.records[0].reasons[0].kind, "local_policy");
    assert_eq!(labels::sender_requirement("550-5.7.1"), "blocked");
    assert_eq!(labels::sender_requirement("421-4.7.32"), "dmarc_alignment");
    assert_eq!(labels::sender_requirement("421 4.7.27"), "spf");
    assert_eq!(labels::sender_requirement("550-5.7.25"), "ptr");
    assert_eq!(labels::sender_requirement("nonsense"), "other");
    for code in ["550-5.7.26", "4.7.29", "4.7.30", "421-4.7.40", "4.7.28"] {
        assert!(labels::SENDER_REQUIREMENTS.contains(&labels::sender_requirement(code)));
    }
    // A report stored before the field existed still reads.
    let old = r#"{"source_ip":"192.0.2.7","count":1,"disposition":null,"dkim":null,"spf":null,"header_from":"example.com","envelope_from":null,"reasons":[],"auth_results":{"dkim":[],"spf":[]}}"#;
    let record: dmarc::Record = serde_json::from_str(old).expect("old record");
    assert_eq!(record.sender_requirement_failed, None);
}
