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

/// A zip of `n` small stored reports, as a real writer makes it.
fn zip_of(n: usize) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        writer
            .start_file(format!("r{i}.xml"), options)
            .expect("zip entry");
        writer.write_all(MINIMAL.as_bytes()).expect("zip data");
    }
    writer.finish().expect("zip");
    out.into_inner()
}

/// The offset of the (last) end-of-central-directory record.
fn eocd_at(zip: &[u8]) -> usize {
    zip.windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("an end-of-central-directory record")
}

#[test]
fn a_zip_of_reports_still_unpacks() {
    let found = unpack(Some("r.zip"), &zip_of(2)).expect("unpacked");
    assert_eq!(found.len(), 2);
}

#[test]
fn a_zip_declaring_more_entries_than_allowed_is_refused_before_its_directory_is_read() {
    // One real entry, 65,000 declared: without the check the crate would set out to read them.
    let mut zip = zip_of(1);
    let at = eocd_at(&zip);
    zip[at + 8..at + 10].copy_from_slice(&65_000u16.to_le_bytes());
    zip[at + 10..at + 12].copy_from_slice(&65_000u16.to_le_bytes());
    let err = unpack(Some("r.zip"), &zip).expect_err("refused");
    assert_eq!(
        err,
        ReportError::TooMany {
            what: "files declared by the zip's end-of-central-directory record",
            limit: MAX_FILES
        }
    );
    // A real directory of 17 entries is refused by the same check.
    let err = unpack(Some("r.zip"), &zip_of(MAX_FILES + 1)).expect_err("17 entries");
    assert!(
        matches!(err, ReportError::TooMany { what, .. } if what.contains("end-of-central")),
        "{err}"
    );
    // 0xFFFF without a ZIP64 locator is taken as 65,535 entries by the crate: refused.
    let mut zip = zip_of(1);
    let at = eocd_at(&zip);
    zip[at + 10..at + 12].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(unpack(None, &zip).expect_err("0xFFFF").reason(), "too_many");
}

#[test]
fn a_zip_declaring_a_huge_central_directory_is_refused() {
    let mut zip = zip_of(1);
    let at = eocd_at(&zip);
    zip[at + 12..at + 16].copy_from_slice(&(2 * 1024 * 1024u32).to_le_bytes());
    let err = unpack(None, &zip).expect_err("refused");
    assert_eq!(
        err,
        ReportError::TooLarge {
            what: "the zip's central directory",
            limit: 1024 * 1024
        }
    );
}

/// A ZIP64 archive (APPNOTE 4.3.14, 4.3.15) whose ZIP64 record declares `entries`: one real
/// entry, its directory, the ZIP64 record, the locator and a classic record saying "see ZIP64".
fn zip64_declaring(entries: u64) -> Vec<u8> {
    let plain = zip_of(1);
    let at = eocd_at(&plain);
    let cd_size = u32::from_le_bytes(plain[at + 12..at + 16].try_into().expect("u32"));
    let cd_offset = u32::from_le_bytes(plain[at + 16..at + 20].try_into().expect("u32"));
    let mut zip = plain[..at].to_vec();
    let zip64_at = zip.len() as u64;
    zip.extend_from_slice(b"PK\x06\x06");
    zip.extend_from_slice(&44u64.to_le_bytes()); // the record's size after these 12 bytes
    zip.extend_from_slice(&45u16.to_le_bytes()); // version made by
    zip.extend_from_slice(&45u16.to_le_bytes()); // version needed
    zip.extend_from_slice(&0u32.to_le_bytes()); // this disk
    zip.extend_from_slice(&0u32.to_le_bytes()); // the directory's disk
    zip.extend_from_slice(&entries.to_le_bytes()); // entries on this disk
    zip.extend_from_slice(&entries.to_le_bytes()); // entries
    zip.extend_from_slice(&u64::from(cd_size).to_le_bytes());
    zip.extend_from_slice(&u64::from(cd_offset).to_le_bytes());
    zip.extend_from_slice(b"PK\x06\x07");
    zip.extend_from_slice(&0u32.to_le_bytes());
    zip.extend_from_slice(&zip64_at.to_le_bytes());
    zip.extend_from_slice(&1u32.to_le_bytes());
    zip.extend_from_slice(b"PK\x05\x06");
    zip.extend_from_slice(&[0, 0, 0, 0]); // disks
    zip.extend_from_slice(&[0xFF; 4]); // entries: see ZIP64
    zip.extend_from_slice(&[0xFF; 8]); // size and offset: see ZIP64
    zip.extend_from_slice(&[0, 0]); // no comment
    zip
}

#[test]
fn a_zip64_record_declaring_684763_entries_is_refused() {
    let err = unpack(Some("r.zip"), &zip64_declaring(684_763)).expect_err("refused");
    assert_eq!(
        err,
        ReportError::TooMany {
            what: "files declared by the zip's end-of-central-directory record",
            limit: MAX_FILES
        }
    );
    // The same archive declaring its one real entry is read: the check follows ZIP64.
    let found = unpack(Some("r.zip"), &zip64_declaring(1)).expect("a ZIP64 archive");
    assert_eq!(found.len(), 1);
}

