//! Corpus files run twice, with LF and with CRLF line ends (messages arrive either way).

/// The same bytes with LF line ends, and with CRLF line ends. Lone CRs (which some cases
/// carry on purpose) are left alone.
pub fn lf_and_crlf(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lf = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        lf.push(raw[i]);
        i += 1;
    }
    let mut crlf = Vec::with_capacity(lf.len() + lf.len() / 20);
    for &byte in &lf {
        if byte == b'\n' {
            crlf.push(b'\r');
        }
        crlf.push(byte);
    }
    (lf, crlf)
}
