//! Which bounces of the corpus (`tests/fixtures/dsn/`) prove their probe (issue #20: a bounce
//! cannot be forged by someone who only knows what is published or what a relay sees).
//!
//! The corpus bounces were written with made-up MACs and, where they have one, the bare probe
//! id as envelope id (what releases before signed envelope ids sent). For every case:
//!
//! - **as written**, it names its probe (by token, envelope id or Message-ID) but proves
//!   nothing: `Unproven`, never `Proven` — a stranger's copy of a real bounce changes nothing;
//! - **as it would come back for a probe of this release** — its token's MAC made with the key,
//!   its envelope id the signed one, nothing else changed — it proves its probe (`Proven`), by
//!   its token when it returns one, else by its envelope id. A case that carries neither could
//!   only be named by its Message-ID, which never decides: it is `Unproven` (`message_id`)
//!   either way, and counted here so that such a case is seen.
//!
//! Every case runs with LF and with CRLF line ends; the test fails when no case was proven.

use std::fs;
use std::path::{Path, PathBuf};

use mailcanary::config::Secret;
use mailcanary::probe::token::{self, Token};
use mailcanary::probe::watch::bounces::{Claim, Proof, Unproven, claim};
use mailcanary::state::probes::{ProbeKind, ProbeStore};
use mailcanary::verdict::dsn::{Dsn, read};

#[path = "common/line_ends.rs"]
mod line_ends;
use line_ends::lf_and_crlf;

const INSTANCE: &str = "site-a";

fn key() -> Secret {
    Secret::new("corpus-test-key-0123456789")
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dsn");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        // A case with an expected error is not a bounce at all.
        .filter(|p| !p.with_extension("err").exists())
        .collect();
    cases.sort();
    cases
}

fn dsn_of(name: &str, raw: &[u8]) -> Dsn {
    match read(raw) {
        Ok(Some(dsn)) => dsn,
        other => panic!("{name}: not read as a bounce: {other:?}"),
    }
}

