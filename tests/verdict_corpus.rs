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

#[path = "common/line_ends.rs"]
mod line_ends;
use line_ends::lf_and_crlf;

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
    let bless = std::env::var_os("VERDICT_BLESS").is_some();
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
        let ids: Vec<String> = match fs::read_to_string(eml.with_extension("ids.json")) {
            Ok(text) => serde_json::from_str(&text).expect("ids.json: a JSON array of strings"),
            Err(_) => Vec::new(),
        };
        let json_path = eml.with_extension("json");
        let err_path = eml.with_extension("err");
        let (lf, crlf) = lf_and_crlf(&raw);
        let got_lf = run_case(&lf, &ids);
        let got_crlf = run_case(&crlf, &ids);

        let expected_path = if err_path.exists() {
            err_path
        } else {
            json_path
        };
        if bless && got_lf == got_crlf {
            fs::write(&expected_path, &got_lf).expect("write expected output");
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!("{name}: missing {}", expected_path.display());
        });
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
    println!("verdict corpus: {ran} cases ran, each in LF and CRLF form");
    assert!(
        ran > 0,
        "no verdict corpus case ran: is tests/fixtures/verdict empty?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
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
