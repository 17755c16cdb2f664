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

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/line_ends.rs"]
mod line_ends;
use corpus::Corpus;

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

/// A case's expected file: `<case>.err` when there is one, or when the case is named
/// `error-…` (so that blessing a new error case writes the `.err`), else `<case>.json`.
fn expected(dir: &Path, stem: &str) -> PathBuf {
    if stem.starts_with("error-") {
        dir.join(format!("{stem}.err"))
    } else {
        corpus::err_else_json(dir, stem)
    }
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let corpus = Corpus {
        dir: fixtures(),
        what: "arf corpus",
        bless: "ARF_BLESS",
        case: corpus::eml_case,
        expected,
    };
    corpus::run(&corpus, |_, raw| run_case(raw));
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
