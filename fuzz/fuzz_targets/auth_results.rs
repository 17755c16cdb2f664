//! Fuzzes the verdict reader: any bytes, with and without trusted ids, must give an
//! inspection or an error, never a panic, and the inspection must render as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailcanary::verdict::{inspect, to_json};

fuzz_target!(|data: &[u8]| {
    // The length picks the trust mode, so every path of the judge is explored while seed
    // messages stay whole.
    let raw = data;
    let ids = match data.len() % 3 {
        0 => Vec::new(),
        1 => vec!["mx.example.net".to_string()],
        _ => vec![String::new(), "MX.google.com".to_string()],
    };
    if let Ok(inspection) = inspect(raw, &ids) {
        let json = to_json(&inspection).expect("an inspection always renders as JSON");
        assert!(!json.is_empty());
        // Invariant: the verdict's id, when set, is that of a trusted header.
        if let Some(id) = &inspection.verdict.authserv_id {
            assert!(
                inspection
                    .authentication_results
                    .iter()
                    .any(|header| header.trusted && header.authserv_id.as_ref() == Some(id))
            );
        }
    }
});
