//! Golden corpus for the verdict reader.
//!
//! Each case in `tests/fixtures/verdict/` is `<case>.eml` (a message: header block and a small
//! body) with either `<case>.json` (the exact `mailcanary inspect --json` output) or
//! `<case>.err` (the expected error: its `reason()` on the first line, its message on the
//! second). An optional `<case>.ids.json` holds the trusted authserv-ids, as a JSON array of
//! strings (`--authserv-id` on the command line).
//!
//! Every case runs twice, with LF and with CRLF line ends, and must give the same output.
//! The test fails when no case ran.
//!
//! To draft the expected output of a new case, run with `VERDICT_BLESS=1`, then read the
//! written `.json` line by line: a blessed file is only as right as the review it got.

use std::fs;
use std::path::{Path, PathBuf};

use mailcanary::verdict::{inspect, to_json};

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/line_ends.rs"]
mod line_ends;
use corpus::Corpus;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verdict")
}

fn run_case(raw: &[u8], ids: &[String]) -> String {
    match inspect(raw, ids) {
        Ok(inspection) => to_json(&inspection).expect("json") + "\n",
        Err(err) => format!("{}\n{}\n", err.reason(), err),
    }
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let corpus = Corpus {
        dir: fixtures(),
        what: "verdict corpus",
        bless: "VERDICT_BLESS",
        case: corpus::eml_case,
        expected: corpus::err_else_json,
    };
    corpus::run(&corpus, |eml, raw| {
        let ids: Vec<String> = match fs::read_to_string(eml.with_extension("ids.json")) {
            Ok(text) => serde_json::from_str(&text).expect("ids.json: a JSON array of strings"),
            Err(_) => Vec::new(),
        };
        run_case(raw, &ids)
    });
}

#[test]
fn every_expected_file_has_a_message() {
    for entry in fs::read_dir(fixtures()).expect("fixtures directory") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name
            .strip_suffix(".ids.json")
            .or_else(|| name.strip_suffix(".json"))
            .or_else(|| name.strip_suffix(".err"));
        if let Some(stem) = stem {
            assert!(
                fixtures().join(format!("{stem}.eml")).exists(),
                "{name} has no {stem}.eml"
            );
        }
    }
}
