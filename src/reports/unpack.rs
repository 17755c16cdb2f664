//! Finds the report documents in what a receiver sent: bare XML or JSON, gzip (RFC 1952),
//! zip (PKWARE APPNOTE; stored and deflate entries only), or a mail carrying one of those
//! (RFC 7489 §7.2.1.1: gzip or zip attachment; RFC 8460 §5.3: `application/tlsrpt+gzip` or
//! `application/tlsrpt+json`).
//!
//! Compressed data is recognised by its magic bytes, not by a name or a media type (reporters
//! send gzip as `application/octet-stream`). Decompression stops past the shared budget of
//! [`MAX_DECOMPRESSED_BYTES`]: a bomb costs at most that much memory, never its full output.

use std::io::{Cursor, Read};

use super::{
    MAX_DECOMPRESSED_BYTES, MAX_FILES, ReportError, ReportKind, Unpacked, attachments, check_input,
};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Compressions we recognise by name or magic bytes but do not read.
const UNSUPPORTED: &[(&str, &[u8])] = &[
    (".bz2", b"BZh"),
    (".xz", &[0xfd, b'7', b'z', b'X', b'Z', 0]),
    (".zst", &[0x28, 0xb5, 0x2f, 0xfd]),
    (".7z", &[b'7', b'z', 0xbc, 0xaf]),
];

/// Finds and decompresses the reports in `bytes`; `name_hint` is the file name it came
/// under, if known. Fails when none is found.
pub fn unpack(name_hint: Option<&str>, bytes: &[u8]) -> Result<Vec<Unpacked>, ReportError> {
    check_input(bytes)?;
    let mut unpacker = Unpacker {
        budget: MAX_DECOMPRESSED_BYTES,
        found: Vec::new(),
    };
    if !unpacker.file(name_hint, bytes)? {
        let fields = crate::verdict::headers::split(bytes).map_err(|_| ReportError::NotAReport)?;
        for part in attachments::attachments(&fields, bytes)? {
            unpacker.attachment(&part)?;
        }
    }
    if unpacker.found.is_empty() {
        return Err(ReportError::NotAReport);
    }
    Ok(unpacker.found)
}

struct Unpacker {
    /// Bytes that may still be decompressed.
    budget: usize,
    found: Vec<Unpacked>,
}

impl Unpacker {
    /// Takes `bytes` when it is a report or an archive of reports; `false` when it is neither
    /// (a mail, perhaps).
    fn file(&mut self, name: Option<&str>, bytes: &[u8]) -> Result<bool, ReportError> {
        if bytes.starts_with(GZIP_MAGIC) {
            let inner = self.gunzip(bytes)?;
            let inner_name = name.map(|name| name.strip_suffix(".gz").unwrap_or(name));
            return self.document(inner_name, inner);
        }
        if bytes.starts_with(ZIP_MAGIC) {
            self.unzip(bytes)?;
            return Ok(true);
        }
        for (suffix, magic) in UNSUPPORTED {
            if bytes.starts_with(magic) || name.is_some_and(|name| name.ends_with(suffix)) {
                return Err(ReportError::UnsupportedCompression {
                    what: suffix.trim_start_matches('.').to_string(),
                });
            }
        }
        self.document(name, bytes.to_vec())
    }

    /// Takes a decompressed document if it is XML or JSON.
    fn document(&mut self, name: Option<&str>, bytes: Vec<u8>) -> Result<bool, ReportError> {
        let Some(kind) = kind_of(&bytes) else {
            return Ok(false);
        };
        if self.found.len() >= MAX_FILES {
            return Err(ReportError::TooMany {
                what: "reports in one input",
                limit: MAX_FILES,
            });
        }
        self.found.push(Unpacked {
            name: name.map(str::to_string),
            kind,
            bytes,
        });
        Ok(true)
    }

    /// A MIME part that may hold a report.
    fn attachment(&mut self, part: &attachments::Attachment) -> Result<(), ReportError> {
        let name = part.filename.as_deref();
        let compressed = part.body.starts_with(GZIP_MAGIC) || part.body.starts_with(ZIP_MAGIC);
        // A part that announces a report but holds neither XML nor JSON is skipped; when no
        // part holds one, `unpack` fails with `NotAReport`.
        if compressed || part.is_report_type() {
            self.file(name, &part.body)?;
        }
        Ok(())
    }

    fn gunzip(&mut self, bytes: &[u8]) -> Result<Vec<u8>, ReportError> {
        let decoder = flate2::read::MultiGzDecoder::new(bytes);
        self.read_bounded(decoder, "gzip")
    }

    fn unzip(&mut self, bytes: &[u8]) -> Result<(), ReportError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
        if archive.len() > MAX_FILES {
            return Err(ReportError::TooMany {
                what: "files in a zip",
                limit: MAX_FILES,
            });
        }
        for index in 0..archive.len() {
            let file = archive.by_index(index).map_err(zip_error)?;
            if file.is_dir() {
                continue;
            }
            let name = file.name().map_err(zip_error)?.into_owned();
            let inner = self.read_bounded(file, "zip")?;
            self.document(Some(&name), inner)?;
        }
        Ok(())
    }

    /// Reads all of `reader`, refusing past the budget: at most budget + 1 bytes are ever held.
    fn read_bounded(
        &mut self,
        reader: impl Read,
        format: &'static str,
    ) -> Result<Vec<u8>, ReportError> {
        let mut out = Vec::new();
        reader
            .take(self.budget as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|err| ReportError::Corrupt {
                format,
                detail: err.to_string(),
            })?;
        if out.len() > self.budget {
            return Err(ReportError::TooLarge {
                what: "the decompressed data",
                limit: MAX_DECOMPRESSED_BYTES,
            });
        }
        self.budget -= out.len();
        Ok(out)
    }
}

/// XML (DMARC) or JSON (TLS-RPT), by the first byte that is not white space or a BOM.
fn kind_of(bytes: &[u8]) -> Option<ReportKind> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'<') => Some(ReportKind::Dmarc),
        Some(b'{') => Some(ReportKind::Tlsrpt),
        _ => None,
    }
}

fn zip_error(err: zip::result::ZipError) -> ReportError {
    match err {
        zip::result::ZipError::UnsupportedArchive(what) => ReportError::UnsupportedCompression {
            what: format!("zip: {what}"),
        },
        zip::result::ZipError::CompressionMethodNotSupported(method) => {
            ReportError::UnsupportedCompression {
                what: format!("zip compression method {method}"),
            }
        }
        other => ReportError::Corrupt {
            format: "zip",
            detail: other.to_string(),
        },
    }
}
