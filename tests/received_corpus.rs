//! Golden corpus for the path reader (`Received:` fields, RFC 5321 §4.4).
//!
//! Each case in `tests/fixtures/received/` is `<case>.eml` (a header set; where each dialect
//! came from is in that folder's README) with either `<case>.json` (the [`Path`] read from it)
//! or `<case>.err` (the expected error: its `reason()` on the first line, its message on the
//! second). An optional `<case>.receiver.json` names the receiver: `{"domains": [...]}`,
//! `{"authserv_ids": [...]}` and/or `{"provider": "gmail"}`; without it the top-most hop names
//! the receiver.
//!
//! Every case runs twice, with LF and with CRLF line ends, and must give the same output. The
//! test fails when no case ran.
//!
//! To draft the expected output of a new case, run with `RECEIVED_BLESS=1`, then read the
//! written `.json` line by line: a blessed file is only as right as the review it got.

use std::fs;
use std::path::{Path as FsPath, PathBuf};

use mailcanary::path::{Receiver, read};
use serde::Deserialize;

#[path = "common/corpus.rs"]
mod corpus;
#[path = "common/line_ends.rs"]
mod line_ends;
use corpus::Corpus;

fn fixtures() -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/received")
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReceiverSpec {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    authserv_ids: Vec<String>,
    provider: Option<String>,
}

impl ReceiverSpec {
    fn receiver(&self) -> Receiver {
        let provider = self
            .provider
            .as_deref()
            .map(Receiver::for_provider)
            .unwrap_or_default();
        Receiver::new(&self.domains)
            .with(&Receiver::from_authserv_ids(&self.authserv_ids))
            .with(&provider)
    }
}

fn run_case(raw: &[u8], receiver: &Receiver) -> String {
    match read(raw, receiver) {
        Ok(path) => serde_json::to_string_pretty(&path).expect("json") + "\n",
        Err(err) => format!("{}\n{}\n", err.reason(), err),
    }
}

#[test]
fn golden_corpus_lf_and_crlf() {
    let corpus = Corpus {
        dir: fixtures(),
        what: "received corpus",
        bless: "RECEIVED_BLESS",
        case: corpus::eml_case,
        expected: corpus::err_else_json,
    };
    corpus::run(&corpus, |eml, raw| {
        let spec: ReceiverSpec = match fs::read_to_string(eml.with_extension("receiver.json")) {
            Ok(text) => serde_json::from_str(&text).expect("receiver.json"),
            Err(_) => ReceiverSpec::default(),
        };
        run_case(raw, &spec.receiver())
    });
}

#[test]
fn every_expected_file_has_a_message() {
    for entry in fs::read_dir(fixtures()).expect("fixtures directory") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name
            .strip_suffix(".receiver.json")
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

/// The verdict corpus's messages carry real providers' `Received:` fields too: every one of
/// them reads without error, and a trusted hop is never below an untrusted one.
#[test]
fn verdict_corpus_messages_read_as_paths() {
    let dir = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verdict");
    let mut ran = 0;
    for entry in fs::read_dir(&dir).expect("verdict fixtures") {
        let eml = entry.expect("directory entry").path();
        if eml.extension().is_none_or(|ext| ext != "eml") || eml.with_extension("err").exists() {
            continue;
        }
        let raw = fs::read(&eml).expect("read .eml");
        let path = read(&raw, &Receiver::default())
            .unwrap_or_else(|err| panic!("{}: {err}", eml.display()));
        let first_untrusted = path.hops.iter().position(|hop| !hop.trusted);
        if let Some(first) = first_untrusted {
            assert!(
                path.hops[first..].iter().all(|hop| !hop.trusted),
                "{}: a trusted hop below an untrusted one",
                eml.display()
            );
        }
        assert_eq!(path.receiving_hop.is_some(), path.seen.is_some());
        ran += 1;
    }
    assert!(ran > 0, "no verdict corpus message ran");
}
