//! The one status word and exit-code policy, in the monitoring-plugin convention (the Nagios
//! plugin API that Icinga, Sensu and `check_*` scripts share): 0 ok, 1 warning, 2 critical,
//! 3 unknown. Probe results, DNS-audit reports and every command exit through this table.

use serde::Serialize;

/// Overall status of a probe result, a DNS-audit report or a whole command.
///
/// Ordered by severity for combining several into one: ok < unknown < warning < critical.
/// A known failure outranks a gap in what we could see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Unknown,
    Warning,
    Critical,
}

/// Process exit codes, one place for all of them.
pub mod exit {
    /// Everything as it should be.
    pub const OK: u8 = 0;
    /// A deliverability risk (spam folder, an authentication failure, a diagnosed cause).
    pub const WARNING: u8 = 1;
    /// Broken: a probe missing, rejected or not sent; a check failing; unreadable input.
    pub const CRITICAL: u8 = 2;
    /// We do not know: config or usage error, a mailbox or resolver we could not use.
    pub const UNKNOWN: u8 = 3;
}

impl Status {
    /// `ok`, `warning`, `critical`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// The exit code of a command whose result has this status.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => exit::OK,
            Status::Warning => exit::WARNING,
            Status::Critical => exit::CRITICAL,
            Status::Unknown => exit::UNKNOWN,
        }
    }

    /// The most severe of several statuses (`Ok` for none).
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Ok)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_and_codes() {
        assert_eq!(
            Status::worst([Status::Ok, Status::Unknown, Status::Warning]),
            Status::Warning
        );
        assert_eq!(
            Status::worst([Status::Unknown, Status::Critical]),
            Status::Critical
        );
        assert_eq!(
            Status::worst([Status::Ok, Status::Unknown]),
            Status::Unknown
        );
        assert_eq!(Status::worst([]), Status::Ok);
        let codes: Vec<u8> = [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ]
        .map(Status::exit_code)
        .to_vec();
        assert_eq!(codes, vec![0, 1, 2, 3]);
    }

    #[test]
    fn words_match_serde() {
        for s in [
            Status::Ok,
            Status::Warning,
            Status::Critical,
            Status::Unknown,
        ] {
            assert_eq!(
                serde_json::to_value(s).expect("serialises"),
                serde_json::Value::String(s.as_str().to_string())
            );
        }
    }
}
