//! Provider notes that need code, each on a golden message of the verdict corpus
//! (`tests/fixtures/verdict/`), judged exactly as the probe judges a seed of that provider:
//! through the trust settings (`authserv_ids`) and spam folder that `provider = "…"` gives a
//! seed after validation — not through hand-written ids.
//!
//! - iCloud writes one `Authentication-Results` per method, each with its own authserv-id
//!   (`spf.icloud.com`, `dkim-verifier.icloud.com`, `dmarc.icloud.com`, `arc.icloud.com`) under
//!   a BIMI one: the preset must trust all of them (RFC 8601 §5: trust is by authserv-id).
//! - Yahoo (and AOL) write a per-cluster authserv-id: the preset trusts the top-most header;
//!   its spam folder is `Bulk`.
//! - Microsoft writes `Authentication-Results` without an authserv-id and its spam verdict in
//!   `X-Forefront-Antispam-Report` (`SFV:SPM`) / `X-MS-Exchange-Organization-SCL`.
//!
//! Every case runs with LF and CRLF line ends; the test fails when no case ran.

use std::path::{Path, PathBuf};

use mailcanary::probe::judge::{judge, receiver_of};

#[path = "common/line_ends.rs"]
mod line_ends;
use line_ends::lf_and_crlf;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// The validated seed `s` of a config with `provider = "<provider>"`.
fn seed(provider: &str) -> mailcanary::config::Seed {
    let text = format!(
        "[probe]\ntoken_key_file = \"token.key\"\n\n\
         [routes.main]\nhost = \"smtp.example.com\"\nfrom = \"Probe <probe@example.com>\"\n\
         username = \"probe@example.com\"\npassword_file = \"password\"\n\n\
         [seeds.s]\nprovider = \"{provider}\"\naddress = \"canary@example.com\"\n\
         password_file = \"password\"\n"
    );
    let config = mailcanary::config::parse(&text, &dir("config").join("presets.toml"))
        .unwrap_or_else(|e| panic!("provider {provider}: {e}"));
    config.seeds.into_iter().next().expect("one seed")
}

struct Case {
    provider: &'static str,
    eml: &'static str,
    /// spf, dkim, dmarc as the verdict says them.
    auth: [&'static str; 3],
    spam_flagged: bool,
    spam_source: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        provider: "icloud",
        eml: "icloud-default-trust.eml",
        auth: ["pass", "pass", "pass"],
        spam_flagged: false,
        spam_source: None,
    },
    Case {
        provider: "yahoo",
        eml: "yahoo-pass.eml",
        auth: ["pass", "pass", "pass"],
        spam_flagged: false,
        spam_source: None,
    },
    Case {
        provider: "yahoo",
        eml: "aol-fail.eml",
        auth: ["softfail", "unknown", "fail"],
        spam_flagged: false,
        spam_source: None,
    },
    Case {
        provider: "outlook",
        eml: "microsoft365-pass.eml",
        auth: ["pass", "pass", "pass"],
        spam_flagged: false,
        spam_source: Some("microsoft"),
    },
    Case {
        provider: "outlook",
        eml: "outlook-com-spam.eml",
        auth: ["softfail", "none", "fail"],
        spam_flagged: true,
        spam_source: Some("microsoft"),
    },
    Case {
        provider: "gmail",
        eml: "gmail-pass.eml",
        auth: ["pass", "pass", "pass"],
        spam_flagged: false,
        spam_source: None,
    },
];

#[test]
fn golden_messages_through_each_presets_trust_lf_and_crlf() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in CASES {
        let seed = seed(case.provider);
        let raw = std::fs::read(dir("verdict").join(case.eml)).expect("read .eml");
        let (lf, crlf) = lf_and_crlf(&raw);
        for (form, raw) in [("LF", lf), ("CRLF", crlf)] {
            let j = judge(&raw, &seed.authserv_ids, &receiver_of(&seed));
            let v = serde_json::to_value(&j.verdict).expect("verdict json");
            let got =
                [&v["spf"], &v["dkim"], &v["dmarc"]].map(|r| r.as_str().unwrap_or("?").to_string());
            let spam = serde_json::to_value(&j.spam).expect("spam json");
            let got_source = spam["source"].as_str();
            if got != case.auth
                || j.spam.flagged != case.spam_flagged
                || got_source != case.spam_source
                || j.error.is_some()
                || j.path.is_none()
            {
                failures.push(format!(
                    "{} via preset {} ({form}): spf/dkim/dmarc {got:?} (expected {:?}), spam \
                     flagged {} source {got_source:?} (expected {} {:?}), error {:?}",
                    case.eml,
                    case.provider,
                    case.auth,
                    j.spam.flagged,
                    case.spam_flagged,
                    case.spam_source,
                    j.error
                ));
            }
            ran += 1;
        }
    }
    assert!(ran > 0, "no case ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn icloud_trusts_every_method_id_it_writes() {
    // The corpus case written with iCloud's ids by hand must be exactly the preset's trust.
    let text = std::fs::read_to_string(dir("verdict").join("icloud-trusted-ids.ids.json"))
        .expect("ids.json");
    let mut written: Vec<String> = serde_json::from_str(&text).expect("a JSON array");
    let mut preset = seed("icloud").authserv_ids;
    written.sort();
    preset.sort();
    assert_eq!(preset, written);
}

#[test]
fn microsoft_and_yahoo_trust_the_top_most_header() {
    // Microsoft writes no authserv-id; Yahoo's names the cluster: both trust the top-most.
    assert!(seed("outlook").authserv_ids.is_empty());
    assert!(seed("yahoo").authserv_ids.is_empty());
    assert_eq!(seed("gmail").authserv_ids, ["mx.google.com"]);
}

#[test]
fn yahoo_spam_folder_is_bulk() {
    // Used when the server lists no SPECIAL-USE \Junk folder (RFC 6154).
    assert_eq!(seed("yahoo").preset_spam_folder.as_deref(), Some("Bulk"));
    assert_eq!(
        seed("gmail").preset_spam_folder.as_deref(),
        Some("[Gmail]/Spam")
    );
    assert_eq!(seed("outlook").preset_spam_folder.as_deref(), Some("Junk"));
}
