//! UID sets as IMAP writes them (RFC 3501 §9 `sequence-set`): consecutive runs as ranges, so a
//! command line stays short however many UIDs it names (100,000 UIDs in one run are `1:100000`,
//! not 590 KB of comma-separated numbers, which servers refuse).

/// `1:3,7,9:10` for `[1, 2, 3, 7, 9, 10]`. Input in any order; duplicates are merged.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_become_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[10, 9, 9, 1]), "1,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }

    #[test]
    fn a_hundred_thousand_uids_stay_short() {
        let uids: Vec<u32> = (1..=100_000).collect();
        assert_eq!(uid_set(&uids), "1:100000");
        let every_other: Vec<u32> = (1..=2000).map(|u| u * 2).collect();
        assert!(uid_set(&every_other).len() < 12_000);
    }
}