/// A corpus token (`v1.<id>.<route>.<seed>.<sent>.<mac>` or `v2.<id>.<instance>.…`) as this
/// release would have written it: the same fields, signed with [`key`].
fn signed(value: &str) -> Option<Token> {
    let parts: Vec<&str> = value.split('.').collect();
    let (probe_id, instance, route, seed, sent) = match parts.as_slice() {
        ["v1", id, route, seed, sent, _] => (id, None, route, seed, sent),
        ["v2", id, instance, route, seed, sent, _] => {
            (id, Some(instance.to_string()), route, seed, sent)
        }
        _ => return None,
    };
    Some(Token {
        probe_id: probe_id.to_string(),
        instance,
        route: route.to_string(),
        seed: seed.to_string(),
        sent_at: sent.parse().ok()?,
    })
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(haystack.len());
    let mut n = 0;
    let mut i = 0;
    while i < haystack.len() {
        if !needle.is_empty() && haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
            n += 1;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    (out, n)
}

/// `raw` with the value of its `Original-Envelope-Id` field replaced by `envid`.
fn with_envelope_id(raw: &[u8], envid: &str) -> Vec<u8> {
    let name = b"original-envelope-id:";
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut replaced = false;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if !replaced && line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            let end: &[u8] = if line.ends_with(b"\r\n") {
                b"\r\n"
            } else {
                b"\n"
            };
            out.extend_from_slice(b"Original-Envelope-Id: ");
            out.extend_from_slice(envid.as_bytes());
            out.extend_from_slice(end);
            replaced = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    assert!(replaced, "no Original-Envelope-Id line");
    out
}

fn normalized(message_id: &str) -> String {
    let m = message_id.trim();
    if m.starts_with('<') {
        m.to_string()
    } else {
        format!("<{m}>")
    }
}

/// The probe a corpus bounce is about, recorded in a fresh state of its instance.
struct Probe {
    _dir: tempfile::TempDir,
    store: ProbeStore,
    id: String,
    instance: String,
}

/// Records the probe `dsn` names (by its token, else its envelope id, else its Message-ID
/// `<mc.<id>@…>`) as a probe of its instance; `None` when it names none.
fn probe_of(dsn: &Dsn) -> Option<Probe> {
    let token = dsn.probe_token.as_deref().and_then(signed);
    let id = token
        .as_ref()
        .map(|t| t.probe_id.clone())
        .or_else(|| Token::named_probe(dsn.probe_token.as_deref().unwrap_or_default()))
        .or_else(|| {
            dsn.original_envelope_id
                .as_deref()
                .map(str::trim)
                .filter(|e| e.len() == 32)
                .map(str::to_ascii_lowercase)
        })
        .or_else(|| {
            let mid = normalized(dsn.original_message_id.as_deref()?);
            let local = mid.strip_prefix("<mc.")?.split('@').next()?.to_string();
            Some(local)
        })?;
    let instance = token
        .as_ref()
        .and_then(|t| t.instance.clone())
        .unwrap_or_else(|| INSTANCE.to_string());
    let (route, seed) = token
        .as_ref()
        .map_or(("main".to_string(), "s1".to_string()), |t| {
            (t.route.clone(), t.seed.clone())
        });
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ProbeStore::open(&dir.path().join("s.sqlite"), &instance).expect("store");
    let message_id = dsn
        .original_message_id
        .as_deref()
        .map(normalized)
        .unwrap_or_default();
    store
        .insert_sending(
            1,
            &id,
            &route,
            &seed,
            &message_id,
            100.0,
            ProbeKind::Scheduled,
        )
        .expect("insert");
    Some(Probe {
        _dir: dir,
        store,
        id,
        instance,
    })
}

fn claim_of(dsn: &Dsn, probe: &Probe) -> Claim {
    match claim(dsn, &key(), &probe.instance, &probe.store, |_| true) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// The same bounce as it would come back for a probe of this release: the token's MAC made
/// with the key, the envelope id the signed one.
fn as_this_release_sends(raw: &[u8], dsn: &Dsn, probe: &Probe) -> Vec<u8> {
    let mut raw = raw.to_vec();
    if let Some(value) = dsn.probe_token.as_deref()
        && let Some(t) = signed(value)
    {
        let genuine = t.encode(&key());
        let (Some(made_up), Some(tag)) = (value.rsplit('.').next(), genuine.rsplit('.').next())
        else {
            panic!("token without a MAC: {value}");
        };
        let (out, n) = replace_all(&raw, made_up.as_bytes(), tag.as_bytes());
        assert!(n > 0, "the token's MAC is not in the bytes: {value}");
        raw = out;
    }
    if dsn.original_envelope_id.is_some() {
        raw = with_envelope_id(
            &raw,
            &token::envelope_id(&key(), &probe.instance, &probe.id),
        );
    }
    raw
}

#[test]
fn corpus_bounces_prove_their_probe_only_when_signed() {
    let (mut proven, mut message_id_only, mut ran) = (0, 0, 0);
    for path in cases() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let file = fs::read(&path).expect("read case");
        let (lf, crlf) = lf_and_crlf(&file);
        for raw in [lf, crlf] {
            let dsn = dsn_of(&name, &raw);
            let Some(probe) = probe_of(&dsn) else {
                // Names no probe at all: not ours whatever the state holds.
                let dir = tempfile::tempdir().expect("tempdir");
                let store =
                    ProbeStore::open(&dir.path().join("s.sqlite"), INSTANCE).expect("store");
                let c = claim(&dsn, &key(), INSTANCE, &store, |_| true).expect("claim");
                assert_eq!(c, Claim::NotOurs, "{name}");
                continue;
            };
            ran += 1;
            // As written: named, not proven.
            match claim_of(&dsn, &probe) {
                Claim::Unproven { record, .. } => assert_eq!(record.probe_id, probe.id, "{name}"),
                other => panic!("{name}: as written (made-up MAC, bare envelope id): {other:?}"),
            }
            // As this release's probe would get it back.
            let resigned = as_this_release_sends(&raw, &dsn, &probe);
            let dsn2 = dsn_of(&name, &resigned);
            let expected = if dsn2.probe_token.is_some() {
                Some(Proof::Token)
            } else if dsn2.original_envelope_id.is_some() {
                Some(Proof::EnvelopeId)
            } else {
                None
            };
            match (claim_of(&dsn2, &probe), expected) {
                (Claim::Proven { record, by }, Some(proof)) => {
                    assert_eq!(record.probe_id, probe.id, "{name}");
                    assert_eq!(by, proof, "{name}");
                    proven += 1;
                }
                (Claim::Unproven { record, why }, None) => {
                    assert_eq!(record.probe_id, probe.id, "{name}");
                    assert_eq!(why, Unproven::MessageId, "{name}");
                    message_id_only += 1;
                }
                (other, _) => panic!("{name}: signed as this release sends: {other:?}"),
            }
        }
    }
    eprintln!(
        "{ran} bounce(s) of the corpus (LF and CRLF): {proven} proven once signed, \
         {message_id_only} named by their Message-ID only"
    );
    assert!(proven > 0, "no corpus bounce was proven");
    assert_eq!(ran, proven + message_id_only);
}
