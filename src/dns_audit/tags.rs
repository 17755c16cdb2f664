//! Tag=value lists (RFC 6376 §3.2, reused by DMARC in RFC 7489 §6.4): the few tags the audit
//! reports that mail-auth parses but does not expose (`k=`, `t=`, `pct=`). mail-auth stays the
//! judge of whether a record is valid; this only reads values out of it.

/// The `tag=value` pairs of a record, in order; tag names lower-cased, values trimmed.
/// Malformed pieces (no `=`) are skipped: validity is mail-auth's call.
pub fn parse(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|part| {
            let (tag, value) = part.split_once('=')?;
            let tag = tag.trim();
            if tag.is_empty() {
                return None;
            }
            Some((tag.to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

/// The value of the first `tag` in `record`.
pub fn get<'a>(tags: &'a [(String, String)], tag: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(name, _)| name == tag)
        .map(|(_, value)| value.as_str())
}

/// Whether a colon-separated flag list (`t=y:s`) contains `flag` (RFC 6376 §3.6.1).
pub fn has_flag(value: &str, flag: &str) -> bool {
    value
        .split(':')
        .any(|item| item.trim().eq_ignore_ascii_case(flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dkim_key_record() {
        let tags = parse("v=DKIM1; k=rsa; t=y:s; p=MIIB\tIjAN ;");
        assert_eq!(get(&tags, "v"), Some("DKIM1"));
        assert_eq!(get(&tags, "k"), Some("rsa"));
        assert!(has_flag(get(&tags, "t").unwrap_or(""), "y"));
        assert!(has_flag("s : Y", "y"));
        assert_eq!(get(&tags, "p"), Some("MIIB\tIjAN"));
        assert_eq!(get(&tags, "h"), None);
    }

    #[test]
    fn dmarc_record() {
        let tags = parse("v=DMARC1;p=reject;PCT=50; rua=mailto:a@x.test,mailto:b@y.test");
        assert_eq!(get(&tags, "pct"), Some("50"));
        assert_eq!(get(&tags, "rua"), Some("mailto:a@x.test,mailto:b@y.test"));
    }

    #[test]
    fn junk_is_skipped() {
        assert!(parse("").is_empty());
        assert_eq!(parse("garbage; =x; a=1").len(), 1);
    }
}
