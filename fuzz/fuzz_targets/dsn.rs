//! Fuzzes the bounce reader: any bytes must give a bounce, `None` or an error, never a panic;
//! a bounce must keep its limits, and classifying it must not panic. (That a bounce renders
//! as JSON is checked by the property tests in `tests/dsn_hostile.rs`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailcanary::verdict::dsn::{MAX_RECIPIENTS, MAX_VALUE_BYTES, classify, read};

fuzz_target!(|data: &[u8]| {
    match read(data) {
        Ok(Some(dsn)) => {
            assert!(dsn.recipients.len() <= MAX_RECIPIENTS);
            assert!(dsn.recipients.len() <= dsn.recipients_total);
            for recipient in &dsn.recipients {
                for value in [&recipient.final_recipient, &recipient.diagnostic_code]
                    .into_iter()
                    .flatten()
                {
                    assert!(value.len() <= MAX_VALUE_BYTES);
                }
            }
            let _ = dsn.rejection();
        }
        Ok(None) => {}
        Err(err) => assert!(!err.reason().is_empty()),
    }
    // The input as a reply text, too.
    let _ = classify(None, &String::from_utf8_lossy(data));
});
