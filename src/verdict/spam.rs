//! Spam-filter header fields: SpamAssassin (and amavis), rspamd, Microsoft 365.
//!
//! None of these is standardised; the formats read here are what the filters write:
//!
//! - SpamAssassin: `X-Spam-Flag: YES`, `X-Spam-Status: Yes, score=7.2 required=5.0
//!   tests=A,B autolearn=no ...`; amavis writes `tests=[A=1.2, B=-0.1]` and `X-Spam-Score`.
//! - rspamd (milter_headers): `X-Spamd-Result: default: False [3.40 / 15.00]; SYMBOL(0.10)[opts];
//!   ...`, `X-Rspamd-Score: 3.40`, `X-Spam: Yes`, `X-Rspamd-Action: no action`, and
//!   `X-Spam-Status: No, score=3.40`.
//! - Microsoft: `X-Forefront-Antispam-Report: ...;SCL:1;...;SFV:NSPM;...;CAT:NONE;...` and
//!   `X-MS-Exchange-Organization-SCL: 1`. SCL 5 and above is spam; `SFV:SPM` (and `SKS`, `SKB`,
//!   `BLK`) says the filter judged it spam.
//!
//! Fields are read top-most first, like trace fields: the receiver's own filter adds its
//! fields at the top, above anything a sender (or a sender's outbound filter) wrote. The
//! source of the top-most spam field wins, and each value is taken from the top-most field
//! of its name.

use super::headers::Field;
use super::{SpamSource, SpamVerdict};

/// Names only SpamAssassin (or amavis) writes.
const SPAMASSASSIN: &[&str] = &["X-Spam-Flag", "X-Spam-Checker-Version"];
/// Names only rspamd writes.
const RSPAMD: &[&str] = &[
    "X-Spamd-Result",
    "X-Rspamd-Score",
    "X-Rspamd-Action",
    "X-Spam",
    "X-Spamd-Bar",
];
/// Names only Microsoft writes. (`X-Forefront-Antispam-Report-Untrusted` is the *sender's*
/// tenant's report, and deliberately not here.)
const MICROSOFT: &[&str] = &[
    "X-Forefront-Antispam-Report",
    "X-MS-Exchange-Organization-SCL",
];
/// Microsoft's spam confidence level at and above which a message is spam.
const MICROSOFT_SCL_SPAM: f64 = 5.0;

