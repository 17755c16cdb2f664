//! Golden corpus for the complaint feedback report (ARF, RFC 5965) reader.
//!
//! Each case in `tests/fixtures/arf/` is `<case>.eml` with either `<case>.json` (the
//! [`ComplaintReport`] read from it) or `<case>.err` (the expected error: its `reason()` on the
//! first line, its message on the second). Sources are in that folder's README.
//!
//! Every case runs twice, with LF and with CRLF line ends, and must give the same output. The
//! test fails when no case ran. To draft the expected output of a new case, run with
//! `ARF_BLESS=1`, then read the written `.json` line by line.

use std::fs;
use std::path::{Path, PathBuf};

use mailcanary::reports::arf::{ComplaintReport, parse};

#[path = "common/line_ends.rs"]
mod line_ends;
use line_ends::lf_and_crlf;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arf")
}

fn run_case(raw: &[u8]) -> String {
    match parse(raw) {
        Ok(report) => {
            let report: &ComplaintReport = &report;
            serde_json::to_string_pretty(report).expect("json") + "\n"
        }
        Err(err) => format!("{}\n{}\n", err.reason(), err),
    }
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let bless = std::env::var_os("ARF_BLESS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    cases.sort();
    let mut ran = 0;
    let mut failures = Vec::new();
    for eml in &cases {
        let name = eml.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let raw = fs::read(eml).expect("read .eml");
        let (lf, crlf) = lf_and_crlf(&raw);
        let got_lf = run_case(&lf);
        let got_crlf = run_case(&crlf);
        let err_path = eml.with_extension("err");
        let expected_path = if err_path.exists() || name.starts_with("error-") {
            err_path
        } else {
            eml.with_extension("json")
        };
        if bless && got_lf == got_crlf {
            fs::write(&expected_path, &got_lf).expect("write expected output");
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{name}: missing {}", expected_path.display()));
        for (form, got) in [("LF", &got_lf), ("CRLF", &got_crlf)] {
            if *got != expected {
                failures.push(format!(
                    "{name} ({form}): output differs from {}\n--- got ---\n{got}",
                    expected_path.display()
                ));
            }
        }
        ran += 1;
    }
    println!("arf corpus: {ran} cases ran, each in LF and CRLF form");
    assert!(
        ran > 0,
        "no arf corpus case ran: is tests/fixtures/arf empty?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// None of the other corpora's messages (ordinary mail, bounces) is a feedback report.
#[test]
fn other_mail_is_not_a_feedback_report() {
    let mut ran = 0;
    for dir in ["verdict", "dsn", "received"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir);
        for entry in fs::read_dir(&dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|ext| ext != "eml") {
                continue;
            }
            let raw = fs::read(&path).expect("read");
            if let Ok(report) = parse(&raw) {
                panic!("{}: read as a feedback report: {report:?}", path.display());
            }
            ran += 1;
        }
    }
    assert!(ran > 0);
}
