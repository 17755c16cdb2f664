//! The golden-corpus runner the corpus tests share (`verdict_corpus`, `dsn_corpus`,
//! `reports_corpus`, `arf_corpus`, `received_corpus`): every case file of a fixtures folder is run, text cases twice (LF and
//! CRLF line ends, which must give the same output), and compared with its expected file. The
//! test fails on any difference, and when no case ran at all (an empty or misnamed folder must
//! not pass). With the corpus's bless variable set, expected files are (re)written from what
//! the code gives — to draft a new case, then read line by line.

#![allow(dead_code)] // each corpus test uses the helpers its naming needs

use std::fs;
use std::path::{Path, PathBuf};

use crate::line_ends::lf_and_crlf;

/// One corpus: where its cases are and how they are named.
pub struct Corpus {
    /// The fixtures folder.
    pub dir: PathBuf,
    /// What the messages call it (`verdict corpus`).
    pub what: &'static str,
    /// The environment variable that blesses (`VERDICT_BLESS`).
    pub bless: &'static str,
    /// Whether a file name is a case: its stem, and whether it is text (run LF and CRLF).
    pub case: fn(&str) -> Option<(String, bool)>,
    /// Where a case's expected output is, from the folder and the stem.
    pub expected: fn(&Path, &str) -> PathBuf,
}

/// Runs every case of `corpus` through `run_case` (given the case's path and bytes) and
/// compares with the expected files. Returns how many cases ran (at least one, or it fails).
pub fn run(corpus: &Corpus, run_case: impl Fn(&Path, &[u8]) -> String) -> usize {
    let bless = std::env::var_os(corpus.bless).is_some();
    let mut entries: Vec<PathBuf> = fs::read_dir(&corpus.dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    let mut ran = 0;
    let mut failures = Vec::new();
    for path in entries {
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let Some((stem, text)) = (corpus.case)(file) else {
            continue;
        };
        let raw = fs::read(&path).expect("read case");
        let outputs = if text {
            let (lf, crlf) = lf_and_crlf(&raw);
            vec![
                ("LF", run_case(&path, &lf)),
                ("CRLF", run_case(&path, &crlf)),
            ]
        } else {
            vec![("as is", run_case(&path, &raw))]
        };
        let expected_path = (corpus.expected)(&corpus.dir, &stem);
        if bless && outputs.iter().all(|(_, got)| *got == outputs[0].1) {
            fs::write(&expected_path, &outputs[0].1).expect("write expected output");
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{file}: missing {}", expected_path.display()));
        for (form, got) in &outputs {
            if *got != expected {
                failures.push(format!(
                    "{file} ({form}): output differs from {}\n--- got ---\n{got}",
                    expected_path.display()
                ));
            }
        }
        ran += 1;
    }
    println!("{}: {ran} cases ran", corpus.what);
    assert!(
        ran > 0,
        "no {} case ran: is {} empty?",
        corpus.what,
        corpus.dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    ran
}

/// The expected file of a message case: `<case>.err` when the case is an error, else
/// `<case>.json` (the verdict and bounce corpora).
pub fn err_else_json(dir: &Path, stem: &str) -> PathBuf {
    let err = dir.join(format!("{stem}.err"));
    if err.exists() {
        err
    } else {
        dir.join(format!("{stem}.json"))
    }
}

/// A `.eml` message case (text).
pub fn eml_case(file: &str) -> Option<(String, bool)> {
    file.strip_suffix(".eml")
        .map(|stem| (stem.to_string(), true))
}