/// Reads the spam verdict of the filter whose field is top-most.
pub(crate) fn report(fields: &[Field<'_>]) -> SpamVerdict {
    match source(fields) {
        Some(SpamSource::SpamAssassin) => spamassassin(fields),
        Some(SpamSource::Rspamd) => rspamd(fields),
        Some(SpamSource::Microsoft) => microsoft(fields),
        None => SpamVerdict::default(),
    }
}

fn source(fields: &[Field<'_>]) -> Option<SpamSource> {
    let named = |field: &Field<'_>, names: &[&str]| names.iter().any(|name| field.is(name));
    for field in fields {
        if named(field, SPAMASSASSIN) {
            return Some(SpamSource::SpamAssassin);
        }
        if named(field, RSPAMD) {
            return Some(SpamSource::Rspamd);
        }
        if named(field, MICROSOFT) {
            return Some(SpamSource::Microsoft);
        }
        if field.is("X-Spam-Status") {
            // Both filters write X-Spam-Status; rspamd also writes fields of its own.
            let rspamd = fields.iter().any(|field| named(field, RSPAMD));
            return Some(if rspamd {
                SpamSource::Rspamd
            } else {
                SpamSource::SpamAssassin
            });
        }
    }
    None
}

/// The rules that count against a message, most significant first: where the filter writes
/// scores (rspamd's `SYMBOL(1.5)`, amavis' `tests=[A=1.2]`, SpamAssassin's `X-Spam-Report`
/// lines `* 1.2 RULE ...`), the rules with a positive score, highest first (ties by name, so
/// the order is stable); without scores, every rule but the good signs (`*_VALID*`, `*_PASS`,
/// `*_ALLOW`, `DKIM_SIGNED`, `RCVD_IN_DNSWL_*`, ...). A rule that lowers the score is never a
/// reason for a spam verdict.
pub(crate) fn reasons(fields: &[Field<'_>], report: &SpamVerdict) -> Vec<String> {
    let scored = match report.source {
        Some(SpamSource::Rspamd) => first(fields, "X-Spamd-Result")
            .map(|v| rspamd_scores(&v))
            .unwrap_or_default(),
        Some(SpamSource::SpamAssassin) => {
            let mut scores = first(fields, "X-Spam-Report")
                .map(|v| spam_report_scores(&v))
                .unwrap_or_default();
            if scores.is_empty() {
                scores = first(fields, "X-Spam-Status")
                    .map(|v| status_scores(&v))
                    .unwrap_or_default();
            }
            scores
        }
        _ => Vec::new(),
    };
    if scored.is_empty() {
        return report
            .rules
            .iter()
            .filter(|r| !is_good_sign(r))
            .cloned()
            .collect();
    }
    let mut positive: Vec<(String, f64)> = scored.into_iter().filter(|(_, s)| *s > 0.0).collect();
    positive.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    positive.dedup_by(|a, b| a.0 == b.0);
    positive.into_iter().map(|(name, _)| name).collect()
}

/// Rules whose name says the message did something right.
fn is_good_sign(rule: &str) -> bool {
    let r = rule.to_ascii_uppercase();
    r.contains("_VALID")
        || r.ends_with("_PASS")
        || r.ends_with("_ALLOW")
        || r.contains("_ALLOW_")
        || r == "DKIM_SIGNED"
        || r.starts_with("RCVD_IN_DNSWL")
        || r.starts_with("RWL_")
        || r.contains("WELCOMELIST")
        || r.contains("WHITELIST")
        || r == "ALL_TRUSTED"
        || r.starts_with("BAYES_0")
        || r == "MIME_GOOD"
}

/// `SYMBOL(1.50)[options]` items of `X-Spamd-Result` with their scores.
fn rspamd_scores(value: &str) -> Vec<(String, f64)> {
    split_outside_brackets(value)
        .into_iter()
        .skip(1)
        .filter_map(|item| {
            let item = item.trim();
            let (name, rest) = item.split_once('(')?;
            let score = number(rest.split(')').next()?)?;
            Some((name.trim().to_string(), score))
        })
        .collect()
}

/// SpamAssassin's report: lines `* 1.2 RULE_NAME description` (also `pts rule name` tables).
fn spam_report_scores(value: &str) -> Vec<(String, f64)> {
    value
        .split(['\n', '*'])
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let score = number(words.next()?)?;
            let name = words.next()?;
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| (name.to_string(), score))
        })
        .collect()
}

/// `tests=[A=1.2, B=-0.1]` (amavis) or `tests=A=1.2,B=-0.1` (SpamAssassin's _TESTSSCORES_).
fn status_scores(value: &str) -> Vec<(String, f64)> {
    let Some(at) = value.find("tests=") else {
        return Vec::new();
    };
    let rest = &value[at + "tests=".len()..];
    let rest = rest
        .strip_prefix('[')
        .map_or(rest, |r| r.split(']').next().unwrap_or(""));
    rest.split([',', ' ', '\t', '\n'])
        .filter_map(|item| {
            let (name, score) = item.trim().split_once('=')?;
            Some((name.to_string(), number(score)?))
        })
        .collect()
}