/// MINIMAL with one record of `count` messages.
fn with_record(count: &str) -> String {
    MINIMAL.replace(
        "</feedback>",
        &format!(
            "<record><row><source_ip>192.0.2.1</source_ip><count>{count}</count></row>\
             <identifiers><header_from>example.com</header_from></identifiers></record></feedback>"
        ),
    )
}

#[test]
fn counts_over_the_maximum_are_refused() {
    let err = dmarc::parse(with_record("18446744073709551615").as_bytes()).expect_err("2^64-1");
    assert_eq!(
        err,
        ReportError::CountTooLarge {
            element: "record/row/count",
            limit: MAX_COUNT
        }
    );
    assert_eq!(err.reason(), "count_too_large");
    assert_eq!(
        err.to_string(),
        "record/row/count is over the maximum of 1000000000: no real report counts that many"
    );
    let err = dmarc::parse(with_record("1000000001").as_bytes()).expect_err("10^9 + 1");
    assert_eq!(err.reason(), "count_too_large");
    // Past u64 the number does not even parse.
    let err = dmarc::parse(with_record("18446744073709551616").as_bytes()).expect_err("2^64");
    assert_eq!(err.reason(), "bad_number");
    let report = dmarc::parse(with_record("1000000000").as_bytes()).expect("the maximum reads");
    assert_eq!(report.records[0].count, MAX_COUNT);

    let tls = |successful: &str, failed: &str, in_failure: &str| {
        format!(
            r#"{{"organization-name":"o","date-range":{{"start-datetime":"2016-04-01T00:00:00Z",
            "end-datetime":"2016-04-01T23:59:59Z"}},"report-id":"1","policies":[{{
            "policy":{{"policy-type":"sts","policy-domain":"example.com"}},
            "summary":{{"total-successful-session-count":{successful},"total-failure-session-count":{failed}}},
            "failure-details":[{{"result-type":"certificate-expired","failed-session-count":{in_failure}}}]}}]}}"#
        )
    };
    let big = "18446744073709551615";
    for (s, f, d, element) in [
        (big, "2", "2", "summary/total-successful-session-count"),
        ("2", big, "2", "summary/total-failure-session-count"),
        ("2", "2", big, "failure-details/failed-session-count"),
    ] {
        assert_eq!(
            tlsrpt::parse(tls(s, f, d).as_bytes()).expect_err(element),
            ReportError::CountTooLarge {
                element,
                limit: MAX_COUNT
            }
        );
    }
    assert!(tlsrpt::parse(tls("1000000000", "2", "2").as_bytes()).is_ok());
}

#[test]
fn impossible_periods_are_refused() {
    let period = |begin: &str, end: &str| {
        MINIMAL
            .replace("<begin>1</begin>", &format!("<begin>{begin}</begin>"))
            .replace("<end>2</end>", &format!("<end>{end}</end>"))
    };
    for (begin, end, problem) in [
        ("1700086400", "1700000000", "it begins after it ends"),
        ("-86400", "0", "it begins before 1970"),
        ("1700000000", "1702678401", "it covers more than 31 days"),
    ] {
        let err = dmarc::parse(period(begin, end).as_bytes()).expect_err(problem);
        assert_eq!(err, ReportError::BadPeriod { problem }, "{begin}..{end}");
        assert_eq!(err.reason(), "bad_period");
    }
    // A day, and exactly 31 days, read.
    assert!(dmarc::parse(period("1700000000", "1700086399").as_bytes()).is_ok());
    assert!(dmarc::parse(period("1700000000", "1702678400").as_bytes()).is_ok());

    let json = r#"{"organization-name":"o","date-range":{"start-datetime":"2016-04-02T00:00:00Z",
        "end-datetime":"2016-04-01T23:59:59Z"},"report-id":"1","policies":[]}"#;
    assert_eq!(
        tlsrpt::parse(json.as_bytes()).expect_err("reversed"),
        ReportError::BadPeriod {
            problem: "it begins after it ends"
        }
    );

    // Ending in the future is refused where the clock is known.
    let report =
        Report::Dmarc(dmarc::parse(period("1700000000", "1700086399").as_bytes()).expect("a day"));
    assert!(report.check_not_future(1_700_086_399).is_ok());
    assert!(
        report.check_not_future(1_700_000_000).is_ok(),
        "a day of slack"
    );
    assert_eq!(
        report.check_not_future(1_699_900_000),
        Err(ReportError::BadPeriod {
            problem: "it ends in the future"
        })
    );
}

#[test]
fn sums_of_counts_saturate() {
    assert_eq!(saturating_sum([u64::MAX, 2]), u64::MAX);
    assert_eq!(saturating_sum([MAX_COUNT; 3]), 3 * MAX_COUNT);
    assert_eq!(saturating_sum([]), 0);
}
