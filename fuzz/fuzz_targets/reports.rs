//! Fuzzes the report readers: any bytes, as an input to unpack (a file or a mail) or as a
//! DMARC or TLS-RPT document, must give reports or an error, never a panic; unpacking must
//! keep its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailcanary::reports::{MAX_DECOMPRESSED_BYTES, MAX_FILES, dmarc, tlsrpt, unpack};

fuzz_target!(|data: &[u8]| {
    match unpack(None, data) {
        Ok(found) => {
            assert!(!found.is_empty() && found.len() <= MAX_FILES);
            let total: usize = found.iter().map(|doc| doc.bytes.len()).sum();
            assert!(total <= MAX_DECOMPRESSED_BYTES.max(data.len()));
            for doc in &found {
                if let Err(err) = doc.parse() {
                    assert!(!err.reason().is_empty());
                }
            }
        }
        Err(err) => assert!(!err.reason().is_empty()),
    }
    let _ = dmarc::parse(data);
    let _ = tlsrpt::parse(data);
});
