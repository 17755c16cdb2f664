//! The kinds of report, and every spelling of each in one table: how the state stores it and
//! metrics label it ([`ReportKind::as_str`]), the `kind` of `inspect --json` and
//! `/api/reports` ([`ReportKind::json_kind`]), and the word people read on the status page and
//! in `inspect` ([`ReportKind::word`]). A new kind (ARF complaints, RFC 5965) is one more row
//! here, not a string in every reader.

use serde::Serialize;

/// Which kind of report a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// A DMARC aggregate report (XML, RFC 7489 Appendix C).
    Dmarc,
    /// An SMTP TLS report (JSON, RFC 8460).
    Tlsrpt,
}

impl ReportKind {
    pub const ALL: [ReportKind; 2] = [ReportKind::Dmarc, ReportKind::Tlsrpt];

    /// The table: (stored and label word, JSON kind, display word).
    fn words(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ReportKind::Dmarc => ("dmarc", "dmarc_aggregate", "DMARC"),
            ReportKind::Tlsrpt => ("tlsrpt", "tls_report", "TLS"),
        }
    }

    /// As the state stores it and metrics label it: `dmarc`, `tlsrpt`.
    pub fn as_str(self) -> &'static str {
        self.words().0
    }

    /// The `kind` of `inspect --json` and `/api/reports`: `dmarc_aggregate`, `tls_report`.
    pub fn json_kind(self) -> &'static str {
        self.words().1
    }

    /// The word people read: `DMARC`, `TLS`.
    pub fn word(self) -> &'static str {
        self.words().2
    }

    /// The kind stored as `s` ([`Self::as_str`]).
    pub fn parse(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_words_and_reads_back() {
        for k in ReportKind::ALL {
            assert!(!k.as_str().is_empty() && !k.json_kind().is_empty() && !k.word().is_empty());
            assert_eq!(ReportKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ReportKind::Tlsrpt.json_kind(), "tls_report");
        assert_eq!(ReportKind::parse("other"), None);
    }
}
