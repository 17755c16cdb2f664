//! Golden corpus for the bounce reader.
//!
//! Each case in `tests/fixtures/dsn/` is `<case>.eml` (a bounce, written from the MTA's or
//! provider's public documentation and RFC 3464 §6; see that folder's README) with either
//! `<case>.json` (the [`Dsn`] read from it, and the [`Rejection`] of its first failed
//! recipient, else of its first delayed one) or `<case>.err` (the expected error: its
//! `reason()` on the first line, its message on the second).
//!
//! Every case runs twice, with LF and with CRLF line ends, and must give the same output.
//! The test fails when no case ran.
//!
//! Every message of the verdict corpus (`tests/fixtures/verdict/`) is an ordinary message:
//! none may read as a bounce.
//!
//! To draft the expected output of a new case, run with `DSN_BLESS=1`, then read the written
//! `.json` line by line: a blessed file is only as right as the review it got.

use std::fs;
use std::path::{Path, PathBuf};

use mailcanary::verdict::dsn::{Dsn, Rejection, read};
use serde::Serialize;

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/line_ends.rs"]
mod line_ends;
use corpus::Corpus;
use line_ends::lf_and_crlf;

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[derive(Serialize)]
struct Expected<'a> {
    dsn: Option<&'a Dsn>,
    rejection: Option<Rejection>,
}

fn run_case(raw: &[u8]) -> String {
    match read(raw) {
        Ok(dsn) => {
            let expected = Expected {
                dsn: dsn.as_ref(),
                rejection: dsn.as_ref().and_then(Dsn::rejection),
            };
            serde_json::to_string_pretty(&expected).expect("json") + "\n"
        }
        Err(err) => format!("{}\n{}\n", err.reason(), err),
    }
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let corpus = Corpus {
        dir: fixtures("dsn"),
        what: "dsn corpus",
        bless: "DSN_BLESS",
        case: corpus::eml_case,
        expected: corpus::err_else_json,
    };
    corpus::run(&corpus, |_, raw| run_case(raw));
}

#[test]
fn every_expected_file_has_a_message() {
    for entry in fs::read_dir(fixtures("dsn")).expect("fixtures directory") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name
            .strip_suffix(".json")
            .or_else(|| name.strip_suffix(".err"));
        if let Some(stem) = stem {
            assert!(
                fixtures("dsn").join(format!("{stem}.eml")).exists(),
                "{name} has no {stem}.eml"
            );
        }
    }
}

#[test]
fn ordinary_messages_are_not_bounces() {
    let mut ran = 0;
    for eml in cases(&fixtures("verdict")) {
        let name = eml.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let raw = fs::read(&eml).expect("read .eml");
        let (lf, crlf) = lf_and_crlf(&raw);
        for form in [lf, crlf] {
            match read(&form) {
                Ok(None) => {}
                // The verdict corpus's own error cases (empty input, no header section) are
                // not messages at all, for either reader.
                Err(err) if eml.with_extension("err").exists() => {
                    assert!(matches!(err.reason(), "empty" | "parse"), "{name}: {err}");
                }
                other => panic!("{name}: an ordinary message read as {other:?}"),
            }
        }
        ran += 1;
    }
    assert!(ran > 0, "no verdict corpus message ran");
}