/// The value of the top-most field called `name`.
fn first(fields: &[Field<'_>], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|field| field.is(name))
        .map(|field| field.value())
}

fn spamassassin(fields: &[Field<'_>]) -> SpamVerdict {
    let status = first(fields, "X-Spam-Status").map(|value| SpamStatusField::parse(&value));
    let status = status.unwrap_or_default();
    let flag = first(fields, "X-Spam-Flag").and_then(|value| yes_no(&value));
    SpamVerdict {
        flagged: flag.or(status.flagged).unwrap_or(false),
        score: status
            .score
            .or_else(|| first(fields, "X-Spam-Score").and_then(|value| number(&value))),
        threshold: status.threshold,
        rules: status.rules,
        source: Some(SpamSource::SpamAssassin),
    }
}

fn rspamd(fields: &[Field<'_>]) -> SpamVerdict {
    let result = first(fields, "X-Spamd-Result").map(|value| SpamdResult::parse(&value));
    let result = result.unwrap_or_default();
    let status = first(fields, "X-Spam-Status").map(|value| SpamStatusField::parse(&value));
    let status = status.unwrap_or_default();
    let spam = first(fields, "X-Spam").and_then(|value| yes_no(&value));
    // rspamd's actions that deliver the message marked as spam, or refuse it.
    let action = first(fields, "X-Rspamd-Action").map(|value| {
        let action = value.trim().to_ascii_lowercase();
        matches!(action.as_str(), "add header" | "rewrite subject" | "reject")
    });
    SpamVerdict {
        flagged: spam
            .or(action)
            .or(result.is_spam)
            .or(status.flagged)
            .unwrap_or(false),
        score: result
            .score
            .or_else(|| first(fields, "X-Rspamd-Score").and_then(|value| number(&value)))
            .or(status.score),
        threshold: result.threshold.or(status.threshold),
        rules: result.symbols,
        source: Some(SpamSource::Rspamd),
    }
}

fn microsoft(fields: &[Field<'_>]) -> SpamVerdict {
    let mut scl = None;
    let mut rules = Vec::new();
    let mut spam_verdict = false;
    if let Some(report) = first(fields, "X-Forefront-Antispam-Report") {
        for item in report.split(';') {
            let Some((key, value)) = item.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_uppercase();
            let value = value.trim();
            match key.as_str() {
                "SCL" => scl = scl.or_else(|| number(value)),
                "SFV" => {
                    // Microsoft's spam filtering verdicts that mean "spam".
                    spam_verdict |= matches!(
                        value.to_ascii_uppercase().as_str(),
                        "SPM" | "SKS" | "SKB" | "BLK"
                    );
                    rules.push(format!("SFV:{value}"));
                }
                "CAT" => rules.push(format!("CAT:{value}")),
                _ => {}
            }
        }
    }
    let scl = scl.or_else(|| {
        first(fields, "X-MS-Exchange-Organization-SCL").and_then(|value| number(&value))
    });
    SpamVerdict {
        flagged: spam_verdict || scl.is_some_and(|scl| scl >= MICROSOFT_SCL_SPAM),
        score: scl,
        threshold: Some(MICROSOFT_SCL_SPAM),
        rules,
        source: Some(SpamSource::Microsoft),
    }
}

/// `Yes`/`No` (any case, surrounding white space ignored).
fn yes_no(value: &str) -> Option<bool> {
    let word = value.trim().trim_end_matches([',', ';']);
    if word.eq_ignore_ascii_case("yes") || word.eq_ignore_ascii_case("true") {
        Some(true)
    } else if word.eq_ignore_ascii_case("no") || word.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A finite number; `NaN` and infinities are not scores.
fn number(value: &str) -> Option<f64> {
    let value = value.trim().trim_end_matches([',', ';']);
    value
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

/// `X-Spam-Status`, as SpamAssassin, amavis and rspamd write it.
#[derive(Default)]
struct SpamStatusField {
    flagged: Option<bool>,
    score: Option<f64>,
    threshold: Option<f64>,
    rules: Vec<String>,
}

impl SpamStatusField {
    fn parse(value: &str) -> SpamStatusField {
        let mut status = SpamStatusField::default();
        let value = value.trim();
        let head_end = value
            .find(|ch: char| ch == ',' || ch.is_whitespace())
            .unwrap_or(value.len());
        status.flagged = yes_no(&value[..head_end]);
        let rest = &value[head_end..];
        for token in rest.split(|ch: char| ch == ',' || ch.is_whitespace()) {
            if let Some(score) = token.strip_prefix("score=") {
                status.score = status.score.or_else(|| number(score));
            } else if let Some(required) = token
                .strip_prefix("required=")
                .or_else(|| token.strip_prefix("required_score="))
            {
                status.threshold = status.threshold.or_else(|| number(required));
            }
        }
        if let Some(at) = rest.find("tests=") {
            status.rules = tests(&rest[at + "tests=".len()..]);
        }
        status
    }
}

/// The rule names after `tests=`: `A,B,\n\tC autolearn=...` (SpamAssassin) or
/// `[A=1.2, B=-0.1]` (amavis). `none` means no rule fired.
fn tests(text: &str) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(bracketed) = text.strip_prefix('[') {
        let inner = bracketed.split(']').next().unwrap_or("");
        for item in inner.split(',') {
            let name = item.split('=').next().unwrap_or("").trim();
            if !name.is_empty() {
                rules.push(name.to_string());
            }
        }
        return rules;
    }
    for token in text.split_whitespace() {
        // The list ends at the next `key=value` (`autolearn=ham`).
        if token.contains('=') {
            break;
        }
        for name in token.split(',') {
            let name = name.trim();
            if !name.is_empty() && name != "none" {
                rules.push(name.to_string());
            }
        }
    }
    rules
}

/// `X-Spamd-Result: default: False [3.40 / 15.00]; SYMBOL(0.10)[options]; ...`
#[derive(Default)]
struct SpamdResult {
    is_spam: Option<bool>,
    score: Option<f64>,
    threshold: Option<f64>,
    symbols: Vec<String>,
}

impl SpamdResult {
    fn parse(value: &str) -> SpamdResult {
        let mut result = SpamdResult::default();
        let mut items = split_outside_brackets(value).into_iter();
        if let Some(metric) = items.next() {
            // `default: False [3.40 / 15.00]`
            let after_name = metric.split_once(':').map_or(metric, |(_, rest)| rest);
            let (word, scores) = after_name.split_once('[').unwrap_or((after_name, ""));
            result.is_spam = yes_no(word);
            let scores = scores.split(']').next().unwrap_or("");
            let (score, threshold) = scores.split_once('/').unwrap_or((scores, ""));
            result.score = number(score);
            result.threshold = number(threshold);
        }
        for item in items {
            let name = item.split(['(', '[']).next().unwrap_or("").trim();
            if !name.is_empty() {
                result.symbols.push(name.to_string());
            }
        }
        result
    }
}

/// Splits at `;` that are not inside `[...]` or `(...)` (symbol options may hold `;`).
fn split_outside_brackets(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (at, ch) in value.char_indices() {
        match ch {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                items.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::headers::split;

    fn spam(raw: &str) -> SpamVerdict {
        report(&split(raw.as_bytes()).expect("headers"))
    }

    #[test]
    fn no_spam_headers() {
        assert_eq!(spam("Subject: hi\n"), SpamVerdict::default());
    }

    #[test]
    fn spamassassin_ham_and_spam() {
        let got = spam(
            "X-Spam-Checker-Version: SpamAssassin 3.4.6 (2021-04-09) on mx.example.net\nX-Spam-Level: \nX-Spam-Status: No, score=-0.1 required=5.0 tests=DKIM_SIGNED,DKIM_VALID,\n\tDKIM_VALID_AU,SPF_PASS autolearn=ham autolearn_force=no version=3.4.6\n",
        );
        assert_eq!(
            got,
            SpamVerdict {
                flagged: false,
                score: Some(-0.1),
                threshold: Some(5.0),
                rules: vec![
                    "DKIM_SIGNED".into(),
                    "DKIM_VALID".into(),
                    "DKIM_VALID_AU".into(),
                    "SPF_PASS".into()
                ],
                source: Some(SpamSource::SpamAssassin),
            }
        );
        let got = spam(
            "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=7.2 required=5.0 tests=none\n  autolearn=no\n",
        );
        assert!(got.flagged);
        assert_eq!((got.score, got.threshold), (Some(7.2), Some(5.0)));
        assert!(got.rules.is_empty());
    }

    #[test]
    fn amavis_form() {
        let got = spam(
            "X-Spam-Flag: NO\nX-Spam-Score: -1.9\nX-Spam-Status: No, score=-1.9 tagged_above=-999 required=6.31\n\ttests=[BAYES_00=-1.9, DKIM_SIGNED=0.1, DKIM_VALID=-0.1] autolearn=ham\n",
        );
        assert!(!got.flagged);
        assert_eq!((got.score, got.threshold), (Some(-1.9), Some(6.31)));
        assert_eq!(got.rules, vec!["BAYES_00", "DKIM_SIGNED", "DKIM_VALID"]);
    }

    #[test]
    fn rspamd_fields() {
        let got = spam(
            "X-Spamd-Result: default: False [3.40 / 15.00];\n\tR_SPF_ALLOW(-0.20)[+ip4:192.0.2.0/24];\n\tDKIM_TRACE(0.00)[example.com:+];\n\tMIME_GOOD(-0.10)[text/plain; charset=utf-8]\nX-Rspamd-Score: 3.40\nX-Spam-Status: No, score=3.40\nX-Rspamd-Action: no action\n",
        );
        assert_eq!(
            got,
            SpamVerdict {
                flagged: false,
                score: Some(3.4),
                threshold: Some(15.0),
                rules: vec![
                    "R_SPF_ALLOW".into(),
                    "DKIM_TRACE".into(),
                    "MIME_GOOD".into()
                ],
                source: Some(SpamSource::Rspamd),
            }
        );
        let got = spam("X-Spam-Status: Yes, score=9.10\nX-Spam: Yes\nX-Rspamd-Score: 9.1\n");
        assert_eq!(got.source, Some(SpamSource::Rspamd));
        assert!(got.flagged);
        assert_eq!((got.score, got.threshold), (Some(9.1), None));
        let got =
            spam("X-Rspamd-Action: add header\nX-Spamd-Result: default: True [7.00 / 15.00]\n");
        assert!(got.flagged);
    }

    #[test]
    fn microsoft_fields() {
        let got = spam(
            "X-Forefront-Antispam-Report: CIP:192.0.2.1;CTRY:US;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;H:mail.example.com;PTR:mail.example.com;CAT:NONE;SFS:(13230040)(4636009);DIR:INB;\nX-MS-Exchange-Organization-SCL: 1\n",
        );
        assert_eq!(
            got,
            SpamVerdict {
                flagged: false,
                score: Some(1.0),
                threshold: Some(5.0),
                rules: vec!["SFV:NSPM".into(), "CAT:NONE".into()],
                source: Some(SpamSource::Microsoft),
            }
        );
        let got = spam("X-MS-Exchange-Organization-SCL: 5\n");
        assert!(got.flagged);
        assert_eq!(got.score, Some(5.0));
        let got = spam("X-Forefront-Antispam-Report: SFV:SPM;SCL:1\n");
        assert!(got.flagged);
        let got = spam("X-Forefront-Antispam-Report: SCL:-1;SFV:SKN\n");
        assert!(!got.flagged);
        assert_eq!(got.score, Some(-1.0));
    }

    #[test]
    fn top_most_source_wins() {
        let got = spam(
            "X-Forefront-Antispam-Report: SFV:NSPM;SCL:1\nX-Spam-Flag: YES\nX-Spam-Status: Yes, score=20 required=5\n",
        );
        assert_eq!(got.source, Some(SpamSource::Microsoft));
        assert!(!got.flagged);
        // The top-most field of a name wins: a sender's lower X-Spam-Status cannot clear a flag.
        let got = spam(
            "X-Spam-Status: Yes, score=8.0 required=5.0 tests=X\nX-Spam-Status: No, score=-9 required=5.0\n",
        );
        assert!(got.flagged);
        assert_eq!(got.score, Some(8.0));
    }

    #[test]
    fn garbage_values_give_no_numbers() {
        let got = spam("X-Spam-Status: maybe, score=NaN required=inf tests=\nX-Spam-Score: ???\n");
        assert_eq!(got.source, Some(SpamSource::SpamAssassin));
        assert!(!got.flagged);
        assert_eq!((got.score, got.threshold), (None, None));
        let got = spam("X-Spamd-Result: [[[;;(((\nX-Forefront-Antispam-Report: ::::\n");
        assert_eq!(got.source, Some(SpamSource::Rspamd));
        assert_eq!(got.score, None);
        let got = spam("X-Spamd-Result: \n");
        assert_eq!(got.rules, Vec::<String>::new());
    }

    fn reasons_of(text: &str) -> Vec<String> {
        let owned: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let raw: String = owned
            .iter()
            .map(|(n, v)| format!("{n}:{v}\n"))
            .collect::<String>()
            + "\nbody\n";
        crate::verdict::inspect(raw.as_bytes(), &[])
            .expect("a message")
            .spam_reasons
    }

    #[test]
    fn reasons_rank_positive_scores_and_drop_good_signs() {
        // rspamd: scores in parentheses; negative rules are never reasons; ties by name.
        assert_eq!(
            reasons_of(
                "X-Spamd-Result: default: True [16.10 / 15.00]; DMARC_POLICY_ALLOW(-0.50)[a]; LAB_SPAM_PHRASE(15.00)[]; R_DKIM_ALLOW(-0.20)[b]; SPAM_FLAG(0.50)[]; R_PARTS_DIFFER(0.50)[]; MIME_GOOD(-0.10)[text/plain]"
            ),
            vec!["LAB_SPAM_PHRASE", "R_PARTS_DIFFER", "SPAM_FLAG"]
        );
        // amavis: tests=[A=1.2, B=-0.1].
        assert_eq!(
            reasons_of(
                "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=7.9 required=5 tests=[BAYES_99=3.5, DKIM_SIGNED=0.1, DKIM_VALID=-0.1, URIBL_BLOCKED=4.3]"
            ),
            vec!["URIBL_BLOCKED", "BAYES_99", "DKIM_SIGNED"]
        );
        // SpamAssassin without scores: the good signs go.
        assert_eq!(
            reasons_of(
                "X-Spam-Flag: YES\nX-Spam-Status: Yes, score=1004.2 required=5.0 tests=DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU,GTUBE,SPF_PASS autolearn=no"
            ),
            vec!["GTUBE"]
        );
    }
}
