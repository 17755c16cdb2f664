//! Golden corpus for the report readers (`mailcanary::reports`).
//!
//! Each case in `tests/fixtures/reports/` is `<case>.<ext>` (`.xml`, `.xml.gz`, `.zip`,
//! `.json`, `.json.gz` or `.eml`; written from the formats documented by the reporters named
//! in its file name and the RFC examples: RFC 7489 Appendix C, RFC 9990, RFC 8460 §4.3) with
//! `<case>.expected.json`: the report [`unpack`] and [`Unpacked::parse`] give, in the JSON
//! shape of `AggregateReport` or `TlsReport` (an array when an input holds several), or
//! `{"error": reason, "message": ...}` when reading fails.
//!
//! Text cases (`.xml`, `.json`, `.eml`) run twice, with LF and with CRLF line ends, and must
//! give the same output. The test fails when no case ran.
//!
//! To draft the expected output of a new case, run with `REPORTS_BLESS=1`, then read the
//! written file line by line: a blessed file is only as right as the review it got.

use std::path::{Path, PathBuf};

use mailcanary::reports::{Report, ReportError, Unpacked, unpack};
use serde_json::{Value, json};

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/line_ends.rs"]
mod line_ends;
use corpus::Corpus;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports")
}

fn error_json(err: &ReportError) -> Value {
    json!({ "error": err.reason(), "message": err.to_string() })
}

fn report_json(report: &Report) -> Value {
    match report {
        Report::Dmarc(report) => serde_json::to_value(report).expect("json"),
        Report::Tlsrpt(report) => serde_json::to_value(report).expect("json"),
        // `unpack` finds report files only; a complaint is a mail of its own (arf_corpus.rs).
        Report::Arf(complaint) => serde_json::to_value(complaint).expect("json"),
    }
}

fn run_case(name: &str, raw: &[u8]) -> String {
    let value = match unpack(Some(name), raw) {
        Ok(found) => {
            let parsed: Vec<Value> = found
                .iter()
                .map(|doc: &Unpacked| match doc.parse() {
                    Ok(report) => report_json(&report),
                    Err(err) => error_json(&err),
                })
                .collect();
            if parsed.len() == 1 {
                parsed.into_iter().next().expect("one")
            } else {
                Value::Array(parsed)
            }
        }
        Err(err) => error_json(&err),
    };
    serde_json::to_string_pretty(&value).expect("json") + "\n"
}

const TEXT: &[&str] = &[".xml", ".json", ".eml"];
const BINARY: &[&str] = &[".xml.gz", ".json.gz", ".zip"];

/// A report case: its stem, and whether it is text (run LF and CRLF).
fn report_case(file: &str) -> Option<(String, bool)> {
    if file.ends_with(".expected.json") {
        return None;
    }
    let ext = BINARY
        .iter()
        .chain(TEXT)
        .find(|ext| file.ends_with(**ext))?;
    let stem = file.strip_suffix(ext)?;
    Some((stem.to_string(), TEXT.contains(ext)))
}

#[test]
fn golden_corpus() {
    let corpus = Corpus {
        dir: fixtures(),
        what: "reports corpus",
        bless: "REPORTS_BLESS",
        case: report_case,
        expected: |dir, stem| dir.join(format!("{stem}.expected.json")),
    };
    corpus::run(&corpus, |path, raw| {
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        run_case(file, raw)
    });
}

/// A gzip bomb (64 MiB of zeros, about 64 KiB compressed), made at run time: refused at the
/// decompression budget, and so is the same bomb inside a zip and inside a mail.
#[test]
fn bombs_are_refused() {
    use std::io::Write;
    let zeros = vec![0u8; 1024 * 1024];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for _ in 0..64 {
        gz.write_all(&zeros).expect("gzip");
    }
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    let err = unpack(Some("bomb.xml.gz"), &bomb).expect_err("gzip bomb");
    assert_eq!(err.reason(), "too_large", "{err}");

    let mut zipped = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut zipped);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("bomb.xml", options).expect("zip");
    for _ in 0..64 {
        writer.write_all(&zeros).expect("zip");
    }
    writer.finish().expect("zip");
    let err = unpack(Some("bomb.zip"), zipped.get_ref()).expect_err("zip bomb");
    assert_eq!(err.reason(), "too_large", "{err}");
}
